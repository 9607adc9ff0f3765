//! `faithscope run`: every intervention over a dataset, into a resumable run directory.
//!
//! `faithscope run --data <SOURCE> --model <MODEL> --out <RUN-DIR>` starts a run;
//! `faithscope run --resume <RUN-DIR>` continues one that was stopped (killed, crashed, or cut
//! short by a full disk), reading everything it needs from the run's manifest.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::data::{self, Format, Item, LoadOptions};
use crate::faith::mistakes::Annotations;
use crate::faith::perturb::Writer;
use crate::faith::protocol::Protocol;
use crate::faith::run::{
    read_ids, run_items_concurrently, Manifest, Progress, RunStore, RunSummary,
};
use crate::faith::shards::{self, Shard};
use crate::faith::sweep::{MistakeSource, Plan, Sweep};
use crate::model::{Quant, Reasoner};

/// Arguments of `faithscope run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Dataset file or folder (SAKURA, MMAR, MMAU, AIR-Bench, standardized JSONL, faithscope JSONL).
    #[arg(long, required_unless_present_any = ["resume", "check"])]
    pub data: Option<PathBuf>,
    /// Dataset format (detected from the path by default).
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// Model folder, a repo id (ORG/NAME) in the local Hugging Face cache, or the URL of an
    /// OpenAI-compatible server (http://HOST:PORT/v1: vLLM, llama-server, faithscope serve).
    #[arg(long, required_unless_present_any = ["resume", "check"])]
    pub model: Option<String>,
    /// Protocol: paper-v1, lanham, af3, omni, or a TOML file of your own; default: the one the
    /// model folder names in faithscope.json (the demo models: lanham), else paper-v1.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Interventions, comma-separated: early, mistakes, paraphrase, filler,
    /// filler:<random|start|end>:<dots|lorem>:<preserve|collapse>, filler-only, all; and on the
    /// audio: audio-mask:<silence|noise>:<start|end|random|scattered> (10..100%),
    /// audio-snr (-10..30 dB), spoken-hint:<correct|wrong>:<concat|overlay>, each under both
    /// designs (the chain held, or regenerated on the altered clip) or one (`:held`, `:regen`).
    /// Altered clips are kept in the run's audio/ folder.
    #[arg(long, default_value = "early,mistakes,paraphrase,filler")]
    pub interventions: String,
    /// Where mistaken sentences come from: model (the same model, few-shot), llm:URL[#MODEL]
    /// (an external text model on an OpenAI-compatible server, the paper's way), rules, facts
    /// (the synthetic items' own facts, altered exactly), an annotations JSONL file, or a
    /// perturbation file from `faithscope perturb`.
    #[arg(long, default_value = "model")]
    pub mistake_source: String,
    /// Who writes paraphrases: model (the same model), llm:URL[#MODEL], or a perturbation file
    /// from `faithscope perturb`.
    #[arg(long, default_value = "model")]
    pub paraphrase_source: String,
    /// Chains of thought sampled per item, 1 to 100 (MAX_CHAINS); for more, run again with
    /// another --seed.
    #[arg(long, default_value_t = 1)]
    pub chains: u32,
    /// Run seed: every item, chain and trial seed derives from it.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run only the first N items (N at least 1).
    #[arg(long)]
    pub limit: Option<usize>,
    /// The run directory to create (must be missing or empty).
    #[arg(long, required_unless_present_any = ["resume", "check"])]
    pub out: Option<PathBuf>,
    /// Run only shard K of N (0 <= K < N, e.g. $SLURM_ARRAY_TASK_ID/16): a deterministic 1/N of
    /// the items, by a hash of their ids, so the split is the same whatever the dataset's order
    /// and --limit; each shard writes its own run directory, `report` and `inspect --run` read
    /// them together, `--check` says whether they are complete.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse, conflicts_with = "resume")]
    pub shard: Option<Shard>,
    /// Check run directories (one run, or the shards of one) against the dataset: items done,
    /// errored, partial and missing, missing shards; the exit status is 0 only when complete.
    #[arg(long, value_name = "RUN-DIR", num_args = 1.., conflicts_with_all = ["data", "model", "out", "resume"])]
    pub check: Vec<PathBuf>,
    /// Continue the run in this directory with the settings in its manifest.
    #[arg(long, value_name = "RUN-DIR", conflicts_with_all = ["data", "model", "out"])]
    pub resume: Option<PathBuf>,
    /// With --resume: try again the items recorded in errors.jsonl.
    #[arg(long, requires = "resume")]
    pub retry_errors: bool,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight dtype: f32, f16 or bf16 (default f32 on CPU, bf16 on a GPU).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Sequences decoded per step where a chain's trials need many generations (chains,
    /// mistakes and their continuations, paraphrases); results are the same as one at a time.
    /// For a server: that many of a chain's requests sent at once (on top of --concurrency
    /// items in flight). Default: 8 on the CPU, 16 on a GPU, 1 for a server.
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Items in flight at once, each on its own worker: for a server, which batches concurrent
    /// requests (vLLM, `faithscope serve`). The trials are the same as one at a time (seeds are
    /// per item, chain and trial), written in another order. Default: 16 for a server, 1 in
    /// process (where --batch batches instead).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// No progress (a bar on a terminal, otherwise a line per 1% of the items with the ETA)
    /// and no summary.
    #[arg(long)]
    pub quiet: bool,
    /// A model served over HTTP.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The most chains `--chains` accepts per item: each chain is sampled and then swept by every
/// intervention, so the work grows with it linearly.
pub const MAX_CHAINS: u32 = 100;

/// Refuses `--chains` and `--limit` values that cannot make a sensible run.
fn check_counts(chains: u32, limit: Option<usize>) -> anyhow::Result<()> {
    if chains == 0 {
        bail!("--chains 0 samples no chains: give 1 to {MAX_CHAINS} chains per item");
    }
    if limit == Some(0) {
        bail!("--limit 0 runs no items: give at least 1, or leave --limit out to run them all");
    }
    Ok(())
}

/// Refuses more than [`MAX_CHAINS`] chains per item, stating the work asked for.
fn check_work(chains: u32, items: usize, interventions: &str) -> anyhow::Result<()> {
    if chains <= MAX_CHAINS {
        return Ok(());
    }
    let total = u64::from(chains) * items as u64;
    bail!(
        "--chains {chains} is over the limit of {MAX_CHAINS} chains per item: with {items} items \
         that is {total} chains to sample, each swept by {interventions} (about one answer per \
         sentence and intervention, 21 per filler setting); give at most {MAX_CHAINS}, or \
         split the work into several runs with different --seed values"
    );
}

/// How a model served over HTTP is reached (`--model http://HOST:PORT/v1`); shared by `run`,
/// `inspect` and `generate`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// With --model URL: the served model id (default: the first one GET /v1/models lists).
    /// The API key comes from FAITHSCOPE_API_KEY, else OPENAI_API_KEY.
    #[arg(long, value_name = "NAME")]
    pub served_model: Option<String>,
    /// With --model URL: seconds one request may take, a whole generation included.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// With a model folder: merge this LoRA adapter at load, a subfolder of the model (`think`,
    /// Audio Flamingo 3's thinking mode) or the path of a peft adapter folder.
    #[arg(long, value_name = "NAME|DIR")]
    pub adapter: Option<String>,
    /// With a model folder: quantise the linear weights at load (none, q8_0, q6k, q5k, q4k);
    /// activations stay f32.
    #[arg(long, value_name = "TYPE", default_value = "none", value_parser = parse_quant)]
    pub quant: Quant,
}

/// Parses `--quant`.
pub fn parse_quant(s: &str) -> Result<Quant, String> {
    Quant::parse(s)
}

/// Opens the model a run uses (see [`crate::model::resolve::open_model`]).
pub fn open_model(
    model: &str,
    device: &str,
    dtype: Option<&str>,
    remote: &RemoteArgs,
) -> anyhow::Result<Box<dyn Reasoner>> {
    let spec = crate::model::resolve::ModelSpec {
        model: model.to_string(),
        device: device.to_string(),
        dtype: dtype.map(str::to_string),
        served_model: remote.served_model.clone(),
        timeout_s: remote.timeout,
        adapter: remote.adapter.clone(),
        quant: remote.quant,
    };
    Ok(crate::model::resolve::open_model(&spec)?)
}

/// The dataset's items after `--limit`, then the shard's (which may hold none of them).
fn load_items(
    data: &Path,
    format: Format,
    limit: Option<usize>,
    shard: Option<Shard>,
    quiet: bool,
) -> anyhow::Result<Vec<Item>> {
    let ds = data::load(
        data,
        &LoadOptions {
            format,
            strict: false,
            allow_outside: false,
        },
    )?;
    if !ds.problems.is_empty() && !quiet {
        eprintln!(
            "{}: {} problem(s) while loading; run `faithscope items {}` to list them",
            data.display(),
            ds.problems.len(),
            data.display()
        );
    }
    let mut items = ds.items;
    if let Some(n) = limit {
        items.truncate(n);
    }
    if items.is_empty() {
        bail!(
            "no items loaded from {}; run `faithscope items {}` to see why",
            data.display(),
            data.display()
        );
    }
    if let Some(shard) = shard {
        items.retain(|it| shard.holds(&it.id));
    }
    Ok(items)
}

/// Reads `--mistake-source`.
pub fn mistake_source(spec: &str, timeout: u64) -> anyhow::Result<MistakeSource> {
    let secs = std::time::Duration::from_secs(timeout);
    if let Some(w) = Writer::parse(spec, secs) {
        return Ok(MistakeSource::Written(
            w.map_err(|e| anyhow::anyhow!("--mistake-source {e}"))?,
        ));
    }
    Ok(match spec {
        "rules" => MistakeSource::Rules,
        "facts" => MistakeSource::Facts,
        path => {
            let p = Path::new(path);
            if !p.is_file() {
                bail!("--mistake-source {path:?}: use model, llm:URL[#MODEL], rules, facts, or the path of an annotations or perturbation JSONL file (no such file)");
            }
            MistakeSource::Annotations(Annotations::load(p)?)
        }
    })
}

/// Reads `--paraphrase-source`.
pub fn paraphrase_source(spec: &str, timeout: u64) -> anyhow::Result<Writer> {
    match Writer::parse(spec, std::time::Duration::from_secs(timeout)) {
        Some(w) => w.map_err(|e| anyhow::anyhow!("--paraphrase-source {e}")),
        None => bail!("--paraphrase-source {spec:?}: use model, llm:URL[#MODEL], or the path of a perturbation file from `faithscope perturb`"),
    }
}

/// The manifest's spelling of a source, an external LLM's with its model id (connecting now,
/// so that a server that is down or a model it does not serve is said before the run starts).
fn resolved_spec(spec: &str, writer: Option<&Writer>) -> anyhow::Result<String> {
    match writer {
        Some(Writer::Llm(l)) => {
            l.connect()?;
            Ok(l.spec())
        }
        _ => Ok(spec.to_string()),
    }
}

/// `--batch` when not given: a server batches concurrent requests itself; a GPU has room for
/// more sequences per step than a CPU.
fn default_batch(m: &Manifest) -> usize {
    if crate::model::remote::is_url(&m.model) {
        1
    } else if m.device == "cpu" {
        8
    } else {
        16
    }
}

/// `--concurrency` when not given: a server takes many requests at once, a model in this
/// process one (it batches a chain's generations itself).
fn default_concurrency(m: &Manifest) -> usize {
    if crate::model::remote::is_url(&m.model) {
        16
    } else {
        1
    }
}

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Runs the subcommand.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.batch == Some(0) {
        anyhow::bail!("--batch 0: give at least 1 sequence per step (1 decodes one at a time)");
    }
    if args.concurrency == Some(0) {
        anyhow::bail!("--concurrency 0: give at least 1 item in flight (1 runs one at a time)");
    }
    if !args.check.is_empty() {
        return check(&args.check);
    }
    let (mut store, manifest, model) = match &args.resume {
        Some(dir) => {
            let (mut store, m) = RunStore::open(dir)?;
            if m.faithscope_version != version() {
                eprintln!(
                    "warning: {} was started by faithscope {}, this is {}; trials may differ from an uninterrupted run",
                    dir.display(),
                    m.faithscope_version,
                    version()
                );
            }
            if args.retry_errors {
                store.retry_failed();
            }
            // the served model of the first start, unless given again
            let remote = RemoteArgs {
                served_model: args.remote.served_model.clone().or(m.served_model.clone()),
                timeout: args.remote.timeout,
                adapter: args.remote.adapter.clone().or(m.adapter.clone()),
                quant: if args.remote.quant != Quant::None {
                    args.remote.quant
                } else {
                    m.quant.unwrap_or_default()
                },
            };
            let model = open_model(
                &m.model,
                &m.device,
                (!m.dtype.is_empty()).then_some(m.dtype.as_str()),
                &remote,
            )?;
            (store, m, model)
        }
        None => {
            // clap enforces these three without --resume.
            let (Some(data), Some(model), Some(out)) = (&args.data, &args.model, &args.out) else {
                bail!("--data, --model and --out are needed to start a run (or --resume RUN-DIR)");
            };
            let spec = args
                .protocol
                .clone()
                .or_else(|| crate::model::resolve::model_protocol(model))
                .unwrap_or_else(|| "paper-v1".to_string());
            let protocol = Protocol::resolve(&spec)?;
            let plan = Plan::parse(&args.interventions).map_err(anyhow::Error::msg)?;
            let mistakes = mistake_source(&args.mistake_source, args.remote.timeout)?;
            let written = match &mistakes {
                MistakeSource::Written(w) => Some(w),
                _ => None,
            };
            let mistake_spec = resolved_spec(&args.mistake_source, written)?;
            let paraphrases = paraphrase_source(&args.paraphrase_source, args.remote.timeout)?;
            let paraphrase_spec = resolved_spec(&args.paraphrase_source, Some(&paraphrases))?;
            check_counts(args.chains, args.limit)?;
            let items = load_items(data, args.format, args.limit, args.shard, args.quiet)?;
            check_work(args.chains, items.len(), &plan.spec())?;
            let model_box = open_model(model, &args.device, args.dtype.as_deref(), &args.remote)?;
            let m = Manifest {
                faithscope_version: version(),
                created_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                model: model.clone(),
                model_name: model_box.name().to_string(),
                served_model: crate::model::remote::is_url(model)
                    .then(|| args.remote.served_model.clone())
                    .flatten(),
                adapter: args.remote.adapter.clone(),
                quant: (args.remote.quant != Quant::None).then_some(args.remote.quant),
                device: args.device.clone(),
                dtype: args.dtype.clone().unwrap_or_default(),
                data: data.display().to_string(),
                data_format: format!("{:?}", args.format).to_lowercase(),
                items: items.len(),
                protocol,
                interventions: plan.spec(),
                mistake_source: mistake_spec,
                paraphrase_source: paraphrase_spec,
                chains: args.chains,
                seed: args.seed,
                limit: args.limit,
                shard: args.shard,
            };
            (RunStore::create(out, &m)?, m, model_box)
        }
    };
    let format: Format =
        serde_json::from_value(serde_json::Value::String(manifest.data_format.clone()))
            .unwrap_or(Format::Auto);
    let items = load_items(
        Path::new(&manifest.data),
        format,
        manifest.limit,
        manifest.shard,
        args.quiet,
    )?;
    if let (Some(shard), true) = (manifest.shard, items.is_empty() && !args.quiet) {
        eprintln!(
            "{}: shard {shard} holds none of the items of {} (too few items for {} shards)",
            store.dir().display(),
            manifest.data,
            shard.count
        );
    }
    if items.len() != manifest.items {
        eprintln!(
            "warning: {} now yields {} items where the run started with {}; the run goes over the current ones",
            manifest.data,
            items.len(),
            manifest.items
        );
    }
    let mut plan = Plan::parse(&manifest.interventions).map_err(anyhow::Error::msg)?;
    plan.mistake_source = mistake_source(&manifest.mistake_source, args.remote.timeout)?;
    plan.paraphrase_source = paraphrase_source(&manifest.paraphrase_source, args.remote.timeout)?;
    let mut sweep = Sweep::new(
        model.as_ref(),
        &manifest.protocol,
        &plan,
        manifest.seed,
        manifest.chains,
    )
    .with_batch(args.batch.unwrap_or_else(|| default_batch(&manifest)))
    .with_audio_dir(store.dir().join("audio"));
    let progress = Progress::for_stderr(args.quiet);
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| default_concurrency(&manifest));
    let s: RunSummary =
        run_items_concurrently(&mut store, &mut sweep, &items, progress, concurrency)?;
    if !args.quiet {
        eprintln!(
            "{}: {} items done now, {} before, {} failed now, {} failed before (errors.jsonl); {} trials written, {} already there; {} flips in all",
            store.dir().display(),
            s.items_done,
            s.items_done_before,
            s.items_failed,
            s.items_failed_before,
            s.trials_written,
            s.trials_skipped,
            s.flips
        );
    }
    Ok(())
}

/// `faithscope run --check DIR...`: prints the completeness of the run directories against the
/// dataset their manifests name; an error (exit status 1) unless complete.
fn check(dirs: &[PathBuf]) -> anyhow::Result<()> {
    let (dirs, warnings) = shards::distinct_paths(dirs);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let runs = dirs
        .iter()
        .map(|d| read_ids(d))
        .collect::<Result<Vec<_>, _>>()?;
    let manifests: Vec<(PathBuf, serde_json::Value)> = runs
        .iter()
        .map(|r| (r.dir.clone(), r.manifest.clone()))
        .collect();
    shards::agree(&manifests)?;
    let first = &runs[0];
    let field = |f: &str| first.manifest.get(f).cloned().unwrap_or_default();
    let Some(data) = field("data").as_str().map(PathBuf::from) else {
        bail!(
            "{}: the manifest names no dataset (field data)",
            first.dir.display()
        );
    };
    let format: Format = serde_json::from_value(field("data_format")).unwrap_or(Format::Auto);
    let limit = field("limit").as_u64().map(|n| n as usize);
    let items = load_items(&data, format, limit, None, true)
        .map_err(|e| anyhow::anyhow!("{e:#}\n(the dataset of {}, as its manifest names it: run --check from the folder the run was started in)", first.dir.display()))?;
    let ids: Vec<String> = items.into_iter().map(|it| it.id).collect();
    let c = shards::completeness(&ids, &runs);
    print!("{}", shards::render(&c, &runs, 20));
    if !c.complete() {
        bail!(
            "incomplete: {} of {} items not done{}",
            c.items - c.done.len(),
            c.items,
            if c.missing_shards.is_empty() {
                String::new()
            } else {
                format!(", {} shard(s) missing", c.missing_shards.len())
            }
        );
    }
    Ok(())
}
