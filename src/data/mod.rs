//! Datasets: one [`Item`] type from every supported benchmark format.
//!
//! [`load`] detects the format of a file or folder (or takes the one given), reads every item it
//! can, and collects what is wrong with the rest as [`Problem`]s. Every loader hands its items to
//! one shared validation step (`collect`): gold among the choices, at least two choices, unique
//! ids, audio paths that stay inside the dataset folder. Audio contents are not read while
//! loading; [`clips::check_clips`] checks that the clips exist, or decodes every one.

mod airbench;
pub mod clips;
mod collect;
mod detect;
mod mmar;
mod mmau;
mod own;
mod records;
mod sakura;
mod standardized;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use detect::detect;
pub use own::write_items_jsonl;

/// Letters used to label choices: (a), (b), ...
pub const CHOICE_LETTERS: &[char] = &['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];

/// Descriptive fields of an item; all optional because sources differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemMeta {
    /// Benchmark the item came from (sakura, mmar, mmau, airbench, standardized, faithscope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// SAKURA track (Animal, Emotion, Gender, Language) or similar grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    /// "single" or "multi" for SAKURA-style hop types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<String>,
    /// Category within the source (MMAR/MMAU category, AIR-Bench task, SAKURA class label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Finer grouping under `category` (MMAR/MMAU sub-category, AIR-Bench dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_category: Option<String>,
    /// Kind of audio (speech, sound, music, mixes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    /// Language of the speech, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Reasoning facts of a generated item (`faithscope synth`): the task and the measured
    /// quantities, from which chains and exact mistakes are written (see `synth::Facts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<serde_json::Value>,
}

/// One multiple-choice question about one audio clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Unique id within its source.
    pub id: String,
    /// Path of the clip, resolved against the dataset folder.
    pub audio: PathBuf,
    /// The question text without the inline options.
    pub question: String,
    /// Choice texts in order (shown as (A), (B), ...).
    pub choices: Vec<String>,
    /// Index of the correct choice, when known.
    pub gold: Option<usize>,
    /// Track, hop, category and the like.
    #[serde(default)]
    pub meta: ItemMeta,
}

impl Item {
    /// The letter of choice `index` ("A" for 0), or "?" past the last letter.
    pub fn letter(index: usize) -> char {
        CHOICE_LETTERS.get(index).copied().unwrap_or('?')
    }

    /// The gold choice's text, when the gold is known.
    pub fn gold_text(&self) -> Option<&str> {
        self.gold
            .and_then(|g| self.choices.get(g))
            .map(String::as_str)
    }
}

/// Source formats `load` understands; `Auto` detects from the path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detect from the file name, folder layout or first JSON object's keys.
    #[default]
    Auto,
    /// SAKURA repo layout: `data/<Track>/metadata.json` (or `.csv`) with `audio/` beside.
    Sakura,
    /// MMAR `MMAR-meta.jsonl` or the legacy `MMAR-meta.json` array.
    Mmar,
    /// MMAU `mmau-test-mini.json` (and other MMAU splits of the same shape).
    Mmau,
    /// AIR-Bench Foundation `Foundation_meta.json`.
    Airbench,
    /// The paper's `*_standardized.jsonl` item files (`answer_key`).
    Standardized,
    /// faithscope's own items JSONL (one serialized Item per line, see docs/ITEMS.md).
    Faithscope,
}

impl Format {
    /// The lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Sakura => "sakura",
            Format::Mmar => "mmar",
            Format::Mmau => "mmau",
            Format::Airbench => "airbench",
            Format::Standardized => "standardized",
            Format::Faithscope => "faithscope",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How strictly to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The source format; `Auto` detects it.
    pub format: Format,
    /// Any problem is fatal instead of skipping the item.
    pub strict: bool,
    /// Accept audio paths that leave the dataset folder.
    pub allow_outside: bool,
}

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is wrong: the item (or file) was skipped or lost its gold. Fatal under `strict`.
    #[default]
    Error,
    /// A quirk of the source that was resolved in a documented way (duplicate choices, a `.wav`
    /// path whose file is `.flac`); never fatal.
    Note,
}

/// A problem with one file, line or item; loading goes on with the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// File (and line, when known) the problem is in.
    pub location: String,
    /// The item's id, when known.
    pub item: Option<String>,
    /// The field at fault, when known.
    pub field: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
    /// Error (item skipped or degraded; fatal under `strict`) or note.
    #[serde(default)]
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Note {
            f.write_str("note: ")?;
        }
        write!(f, "{}", self.location)?;
        if let Some(item) = &self.item {
            write!(f, ": item {item}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Items loaded from one source, with the problems met on the way.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The path the user gave.
    pub root: PathBuf,
    /// The format used (never `Auto`).
    pub format: Format,
    /// The items that loaded, in file order.
    pub items: Vec<Item>,
    /// Everything that was skipped, degraded or resolved on the way, in file order.
    pub problems: Vec<Problem>,
}

/// Item counts of a dataset: in total and per track, hop and category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Number of items.
    pub total: usize,
    /// Items per `meta.track` (items without one are not counted here).
    pub by_track: BTreeMap<String, usize>,
    /// Items per `meta.hop`.
    pub by_hop: BTreeMap<String, usize>,
    /// Items per `meta.category`.
    pub by_category: BTreeMap<String, usize>,
    /// Items whose gold is unknown.
    pub without_gold: usize,
    /// Problems of severity error.
    pub errors: usize,
    /// Problems of severity note.
    pub notes: usize,
}

impl Dataset {
    /// The item with this id.
    pub fn find(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.id == id)
    }

    /// Counts per track, hop and category, and of the problems.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            total: self.items.len(),
            ..Counts::default()
        };
        for item in &self.items {
            let groups = [
                (&mut counts.by_track, &item.meta.track),
                (&mut counts.by_hop, &item.meta.hop),
                (&mut counts.by_category, &item.meta.category),
            ];
            for (map, key) in groups {
                if let Some(key) = key {
                    *map.entry(key.clone()).or_default() += 1;
                }
            }
            if item.gold.is_none() {
                counts.without_gold += 1;
            }
        }
        counts.errors = self
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        counts.notes = self.problems.len() - counts.errors;
        counts
    }
}

/// A problem that stops loading altogether (unreadable source, or any problem under `strict`).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The message names the path or item and says what to do.
    #[error("{0}")]
    Fatal(String),
}

/// Loads the items of a dataset file or folder.
///
/// Problems with single files, lines or items are collected in [`Dataset::problems`] and loading
/// goes on; with `opts.strict` the first error-severity problem is returned as [`DataError`]. A
/// path that does not exist, or whose format cannot be detected, is always an error.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    if !path.exists() {
        return Err(DataError::Fatal(format!(
            "{}: no such file or folder; give a dataset file or folder (see `faithscope items --help`)",
            path.display()
        )));
    }
    let format = match opts.format {
        Format::Auto => detect(path)?,
        other => other,
    };
    let mut out = collect::Collector::new(opts);
    match format {
        Format::Sakura => sakura::load(path, &mut out)?,
        Format::Mmar => mmar::load(&resolve_file(path, format)?, &mut out)?,
        Format::Mmau => mmau::load(&resolve_file(path, format)?, &mut out)?,
        Format::Airbench => airbench::load(&resolve_file(path, format)?, &mut out)?,
        Format::Standardized => standardized::load(&resolve_file(path, format)?, &mut out)?,
        Format::Faithscope => own::load(&resolve_file(path, format)?, &mut out)?,
        Format::Auto => unreachable!("detect never returns Auto"),
    }
    Ok(out.finish(path, format))
}

/// For the single-file formats: the file itself, or the one metadata file of that format in a
/// folder.
fn resolve_file(path: &Path, format: Format) -> Result<PathBuf, DataError> {
    if path.is_dir() {
        detect::file_in_folder(path, format)
    } else {
        Ok(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_names_location_item_and_field() {
        let p = Problem {
            location: "a.jsonl:3".into(),
            item: Some("x1".into()),
            field: Some("choices".into()),
            message: "only one choice".into(),
            severity: Severity::Error,
        };
        assert_eq!(
            p.to_string(),
            "a.jsonl:3: item x1: field `choices`: only one choice"
        );
    }

    #[test]
    fn counts_group_by_track_hop_category() {
        let item = |id: &str, track: &str, hop: &str| Item {
            id: id.into(),
            audio: PathBuf::from("a.wav"),
            question: "q".into(),
            choices: vec!["a".into(), "b".into()],
            gold: if id == "3" { None } else { Some(0) },
            meta: ItemMeta {
                track: Some(track.into()),
                hop: Some(hop.into()),
                ..ItemMeta::default()
            },
        };
        let ds = Dataset {
            root: PathBuf::from("."),
            format: Format::Faithscope,
            items: vec![
                item("1", "A", "single"),
                item("2", "A", "multi"),
                item("3", "B", "single"),
            ],
            problems: vec![],
        };
        let c = ds.counts();
        assert_eq!(c.total, 3);
        assert_eq!(c.by_track["A"], 2);
        assert_eq!(c.by_hop["single"], 2);
        assert!(c.by_category.is_empty());
        assert_eq!(c.without_gold, 1);
        assert_eq!(
            ds.find("2").map(|i| i.meta.hop.as_deref()),
            Some(Some("multi"))
        );
    }
}
