//! Readers for what `faithscope report` reads: the paper's per-trial result files
//! (`baseline_*`, `no_reasoning_*`, `early_answering_*`, `random_partial_filler_text_*`, multi-part
//! `*.part_N.jsonl`, ...), its standardized item files (`*_standardized.jsonl`, used for item
//! metadata), and our run directories (`<dir>/trials.jsonl`).
//!
//! After loading, every trial knows its intervention, its item metadata where an item file gave
//! it, and its baseline answer where a baseline trial of the same item and chain was loaded.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::data::{Item, ItemMeta};
use crate::faith::protocol::Protocol;
use crate::faith::shards;
use crate::faith::sweep::{sanitize, Chain};
use crate::faith::trial::{read_trials_skipping, InterventionKind, Trial, TrialError};

/// What one input turned out to be.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Source {
    /// The path given.
    pub path: PathBuf,
    /// `trials` (a result file or run directory) or `items` (a standardized item file).
    pub kind: &'static str,
    /// Rows read.
    pub rows: usize,
    /// Lines skipped because they are not trial records (each one is in [`Loaded::warnings`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// A run directory's `manifest.json` (model, dataset, protocol, seeds, versions), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
}

/// Trials and item metadata read from the inputs.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every trial, with intervention, metadata and baseline filled in where known.
    pub trials: Vec<Trial>,
    /// One entry per input.
    pub sources: Vec<Source>,
    /// One line per skipped record: `file:line: skipped: why`.
    pub warnings: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A problem with one input.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading a trial file failed.
    #[error(transparent)]
    Trial(#[from] TrialError),
    /// The path does not exist or is not readable.
    #[error("{path}: {source} (give a run directory or the paper's result .jsonl files)")]
    Io {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A directory without `trials.jsonl`.
    #[error("{0}: not a run directory (no trials.jsonl in it)")]
    NotRunDir(PathBuf),
    /// A row whose intervention cannot be told.
    #[error("{path}:{line}: item {id}: cannot tell which intervention this trial is (no \"intervention\" field, none of the paper's x fields, and the file name does not start like the paper's: baseline_, no_reasoning_, early_answering_, adding_mistakes_, paraphrasing_, *filler_text_, audio_masking_)")]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The item id.
        id: String,
    },
    /// A line of an item file (or a run manifest) that cannot be read.
    #[error("{path}:{line}: {message}")]
    BadItem {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No input at all.
    #[error("no inputs: give a run directory or the paper's result .jsonl files")]
    Empty,
    /// Run directories that are not parts of one run.
    #[error(transparent)]
    Mix(#[from] shards::MixError),
}

/// The intervention a paper result file holds, from its name (`None` when the name says nothing).
pub fn kind_from_file_name(name: &str) -> Option<InterventionKind> {
    use InterventionKind::*;
    let table: &[(&str, InterventionKind)] = &[
        ("baseline_", Baseline),
        ("no_reasoning_", NoCot),
        ("early_answering_", EarlyAnswering),
        ("adding_mistakes", AddingMistakes),
        ("paraphrasing", Paraphrasing),
        ("random_partial_filler_text_", Filler),
        ("flipped_partial_filler_text_", Filler),
        ("partial_filler_text_", Filler),
        ("filler_text_", FillerOnly),
        ("audio_masking_", AudioMask),
        ("snr_robustness_", AudioNoise),
    ];
    table
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|&(_, k)| k)
}

/// Reads every input (run directories, result files, item files) and links them up.
pub fn load(inputs: &[PathBuf]) -> Result<Loaded, LoadError> {
    if inputs.is_empty() {
        return Err(LoadError::Empty);
    }
    let (inputs, warnings) = shards::distinct_paths(inputs);
    let mut loaded = Loaded {
        warnings,
        ..Loaded::default()
    };
    let mut items: HashMap<String, ItemMeta> = HashMap::new();
    let mut runs = RunDirs::default();
    for input in &inputs {
        let meta = std::fs::metadata(input).map_err(|source| LoadError::Io {
            path: input.clone(),
            source,
        })?;
        if meta.is_dir() {
            let file = input.join("trials.jsonl");
            if !file.is_file() {
                return Err(LoadError::NotRunDir(input.clone()));
            }
            let manifest = read_manifest(&input.join("manifest.json"))?;
            let start = loaded.trials.len();
            loaded.add_trial_file(input, &file, None, manifest.clone())?;
            runs.add(input, manifest, &mut loaded, start)?;
        } else if is_item_file(input)? {
            let n = read_items(input, &mut items)?;
            loaded.sources.push(Source {
                path: input.clone(),
                kind: "items",
                rows: n,
                skipped: 0,
                manifest: None,
            });
        } else {
            let name = input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            loaded.add_trial_file(input, input, kind_from_file_name(&name), None)?;
        }
    }
    runs.finish(&mut loaded);
    apply_items(&mut loaded.trials, &items);
    link_baselines(&mut loaded.trials);
    Ok(loaded)
}

/// The run directories among the inputs: read as one run when their manifests agree (the
/// shards of a job array), each item counted from the first directory that holds it.
#[derive(Default)]
struct RunDirs {
    manifests: Vec<(PathBuf, Value)>,
    /// Item id -> the directory (index into `manifests`) its trials are taken from.
    owner: HashMap<String, usize>,
    /// Items whose trials were also in a later directory: (item, kept dir, dropped dir).
    twice: Vec<(String, usize, usize)>,
}

impl RunDirs {
    /// Takes the trials `loaded.trials[start..]` that directory `dir` just added: refuses a
    /// manifest that does not agree with the first directory's and drops the trials of items
    /// an earlier directory holds.
    fn add(
        &mut self,
        dir: &Path,
        manifest: Option<Value>,
        loaded: &mut Loaded,
        start: usize,
    ) -> Result<(), LoadError> {
        let idx = self.manifests.len();
        self.manifests
            .push((dir.to_path_buf(), manifest.unwrap_or(Value::Null)));
        shards::agree(&self.manifests)?;
        let mut mine = Vec::new();
        let mut kept = Vec::with_capacity(loaded.trials.len() - start);
        for t in loaded.trials.drain(start..) {
            match self.owner.get(&t.id) {
                Some(&o) if o != idx => {
                    if !self.twice.iter().any(|(id, _, d)| *id == t.id && *d == idx) {
                        self.twice.push((t.id.clone(), o, idx));
                    }
                }
                _ => {
                    mine.push(t.id.clone());
                    kept.push(t);
                }
            }
        }
        if let Some(src) = loaded.sources.last_mut() {
            src.rows = kept.len();
        }
        loaded.trials.extend(kept);
        for id in mine {
            self.owner.entry(id).or_insert(idx);
        }
        Ok(())
    }

    /// Warnings for items in two directories, shards no directory is, and (for shards) the
    /// dataset's items that no directory holds.
    fn finish(&self, loaded: &mut Loaded) {
        let name = |i: usize| self.manifests[i].0.display().to_string();
        const SHOW: usize = 10;
        for (id, kept, dropped) in self.twice.iter().take(SHOW) {
            loaded.warnings.push(format!(
                "item {id} is in {} and in {}: counted once, from {}",
                name(*kept),
                name(*dropped),
                name(*kept)
            ));
        }
        if self.twice.len() > SHOW {
            loaded.warnings.push(format!(
                "... and {} more items in two run directories, each counted once",
                self.twice.len() - SHOW
            ));
        }
        let Some(shard) = self
            .manifests
            .iter()
            .find_map(|(_, m)| shards::Shard::of_manifest(m))
        else {
            return;
        };
        let missing = shards::missing_shards(&self.manifests);
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|k| format!("{k}/{}", shard.count))
                .collect();
            loaded.warnings.push(format!(
                "shards missing: {} (give every shard's run directory; `faithscope run --check DIR...` lists what is not done)",
                list.join(", ")
            ));
        }
        let m = &self.manifests[0].1;
        let Some(data) = m.get("data").and_then(Value::as_str) else {
            return;
        };
        let format = m
            .get("data_format")
            .cloned()
            .and_then(|f| serde_json::from_value(f).ok())
            .unwrap_or(crate::data::Format::Auto);
        let options = crate::data::LoadOptions {
            format,
            strict: false,
            allow_outside: false,
        };
        match crate::data::load(Path::new(data), &options) {
            Ok(ds) => {
                let limit = m
                    .get("limit")
                    .and_then(Value::as_u64)
                    .map_or(usize::MAX, |n| n as usize);
                let none: Vec<&str> = ds
                    .items
                    .iter()
                    .take(limit)
                    .map(|it| it.id.as_str())
                    .filter(|id| !self.owner.contains_key(*id))
                    .collect();
                if !none.is_empty() {
                    let more = if none.len() > SHOW {
                        format!(", ... ({} more)", none.len() - SHOW)
                    } else {
                        String::new()
                    };
                    loaded.warnings.push(format!(
                        "{} items of {data} are in no run directory: {}{more}",
                        none.len(),
                        none[..none.len().min(SHOW)].join(", ")
                    ));
                }
            }
            Err(e) => loaded.warnings.push(format!(
                "could not read the dataset {data} to find items in no shard: {e}"
            )),
        }
    }
}

/// Reads a run directory's manifest when there is one.
fn read_manifest(path: &Path) -> Result<Option<Value>, LoadError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| LoadError::BadItem {
            path: path.to_path_buf(),
            line: e.line(),
            message: format!("manifest is not JSON: {e}"),
        })
}

impl Loaded {
    /// Reads one trial file (given as `input`: the file or its run directory); each trial
    /// without an intervention gets the one its fields imply, else `default` (from the file
    /// name). Lines that are not trial records are skipped, each with a warning.
    fn add_trial_file(
        &mut self,
        input: &Path,
        file: &Path,
        default: Option<InterventionKind>,
        manifest: Option<Value>,
    ) -> Result<(), LoadError> {
        let (mut trials, skipped) = read_trials_skipping(file)?;
        for (i, t) in trials.iter_mut().enumerate() {
            let kind = t.kind().or(default).ok_or_else(|| LoadError::UnknownKind {
                path: file.to_path_buf(),
                line: i + 1,
                id: t.id.clone(),
            })?;
            t.intervention = Some(kind);
        }
        self.warnings.extend(skipped.iter().map(|s| {
            format!(
                "{}:{}: skipped: not a trial record: {}",
                file.display(),
                s.line,
                s.reason
            )
        }));
        self.sources.push(Source {
            path: input.to_path_buf(),
            kind: "trials",
            rows: trials.len(),
            skipped: skipped.len(),
            manifest,
        });
        self.trials.extend(trials);
        Ok(())
    }
}

/// The paper's item file a result file's metadata lives in, by the names the paper uses:
/// `baseline_flamingo_hf_sakura-animal.jsonl` -> `sakura_animal_test_standardized.jsonl`,
/// `random_partial_filler_text_flamingo_hf_mmar-lorem.part_1.jsonl` ->
/// `mmar_test_standardized.jsonl`. The first candidate that exists beside the file, else the
/// most specific name.
pub fn item_file_for(result: &Path) -> PathBuf {
    let name = result
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    let stem = match stem.rsplit_once(".part_") {
        Some((head, n)) if n.chars().all(|c| c.is_ascii_digit()) => head,
        _ => stem,
    };
    let dataset = stem.rsplit('_').next().unwrap_or(stem);
    let parts: Vec<&str> = dataset.split('-').collect();
    let dir = result.parent().unwrap_or(Path::new(""));
    let candidates: Vec<PathBuf> = (1..=parts.len())
        .rev()
        .map(|k| dir.join(format!("{}_test_standardized.jsonl", parts[..k].join("_"))))
        .collect();
    candidates
        .iter()
        .find(|c| c.is_file())
        .unwrap_or(&candidates[0])
        .clone()
}

/// When no trial has item metadata `field` (`hop`, `track`, ...), what to give to get it:
/// `None` when some trial has it (or the field needs no metadata).
pub fn missing_field_hint(loaded: &Loaded, field: &str) -> Option<String> {
    if field == "correct"
        || loaded
            .trials
            .iter()
            .any(|t| crate::faith::report::meta_field(&t.meta, field).is_some())
    {
        return None;
    }
    let item_files: Vec<String> = loaded
        .sources
        .iter()
        .filter(|s| s.kind == "items")
        .map(|s| s.path.display().to_string())
        .collect();
    if !item_files.is_empty() {
        return Some(format!(
            "--by {field}: no trial has {field} metadata: the item files given ({}) have no {field} field for these items; split by a field they have (see `faithscope items FILE`)",
            item_files.join(", ")
        ));
    }
    let mut wanted: Vec<String> = Vec::new();
    for s in loaded.sources.iter().filter(|s| s.path.is_file()) {
        let item = item_file_for(&s.path);
        let for_file = s.path.file_name().unwrap_or_default().to_string_lossy();
        let line = if item.is_file() {
            let mut metas = HashMap::new();
            let has = read_items(&item, &mut metas).is_ok()
                && metas
                    .values()
                    .any(|m| crate::faith::report::meta_field(m, field).is_some());
            if !has {
                return Some(format!(
                    "--by {field}: no trial has {field} metadata, and neither has {} (the item file of {for_file}): this dataset has no {field}; split by a field it has (see `faithscope items FILE`)",
                    item.display()
                ));
            }
            format!("{} (for {for_file}: found beside it)", item.display())
        } else {
            format!("{} (for {for_file}: not found beside it)", item.display())
        };
        if !wanted.contains(&line) {
            wanted.push(line);
        }
    }
    Some(if wanted.is_empty() {
        format!("--by {field}: no trial has {field} metadata: the run's records carry none (its dataset has no {field} field); add the dataset's standardized item file to the inputs")
    } else {
        format!(
            "--by {field}: no trial has {field} metadata: the paper's result files carry none; their item file does: add {} to the inputs",
            wanted.join(", ")
        )
    })
}

/// The chain each item's trials were asked on, from the rows that hold it whole: a baseline's
/// `sanitized_cot` (else its `generated_cot`, sanitized by `protocol`), else the
/// `modified_reasoning` of a filler trial with nothing replaced or of an early-answering trial
/// that kept every sentence. Chain 0 of each item, else its lowest chain.
pub fn recorded_chains(trials: &[Trial], protocol: &Protocol) -> BTreeMap<String, Chain> {
    // (rank of the source row: baseline first, chain id) of the chain kept per item
    let mut best: BTreeMap<String, ((u32, u8), Chain)> = BTreeMap::new();
    for t in trials {
        let whole = match t.intervention.or_else(|| t.kind()) {
            Some(InterventionKind::Baseline) => t
                .sanitized_cot
                .clone()
                .or_else(|| t.generated_cot.as_deref().map(|g| sanitize(protocol, g)))
                .map(|c| (0, c)),
            Some(InterventionKind::Filler) if t.percent_replaced == Some(0) => t
                .modified_reasoning
                .clone()
                .or_else(|| reasoning_in_prompt(&t.final_prompt_messages))
                .map(|c| (1, c)),
            Some(InterventionKind::EarlyAnswering)
                if t.num_sentences_provided.is_some()
                    && t.num_sentences_provided == t.total_sentences_in_chain =>
            {
                t.modified_reasoning
                    .clone()
                    .or_else(|| reasoning_in_prompt(&t.final_prompt_messages))
                    .map(|c| (2, c))
            }
            _ => None,
        };
        let Some((rank, text)) = whole.filter(|(_, c)| !c.trim().is_empty()) else {
            continue;
        };
        let key = (t.chain_id, rank);
        if best.get(&t.id).is_some_and(|(k, _)| *k <= key) {
            continue;
        }
        let chain = Chain {
            id: t.id.clone(),
            chain_id: t.chain_id,
            seed: 0,
            generated_cot: t.generated_cot.clone().unwrap_or_else(|| text.clone()),
            sentences: protocol.splitter.split(&text),
            sanitized_cot: text,
            generate_ms: 0.0,
            reasoning: None,
        };
        best.insert(t.id.clone(), (key, chain));
    }
    best.into_iter().map(|(id, (_, c))| (id, c)).collect()
}

/// The reasoning the paper's code put into the final prompt: its user turn reads "question,
/// choices, instruction", a blank line, the reasoning, a blank line, the answer cue. `None`
/// when the prompt has no such middle part. The messages may also be a JSON string of the list.
pub fn reasoning_in_prompt(messages: &Value) -> Option<String> {
    let parsed;
    let messages = match messages {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        v => v,
    };
    let user = messages
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    let text: String = match &user["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    let (_, rest) = text.split_once("\n\n")?;
    let (reasoning, _cue) = rest.rsplit_once("\n\n")?;
    let reasoning = reasoning.trim();
    (!reasoning.is_empty()).then(|| reasoning.to_string())
}

/// Items rebuilt from the trial rows themselves (`question`, `choices` as "(A) text" lines,
/// `audio_path`, `correct_choice`), one per item id in first-seen order, for result files whose
/// item file is not at hand. Audio paths are taken relative to `base`.
pub fn items_from_trials(trials: &[Trial], base: &Path) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for t in trials {
        if !seen.insert(t.id.as_str()) {
            continue;
        }
        let choices: Vec<String> = t
            .choices
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(
                |l| match l.strip_prefix('(').and_then(|r| r.split_once(')')) {
                    Some((letter, text)) if letter.len() == 1 => text.trim().to_string(),
                    _ => l.to_string(),
                },
            )
            .collect();
        let gold = t.correct_choice.as_deref().and_then(|c| {
            let c = c.trim().trim_start_matches('(').trim_end_matches(')');
            crate::data::CHOICE_LETTERS
                .iter()
                .position(|l| c.len() == 1 && c.starts_with(*l))
                .filter(|&i| i < choices.len())
        });
        items.push(Item {
            id: t.id.clone(),
            audio: base.join(&t.audio_path),
            question: t.question.clone(),
            choices,
            gold,
            meta: t.meta.clone(),
        });
    }
    items
}

/// Whether the file is a standardized item file: its first record has a list of choices and
/// no answer read (`predicted_choice`).
fn is_item_file(path: &Path) -> Result<bool, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&line) else {
            return Ok(false);
        };
        return Ok(
            !o.contains_key("predicted_choice") && o.get("choices").is_some_and(Value::is_array)
        );
    }
    Ok(false)
}

/// Reads item metadata (track, hop_type, category, ...) by id from a standardized item file.
fn read_items(path: &Path, items: &mut HashMap<String, ItemMeta>) -> Result<usize, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut n = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| LoadError::BadItem {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!("not an item record: {message}"),
        };
        let v: Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no string \"id\"".into()))?;
        let text = |key: &str| -> Option<String> {
            match v.get(key)? {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Array(a) => Some(
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        items.insert(
            id.to_string(),
            ItemMeta {
                source: text("source"),
                track: text("track"),
                hop: text("hop_type").or_else(|| text("hop")),
                category: text("category"),
                sub_category: text("sub-category").or_else(|| text("sub_category")),
                modality: text("modality"),
                language: text("language"),
                ..ItemMeta::default()
            },
        );
        n += 1;
    }
    Ok(n)
}

/// Fills the metadata fields a trial lacks from the item file's record of its id.
fn apply_items(trials: &mut [Trial], items: &HashMap<String, ItemMeta>) {
    if items.is_empty() {
        return;
    }
    for t in trials {
        let Some(m) = items.get(&t.id) else { continue };
        let fill = |dst: &mut Option<String>, src: &Option<String>| {
            if dst.is_none() {
                dst.clone_from(src);
            }
        };
        fill(&mut t.meta.source, &m.source);
        fill(&mut t.meta.track, &m.track);
        fill(&mut t.meta.hop, &m.hop);
        fill(&mut t.meta.category, &m.category);
        fill(&mut t.meta.sub_category, &m.sub_category);
        fill(&mut t.meta.modality, &m.modality);
        fill(&mut t.meta.language, &m.language);
    }
}

/// Gives each non-baseline trial without a baseline answer the answer (and probabilities) of the
/// baseline trial of the same item and chain, when one was loaded.
fn link_baselines(trials: &mut [Trial]) {
    let baselines: HashMap<(String, u32), Trial> = trials
        .iter()
        .filter(|t| t.intervention == Some(InterventionKind::Baseline))
        .map(|t| ((t.id.clone(), t.chain_id), t.clone()))
        .collect();
    if baselines.is_empty() {
        return;
    }
    for t in trials {
        if t.intervention == Some(InterventionKind::Baseline) {
            continue;
        }
        let Some(base) = baselines.get(&(t.id.clone(), t.chain_id)) else {
            continue;
        };
        if t.corresponding_baseline_predicted_choice.is_none() {
            t.corresponding_baseline_predicted_choice
                .clone_from(&base.predicted_choice);
        }
        if t.baseline_probs.is_empty()
            && !base.choice_probs.is_empty()
            && base.choice_letters == t.choice_letters
        {
            t.baseline_probs.clone_from(&base.choice_probs);
        }
    }
}

/// Whether the trial's baseline answer was correct: for a baseline trial its own correctness,
/// else its baseline letter against the gold letter. `None` when unknown.
pub fn baseline_correct(t: &Trial) -> Option<bool> {
    if t.intervention == Some(InterventionKind::Baseline) {
        return Some(t.is_correct);
    }
    let b = t.corresponding_baseline_predicted_choice.as_ref()?;
    let gold = t.correct_choice.as_ref()?;
    Some(b == gold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_kinds() {
        use InterventionKind::*;
        assert_eq!(
            kind_from_file_name("baseline_qwen_mmar.jsonl"),
            Some(Baseline)
        );
        assert_eq!(
            kind_from_file_name("no_reasoning_flamingo_hf_mmar.jsonl"),
            Some(NoCot)
        );
        assert_eq!(
            kind_from_file_name("random_partial_filler_text_flamingo_hf_mmar-lorem.part_1.jsonl"),
            Some(Filler)
        );
        assert_eq!(
            kind_from_file_name("filler_text_qwen_mmar.jsonl"),
            Some(FillerOnly)
        );
        assert_eq!(kind_from_file_name("trials.jsonl"), None);
    }

    #[test]
    fn baselines_are_linked_by_item_and_chain() {
        let base = Trial {
            id: "a".into(),
            intervention: Some(InterventionKind::Baseline),
            predicted_choice: Some("B".into()),
            correct_choice: Some("B".into()),
            is_correct: true,
            ..Default::default()
        };
        let early = Trial {
            id: "a".into(),
            intervention: Some(InterventionKind::EarlyAnswering),
            predicted_choice: Some("C".into()),
            correct_choice: Some("B".into()),
            ..Default::default()
        };
        let other_chain = Trial {
            chain_id: 1,
            ..early.clone()
        };
        let mut ts = vec![base, early, other_chain];
        link_baselines(&mut ts);
        assert_eq!(ts[1].consistent(), Some(false));
        assert_eq!(baseline_correct(&ts[1]), Some(true));
        assert_eq!(ts[2].consistent(), None);
        assert_eq!(baseline_correct(&ts[0]), Some(true));
    }
}
