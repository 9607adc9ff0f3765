//! The trial record: one forced answer after one (possibly modified) chain.
//!
//! The JSON field names and meanings are those of the paper's code
//! (lovenya/Measuring-Faithfulness-of-CoT-Reasoning-LALMs), so its analysis scripts read our
//! files and we read theirs. Our own fields (intervention, x, probabilities, timings, item
//! metadata) are extra keys that the paper's readers ignore; when reading the paper's files they
//! are absent and take their defaults. Unknown keys are kept in [`Trial::extra`] and written back.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::data::ItemMeta;

/// What was done to the chain (or audio) before the answer was forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionKind {
    /// The full (sanitized) chain: gives the baseline answer b.
    Baseline,
    /// No chain at all (the paper's `no_reasoning` control).
    NoCot,
    /// Keep sentences s1..sk; x = k/N (paper field `num_sentences_provided`).
    EarlyAnswering,
    /// Sentence i replaced by a mistake, reasoning continued; x = (i-1)/N (`mistake_position`).
    AddingMistakes,
    /// First k sentences paraphrased; x = k/N (`num_sentences_paraphrased`).
    Paraphrasing,
    /// p% of the words replaced by filler; x = p/100 (`percent_replaced`).
    Filler,
    /// The chain replaced wholly by filler of the same length (paper `filler_text`, `percentile`).
    FillerOnly,
    /// Free text typed by a person.
    ManualEdit,
    /// p% of the audio masked; x = p/100 (`mask_percent`).
    AudioMask,
    /// White noise added to the audio at an SNR (paper field `snr_db`); x = (30 - SNR)/40, so
    /// 30 dB is 0 and -10 dB is 1.
    AudioNoise,
    /// A spoken hint prepended to or overlaid on the audio.
    AudioHint,
    /// A kind this version does not know (written by a newer faithscope).
    #[serde(other)]
    Other,
}

impl InterventionKind {
    /// Every known kind, in report order.
    pub const ALL: [InterventionKind; 11] = [
        Self::Baseline,
        Self::NoCot,
        Self::EarlyAnswering,
        Self::AddingMistakes,
        Self::Paraphrasing,
        Self::Filler,
        Self::FillerOnly,
        Self::ManualEdit,
        Self::AudioMask,
        Self::AudioNoise,
        Self::AudioHint,
    ];

    /// The snake_case name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::NoCot => "no_cot",
            Self::EarlyAnswering => "early_answering",
            Self::AddingMistakes => "adding_mistakes",
            Self::Paraphrasing => "paraphrasing",
            Self::Filler => "filler",
            Self::FillerOnly => "filler_only",
            Self::ManualEdit => "manual_edit",
            Self::AudioMask => "audio_mask",
            Self::AudioNoise => "audio_noise",
            Self::AudioHint => "audio_hint",
            Self::Other => "other",
        }
    }

    /// Whether curves of this kind use 10% bins instead of 5% (adding mistakes, as in Lanham).
    pub fn coarse_bins(self) -> bool {
        self == Self::AddingMistakes
    }
}

impl fmt::Display for InterventionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One trial, as one JSONL line. Field names follow the paper's files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Item id (e.g. `sakura_animal_0_single`, `mmar_12`).
    pub id: String,
    /// Which sampled chain of the item (0-based).
    #[serde(default)]
    pub chain_id: u32,
    /// Early answering: sentences kept (k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_sentences_provided: Option<u32>,
    /// Paraphrasing: sentences paraphrased from the start (k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_sentences_paraphrased: Option<u32>,
    /// Adding mistakes: 1-based position i of the mistaken sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistake_position: Option<u32>,
    /// Partial filler: percent of words replaced (0..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_replaced: Option<u32>,
    /// Pure filler (paper `filler_text`): percentile of the filler length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<u32>,
    /// Audio masking: percent of the audio masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_percent: Option<u32>,
    /// Number of sentences N of the (sanitized) chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_sentences_in_chain: Option<u32>,
    /// The answer letter read (`None` for a refusal or an unparsed answer; JSON null).
    #[serde(default)]
    pub predicted_choice: Option<String>,
    /// The gold letter.
    #[serde(default)]
    pub correct_choice: Option<String>,
    /// `predicted_choice == correct_choice`.
    #[serde(default)]
    pub is_correct: bool,
    /// The baseline answer b of the same item and chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corresponding_baseline_predicted_choice: Option<String>,
    /// `predicted_choice == corresponding_baseline_predicted_choice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_consistent_with_baseline: Option<bool>,
    /// The model's raw answer text.
    #[serde(default)]
    pub final_answer_raw: String,
    /// The chat messages of the answer prompt (the paper's list of role/content objects).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub final_prompt_messages: Value,
    /// The question text.
    #[serde(default)]
    pub question: String,
    /// The choices formatted as `(A) x\n(B) y` (a JSON list is accepted and formatted).
    #[serde(default, deserialize_with = "choices_text")]
    pub choices: String,
    /// The audio path as given by the dataset.
    #[serde(default)]
    pub audio_path: String,
    /// Baseline records: the chain as generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_cot: Option<String>,
    /// Baseline records: the chain after sanitizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitized_cot: Option<String>,
    /// The modified chain the answer was forced after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_reasoning: Option<String>,
    /// Model alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Prompt protocol name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_protocol: Option<String>,
    /// Where perturbations came from (self, rules, annotations, an external model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturbation_source: Option<String>,

    // ---- ours ----
    /// The intervention; inferred from the paper's fields when absent (see [`Trial::kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention: Option<InterventionKind>,
    /// Position of the intervention in [0, 1] (see [`Trial::x_value`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Letters the probabilities refer to, in order (`["A", "B", ...]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choice_letters: Vec<String>,
    /// Probability of each letter of `choice_letters` (renormalised over the letters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choice_probs: Vec<f64>,
    /// Letters whose probability the backend could not read (a server's top alternatives did
    /// not hold them): 0 in `choice_probs`, whose other values are then upper bounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choice_probs_missing: Vec<String>,
    /// The baseline trial's probabilities over the same letters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_probs: Vec<f64>,
    /// Wall times in milliseconds by stage (e.g. `total`, `prefill`, `answer`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timings_ms: BTreeMap<String, f64>,
    /// Item metadata (track, hop, category, modality, ...).
    #[serde(default, skip_serializing_if = "meta_is_empty")]
    pub meta: ItemMeta,
    /// Keys this version does not know, kept so that a rewrite loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Whether `meta` has no field set.
fn meta_is_empty(meta: &ItemMeta) -> bool {
    *meta == ItemMeta::default()
}

/// Formats choices the way the paper's trial files do: `(A) x\n(B) y`.
pub fn format_choices<S: AsRef<str>>(choices: &[S]) -> String {
    choices
        .iter()
        .enumerate()
        .map(|(i, c)| format!("({}) {}", letter(i), c.as_ref()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The letter of choice `i` (A, B, ...).
pub fn letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

/// Accepts either the paper's formatted string or a JSON list of choice texts.
fn choices_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s),
        Value::Array(items) => {
            let texts: Vec<String> = items
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect();
            Ok(format_choices(&texts))
        }
        other => Err(serde::de::Error::custom(format!(
            "choices must be a string or a list of strings, found {other}"
        ))),
    }
}

impl Trial {
    /// The intervention: the `intervention` field, else inferred from which of the paper's
    /// x fields is present (`None` when there is none: a baseline or no-CoT file, whose kind
    /// comes from the file name).
    pub fn kind(&self) -> Option<InterventionKind> {
        if let Some(k) = self.intervention {
            return Some(k);
        }
        if self.num_sentences_provided.is_some() {
            Some(InterventionKind::EarlyAnswering)
        } else if self.mistake_position.is_some() {
            Some(InterventionKind::AddingMistakes)
        } else if self.num_sentences_paraphrased.is_some() {
            Some(InterventionKind::Paraphrasing)
        } else if self.percent_replaced.is_some() {
            Some(InterventionKind::Filler)
        } else if self.percentile.is_some() {
            Some(InterventionKind::FillerOnly)
        } else if self.mask_percent.is_some() {
            Some(InterventionKind::AudioMask)
        } else if self.extra.contains_key("snr_db") {
            Some(InterventionKind::AudioNoise)
        } else if self.extra.contains_key("adversarial_variant") {
            Some(InterventionKind::AudioHint)
        } else {
            None
        }
    }

    /// Position of the intervention in [0, 1]: the `x` field, else computed from the paper's
    /// fields exactly as its analysis does: k/N for early answering and paraphrasing, (i-1)/N for
    /// adding mistakes, p/100 for filler, percentiles and audio masks. `None` when unknown
    /// (or N is 0).
    pub fn x_value(&self) -> Option<f64> {
        if let Some(x) = self.x {
            return Some(x);
        }
        let n = self
            .total_sentences_in_chain
            .filter(|&n| n > 0)
            .map(f64::from);
        if let Some(k) = self.num_sentences_provided {
            return n.map(|n| f64::from(k) / n);
        }
        if let Some(i) = self.mistake_position {
            return n.map(|n| f64::from(i.saturating_sub(1)) / n);
        }
        if let Some(k) = self.num_sentences_paraphrased {
            return n.map(|n| f64::from(k) / n);
        }
        if let Some(db) = self.extra.get("snr_db").and_then(|v| v.as_f64()) {
            return Some((30.0 - db) / 40.0);
        }
        self.percent_replaced
            .or(self.percentile)
            .or(self.mask_percent)
            .map(|p| f64::from(p) / 100.0)
    }

    /// Whether the answer equals the baseline answer: `is_consistent_with_baseline`, else the
    /// comparison of `predicted_choice` with `corresponding_baseline_predicted_choice` when the
    /// latter is known. A refusal (null) is never consistent with a letter.
    pub fn consistent(&self) -> Option<bool> {
        if let Some(c) = self.is_consistent_with_baseline {
            return Some(c);
        }
        let b = self.corresponding_baseline_predicted_choice.as_ref()?;
        Some(self.predicted_choice.as_ref() == Some(b))
    }

    /// Sets `is_correct` and `is_consistent_with_baseline` from the letters, the way the
    /// paper's code does (`predicted == correct`, `predicted == baseline`); the latter stays
    /// unset while the baseline letter is unknown.
    pub fn settle(&mut self) {
        self.is_correct =
            self.predicted_choice.is_some() && self.predicted_choice == self.correct_choice;
        self.is_consistent_with_baseline = self
            .corresponding_baseline_predicted_choice
            .as_ref()
            .map(|b| self.predicted_choice.as_ref() == Some(b));
    }

    /// Probability this trial gives to `letter` (`None` without probabilities).
    pub fn prob_of(&self, letter: &str) -> Option<f64> {
        let i = self.choice_letters.iter().position(|l| l == letter)?;
        self.choice_probs.get(i).copied()
    }

    /// Change of the baseline answer's probability: p_trial(b) - p_baseline(b), where b is the
    /// baseline letter. `None` when either distribution or b is missing.
    pub fn baseline_prob_shift(&self) -> Option<f64> {
        let b = self.corresponding_baseline_predicted_choice.as_ref()?;
        let i = self.choice_letters.iter().position(|l| l == b)?;
        Some(self.choice_probs.get(i)? - self.baseline_probs.get(i)?)
    }
}

/// A problem reading or writing a trial file.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source} (check the path and its permissions)")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a trial record.
    #[error("{path}:{line}: not a trial record: {source} (each line must be one JSON object with at least an \"id\")")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Reads a JSONL file of trials; blank lines are skipped. Errors name the file and line.
/// A last line without its newline that does not parse is a write torn by a crash (the run
/// store appends whole lines) and is skipped.
pub fn read_trials(path: &Path) -> Result<Vec<Trial>, TrialError> {
    scan_trials(path, |line, source| {
        Err(TrialError::Parse {
            path: path.to_path_buf(),
            line,
            source,
        })
    })
}

/// A line of a trial file that was skipped because it is not a trial record.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was not read.
    pub reason: String,
}

/// Reads a JSONL file of trials like [`read_trials`], but skips every line that is not a trial
/// record and returns those lines (for files written by other tools, such as the paper's).
pub fn read_trials_skipping(path: &Path) -> Result<(Vec<Trial>, Vec<SkippedLine>), TrialError> {
    let mut skipped = Vec::new();
    let trials = scan_trials(path, |line, e| {
        skipped.push(SkippedLine {
            line,
            reason: e.to_string(),
        });
        Ok(())
    })?;
    Ok((trials, skipped))
}

/// The one loop over a trial file's lines; `on_bad` decides what a bad line (not the torn last
/// one) does: stop with an error or be passed over.
fn scan_trials(
    path: &Path,
    mut on_bad: impl FnMut(usize, serde_json::Error) -> Result<(), TrialError>,
) -> Result<Vec<Trial>, TrialError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrialError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Trial>(line) {
            Ok(t) => out.push(t),
            Err(_) if torn_tail && n + 1 == lines.len() => break,
            Err(source) => on_bad(n + 1, source)?,
        }
    }
    Ok(out)
}

/// Writes one trial as one JSON line (no trailing partial line on success).
pub fn write_trial<W: Write>(mut w: W, trial: &Trial) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(trial).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAPER_FILLER: &str = r#"{"id": "mmar_0", "chain_id": 0, "percent_replaced": 5, "predicted_choice": "A", "correct_choice": "A", "is_correct": true, "corresponding_baseline_predicted_choice": "D", "is_consistent_with_baseline": false, "final_answer_raw": "(A) One", "final_prompt_messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]}], "question": "Q?", "choices": "(A) One\n(B) Two", "audio_path": "data/a.wav", "unknown_key": [1, 2]}"#;

    #[test]
    fn reads_paper_rows_and_infers_kind_and_x() {
        let t: Trial = serde_json::from_str(PAPER_FILLER).unwrap();
        assert_eq!(t.kind(), Some(InterventionKind::Filler));
        assert_eq!(t.x_value(), Some(0.05));
        assert_eq!(t.consistent(), Some(false));
        assert_eq!(t.extra["unknown_key"], serde_json::json!([1, 2]));
        assert!(t.choice_probs.is_empty() && t.meta == ItemMeta::default());
        // Written back, every paper key keeps its name and value.
        let back: Value = serde_json::to_value(&t).unwrap();
        let orig: Value = serde_json::from_str(PAPER_FILLER).unwrap();
        for (k, v) in orig.as_object().unwrap() {
            assert_eq!(&back[k], v, "key {k}");
        }
        assert!(back.get("intervention").is_none() && back.get("x").is_none());
    }

    #[test]
    fn torn_last_line_is_skipped_other_bad_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trials.jsonl");
        std::fs::write(&p, "{\"id\":\"a\"}\n{\"id\":\"b\",\"chain").unwrap();
        let ts = read_trials(&p).unwrap();
        assert_eq!(ts.len(), 1);
        std::fs::write(&p, "{\"id\":\"a\"}\n{\"id\":\"b\",\"chain\n").unwrap();
        let err = read_trials(&p).unwrap_err().to_string();
        assert!(err.contains("trials.jsonl:2"), "{err}");
    }

    #[test]
    fn x_from_paper_fields() {
        let mut t = Trial {
            total_sentences_in_chain: Some(4),
            mistake_position: Some(1),
            ..Default::default()
        };
        assert_eq!(t.x_value(), Some(0.0));
        t.mistake_position = Some(4);
        assert_eq!(t.x_value(), Some(0.75));
        t.mistake_position = None;
        t.num_sentences_provided = Some(4);
        assert_eq!(t.x_value(), Some(1.0));
        t.total_sentences_in_chain = Some(0);
        assert_eq!(t.x_value(), None);
    }

    #[test]
    fn list_choices_and_null_answers() {
        let t: Trial = serde_json::from_str(
            r#"{"id":"x","choices":["cat","dog"],"predicted_choice":null,"corresponding_baseline_predicted_choice":"B"}"#,
        )
        .unwrap();
        assert_eq!(t.choices, "(A) cat\n(B) dog");
        assert_eq!(t.predicted_choice, None);
        assert_eq!(t.consistent(), Some(false));
        let v = serde_json::to_value(&t).unwrap();
        assert!(v["predicted_choice"].is_null());
    }

    #[test]
    fn ours_round_trip_and_prob_shift() {
        let t = Trial {
            id: "i".into(),
            intervention: Some(InterventionKind::EarlyAnswering),
            x: Some(0.5),
            corresponding_baseline_predicted_choice: Some("B".into()),
            choice_letters: vec!["A".into(), "B".into()],
            choice_probs: vec![0.7, 0.3],
            baseline_probs: vec![0.2, 0.8],
            ..Default::default()
        };
        let s = serde_json::to_string(&t).unwrap();
        let back: Trial = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
        assert!((t.baseline_prob_shift().unwrap() + 0.5).abs() < 1e-12);
        let mut u = Trial {
            predicted_choice: Some("B".into()),
            correct_choice: Some("B".into()),
            ..t.clone()
        };
        u.settle();
        assert!(u.is_correct && u.is_consistent_with_baseline == Some(true));
        u.predicted_choice = None;
        u.settle();
        assert!(!u.is_correct && u.is_consistent_with_baseline == Some(false));
        assert_eq!(t.prob_of("A"), Some(0.7));
        let other: Trial =
            serde_json::from_str(r#"{"id":"i","intervention":"from_the_future"}"#).unwrap();
        assert_eq!(other.intervention, Some(InterventionKind::Other));
    }
}
