//! `faithscope play <AUDIO-FILE | PATH --item ID>`: decodes a clip the way the models get it (mono,
//! 16 kHz) and plays it through the default output with a progress line, or writes it to a WAV
//! file with `--write-wav`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::audio::play::{Player, PlayerState};
use crate::audio::{self, Clip, DecodeOptions, MODEL_RATE};
use crate::data::{self, Format, LoadOptions};

/// A clip named on the command line: an audio file, or a dataset item's.
#[derive(Debug, Args)]
pub struct ClipArgs {
    /// An audio file (wav, flac, mp3, ogg/vorbis), or with --item a dataset file or folder.
    pub path: PathBuf,
    /// The clip of this item of the dataset at PATH.
    #[arg(long, value_name = "ID")]
    pub item: Option<String>,
    /// Dataset format for --item; `auto` detects it from the path.
    #[arg(long, value_enum, default_value_t = Format::Auto, requires = "item")]
    pub format: Format,
    /// With --item: accept audio paths that leave the dataset folder.
    #[arg(long, requires = "item")]
    pub allow_outside: bool,
}

/// Arguments of `faithscope play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The clip.
    #[command(flatten)]
    pub clip: ClipArgs,
    /// Write the decoded mono 16 kHz signal to this WAV file (32-bit float samples) instead of
    /// playing it.
    #[arg(long, value_name = "OUT.wav")]
    pub write_wav: Option<PathBuf>,
}

/// Runs `faithscope play`.
pub fn run(args: PlayArgs) -> anyhow::Result<()> {
    let clip = load(&args.clip)?;
    if clip.samples.is_empty() {
        anyhow::bail!("{}: the clip holds no samples", clip.source.display());
    }
    match &args.write_wav {
        Some(out) => write_wav(&clip, out),
        None => play(&clip),
    }
}

/// Decodes the clip named by the arguments at the model rate.
pub fn load(args: &ClipArgs) -> anyhow::Result<Clip> {
    let opts = DecodeOptions::default();
    let Some(id) = &args.item else {
        return Ok(audio::load_clip(&args.path, MODEL_RATE, &opts)?);
    };
    let load_opts = LoadOptions {
        format: args.format,
        strict: false,
        allow_outside: args.allow_outside,
    };
    let ds = data::load(&args.path, &load_opts)
        .with_context(|| format!("loading dataset {}", args.path.display()))?;
    let item = ds.find(id).with_context(|| {
        format!(
            "no item with id {id:?} in dataset {} ({} format, {} items); `faithscope items {}` lists them",
            args.path.display(),
            ds.format,
            ds.items.len(),
            args.path.display()
        )
    })?;
    let clip = audio::load_clip(&item.audio, MODEL_RATE, &opts)
        .with_context(|| format!("item {id} of {}", args.path.display()))?;
    Ok(clip)
}

/// Writes the clip as a mono 32-bit float WAV at its rate.
pub fn write_wav(clip: &Clip, out: &Path) -> anyhow::Result<()> {
    audio::write_wav(&clip.samples, clip.sample_rate, out)?;
    eprintln!(
        "wrote {} ({:.2} s, {} Hz mono, 32-bit float)",
        out.display(),
        clip.seconds(),
        clip.sample_rate
    );
    Ok(())
}

/// Plays the clip to its end or until Ctrl-C, with a progress line on stderr.
fn play(clip: &Clip) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime for playback")?;
    rt.block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut player = Player::new(clip);
        let mut err = std::io::stderr().lock();
        let tty = err.is_terminal();
        let _ = writeln!(
            err,
            "playing {} ({:.2} s)",
            clip.source.display(),
            clip.seconds()
        );
        if let Some(info) = player.output_info() {
            let _ = writeln!(
                err,
                "output: {}, {} Hz, {} ch, {}",
                info.device, info.sample_rate, info.channels, info.sample_format
            );
        }
        show(&mut err, &mut player, tty);
        player.play();
        let mut tick = tokio::time::interval(Duration::from_millis(if tty { 100 } else { 500 }));
        tick.tick().await; // the first tick is immediate
        let interrupted = loop {
            tokio::select! {
                r = &mut ctrl_c => break r.is_ok(),
                _ = tick.tick() => {
                    if show(&mut err, &mut player, tty) == PlayerState::Finished {
                        break false;
                    }
                }
            }
        };
        if interrupted {
            let at = player.position();
            player.stop();
            let _ = if tty {
                write!(err, "\r\x1b[2K")
            } else {
                Ok(())
            };
            let _ = writeln!(err, "stopped at {at:.1} s");
        } else {
            if tty {
                let _ = writeln!(err);
            }
            // Let the device play what it still holds.
            tokio::time::sleep(player.latency()).await;
        }
        drop(player);
    });
    Ok(())
}

/// Prints a new warning (once) and the progress line, and returns the state the line shows: the
/// state is read first, so a finished player always shows its full duration.
fn show(err: &mut impl Write, player: &mut Player, tty: bool) -> PlayerState {
    let clear = if tty { "\r\x1b[2K" } else { "" };
    if let Some(w) = player.take_warning() {
        let _ = writeln!(err, "{clear}warning: {w}; playing silently");
    }
    let state = player.state();
    let line = progress_line(player.position(), player.duration());
    let _ = if tty {
        write!(err, "{clear}{line}")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
    state
}

/// `position / duration` in seconds with a tenth.
fn progress_line(position: f64, duration: f64) -> String {
    format!("{position:.1} / {duration:.1} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_tenths() {
        assert_eq!(progress_line(0.0, 1.0), "0.0 / 1.0 s");
        assert_eq!(progress_line(12.34, 60.0), "12.3 / 60.0 s");
    }

    #[test]
    fn write_wav_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.wav");
        let clip = Clip {
            samples: vec![0.0, 0.5, -0.25, 1.0],
            sample_rate: 16_000,
            source: PathBuf::from("x.wav"),
            source_seconds: 4.0 / 16_000.0,
            truncated: false,
            ends_early: false,
            warnings: Vec::new(),
        };
        write_wav(&clip, &out).unwrap();
        let mut r = hound::WavReader::open(&out).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 16_000, 32)
        );
        assert_eq!(spec.sample_format, hound::SampleFormat::Float);
        let back: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
        assert_eq!(back, clip.samples);
        let e = write_wav(&clip, &dir.path().join("no/such/dir/out.wav")).unwrap_err();
        assert!(format!("{e:#}").contains("no/such/dir/out.wav"), "{e:#}");
    }
}
