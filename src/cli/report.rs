//! `faithscope report`: faithfulness measures of a run directory or of the paper's result files,
//! as tables, JSON, CSV, and SVG + PNG plots.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use crate::faith::{paper, plot, report};

/// Arguments of `faithscope report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories (holding trials.jsonl) and/or the paper's per-trial result files
    /// (baseline_*, no_reasoning_*, *filler_text_*, ... including .part_N files); standardized
    /// item files (*_standardized.jsonl) add item metadata for --by.
    #[arg(required = true, value_name = "RUN-DIR | FILE")]
    pub inputs: Vec<PathBuf>,
    /// Also split every measure by these fields: track, hop, category, sub_category, modality,
    /// language, source, correct (baseline answer correct or not).
    #[arg(long, value_delimiter = ',', value_name = "FIELDS")]
    pub by: Vec<String>,
    /// Write the same numbers as long-format CSV to this file.
    #[arg(long, value_name = "OUT")]
    pub csv: Option<PathBuf>,
    /// Draw each curve as an SVG and a PNG plot in DIR (one pair per intervention and split
    /// group): consistency with the baseline answer and accuracy over x, with 95% interval
    /// bands (none for bins of fewer than 10 trials), and the with-CoT / no-CoT accuracies as
    /// dashed reference lines; the legend sits below the plot.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Print the numbers as one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    for field in &args.by {
        if !report::SPLIT_FIELDS.contains(&field.as_str()) {
            bail!(
                "--by {field}: unknown field; use any of {}",
                report::SPLIT_FIELDS.join(", ")
            );
        }
    }
    let loaded = paper::load(&args.inputs)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if loaded.trials.is_empty() {
        bail!("no trials in the inputs: give a run directory or the paper's result files");
    }
    for field in &args.by {
        if let Some(hint) = paper::missing_field_hint(&loaded, field) {
            bail!(hint);
        }
    }
    let rep = report::build(&loaded.trials, &args.by, loaded.sources);
    if let Some(path) = &args.csv {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("writing CSV to {}", path.display()))?;
        w.write_record(report::CSV_HEADER)
            .and_then(|()| {
                for row in report::csv_rows(&rep) {
                    w.write_record(&row)?;
                }
                w.flush().map_err(Into::into)
            })
            .with_context(|| format!("writing CSV to {}", path.display()))?;
    }
    if let Some(dir) = &args.plots {
        let plots = plot::write_plots(&rep, dir)?;
        eprintln!(
            "wrote {} plot files (SVG and PNG) to {}",
            plots.files.len(),
            dir.display()
        );
        if let Some(why) = plots.no_text {
            eprintln!("warning: {why}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{}", report::render_text(&rep));
    }
    Ok(())
}
