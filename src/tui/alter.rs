//! Audio alterations made live in the inspector: a region of the clip masked with silence or
//! noise, white noise at an SNR, a spoken answer choice joined to or laid over the clip. The
//! description is plain data held by the state; [`render`] (run off the UI thread by the shell)
//! writes the altered clip with the signal code of [`crate::audio::alter`], as `faithscope run`
//! does for its audio interventions.

use std::path::{Path, PathBuf};

use crate::audio::alter::{self, HintMode, MaskWith};
use crate::audio::{load_clip, DecodeOptions, MODEL_RATE};
use crate::data::Item;
use crate::faith::audio::{hint_text, HintChoice, SNR_LEVELS};
use crate::faith::intervene::derive_seed;
use crate::faith::trial::InterventionKind;

/// One alteration of the open clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alteration {
    /// Seconds `from..to` masked.
    Mask {
        /// Silence or noise at the clip's RMS.
        with: MaskWith,
        /// Start of the region, seconds.
        from: f64,
        /// End of the region, seconds.
        to: f64,
    },
    /// White noise at this SNR (dB).
    Snr(i32),
    /// An answer choice spoken.
    Hint(HintChoice, HintMode),
}

impl Alteration {
    /// What it is, for titles and keys: `silence 1.20-3.40 s`, `noise at 10 dB SNR`,
    /// `spoken hint (wrong, overlay)`.
    pub fn label(&self) -> String {
        match self {
            Alteration::Mask { with, from, to } => format!("{with} {from:.2}-{to:.2} s"),
            Alteration::Snr(db) => format!("noise at {db} dB SNR"),
            Alteration::Hint(c, m) => format!("spoken hint ({}, {m})", c.label()),
        }
    }

    /// The trial kind.
    pub fn kind(&self) -> InterventionKind {
        match self {
            Alteration::Mask { .. } => InterventionKind::AudioMask,
            Alteration::Snr(_) => InterventionKind::AudioNoise,
            Alteration::Hint(..) => InterventionKind::AudioHint,
        }
    }

    /// The trial key under a design (`held`, `regen`).
    pub fn trial_key(&self, design: &str) -> String {
        let what = match self {
            Alteration::Mask { with, from, to } => format!("audio-mask:{with}:{from:.2}-{to:.2}"),
            Alteration::Snr(db) => format!("audio-snr:{db}"),
            Alteration::Hint(c, m) => format!("spoken-hint:{}:{m}", c.label()),
        };
        format!("manual:{what}:{design}")
    }

    /// x of its trial: the share of a clip of `seconds` masked; for noise as in reports.
    pub fn x(&self, seconds: f64) -> Option<f64> {
        match self {
            Alteration::Mask { from, to, .. } if seconds > 0.0 => {
                Some(((to - from) / seconds).clamp(0.0, 1.0))
            }
            Alteration::Snr(db) => Some((30.0 - *db as f64) / 40.0),
            _ => None,
        }
    }

    /// The next SNR step: `louder` = more noise (lower SNR). From no noise, 30 dB; past the
    /// last step, `None` (no noise) when getting quieter, the strongest kept when louder.
    pub fn snr_step(current: Option<i32>, louder: bool) -> Option<i32> {
        let mut levels: Vec<i32> = SNR_LEVELS.to_vec();
        levels.sort_unstable_by(|a, b| b.cmp(a)); // 30 .. -10
        match (current, louder) {
            (None, true) => levels.first().copied(),
            (None, false) => None,
            (Some(db), true) => {
                let i = levels.iter().position(|&l| l == db).unwrap_or(0);
                Some(levels[(i + 1).min(levels.len() - 1)])
            }
            (Some(db), false) => {
                let i = levels.iter().position(|&l| l == db).unwrap_or(0);
                i.checked_sub(1).map(|j| levels[j])
            }
        }
    }
}

/// The hint after `current` when the hint key is pressed again: wrong concat, wrong overlay,
/// correct concat, correct overlay, then none.
pub fn next_hint(current: Option<(HintChoice, HintMode)>) -> Option<(HintChoice, HintMode)> {
    use HintChoice::*;
    use HintMode::*;
    match current {
        None => Some((Wrong, Concat)),
        Some((Wrong, Concat)) => Some((Wrong, Overlay)),
        Some((Wrong, Overlay)) => Some((Correct, Concat)),
        Some((Correct, Concat)) => Some((Correct, Overlay)),
        Some((Correct, Overlay)) => None,
    }
}

/// The folder the inspector writes altered clips to.
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir()
        .join("faithscope-audio")
        .join(format!("inspect-{}", std::process::id()))
}

/// Writes the clip of `item` altered by `alt` as a mono 16 kHz WAV in `dir` and returns its
/// path. `seed` seeds the noise (per item and alteration). Errors name what is wrong: an empty
/// clip, a region outside it, a hint without a gold answer, a TTS engine that fails.
pub fn render(item: &Item, alt: &Alteration, seed: u64, dir: &Path) -> Result<PathBuf, String> {
    let opts = DecodeOptions {
        quiet: true,
        ..DecodeOptions::default()
    };
    let clip = load_clip(&item.audio, MODEL_RATE, &opts).map_err(|e| e.to_string())?;
    if clip.samples.is_empty() {
        return Err(format!(
            "{}: {}",
            item.audio.display(),
            alter::AlterError::Empty
        ));
    }
    let key = alt.trial_key("");
    let noise_seed = derive_seed(seed, &[&item.id, &key]);
    let samples = match *alt {
        Alteration::Mask { with, from, to } => {
            let seconds = clip.seconds();
            if !(from >= 0.0 && to <= seconds + 1e-9 && from < to) {
                let e = alter::AlterError::Region {
                    start: from,
                    end: to,
                    len: seconds,
                };
                return Err(e.to_string());
            }
            let a = (from * MODEL_RATE as f64).round() as usize;
            let b = ((to * MODEL_RATE as f64).round() as usize).min(clip.samples.len());
            alter::mask(&clip.samples, &[(a, b)], with, false, noise_seed)
        }
        Alteration::Snr(db) => alter::add_noise(&clip.samples, db as f64, noise_seed),
        Alteration::Hint(which, mode) => {
            let text = hint_text(item, which, seed).ok_or_else(|| {
                format!(
                    "item {}: a spoken hint needs the gold answer and another choice",
                    item.id
                )
            })?;
            let spoken_dir = dir.join("speech");
            std::fs::create_dir_all(&spoken_dir)
                .map_err(|e| format!("{}: {e}", spoken_dir.display()))?;
            let said = alter::speak(&text, &spoken_dir).map_err(|e| e.to_string())?;
            let hint = load_clip(&said, MODEL_RATE, &opts).map_err(|e| e.to_string())?;
            alter::with_hint(&clip.samples, &hint.samples, mode)
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name: String = format!("{}-{key}", item.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = dir.join(format!("{name}.wav"));
    crate::audio::write_wav(&samples, MODEL_RATE, &out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snr_steps_walk_the_papers_levels_and_back_to_clean() {
        let mut at = None;
        let mut seen = Vec::new();
        for _ in 0..9 {
            at = Alteration::snr_step(at, true);
            seen.push(at.unwrap());
        }
        assert_eq!(seen, [30, 20, 10, 5, 0, -5, -10, -10, -10]);
        assert_eq!(Alteration::snr_step(Some(30), false), None);
        assert_eq!(Alteration::snr_step(Some(-10), false), Some(-5));
    }

    #[test]
    fn hints_cycle_through_four_then_none() {
        let mut h = None;
        let mut n = 0;
        loop {
            h = next_hint(h);
            n += 1;
            if h.is_none() {
                break;
            }
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn a_region_outside_the_clip_and_an_empty_clip_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("a.wav");
        crate::audio::write_wav(&vec![0.1; 16_000], MODEL_RATE, &wav).unwrap();
        let mut item = Item {
            id: "x".into(),
            audio: wav,
            question: "q".into(),
            choices: vec!["a".into(), "b".into()],
            gold: Some(0),
            meta: Default::default(),
        };
        let out = dir.path().join("out");
        let alt = Alteration::Mask {
            with: MaskWith::Silence,
            from: 0.5,
            to: 2.0,
        };
        let e = render(&item, &alt, 0, &out).unwrap_err();
        assert!(e.contains("not inside the clip (0-1.000 s)"), "{e}");
        let ok = Alteration::Mask {
            with: MaskWith::Silence,
            from: 0.25,
            to: 0.5,
        };
        let p = render(&item, &ok, 0, &out).unwrap();
        let c = load_clip(&p, MODEL_RATE, &DecodeOptions::default()).unwrap();
        assert_eq!(c.samples.len(), 16_000);
        assert!(c.samples[4000..8000].iter().all(|&x| x == 0.0));
        assert!(c.samples[..4000].iter().all(|&x| (x - 0.1).abs() < 1e-6));
        assert_eq!(ok.x(1.0), Some(0.25));
        let empty = dir.path().join("e.wav");
        crate::audio::write_wav(&[], MODEL_RATE, &empty).unwrap();
        item.audio = empty;
        let e = render(&item, &Alteration::Snr(10), 0, &out).unwrap_err();
        assert!(e.contains("e.wav"), "{e}");
    }
}
