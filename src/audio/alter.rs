//! Audio interventions of the paper's later experiments: masking part of a clip with silence or
//! noise, white noise at a signal-to-noise ratio, and a spoken hint joined to or laid over the
//! clip. The definitions follow the paper's scripts (`data_processing/mask_audio_dataset.py`,
//! `generate_noisy_audio.py`): the same mask lengths (`int(len * p / 100)`) and, through
//! [`PyRandom`], the same random positions for the same seed, item id and level. Their noise
//! is drawn from NumPy's unseeded global generator; ours is seeded per item, level and variant,
//! so an altered clip is the same every time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::pyrandom::PyRandom;

/// What a masked region is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskWith {
    /// Zeros.
    Silence,
    /// White Gaussian noise at the RMS of the clip (of its unmasked part for one region).
    Noise,
}

/// Where the masked share of the clip lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskAt {
    /// From the first sample.
    Start,
    /// Up to the last sample.
    End,
    /// One region at a random position.
    Random,
    /// Segments of 50-500 ms at random positions, their lengths summing to the share.
    Scattered,
}

impl fmt::Display for MaskWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaskWith::Silence => "silence",
            MaskWith::Noise => "noise",
        })
    }
}

impl fmt::Display for MaskAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaskAt::Start => "start",
            MaskAt::End => "end",
            MaskAt::Random => "random",
            MaskAt::Scattered => "scattered",
        })
    }
}

/// The paper's default seed of its masking script.
pub const PAPER_MASK_SEED: u64 = 42;

/// A bad request for an alteration: what is wrong and what to give instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlterError {
    /// A share outside 0..=100.
    #[error("--percent {0}: give a share of the clip from 0 to 100")]
    Percent(u32),
    /// A region that is not inside the clip.
    #[error("the region {start:.3}-{end:.3} s is not inside the clip (0-{len:.3} s): give start < end within it")]
    Region {
        /// Region start, seconds.
        start: f64,
        /// Region end, seconds.
        end: f64,
        /// Clip length, seconds.
        len: f64,
    },
    /// A clip without samples.
    #[error("the clip is empty: there is nothing to alter")]
    Empty,
    /// The text-to-speech engine is missing or failed.
    #[error("{0}")]
    Speech(String),
}

/// The sample ranges `[start, end)` a mask of `percent`% covers in a clip of `len` samples at
/// `rate` Hz, positioned as the paper's script does for `seed` and `item_id`.
pub fn mask_ranges(
    len: usize,
    percent: u32,
    at: MaskAt,
    seed: u64,
    item_id: &str,
    rate: u32,
) -> Result<Vec<(usize, usize)>, AlterError> {
    if percent > 100 {
        return Err(AlterError::Percent(percent));
    }
    let total = len * percent as usize / 100;
    if at == MaskAt::Scattered {
        return Ok(scattered_ranges(len, total, percent, seed, item_id, rate));
    }
    if total == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![match at {
        MaskAt::Start => (0, total),
        MaskAt::End => (len - total, len),
        _ => {
            let max_start = len - total;
            if max_start == 0 {
                (0, len)
            } else {
                let mut rng = PyRandom::from_str_seed(&format!("{seed}_{item_id}_{percent}"));
                let start = rng.randint(0, max_start as u64) as usize;
                (start, start + total)
            }
        }
    }])
}

/// Scattered segments: lengths drawn in [50 ms, 500 ms] until they sum to `total` exactly (a
/// short remainder joins the last), then the unmasked samples dealt into the gaps between
/// them (at least one sample inside each) by stars and bars.
fn scattered_ranges(
    len: usize,
    total: usize,
    percent: u32,
    seed: u64,
    item_id: &str,
    rate: u32,
) -> Vec<(usize, usize)> {
    if total == 0 {
        return Vec::new();
    }
    if total >= len {
        return vec![(0, len)];
    }
    let max_seg = (500 * rate as usize / 1000).min(total);
    let min_seg = (50 * rate as usize / 1000).min(max_seg);
    let mut rng = PyRandom::from_str_seed(&format!("{seed}_{item_id}_{percent}_scattered"));
    let mut lengths: Vec<usize> = Vec::new();
    let mut remaining = total;
    while remaining > 0 {
        if remaining <= max_seg {
            if remaining >= min_seg || lengths.is_empty() {
                lengths.push(remaining);
            } else if let Some(last) = lengths.last_mut() {
                *last += remaining;
            }
            break;
        }
        let hi = max_seg.min(remaining - min_seg).max(min_seg);
        let l = rng.randint(min_seg as u64, hi as u64) as usize;
        lengths.push(l);
        remaining -= l;
    }
    let n = lengths.len();
    if n == 1 {
        let start = rng.randint(0, (len - lengths[0]) as u64) as usize;
        return vec![(start, start + lengths[0])];
    }
    let mut unmasked = len - total;
    if unmasked < n - 1 {
        return vec![(0, total)];
    }
    let slots_n = n + 1;
    let mut slots = vec![0usize; slots_n];
    for s in slots.iter_mut().take(n).skip(1) {
        *s = 1;
        unmasked -= 1;
    }
    if unmasked > 0 {
        let positions = unmasked + slots_n - 1;
        let mut bars = rng.sample_range(positions as u64, slots_n - 1);
        bars.sort_unstable();
        let bars: Vec<usize> = bars.into_iter().map(|b| b as usize).collect();
        slots[0] += bars[0];
        for i in 1..bars.len() {
            slots[i] += bars[i] - bars[i - 1] - 1;
        }
        slots[slots_n - 1] += positions - bars[bars.len() - 1] - 1;
    }
    let mut out = Vec::with_capacity(n);
    let mut pos = 0;
    for (gap, l) in slots.iter().zip(&lengths) {
        pos += gap;
        out.push((pos, pos + l));
        pos += l;
    }
    out
}

/// Root mean square (0 for no samples).
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `samples` with `ranges` filled by `with`. Noise is white Gaussian with the standard deviation
/// the paper's script gives it: the RMS of the audio outside the one region (start, end,
/// random), of the whole clip for scattered segments, 0.1 when nothing is left outside.
pub fn mask(
    samples: &[f32],
    ranges: &[(usize, usize)],
    with: MaskWith,
    scattered: bool,
    seed: u64,
) -> Vec<f32> {
    let mut out = samples.to_vec();
    let level = match (with, ranges) {
        (MaskWith::Silence, _) => 0.0,
        (MaskWith::Noise, _) if scattered => rms(samples),
        (MaskWith::Noise, [(a, b)]) => {
            let outside: Vec<f32> = samples[..*a]
                .iter()
                .chain(&samples[*b..])
                .copied()
                .collect();
            if outside.is_empty() {
                0.1
            } else {
                rms(&outside)
            }
        }
        (MaskWith::Noise, _) => rms(samples),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    for &(a, b) in ranges {
        for x in &mut out[a.min(samples.len())..b.min(samples.len())] {
            *x = match with {
                MaskWith::Silence => 0.0,
                MaskWith::Noise => (gaussian(&mut rng) * level) as f32,
            };
        }
    }
    out
}

/// `samples` with white Gaussian noise added at `db` dB below the clip's RMS, scaled so that
/// the noise's own RMS is exactly the target (`20 log10(rms(clip) / rms(noise)) = db`); a silent
/// clip is returned as it is.
pub fn add_noise(samples: &[f32], db: f64, seed: u64) -> Vec<f32> {
    let clean = rms(samples);
    if clean == 0.0 {
        return samples.to_vec();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let noise: Vec<f64> = (0..samples.len()).map(|_| gaussian(&mut rng)).collect();
    let current = (noise.iter().map(|x| x * x).sum::<f64>() / noise.len() as f64).sqrt();
    if current == 0.0 {
        return samples.to_vec();
    }
    let scale = clean / 10f64.powf(db / 20.0) / current;
    samples
        .iter()
        .zip(&noise)
        .map(|(&x, n)| (x as f64 + n * scale) as f32)
        .collect()
}

/// How a spoken hint meets the clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HintMode {
    /// The hint after the clip.
    Concat,
    /// The hint over the clip from its start (the result as long as the longer of the two).
    Overlay,
}

impl fmt::Display for HintMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HintMode::Concat => "concat",
            HintMode::Overlay => "overlay",
        })
    }
}

/// The clip with `hint` (same rate) joined after it or mixed over it. For an overlay the hint
/// is scaled to the clip's RMS, so that it is as loud as what it covers, and the sum is kept
/// inside [-1, 1] by scaling the whole down where it would clip.
pub fn with_hint(clip: &[f32], hint: &[f32], mode: HintMode) -> Vec<f32> {
    match mode {
        HintMode::Concat => clip.iter().chain(hint).copied().collect(),
        HintMode::Overlay => {
            let (c, h) = (rms(clip), rms(hint));
            let gain = if c > 0.0 && h > 0.0 { c / h } else { 1.0 };
            let n = clip.len().max(hint.len());
            let mut out: Vec<f32> = (0..n)
                .map(|i| {
                    clip.get(i).copied().unwrap_or(0.0)
                        + hint
                            .get(i)
                            .map(|&x| (x as f64 * gain) as f32)
                            .unwrap_or(0.0)
                })
                .collect();
            let peak = out.iter().fold(0f32, |m, x| m.max(x.abs()));
            if peak > 1.0 {
                out.iter_mut().for_each(|x| *x /= peak);
            }
            out
        }
    }
}

/// Speaks `text` with espeak-ng into a WAV file in `dir`, returning its path.
pub fn speak(text: &str, dir: &Path) -> Result<PathBuf, AlterError> {
    if text.trim().is_empty() {
        return Err(AlterError::Speech(
            "the hint text is empty: give the words to speak (--text)".into(),
        ));
    }
    let out = dir.join("hint.wav");
    let r = Command::new("espeak-ng")
        .arg("-w")
        .arg(&out)
        .arg("--")
        .arg(text)
        .output();
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AlterError::Speech(
            "espeak-ng is not installed: spoken hints need it (make deps installs it; on Debian: apt-get install espeak-ng), or give a recorded hint with --hint-clip FILE"
                .into(),
        )),
        Err(e) => Err(AlterError::Speech(format!("running espeak-ng: {e}"))),
        Ok(o) if !o.status.success() || !out.is_file() => Err(AlterError::Speech(format!(
            "espeak-ng failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Ok(_) => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect()
    }

    #[test]
    fn contiguous_masks_have_the_papers_length_and_place() {
        let len = 16_000 * 3 + 7;
        for p in (0..=100).step_by(10) {
            let want = len * p as usize / 100;
            for at in [MaskAt::Start, MaskAt::End, MaskAt::Random] {
                let r = mask_ranges(len, p, at, 42, "x", 16_000).unwrap();
                let covered: usize = r.iter().map(|(a, b)| b - a).sum();
                assert_eq!(covered, want, "{at} {p}%");
                if let [(a, b)] = r[..] {
                    assert!(b <= len);
                    match at {
                        MaskAt::Start => assert_eq!(a, 0),
                        MaskAt::End => assert_eq!(b, len),
                        _ => {}
                    }
                }
            }
        }
        assert_eq!(
            mask_ranges(10, 101, MaskAt::Start, 0, "x", 16_000),
            Err(AlterError::Percent(101))
        );
    }

    #[test]
    fn masks_fall_where_the_papers_script_puts_them() {
        // tests/fixtures/audio_masks.json: tools/audio_mask_fixtures.py run on the paper's
        // mask_audio_dataset.py (CPython's random, the same seeds and item ids).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/audio_masks.json"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() > 1000);
        let mut nonempty = 0;
        for c in cases {
            let at = match c["mode"].as_str().unwrap() {
                "start" => MaskAt::Start,
                "end" => MaskAt::End,
                "random" => MaskAt::Random,
                _ => MaskAt::Scattered,
            };
            let got = mask_ranges(
                c["len"].as_u64().unwrap() as usize,
                c["percent"].as_u64().unwrap() as u32,
                at,
                c["seed"].as_u64().unwrap(),
                c["id"].as_str().unwrap(),
                16_000,
            )
            .unwrap();
            let want: Vec<(usize, usize)> = c["ranges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r[0].as_u64().unwrap() as usize,
                        r[1].as_u64().unwrap() as usize,
                    )
                })
                .collect();
            assert_eq!(got, want, "{c}");
            nonempty += (want.len() > 1) as usize;
        }
        assert!(
            nonempty > 100,
            "scattered cases with several segments: {nonempty}"
        );
    }

    #[test]
    fn scattered_segments_sum_exactly_and_do_not_overlap() {
        for (len, p, id) in [
            (16_000 * 5, 30, "a"),
            (16_000 * 2 + 3, 70, "b"),
            (48_000, 10, "c"),
        ] {
            let r = mask_ranges(len, p, MaskAt::Scattered, 42, id, 16_000).unwrap();
            let total: usize = r.iter().map(|(a, b)| b - a).sum();
            assert_eq!(total, len * p as usize / 100, "{id}");
            for w in r.windows(2) {
                assert!(w[0].1 < w[1].0, "separated: {w:?}");
            }
            // 50-500 ms each, but the last may carry a short remainder
            for (a, b) in &r[..r.len() - 1] {
                assert!((800..=8000).contains(&(b - a)), "{a}-{b}");
            }
            assert!(r.last().unwrap().1 <= len);
        }
    }

    #[test]
    fn noise_has_the_rms_of_the_rest_and_silence_is_zero() {
        let x = tone(32_000);
        let r = mask_ranges(x.len(), 40, MaskAt::End, 42, "t", 16_000).unwrap();
        let silent = mask(&x, &r, MaskWith::Silence, false, 1);
        let (a, b) = r[0];
        assert!(silent[a..b].iter().all(|&v| v == 0.0));
        assert_eq!(&silent[..a], &x[..a]);
        let noisy = mask(&x, &r, MaskWith::Noise, false, 1);
        let want = rms(&x[..a]);
        let got = rms(&noisy[a..b]);
        assert!((got / want - 1.0).abs() < 0.01, "{got} vs {want}");
        assert_eq!(noisy, mask(&x, &r, MaskWith::Noise, false, 1), "seeded");
        // all of it masked: the paper's fallback level
        let all = mask(&x, &[(0, x.len())], MaskWith::Noise, false, 1);
        assert!((rms(&all) / 0.1 - 1.0).abs() < 0.01);
    }

    #[test]
    fn added_noise_meets_the_snr() {
        let x = tone(48_000);
        for db in [-10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 30.0] {
            let y = add_noise(&x, db, 7);
            let noise: Vec<f32> = y.iter().zip(&x).map(|(a, b)| a - b).collect();
            let snr = 20.0 * (rms(&x) / rms(&noise)).log10();
            assert!((snr - db).abs() < 0.1, "{snr} vs {db}");
        }
        assert_eq!(add_noise(&[0.0; 10], 0.0, 1), vec![0.0; 10]);
    }

    #[test]
    fn hints_join_or_cover_the_clip() {
        let clip = tone(1000);
        let hint: Vec<f32> = tone(1500).iter().map(|x| x * 0.2).collect();
        let c = with_hint(&clip, &hint, HintMode::Concat);
        assert_eq!(c.len(), 2500);
        assert_eq!(&c[1000..], &hint[..]);
        let o = with_hint(&clip, &hint, HintMode::Overlay);
        assert_eq!(o.len(), 1500);
        assert!(o.iter().all(|x| x.abs() <= 1.0));
        // past the clip, the hint alone at the clip's loudness
        assert!((rms(&o[1000..]) / rms(&hint[1000..]) - rms(&clip) / rms(&hint)).abs() < 0.05);
    }
}
