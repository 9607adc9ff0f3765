//! `faithscope generate`: run a model on one clip and question, streaming its reasoning, and
//! with choices read its answer. The quickest check that a model works.
//!
//! The prompts are the protocol's (`--protocol`, default: the one the model folder names, else
//! paper-v1, as `run` and `inspect` choose it): the chain is asked as its `[cot]` step says, and
//! with choices the answer is forced after the sanitized chain as its `[answer]` step says.
//! `--protocol raw` sends the question and lettered choices as they are, with `--prefill` and
//! `--answer-cue` (for parity checks against other implementations).

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use crate::data::{Item, ItemMeta};
use crate::faith::answer::{answer_prompt, cot_conversation, force, Forced};
use crate::faith::protocol::Protocol;
use crate::faith::sweep::sanitize;
use crate::model::candle_backend::{CacheOptions, CandleReasoner, LoadOptions};
use crate::model::openai::messages_of;
use crate::model::remote::{is_url, RemoteOptions, RemoteReasoner};
use crate::model::resolve::{compute_dtype, model_protocol, resolve_model, select_device};
use crate::model::{ChoiceProbs, Conversation, GenParams, Message, Reasoner, Role};

/// `--protocol raw`: the question and choices as they are, no protocol.
pub const RAW: &str = "raw";

/// Arguments of `faithscope generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Model folder, a repo id (ORG/NAME) in the local Hugging Face cache, or the URL of an
    /// OpenAI-compatible server (http://HOST:PORT/v1).
    #[arg(long)]
    pub model: String,
    /// Audio clip (wav, flac, mp3, ogg).
    #[arg(long)]
    pub audio: PathBuf,
    /// The question asked about the clip.
    #[arg(long)]
    pub question: String,
    /// An answer choice (repeat for each); shown as (A), (B), ... after the question.
    #[arg(long = "choice")]
    pub choices: Vec<String>,
    /// Protocol: paper-v1, lanham, af3, omni, a TOML file, or raw (the question and lettered
    /// choices as they are); default: the one the model folder names in faithscope.json (the demo
    /// models: lanham), else paper-v1.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Text the reasoning starts with (e.g. a chain of thought so far), after the protocol's own
    /// opening (lanham: "Let's think step by step:").
    #[arg(long)]
    pub prefill: Option<String>,
    /// Most new tokens to generate (0: only read the choice probabilities).
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// With --protocol raw: text appended after the generated reasoning before reading the
    /// choice-letter probabilities, e.g. " So the answer is (" (a protocol asks for the answer
    /// as its [answer] step says).
    #[arg(long)]
    pub answer_cue: Option<String>,
    /// Print one JSON object (prompt text and ids, generated ids and text, probabilities).
    #[arg(long)]
    pub json: bool,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight dtype: f32, f16 or bf16 (default f32 on CPU, bf16 on a GPU).
    #[arg(long)]
    pub dtype: Option<String>,
    /// A model served over HTTP (--model http://HOST:PORT/v1): with --json the capabilities
    /// found are printed too.
    #[command(flatten)]
    pub remote: crate::cli::run::RemoteArgs,
}

/// Letters for `n` choices: A, B, C, ...
pub fn choice_letters(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| char::from(b'A' + (i % 26) as u8).to_string())
        .collect()
}

/// The user turn: the question followed by the lettered choices, one per line.
pub fn question_text(question: &str, choices: &[String]) -> String {
    let mut text = question.to_string();
    for (letter, choice) in choice_letters(choices.len()).iter().zip(choices) {
        text.push_str(&format!("\n({letter}) {choice}"));
    }
    text
}

/// The protocol `generate` uses: `--protocol`, else the model folder's, else paper-v1; `None`
/// for `raw`.
pub fn chosen_protocol(args: &GenerateArgs) -> anyhow::Result<Option<Protocol>> {
    let spec = args
        .protocol
        .clone()
        .or_else(|| model_protocol(&args.model))
        .unwrap_or_else(|| "paper-v1".to_string());
    if spec == RAW {
        return Ok(None);
    }
    let p = Protocol::resolve(&spec)
        .with_context(|| format!("--protocol {spec} (or {RAW} for the bare question)"))?;
    Ok(Some(p))
}

/// The clip and question as an item, for the protocol's templates.
fn item_of(args: &GenerateArgs) -> Item {
    Item {
        id: "generate".into(),
        audio: args.audio.clone(),
        question: args.question.clone(),
        choices: args.choices.clone(),
        gold: None,
        meta: ItemMeta::default(),
    }
}

/// The conversation that elicits the reasoning.
fn reasoning_conversation(args: &GenerateArgs, protocol: Option<&Protocol>) -> Conversation {
    match protocol {
        None => Conversation {
            audio: Some(args.audio.clone()),
            messages: vec![Message {
                role: Role::User,
                text: question_text(&args.question, &args.choices),
            }],
            prefill: args.prefill.clone(),
        },
        Some(p) => {
            let mut conv = cot_conversation(p, &item_of(args));
            if let Some(extra) = &args.prefill {
                let open = conv.prefill.take().unwrap_or_default();
                let sep = if open.is_empty() || open.ends_with(' ') {
                    ""
                } else {
                    " "
                };
                conv.prefill = Some(format!("{open}{sep}{extra}"));
            }
            conv
        }
    }
}

/// Runs the subcommand.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.answer_cue.is_some() && args.choices.is_empty() {
        anyhow::bail!("--answer-cue needs the answer choices: pass --choice once per choice");
    }
    let protocol = chosen_protocol(&args)?;
    if let (Some(p), Some(_)) = (&protocol, &args.answer_cue) {
        anyhow::bail!(
            "--answer-cue is for --protocol {RAW}; protocol {} asks for the answer as its [answer] step says (drop --answer-cue, or pass --protocol {RAW})",
            p.name
        );
    }
    let conv = reasoning_conversation(&args, protocol.as_ref());
    // In process: the prompt as the model sees it. Served: the messages sent (the server's
    // chat template renders them) and what the server was found to do.
    let (model, where_, prompt, capabilities): (Box<dyn Reasoner>, String, _, _) =
        if is_url(&args.model) {
            let mut opts = RemoteOptions::new(&args.model);
            opts.served_model = args.remote.served_model.clone();
            opts.timeout = std::time::Duration::from_secs(args.remote.timeout.max(1));
            let r = RemoteReasoner::connect(opts)?;
            let caps = serde_json::to_value(r.capabilities())?;
            let (messages, _) = messages_of(&conv, conv.audio.as_ref().map(|_| "<clip>"));
            let prompt = json!({"messages": messages});
            (Box::new(r), args.model.clone(), prompt, Some(caps))
        } else {
            let dir = resolve_model(&args.model)?;
            let device = select_device(&args.device)?;
            let dtype = compute_dtype(args.dtype.as_deref(), &device, args.remote.quant)?;
            let m = CandleReasoner::load_with(
                &dir,
                &device,
                dtype,
                &LoadOptions {
                    caches: CacheOptions::default(),
                    adapter: args.remote.adapter.clone(),
                    quant: args.remote.quant,
                    quant_cache: crate::model::quant_cache::default_dir(),
                },
            )
            .with_context(|| format!("loading model {}", dir.display()))?;
            let p = m.render_prompt(&conv)?;
            let prompt = json!({"text": p.text, "ids": p.ids});
            (Box::new(m), dir.display().to_string(), prompt, None)
        };
    let params = GenParams {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        stop: protocol
            .as_ref()
            .map(|p| p.cot.stop.clone())
            .unwrap_or_default(),
    };
    let mut out = std::io::stdout().lock();
    let generation = if args.max_tokens > 0 {
        let quiet = args.json;
        let mut write_err = None;
        let g = model.generate(&conv, &params, &mut |delta| {
            if quiet {
                return ControlFlow::Continue(());
            }
            match out.write_all(delta.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    write_err = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = write_err {
            return Err(e).context("writing to stdout");
        }
        if !quiet {
            writeln!(out)?;
        }
        Some(g)
    } else {
        None
    };
    let reasoning = generation.as_ref().map(|g| g.text.trim()).unwrap_or("");
    let mut chain = None;
    let mut forced: Option<Forced> = None;
    let probs: Option<ChoiceProbs> = match (&protocol, &args.answer_cue) {
        (Some(p), _) if !args.choices.is_empty() => {
            let text = format!("{} {reasoning}", args.prefill.as_deref().unwrap_or(""));
            let sanitized = sanitize(p, text.trim());
            let item = item_of(&args);
            let f = force(
                model.as_ref(),
                &answer_prompt(p, &item, &sanitized),
                &args.choices,
            )?;
            chain = Some(sanitized);
            let probs = f.probs.clone();
            forced = Some(f);
            probs
        }
        (None, Some(cue)) => {
            let mut answer_conv = conv.clone();
            let mut prefill = args.prefill.clone().unwrap_or_default();
            if let Some(g) = &generation {
                prefill.push_str(&g.text);
            }
            prefill.push_str(cue);
            answer_conv.prefill = Some(prefill);
            Some(model.choice_probs(&answer_conv, &choice_letters(args.choices.len()))?)
        }
        _ => None,
    };
    if args.json {
        let obj = json!({
            "model": where_,
            "model_name": model.name(),
            "capabilities": capabilities,
            "protocol": protocol.as_ref().map_or(RAW, |p| p.name.as_str()),
            "prompt": prompt.get("text").cloned().unwrap_or_else(|| prompt["messages"].clone()),
            "prompt_ids": prompt.get("ids").cloned().unwrap_or(serde_json::Value::Null),
            "generated_ids": generation.as_ref().map(|g| g.tokens.clone()).unwrap_or_default(),
            "generated_text": generation.as_ref().map(|g| g.text.clone()).unwrap_or_default(),
            "stop": generation.as_ref().map(|g| g.stop),
            "sanitized_chain": chain,
            "answer": forced.as_ref().map(|f| f.predicted.clone()),
            "answer_raw": forced.as_ref().map(|f| f.raw.clone()),
            "choice_probs": probs,
            "stats": model.stats(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&obj)?)?;
    } else {
        if let Some(f) = &forced {
            let answer = f.predicted.as_deref().unwrap_or("none (unparsed)");
            writeln!(out, "answer: {answer}  (raw {:?})", f.raw)?;
        }
        if let Some(p) = &probs {
            for ((letter, prob), choice) in p.letters.iter().zip(&p.probs).zip(&args.choices) {
                writeln!(out, "P({letter}) = {prob:.4}  {choice}")?;
            }
        }
    }
    Ok(())
}
