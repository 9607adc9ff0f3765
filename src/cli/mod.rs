//! The command line: one file per subcommand, dispatched from [`main`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod audio;
pub mod generate;
pub mod inspect;
pub mod items;
pub mod perturb;
pub mod play;
pub mod report;
pub mod run;
pub mod serve;
pub mod synth;
pub mod train_demo;

/// faithscope: inspect chain-of-thought faithfulness of audio-language models.
#[derive(Debug, Parser)]
#[command(name = "faithscope", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands; each lives in its own module.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the items a dataset yields, with counts and problems.
    Items(items::ItemsArgs),
    /// Open the interactive inspector (the default with no arguments).
    Inspect(inspect::InspectArgs),
    /// Play an audio file or a dataset item's clip (mono, 16 kHz) with a progress line.
    Play(play::PlayArgs),
    /// The paper's audio interventions on one clip, written as a WAV: mask a share with silence
    /// or noise, add noise at an SNR, add a spoken hint.
    Audio(audio::AudioArgs),
    /// Faithfulness measures of a run directory or of the paper's result files: tables, JSON,
    /// CSV, and SVG + PNG plots (--plots DIR).
    Report(report::ReportArgs),
    /// Write the synthetic listening-and-reasoning benchmark (clips and items).
    Synth(synth::SynthArgs),
    /// Run a model on one clip and question, streaming its reasoning.
    Generate(generate::GenerateArgs),
    /// Run the faithfulness interventions over a dataset into a resumable run directory.
    Run(run::RunArgs),
    /// Have an external LLM write the mistakes and paraphrases of a run's chains into a file,
    /// for runs to read (--mistake-source FILE, --paraphrase-source FILE).
    Perturb(perturb::PerturbArgs),
    /// Serve a model over an OpenAI-compatible HTTP API (chat completions, log-probs, SSE).
    Serve(serve::ServeArgs),
    /// Train a tiny demo Qwen2-Audio model of known faithfulness on the synthetic benchmark.
    TrainDemo(train_demo::TrainDemoArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            inspect::run(inspect::InspectArgs::default())
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help().map_err(Into::into)
        }
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Items(args)) => items::run(args),
        Some(Command::Play(args)) => play::run(args),
        Some(Command::Audio(args)) => audio::run(args),
        Some(Command::Report(args)) => report::run(args),
        Some(Command::Synth(args)) => synth::run(args),
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Perturb(args)) => perturb::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::TrainDemo(args)) => train_demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", each cause once: an error that already prints its
/// source (an OS reason, say) does not get it repeated.
pub fn error_chain(e: &anyhow::Error) -> String {
    crate::warn::chain_text(e.as_ref())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_os_reason_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(20);
        let reason = io.to_string();
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open run x: {source}")]
        struct Open {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Open { source: io }).context("opening run x");
        let shown = super::error_chain(&e);
        assert_eq!(shown.matches(&reason).count(), 1, "{shown}");
        assert!(
            shown.starts_with("opening run x: cannot open run x: "),
            "{shown}"
        );
    }
}
