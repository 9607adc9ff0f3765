//! `faithscope audio mask | snr | hint`: the paper's audio interventions on one clip (a file or
//! a dataset item's), written as a mono 16 kHz WAV to listen to, to compare with the original,
//! or to use as an item's audio.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::audio::alter::{self, AlterError, HintMode, MaskAt, MaskWith, PAPER_MASK_SEED};
use crate::audio::{self, Clip, DecodeOptions, MODEL_RATE};
use crate::faith::intervene::derive_seed;
use crate::model::remote::DEFAULT_AUDIO_WINDOW_S;

use super::play::{load, write_wav, ClipArgs};

/// Arguments of `faithscope audio`.
#[derive(Debug, Args)]
pub struct AudioArgs {
    /// What to do to the clip.
    #[command(subcommand)]
    pub op: AudioOp,
}

/// The alterations.
#[derive(Debug, Subcommand)]
pub enum AudioOp {
    /// Mask a share of the clip with silence or noise, where the paper's mask_audio_dataset.py
    /// puts it for the same seed and item id.
    Mask(MaskArgs),
    /// Add white Gaussian noise at a signal-to-noise ratio (the paper's generate_noisy_audio.py).
    Snr(SnrArgs),
    /// Add a spoken hint (espeak-ng, or a recorded clip) after the clip or over it.
    Hint(HintArgs),
}

/// Arguments of `faithscope audio mask`.
#[derive(Debug, Args)]
pub struct MaskArgs {
    /// The clip.
    #[command(flatten)]
    pub clip: ClipArgs,
    /// Fill the masked share with silence or with noise at the clip's RMS.
    #[arg(long = "with", value_enum)]
    pub with: MaskWith,
    /// Where the masked share lies.
    #[arg(long, value_enum)]
    pub at: MaskAt,
    /// Share of the clip masked, 0 to 100 (the paper: 10 to 100 in steps of 10).
    #[arg(long, value_name = "P")]
    pub percent: u32,
    /// Seed of the random positions (the paper's default: 42).
    #[arg(long, default_value_t = PAPER_MASK_SEED)]
    pub seed: u64,
    /// Item id the positions are drawn for (default: --item, else the file's stem, as the
    /// paper's script does).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Output WAV file.
    #[arg(long, value_name = "OUT.wav")]
    pub out: PathBuf,
}

/// Arguments of `faithscope audio snr`.
#[derive(Debug, Args)]
pub struct SnrArgs {
    /// The clip.
    #[command(flatten)]
    pub clip: ClipArgs,
    /// Signal-to-noise ratio in dB (the paper: -10, -5, 0, 5, 10, 20, 30).
    #[arg(long, allow_hyphen_values = true, value_name = "DB")]
    pub db: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output WAV file.
    #[arg(long, value_name = "OUT.wav")]
    pub out: PathBuf,
}

/// Arguments of `faithscope audio hint`.
#[derive(Debug, Args)]
pub struct HintArgs {
    /// The clip.
    #[command(flatten)]
    pub clip: ClipArgs,
    /// Words to speak (espeak-ng), e.g. an answer choice.
    #[arg(
        long,
        required_unless_present = "hint_clip",
        conflicts_with = "hint_clip"
    )]
    pub text: Option<String>,
    /// A recorded hint instead of synthesised speech.
    #[arg(long, value_name = "FILE")]
    pub hint_clip: Option<PathBuf>,
    /// After the clip, or over it from its start.
    #[arg(long, value_enum)]
    pub mode: HintMode,
    /// Output WAV file.
    #[arg(long, value_name = "OUT.wav")]
    pub out: PathBuf,
}

/// Runs `faithscope audio`.
pub fn run(args: AudioArgs) -> anyhow::Result<()> {
    let (clip, out, what) = match args.op {
        AudioOp::Mask(a) => {
            let clip = non_empty(load(&a.clip)?)?;
            let id = a.id.clone().or(a.clip.item.clone()).unwrap_or_else(|| {
                a.clip
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let ranges = alter::mask_ranges(
                clip.samples.len(),
                a.percent,
                a.at,
                a.seed,
                &id,
                clip.sample_rate,
            )?;
            let noise_seed = derive_seed(
                a.seed,
                &[
                    &id,
                    "audio-mask",
                    &a.with.to_string(),
                    &a.at.to_string(),
                    &a.percent.to_string(),
                ],
            );
            let samples = alter::mask(
                &clip.samples,
                &ranges,
                a.with,
                a.at == MaskAt::Scattered,
                noise_seed,
            );
            let what = describe_mask(&ranges, clip.sample_rate, a.with, &id, a.seed);
            (Clip { samples, ..clip }, a.out, what)
        }
        AudioOp::Snr(a) => {
            let clip = non_empty(load(&a.clip)?)?;
            let samples = alter::add_noise(&clip.samples, a.db, a.seed);
            let what = if alter::rms(&clip.samples) == 0.0 {
                "the clip is silent: no noise level can be set against it, written unchanged"
                    .to_string()
            } else {
                format!("white noise at {} dB SNR (seed {})", a.db, a.seed)
            };
            (Clip { samples, ..clip }, a.out, what)
        }
        AudioOp::Hint(a) => {
            let clip = non_empty(load(&a.clip)?)?;
            let tmp = std::env::temp_dir().join(format!("faithscope-hint-{}", std::process::id()));
            let (path, label) = match (&a.hint_clip, &a.text) {
                (Some(p), _) => (p.clone(), p.display().to_string()),
                (None, Some(t)) => {
                    std::fs::create_dir_all(&tmp)
                        .with_context(|| format!("creating {}", tmp.display()))?;
                    (alter::speak(t, &tmp)?, format!("{t:?} (espeak-ng)"))
                }
                (None, None) => anyhow::bail!("give --text WORDS or --hint-clip FILE"),
            };
            let hint = audio::load_clip(&path, MODEL_RATE, &DecodeOptions::default())
                .with_context(|| format!("the hint {label}"));
            let _ = std::fs::remove_dir_all(&tmp);
            let hint = hint?;
            let samples = alter::with_hint(&clip.samples, &hint.samples, a.mode);
            let what = format!(
                "hint {label}, {:.2} s, {}",
                hint.seconds(),
                match a.mode {
                    HintMode::Concat => "after the clip",
                    HintMode::Overlay => "over the clip from its start",
                }
            );
            (Clip { samples, ..clip }, a.out, what)
        }
    };
    write_wav(&clip, &out)?;
    eprintln!("{what}");
    if clip.seconds() > DEFAULT_AUDIO_WINDOW_S {
        eprintln!(
            "warning: {} is {:.1} s long; Qwen2-Audio-style encoders hear the first {DEFAULT_AUDIO_WINDOW_S:.0} s only",
            out.display(),
            clip.seconds()
        );
    }
    Ok(())
}

fn non_empty(clip: Clip) -> anyhow::Result<Clip> {
    if clip.samples.is_empty() {
        return Err(anyhow::Error::new(AlterError::Empty))
            .with_context(|| clip.source.display().to_string());
    }
    Ok(clip)
}

/// "masked 1.20 s (30%) with noise: 0.45-1.65 s (item x, seed 42)".
fn describe_mask(
    ranges: &[(usize, usize)],
    rate: u32,
    with: MaskWith,
    id: &str,
    seed: u64,
) -> String {
    let s = |n: usize| n as f64 / rate as f64;
    let total: usize = ranges.iter().map(|(a, b)| b - a).sum();
    let shown: Vec<String> = ranges
        .iter()
        .take(6)
        .map(|&(a, b)| format!("{:.2}-{:.2} s", s(a), s(b)))
        .collect();
    let more = if ranges.len() > 6 {
        format!(" and {} more", ranges.len() - 6)
    } else {
        String::new()
    };
    format!(
        "masked {:.2} s with {with} in {} segment(s): {}{more} (item {id}, seed {seed})",
        s(total),
        ranges.len(),
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    )
}
