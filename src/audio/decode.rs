//! Decoding wav / flac / mp3 / ogg-vorbis files to mono f32 with symphonia.
//!
//! Policy for damaged input (every error names the file):
//! - a missing or unreadable file is [`AudioError::Open`];
//! - bytes no container reader recognises, or a codec symphonia cannot decode (e.g. GSM 6.10 in a
//!   wav, Opus in an ogg), are [`AudioError::Unsupported`];
//! - a packet that fails to decode is [`AudioError::Corrupt`] with the position in seconds: a clip
//!   with a hole in it would silently shift everything after the hole; likewise a flac or PCM
//!   file whose reader skipped damaged data (fewer frames than its exact header count, without
//!   reaching a premature end of file);
//! - a file that ends early (the header promises more frames than the file holds) keeps what was
//!   decoded, with a warning naming the file and both lengths in [`Clip::warnings`] (also printed
//!   on stderr unless [`DecodeOptions::quiet`]);
//! - no frames at all, or zero channels, is [`AudioError::Empty`];
//! - a clip longer than [`DecodeOptions::hard_limit_seconds`] with no `max_seconds` is refused
//!   with [`AudioError::TooLong`] (from the header when it states a length, otherwise as soon as
//!   decoding passes the limit), so memory stays bounded whatever the file.

use std::fs::File;
use std::path::Path;

use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AAC, CODEC_ID_AC3, CODEC_ID_ALAC, CODEC_ID_EAC3, CODEC_ID_FLAC, CODEC_ID_OPUS,
    CODEC_ID_PCM_MULAW, CODEC_ID_PCM_S32LE, CODEC_ID_SPEEX, CODEC_ID_WMA,
};
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{AudioError, Clip};

/// Default for [`DecodeOptions::hard_limit_seconds`]: 20 minutes (77 MB of f32 at 16 kHz mono,
/// 212 MB at 44.1 kHz).
pub const DEFAULT_HARD_LIMIT_SECONDS: f64 = 1200.0;

/// Limits applied while decoding.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Keep at most this many seconds; longer clips are truncated with a warning on stderr and
    /// decoding stops at the limit (memory stays bounded).
    pub max_seconds: Option<f64>,
    /// When `max_seconds` is `None`, clips longer than this are refused with
    /// [`AudioError::TooLong`] instead of being read whole.
    pub hard_limit_seconds: f64,
    /// Keep the warnings in [`Clip::warnings`] only, without printing them on stderr (for
    /// callers that report them themselves, such as `faithscope items --check-audio`).
    pub quiet: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_seconds: None,
            hard_limit_seconds: DEFAULT_HARD_LIMIT_SECONDS,
            quiet: false,
        }
    }
}

impl DecodeOptions {
    /// Options that keep at most `seconds` of each clip (truncating with a warning).
    pub fn with_max_seconds(seconds: f64) -> Self {
        Self {
            max_seconds: Some(seconds),
            ..Self::default()
        }
    }
}

/// Maps a symphonia error to ours, naming the file; `at` is the position reached, if any.
fn map_err(path: &Path, err: SymError, at: Option<f64>) -> AudioError {
    let path = path.to_path_buf();
    let pos = at.map(|s| format!(" at {s:.2} s")).unwrap_or_default();
    match err {
        SymError::Unsupported(what) => AudioError::Unsupported {
            path,
            detail: what.to_string(),
        },
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt {
                path,
                detail: format!("the file ends early{pos}"),
            }
        }
        SymError::IoError(e) => AudioError::Corrupt {
            path,
            detail: format!("read error{pos}: {e}"),
        },
        SymError::DecodeError(what) => AudioError::Corrupt {
            path,
            detail: format!("{what}{pos}"),
        },
        SymError::LimitError(what) => AudioError::Corrupt {
            path,
            detail: format!("limit exceeded{pos}: {what}"),
        },
        other => AudioError::Corrupt {
            path,
            detail: format!("{other}{pos}"),
        },
    }
}

/// Decodes a file to mono f32 (mean of the channels) at its own sample rate.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<Clip, AudioError> {
    let file = File::open(path).map_err(|error| AudioError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(what) if what.contains("(probe)") => AudioError::Unsupported {
                path: path.to_path_buf(),
                detail:
                    "no known container format (not wav, flac, mp3, ogg, aiff, caf, mp4 or mkv)"
                        .into(),
            },
            e => map_err(path, e, None),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Empty {
            path: path.to_path_buf(),
            detail: "no audio track".into(),
        })?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .cloned()
        .ok_or_else(|| AudioError::Unsupported {
            path: path.to_path_buf(),
            detail: "the audio track has no codec parameters".into(),
        })?;
    if params.channels.as_ref().is_some_and(|c| c.count() == 0) {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
            detail: "zero channels".into(),
        });
    }
    let header_frames = track.num_frames;
    // Codecs whose header frame count is exact, so a shortfall means lost data.
    let lossless = params.codec == CODEC_ID_FLAC
        || (CODEC_ID_PCM_S32LE..=CODEC_ID_PCM_MULAW).contains(&params.codec);
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::Unsupported {
            path: path.to_path_buf(),
            detail: format!(
                "no decoder for the {} codec ({e})",
                codec_name(params.codec)
            ),
        })?;

    // Frame limit: the caller's max_seconds, or else the hard limit (refused, not truncated).
    let limit_seconds = opts.max_seconds.unwrap_or(opts.hard_limit_seconds);
    let refuse_over_limit = opts.max_seconds.is_none();
    if refuse_over_limit && rate > 0 {
        if let Some(n) = header_frames {
            let seconds = n as f64 / rate as f64;
            if seconds > limit_seconds {
                return Err(AudioError::TooLong {
                    path: path.to_path_buf(),
                    seconds,
                    limit: limit_seconds,
                });
            }
        }
    }

    let mut samples: Vec<f32> = Vec::new();
    if let (Some(n), true) = (header_frames, rate > 0) {
        let cap = (limit_seconds * rate as f64).ceil().max(0.0) as u64;
        samples.reserve(n.min(cap) as usize);
    }
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut decoded_frames: u64 = 0; // frames the file held as far as we read it
    let mut stopped_at_limit = false;
    let mut truncated_read = false;
    loop {
        let at = (rate > 0).then(|| decoded_frames as f64 / rate as f64);
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                truncated_read = true;
                break;
            }
            Err(SymError::ResetRequired) => break, // a chained ogg stream: keep the first
            Err(e) => return Err(map_err(path, e, at)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(b) => b,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                truncated_read = true;
                break;
            }
            Err(e) => return Err(map_err(path, e, at)),
        };
        let frames = buf.frames();
        if frames == 0 {
            continue;
        }
        let spec_rate = buf.spec().rate();
        let channels = buf.spec().channels().count();
        if channels == 0 {
            return Err(AudioError::Empty {
                path: path.to_path_buf(),
                detail: "zero channels".into(),
            });
        }
        if rate == 0 {
            rate = spec_rate;
        }
        let limit_frames = (limit_seconds * rate as f64).floor().max(0.0) as u64;
        buf.copy_to_vecs_planar::<f32>(&mut planes);
        let keep = frames.min(limit_frames.saturating_sub(samples.len() as u64) as usize);
        decoded_frames += frames as u64;
        if refuse_over_limit && decoded_frames > limit_frames {
            let seconds = header_frames.unwrap_or(decoded_frames) as f64 / rate as f64;
            return Err(AudioError::TooLong {
                path: path.to_path_buf(),
                seconds,
                limit: limit_seconds,
            });
        }
        mix_into(&mut samples, &planes[..channels], keep);
        if keep < frames {
            stopped_at_limit = true;
            break;
        }
    }

    if rate == 0 {
        return Err(AudioError::Corrupt {
            path: path.to_path_buf(),
            detail: "no sample rate in the header".into(),
        });
    }
    if samples.is_empty() && !stopped_at_limit {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
            detail: "0 frames".into(),
        });
    }
    let source_frames = if stopped_at_limit {
        header_frames.unwrap_or(decoded_frames).max(decoded_frames)
    } else {
        decoded_frames
    };
    let source_seconds = source_frames as f64 / rate as f64;
    let mut warnings = Vec::new();
    let mut ends_early = false;
    if !stopped_at_limit {
        if let Some(n) = header_frames {
            // Some encoders' headers are a frame or two off; warn only for a real shortfall.
            let short = decoded_frames + (rate as u64 / 100) < n;
            if short && !truncated_read && lossless {
                // The reader resynchronised past damaged data: frames are missing mid-stream.
                return Err(AudioError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{} of the {n} frames the header promises are missing (damaged data was skipped)",
                        n - decoded_frames
                    ),
                });
            }
            if truncated_read || short {
                ends_early = true;
                warnings.push(format!(
                    "audio file {} is truncated: the header promises {:.2} s ({n} frames) but only {:.2} s ({decoded_frames} frames) could be read; using what was read",
                    path.display(),
                    n as f64 / rate as f64,
                    decoded_frames as f64 / rate as f64
                ));
            }
        } else if truncated_read {
            ends_early = true;
            warnings.push(format!(
                "audio file {} ends early after {:.2} s; using what was read",
                path.display(),
                decoded_frames as f64 / rate as f64
            ));
        }
    }
    if stopped_at_limit {
        let of = if header_frames.is_some() {
            format!("of {source_seconds:.1} s ")
        } else {
            String::new()
        };
        warnings.push(format!(
            "only the first {limit_seconds:.1} s {of}are used: audio file {} truncated",
            path.display()
        ));
    }
    if !opts.quiet {
        for w in &warnings {
            crate::warn::warn(w);
        }
    }
    Ok(Clip {
        samples,
        sample_rate: rate,
        source: path.to_path_buf(),
        source_seconds,
        truncated: stopped_at_limit,
        ends_early,
        warnings,
    })
}

/// A readable name for codecs symphonia can demux but not decode.
fn codec_name(id: AudioCodecId) -> String {
    let known = [
        (CODEC_ID_OPUS, "Opus"),
        (CODEC_ID_AAC, "AAC"),
        (CODEC_ID_ALAC, "ALAC"),
        (CODEC_ID_AC3, "AC-3"),
        (CODEC_ID_EAC3, "E-AC-3"),
        (CODEC_ID_WMA, "WMA"),
        (CODEC_ID_SPEEX, "Speex"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == id)
        .map_or_else(|| format!("id {id}"), |(_, n)| n.to_string())
}

/// Appends the mean of `planes` over their first `frames` frames to `out`.
fn mix_into(out: &mut Vec<f32>, planes: &[Vec<f32>], frames: usize) {
    match planes {
        [mono] => out.extend_from_slice(&mono[..frames]),
        [l, r] => out.extend(
            l[..frames]
                .iter()
                .zip(&r[..frames])
                .map(|(a, b)| 0.5 * (a + b)),
        ),
        _ => {
            let scale = 1.0 / planes.len() as f32;
            out.extend((0..frames).map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale));
        }
    }
}

/// Decodes a file and resamples it to `target_rate` (16 kHz for the models).
pub fn load_clip(path: &Path, target_rate: u32, opts: &DecodeOptions) -> Result<Clip, AudioError> {
    let mut clip = decode_file(path, opts)?;
    if clip.sample_rate != target_rate {
        clip.samples = super::resample(&clip.samples, clip.sample_rate, target_rate)?;
        clip.sample_rate = target_rate;
    }
    Ok(clip)
}
