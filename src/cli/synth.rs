//! `faithscope synth --out DIR`: writes the synthetic listening-and-reasoning benchmark, one
//! folder per split (`DIR/<split>/items.jsonl` and `DIR/<split>/audio/`), and prints the counts.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::synth::{self, AudioFormat, ChoiceOrder, Split, SynthOptions, Task};

/// Which splits to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// Training split only.
    Train,
    /// Development split only.
    Dev,
    /// Test split only.
    Test,
    /// All three.
    All,
}

/// Arguments of `faithscope synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder; each split goes to `<out>/<split>/`.
    #[arg(long)]
    pub out: PathBuf,
    /// Split to write.
    #[arg(long, value_enum, default_value_t = SplitArg::All)]
    pub split: SplitArg,
    /// Items per split (default: train 6000, dev 240, test 240), spread evenly over the tasks.
    #[arg(long)]
    pub count: Option<usize>,
    /// Base seed; splits and items derive their own from it.
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
    /// Tasks to include, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Task::ALL.to_vec())]
    pub tasks: Vec<Task>,
    /// Clip file format.
    #[arg(long, value_enum, default_value_t = AudioFormat::Flac)]
    pub format: AudioFormat,
    /// Layout of the choices: `fixed` (every option, always in the same order) or `shuffled`
    /// (counting and legs / wheels: four options in a random order, the benchmark's first
    /// layout).
    #[arg(long, value_enum, default_value_t = ChoiceOrder::Fixed)]
    pub choice_order: ChoiceOrder,
    /// Replace split folders that hold files already.
    #[arg(long)]
    pub force: bool,
}

/// Runs `faithscope synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let splits = match args.split {
        SplitArg::Train => vec![Split::Train],
        SplitArg::Dev => vec![Split::Dev],
        SplitArg::Test => vec![Split::Test],
        SplitArg::All => vec![Split::Train, Split::Dev, Split::Test],
    };
    if args.count == Some(0) {
        anyhow::bail!("--count must be at least 1");
    }
    if !args.force {
        for split in &splits {
            let dir = args.out.join(split.name());
            if synth::is_non_empty(&dir) {
                return Err(synth::SynthError::NotEmpty(dir).into());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for split in splits {
        let opts = SynthOptions {
            seed: args.seed,
            count: args.count.unwrap_or(split.default_count()),
            tasks: args.tasks.clone(),
            format: args.format,
            choice_order: args.choice_order,
        };
        let dir = args.out.join(split.name());
        let written = synth::write_split(&dir, split, &opts, args.force)
            .with_context(|| format!("writing the {} split", split.name()))?;
        let total: usize = written.by_task.values().sum();
        writeln!(
            out,
            "{}: {total} items, {:.1} MB of audio in {}",
            split.name(),
            written.audio_bytes as f64 / 1e6,
            written.dir.display()
        )?;
        for (task, n) in &written.by_task {
            writeln!(out, "  {task:<10} {n}")?;
        }
    }
    Ok(())
}
