//! `faithscope perturb`: an external LLM writes the mistakes and paraphrases of a run's chains
//! into a file (the paper's `generate_perturbations.py` step), for runs to read with
//! `--mistake-source FILE` / `--paraphrase-source FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::data::{self, Format, LoadOptions};
use crate::faith::perturb::{perturb_chains, Llm, PerturbKind, Perturbations};
use crate::faith::run::{read_lines, read_manifest, CHAINS};
use crate::faith::sweep::{Chain, Plan};

/// Arguments of `faithscope perturb`.
#[derive(Debug, clap::Args)]
pub struct PerturbArgs {
    /// The run directory whose chains are perturbed (its manifest gives the protocol, the seed
    /// and, unless --data is given, the dataset).
    #[arg(long, value_name = "RUN-DIR")]
    pub chains: PathBuf,
    /// The external model: llm:URL[#MODEL] (an OpenAI-compatible server: vLLM, llama-server,
    /// faithscope serve).
    #[arg(long, value_name = "llm:URL[#MODEL]")]
    pub source: String,
    /// The perturbation file to write (JSONL; what it holds already is not asked again).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The dataset of the run (default: the one its manifest names).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// What to write, comma-separated: mistakes, paraphrase (default: those of the run's
    /// interventions; both when it has neither).
    #[arg(long)]
    pub kinds: Option<String>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds one request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

fn kinds(list: &str) -> anyhow::Result<Vec<PerturbKind>> {
    let mut out = Vec::new();
    for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        out.push(match k {
            "mistakes" | "mistake" => PerturbKind::Mistake,
            "paraphrase" | "paraphrases" => PerturbKind::Paraphrase,
            other => bail!("--kinds: unknown kind {other:?}; use mistakes, paraphrase or both"),
        });
    }
    out.dedup();
    if out.is_empty() {
        bail!("--kinds is empty; use mistakes, paraphrase or both");
    }
    Ok(out)
}

/// Runs the subcommand.
pub fn run(args: PerturbArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency 0: give at least 1 request in flight");
    }
    let llm = match Llm::parse(&args.source, Duration::from_secs(args.timeout)) {
        Some(l) => l.map_err(|e| anyhow::anyhow!("--source {e}"))?,
        None => bail!(
            "--source {:?}: give llm:URL[#MODEL], e.g. llm:http://127.0.0.1:8000/v1#mistral",
            args.source
        ),
    };
    let manifest = read_manifest(&args.chains)?;
    let kinds = match &args.kinds {
        Some(k) => kinds(k)?,
        None => {
            let plan = Plan::parse(&manifest.interventions).map_err(anyhow::Error::msg)?;
            let mut k = Vec::new();
            if plan.mistakes {
                k.push(PerturbKind::Mistake);
            }
            if plan.paraphrase {
                k.push(PerturbKind::Paraphrase);
            }
            if k.is_empty() {
                k = vec![PerturbKind::Mistake, PerturbKind::Paraphrase];
            }
            k
        }
    };
    let chains_path = args.chains.join(CHAINS);
    let chains: Vec<Chain> = read_lines(&chains_path, false)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    if chains.is_empty() {
        bail!(
            "{}: no chains yet; run (or resume) the run first, then perturb its chains",
            chains_path.display()
        );
    }
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(&manifest.data));
    let format: Format =
        serde_json::from_value(serde_json::Value::String(manifest.data_format.clone()))
            .unwrap_or(Format::Auto);
    let ds = data::load(
        &data,
        &LoadOptions {
            format,
            strict: false,
            allow_outside: false,
        },
    )
    .with_context(|| format!("the dataset of {}", args.chains.display()))?;
    let mut out = Perturbations::open(&args.out)?;
    let quiet = args.quiet;
    let mut last = std::time::Instant::now();
    let sum = perturb_chains(
        &llm,
        &manifest.protocol,
        manifest.seed,
        &ds.items,
        &chains,
        &kinds,
        &mut out,
        args.concurrency,
        &mut |s, total| {
            if !quiet && last.elapsed() >= Duration::from_secs(2) {
                last = std::time::Instant::now();
                eprintln!(
                    "{}: {}/{total} written, {} failed",
                    args.out.display(),
                    s.written,
                    s.failed.len()
                );
            }
        },
    )?;
    report(&args.out, &llm, &sum, quiet)
}

fn report(
    out: &Path,
    llm: &Llm,
    sum: &crate::faith::perturb::PerturbSummary,
    quiet: bool,
) -> anyhow::Result<()> {
    if !sum.unknown_items.is_empty() {
        eprintln!(
            "warning: {} chain(s) of items not in the dataset were skipped (first: {})",
            sum.unknown_items.len(),
            sum.unknown_items[0]
        );
    }
    for f in sum.failed.iter().take(5) {
        eprintln!("failed: {f}");
    }
    if !quiet {
        eprintln!(
            "{}: {} perturbations by {} written now ({} unusable, kept as null), {} there already, {} failed",
            out.display(),
            sum.written,
            llm.label(),
            sum.unusable,
            sum.kept,
            sum.failed.len()
        );
    }
    if !sum.failed.is_empty() {
        bail!(
            "{} request(s) failed; run the same command again to ask for them (the {} written are kept)",
            sum.failed.len(),
            sum.written + sum.kept
        );
    }
    Ok(())
}
