//! `faithscope train-demo`: trains a tiny Qwen2-Audio demo model of known faithfulness.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;

use crate::train::{TrainOptions, Trainer};

/// Arguments of `faithscope train-demo`.
#[derive(Debug, Args)]
pub struct TrainDemoArgs {
    /// Probability in [0, 1] that the trained answer follows the chain (1: faithful, 0: post-hoc).
    #[arg(long)]
    pub faithfulness: f64,
    /// Output folder: the model in the Hugging Face layout plus train_state/ for resuming
    /// (required unless --export).
    #[arg(long, required_unless_present = "export")]
    pub out: Option<PathBuf>,
    /// Total optimiser steps.
    #[arg(long, default_value_t = 4000)]
    pub steps: usize,
    /// Continue from OUT/train_state (same options).
    #[arg(long)]
    pub resume: bool,
    /// A `faithscope synth` train split folder (items.jsonl + audio/) instead of generating.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed of initialisation and batches.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Training items generated when --data is not given.
    #[arg(long, default_value_t = 3000)]
    pub train_items: usize,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Steps between dev evaluations.
    #[arg(long, default_value_t = 500)]
    pub eval_every: usize,
    /// Dev items per task in each evaluation.
    #[arg(long, default_value_t = 10)]
    pub dev_per_task: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    /// Oversampled tasks, as TASK=TIMES,...: each epoch shows their items TIMES times (e.g.
    /// count=3,louder=3 for the listening that is learnt last).
    #[arg(long)]
    pub oversample: Option<String>,
    /// Steps of linear learning-rate warm-up.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    /// Instead of training here, write the initial model, features and every step's examples
    /// into this folder for tools/train_demo.py (PyTorch), which runs the same optimisation
    /// several times faster on a CPU.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Start from this model folder (one train-demo wrote: its tokenizer and weights) instead of
    /// a fresh model: a fine-tune.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Layout of the generated training items' choices (see `faithscope synth --help`).
    #[arg(long, value_enum, default_value_t = crate::synth::ChoiceOrder::Fixed)]
    pub choice_order: crate::synth::ChoiceOrder,
}

/// Runs the subcommand.
pub fn run(args: TrainDemoArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.faithfulness) {
        bail!("--faithfulness {} is outside [0, 1]", args.faithfulness);
    }
    if args.batch == 0 || args.steps == 0 {
        bail!("--batch and --steps must be at least 1");
    }
    let out = args.out.clone().unwrap_or_default();
    let state = out.join("train_state");
    if args.export.is_none() && !args.resume && state.exists() {
        bail!(
            "{} holds a training state; pass --resume to continue it or choose another --out",
            state.display()
        );
    }
    let mut opts = TrainOptions::new(args.faithfulness);
    opts.steps = args.steps;
    opts.seed = args.seed;
    opts.batch = args.batch;
    opts.train_items = args.train_items;
    opts.checkpoint_every = args.checkpoint_every.max(1);
    opts.eval_every = args.eval_every;
    opts.dev_per_task = args.dev_per_task;
    opts.data = args.data.clone();
    opts.lr = args.lr;
    opts.warmup = args.warmup;
    opts.choice_order = args.choice_order;
    opts.init = args.init.clone();
    if let Some(spec) = &args.oversample {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (task, times) = part
                .split_once('=')
                .and_then(|(t, n)| Some((t, n.parse::<usize>().ok()?)))
                .with_context(|| {
                    format!("--oversample {part:?}: write TASK=TIMES, e.g. count=3")
                })?;
            if !crate::synth::Task::ALL.iter().any(|t| t.name() == task) || times == 0 {
                bail!(
                    "--oversample {part:?}: the tasks are count, level, direction, louder, kind, \
                     multihop, each at least once"
                );
            }
            opts.oversample.insert(task.to_string(), times);
        }
    }
    let mut t = Trainer::new(opts, &Device::Cpu).context("preparing the training run")?;
    if let Some(dir) = &args.export {
        let info = t
            .export(dir)
            .with_context(|| format!("exporting the training run to {}", dir.display()))?;
        eprintln!(
            "train-demo: exported {} examples ({} steps x {}, {:.0} tokens on average) over {} \
             items, {} parameters, to {}",
            info.examples,
            info.opts.steps,
            info.opts.batch,
            info.mean_tokens,
            info.items,
            t.parameter_count(),
            dir.display()
        );
        return Ok(());
    }
    if args.resume {
        if !state.exists() {
            bail!("--resume: {} does not exist", state.display());
        }
        t.load_checkpoint(&out)
            .with_context(|| format!("resuming from {}", state.display()))?;
        eprintln!("resumed at step {}", t.step);
    }
    eprintln!(
        "train-demo: {} parameters, {} train items, {} dev items, vocab {}, F = {}",
        t.parameter_count(),
        t.items.len(),
        t.dev.len(),
        t.tok.vocab_size(),
        args.faithfulness
    );
    let every = t.opts.checkpoint_every;
    let mut secs = 0.0;
    let mut done = 0usize;
    while t.step < t.opts.steps {
        let s = t.train_step()?;
        secs += s.seconds;
        done += 1;
        if s.step % 10 == 0 || t.step == t.opts.steps {
            eprintln!(
                "step {:>5}/{}  loss {:.4}  chain {:.4}  answer {:.4}  |g| {:.3}  lr {:.2e}  {:.2} s/step",
                s.step + 1,
                t.opts.steps,
                s.loss,
                s.chain_loss,
                s.answer_loss,
                s.grad_norm,
                s.lr,
                secs / done as f64
            );
        }
        if t.step % every == 0 || t.step == t.opts.steps {
            t.save_checkpoint(&out)?;
            t.save_model(&out)?;
        }
        let ev = t.opts.eval_every;
        if (ev > 0 && t.step % ev == 0) || t.step == t.opts.steps {
            print_eval(&t)?;
        }
    }
    Ok(())
}

fn print_eval(t: &Trainer) -> Result<()> {
    let scores = t.evaluate()?;
    let mut line = format!("dev at step {}:", t.step);
    for (task, s) in &scores {
        line += &format!(
            "  {task} chain {}/{} answer {}/{} follows {}/{}",
            s.chain_right, s.n, s.answer_right, s.n, s.answer_follows_chain, s.n
        );
    }
    eprintln!("{line}");
    Ok(())
}
