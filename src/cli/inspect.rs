//! `faithscope inspect`: the interactive inspector on any dataset, model or run. `faithscope`
//! with no arguments opens it on the embedded samples and the demo model.

use std::path::PathBuf;

use crate::tui::{self, Options};

/// Arguments of `faithscope inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// Dataset file or folder (any supported format); default: samples/synth-test.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model folder, hub id in the local Hugging Face cache, or the URL of an OpenAI-compatible
    /// server (http://HOST:PORT/v1); default: samples/models/demo-faithful when present.
    #[arg(long)]
    pub model: Option<String>,
    /// A second model, one key (`o`) away: the same chain and intervention are asked again
    /// (default: samples/models/demo-posthoc when the demo model is used).
    #[arg(long)]
    pub compare: Option<String>,
    /// A run directory, or the paper's result files (baseline_*, early_answering_*,
    /// *filler_text_*, ... and .part_N files, several at once): their chains are shown instead of
    /// sampling new ones, their trials mark the items and fill the sweep and aggregate panels.
    /// The items come from --data, else a *_standardized.jsonl item file given or found beside
    /// the result files, else the result rows themselves.
    #[arg(long, num_args = 1.., value_name = "RUN-DIR | FILE")]
    pub run: Vec<PathBuf>,
    /// Protocol: paper-v1, lanham, af3, omni or a TOML file (a run's own protocol wins); default:
    /// the one the model folder names in faithscope.json (the demo models: lanham), else paper-v1.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Annotator name recorded with annotations (default: $USER).
    #[arg(long)]
    pub annotator: Option<String>,
    /// Annotation file (JSONL, appended); default: annotations.jsonl beside the dataset.
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// Theme: dark, light, high-contrast, monochrome or a TOML file (NO_COLOR forces monochrome).
    #[arg(long)]
    pub theme: Option<String>,
    /// Keymap TOML file over the default bindings.
    #[arg(long)]
    pub keymap: Option<PathBuf>,
    /// Seed of sampled chains.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight dtype: f32, f16 or bf16.
    #[arg(long)]
    pub dtype: Option<String>,
    /// A model served over HTTP (--model http://HOST:PORT/v1).
    #[command(flatten)]
    pub remote: crate::cli::run::RemoteArgs,
}

impl Default for InspectArgs {
    fn default() -> Self {
        InspectArgs {
            data: None,
            model: None,
            compare: None,
            run: Vec::new(),
            protocol: None,
            annotator: None,
            annotations: None,
            theme: None,
            keymap: None,
            seed: 0,
            device: "cpu".into(),
            dtype: None,
            remote: crate::cli::run::RemoteArgs {
                served_model: None,
                timeout: 600,
                adapter: None,
                quant: crate::model::Quant::None,
            },
        }
    }
}

/// Runs the inspector.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    tui::run(Options {
        data: args.data,
        model: args.model,
        compare: args.compare,
        run: args.run,
        protocol: args.protocol,
        annotator: args.annotator,
        annotations: args.annotations,
        theme: args.theme,
        keymap: args.keymap,
        seed: args.seed,
        device: args.device,
        dtype: args.dtype,
        served_model: args.remote.served_model,
        timeout_s: args.remote.timeout,
        adapter: args.remote.adapter,
        quant: args.remote.quant,
    })
}
