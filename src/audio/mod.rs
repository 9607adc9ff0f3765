//! Audio: decoding to mono f32, resampling, Whisper-compatible log-mel features, playback and
//! display data (peaks, spectrogram).

pub mod alter;
pub mod decode;
pub mod display;
pub mod mel;
pub mod play;
pub mod pyrandom;
pub mod resample;

use std::path::{Path, PathBuf};

pub use decode::{decode_file, load_clip, DecodeOptions};
pub use mel::{log_mel, MelConfig, MelExtractor, MelFeatures};
pub use resample::resample;

/// The sample rate every supported model expects.
pub const MODEL_RATE: u32 = 16_000;

/// A decoded clip: mono f32 samples in [-1, 1] at `sample_rate`.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Mono samples (mean of the source channels).
    pub samples: Vec<f32>,
    /// Samples per second of `samples`.
    pub sample_rate: u32,
    /// The file the clip came from.
    pub source: PathBuf,
    /// Length in seconds of the source before any truncation.
    pub source_seconds: f64,
    /// True when the clip was cut to a caller's limit (a warning was also emitted).
    pub truncated: bool,
    /// True when the file ends before the length its header promises (what was read is kept).
    pub ends_early: bool,
    /// What was tolerated while decoding (the file ends early, the clip was cut to a limit),
    /// one sentence each naming the file; also printed on stderr unless
    /// [`DecodeOptions::quiet`].
    pub warnings: Vec<String>,
}

impl Clip {
    /// Duration in seconds of the samples held.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate.max(1) as f64
    }
}

/// Everything that can go wrong while reading or playing audio; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The reason is part of the message (not a `source`), so `{:#}` does not print it twice.
    #[error("cannot open audio file {path}: {error}")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("audio file {path}: unsupported format or codec ({detail}); supported: wav, flac, mp3, ogg/vorbis")]
    Unsupported { path: PathBuf, detail: String },
    #[error("audio file {path} is corrupt or truncated: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("audio file {path} holds no audio ({detail})")]
    Empty { path: PathBuf, detail: String },
    #[error("audio file {path} is too long: {seconds:.0} s exceeds the limit of {limit:.0} s; pass a larger limit or cut the file")]
    TooLong {
        path: PathBuf,
        seconds: f64,
        limit: f64,
    },
    #[error("resampling from {from} Hz to {to} Hz failed: {detail}")]
    Resample { from: u32, to: u32, detail: String },
    #[error("audio output: {0}")]
    Output(String),
    #[error("cannot write audio file {path}: {detail}")]
    Write { path: PathBuf, detail: String },
}

impl AudioError {
    /// What is wrong, without the file's path, for messages that name the file already.
    pub fn reason(&self) -> String {
        match self {
            AudioError::Open { error, .. } => format!("cannot be opened: {error}"),
            AudioError::Unsupported { detail, .. } => format!(
                "unsupported format or codec ({detail}); supported: wav, flac, mp3, ogg/vorbis"
            ),
            AudioError::Corrupt { detail, .. } => format!("corrupt or truncated: {detail}"),
            AudioError::Empty { detail, .. } => format!("holds no audio ({detail})"),
            AudioError::TooLong { seconds, limit, .. } => {
                format!("{seconds:.0} s long, over the limit of {limit:.0} s")
            }
            AudioError::Write { detail, .. } => format!("cannot be written: {detail}"),
            AudioError::Resample { .. } | AudioError::Output(_) => self.to_string(),
        }
    }
}

/// Writes mono samples as a 32-bit float WAV at `rate`.
pub fn write_wav(samples: &[f32], rate: u32, out: &Path) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let err = |e: hound::Error| AudioError::Write {
        path: out.to_path_buf(),
        detail: e.to_string(),
    };
    let mut w = hound::WavWriter::create(out, spec).map_err(err)?;
    for &s in samples {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}
