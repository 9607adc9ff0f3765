//! Model-written perturbations of a chain (mistaken sentences and paraphrases): the requests
//! that ask for them, who writes them (the model under test, an external LLM served over HTTP,
//! or a file written earlier by `faithscope perturb`), and the log that keeps each one once
//! (`perturbations.jsonl`), so a resumed or repeated run never asks twice.
//!
//! The paper has an external LLM (Mistral on vLLM) write them, so that the model under test does
//! not write its own perturbations; its trials say where each came from in
//! `perturbation_source` (`self`, `external-<model>`), as ours do.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::data::Item;
use crate::faith::answer::{gen_params, generate, mistake_conversation, paraphrase_conversation};
use crate::faith::mistakes::{clean_generated, norm, Mistake};
use crate::faith::protocol::Protocol;
use crate::faith::run::{read_lines, Log, RunError};
use crate::faith::split::join_sentences;
use crate::model::remote::{RemoteOptions, RemoteReasoner};
use crate::model::{Conversation, GenParams, ModelError, Reasoner, StopReason};

/// The perturbation log of a run directory.
pub const PERTURBATIONS: &str = "perturbations.jsonl";

/// What a perturbation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerturbKind {
    /// One sentence rewritten with a mistake (`n`: the sentence, 1-based).
    Mistake,
    /// The first `n` sentences rewritten in other words.
    Paraphrase,
}

impl PerturbKind {
    /// `mistake` or `paraphrase`.
    pub fn label(self) -> &'static str {
        match self {
            PerturbKind::Mistake => "mistake",
            PerturbKind::Paraphrase => "paraphrase",
        }
    }

    /// The key of the trial that uses perturbation `n` (`mistake:3`), which is also the key its
    /// seed derives from.
    pub fn trial_key(self, n: usize) -> String {
        format!("{}:{n}", self.label())
    }

    /// The text perturbation `n` of a chain's sentences changes: sentence `n`, or the first `n`
    /// sentences joined.
    pub fn original(self, sentences: &[String], n: usize) -> String {
        match self {
            PerturbKind::Mistake => sentences[n - 1].clone(),
            PerturbKind::Paraphrase => join_sentences(&sentences[..n]),
        }
    }

    /// The request with the protocol's prompt for this kind; `text_only` leaves the clip out
    /// (for an external text model).
    pub fn request(
        self,
        protocol: &Protocol,
        item: &Item,
        original: &str,
        seed: u64,
        text_only: bool,
    ) -> (Conversation, GenParams) {
        let (mut conv, step) = match self {
            PerturbKind::Mistake => (
                mistake_conversation(protocol, item, original),
                &protocol.mistake,
            ),
            PerturbKind::Paraphrase => (
                paraphrase_conversation(protocol, item, original),
                &protocol.paraphrase,
            ),
        };
        if text_only {
            conv.audio = None;
        }
        (conv, gen_params(step, seed))
    }

    /// The perturbed text in a generation, `None` when it holds nothing usable (empty, or for a
    /// mistake the sentence unchanged; the paper skips those).
    pub fn clean(self, generated: &str, original: &str) -> Option<String> {
        let out = match self {
            PerturbKind::Mistake => {
                let edited = clean_generated(generated, &["Sentence with mistake added:"], true);
                if norm(&edited) == norm(original) {
                    return None;
                }
                edited
            }
            PerturbKind::Paraphrase => clean_generated(generated, &["Rewritten text:"], false),
        };
        (!out.is_empty()).then_some(out)
    }

    /// Asks `reasoner` for the perturbation of `original`.
    pub fn ask(
        self,
        reasoner: &dyn Reasoner,
        protocol: &Protocol,
        item: &Item,
        original: &str,
        seed: u64,
        text_only: bool,
    ) -> Result<Option<String>, ModelError> {
        let (conv, params) = self.request(protocol, item, original, seed, text_only);
        let gen = generate(reasoner, &conv, &params)?;
        Ok(self.clean(&gen.text, original))
    }

    /// [`PerturbKind::ask`] of the model under test (clip included), handing each piece of text
    /// to `on_delta` as it is written (a `Break` stops the generation: the result is `None`).
    pub fn ask_streaming(
        self,
        reasoner: &dyn Reasoner,
        protocol: &Protocol,
        item: &Item,
        original: &str,
        seed: u64,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Option<String>, ModelError> {
        let (conv, params) = self.request(protocol, item, original, seed, false);
        let gen = reasoner.generate(&conv, &params, on_delta)?;
        if gen.stop == StopReason::Cancelled {
            return Ok(None);
        }
        Ok(self.clean(&gen.text, original))
    }
}

/// The generation [`model_mistake`] asks for.
pub fn mistake_request(
    protocol: &Protocol,
    item: &Item,
    sentence: &str,
    seed: u64,
) -> (Conversation, GenParams) {
    PerturbKind::Mistake.request(protocol, item, sentence, seed, false)
}

/// The generation [`model_paraphrase`] asks for.
pub fn paraphrase_request(
    protocol: &Protocol,
    item: &Item,
    text: &str,
    seed: u64,
) -> (Conversation, GenParams) {
    PerturbKind::Paraphrase.request(protocol, item, text, seed, false)
}

/// Asks the same model for a mistaken version of `sentence` with the protocol's few-shot prompt.
/// `None` when it gives nothing usable (empty, or the sentence unchanged).
pub fn model_mistake(
    reasoner: &dyn Reasoner,
    protocol: &Protocol,
    item: &Item,
    sentence: &str,
    seed: u64,
) -> Result<Option<Mistake>, ModelError> {
    let edited = PerturbKind::Mistake.ask(reasoner, protocol, item, sentence, seed, false)?;
    Ok(edited.map(|edited| Mistake {
        edited,
        kind: "model".into(),
        annotator: None,
    }))
}

/// Asks the same model to paraphrase `text` with the protocol's prompt; `None` when it gives
/// nothing.
pub fn model_paraphrase(
    reasoner: &dyn Reasoner,
    protocol: &Protocol,
    item: &Item,
    text: &str,
    seed: u64,
) -> Result<Option<String>, ModelError> {
    PerturbKind::Paraphrase.ask(reasoner, protocol, item, text, seed, false)
}

/// The perturbations one chain can have: every sentence of at least the protocol's
/// `mistake.min_words` words for mistakes, every leading part for paraphrases.
pub fn slots(protocol: &Protocol, kind: PerturbKind, sentences: &[String]) -> Vec<usize> {
    (1..=sentences.len())
        .filter(|&n| {
            kind == PerturbKind::Paraphrase
                || sentences[n - 1].split_whitespace().count() >= protocol.mistake.min_words
        })
        .collect()
}

/// One perturbation, as a line of `perturbations.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Perturbation {
    /// Item id.
    pub id: String,
    /// Chain index within the item.
    pub chain_id: u32,
    /// Mistake or paraphrase.
    pub kind: PerturbKind,
    /// Mistake: the sentence changed (1-based); paraphrase: how many leading sentences.
    pub sentence: usize,
    /// Who wrote it: `self` (the model under test) or `external-<model>`.
    pub source: String,
    /// The text it replaces.
    pub original: String,
    /// The new text; `null` when the writer gave nothing usable (no trial is run for it).
    pub perturbed: Option<String>,
    /// The seed it was asked with.
    pub seed: u64,
}

/// What identifies a perturbation: item, chain, kind, sentence and source.
pub type PerturbKey = (String, u32, PerturbKind, usize, String);

impl Perturbation {
    /// Its key.
    pub fn key(&self) -> PerturbKey {
        (
            self.id.clone(),
            self.chain_id,
            self.kind,
            self.sentence,
            self.source.clone(),
        )
    }
}

/// A perturbation file: read whole at open, appended to one whole line at a time.
#[derive(Debug)]
pub struct Perturbations {
    path: PathBuf,
    /// By key, with the 1-based line.
    by_key: HashMap<PerturbKey, (usize, Perturbation)>,
    /// The first line of each (item, chain, kind, sentence), whatever its source.
    by_slot: HashMap<(String, u32, PerturbKind, usize), PerturbKey>,
    log: Option<Log>,
}

/// A perturbation file's record does not fit the chain it is used for.
#[derive(Debug, thiserror::Error)]
#[error("{path}, line {line}: item {item} chain {chain} {kind} {n} changes {original:?}, but this run's chain has {found:?} there; the file was written for other chains: run `faithscope perturb --chains RUN-DIR` on this run's chains, or leave the file out")]
pub struct Mismatch {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// Item id.
    pub item: String,
    /// Chain.
    pub chain: u32,
    /// `mistake` or `paraphrase`.
    pub kind: &'static str,
    /// Sentence.
    pub n: usize,
    /// The file's original text.
    pub original: String,
    /// The chain's text.
    pub found: String,
}

impl Perturbations {
    /// Opens (creating it if missing) for appending; a torn last line is cut.
    pub fn open(path: &Path) -> Result<Perturbations, RunError> {
        let mut p = Self::load(path, true)?;
        p.log = Some(Log::open(path.to_path_buf())?);
        Ok(p)
    }

    /// Reads an existing file without changing it (a torn last line is left out).
    pub fn read(path: &Path) -> Result<Perturbations, RunError> {
        if !path.is_file() {
            return Err(RunError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        Self::load(path, false)
    }

    fn load(path: &Path, repair: bool) -> Result<Perturbations, RunError> {
        let mut p = Perturbations {
            path: path.to_path_buf(),
            by_key: HashMap::new(),
            by_slot: HashMap::new(),
            log: None,
        };
        for (line, rec) in read_lines::<Perturbation>(path, repair)? {
            p.index(line, rec);
        }
        Ok(p)
    }

    fn index(&mut self, line: usize, rec: Perturbation) {
        let key = rec.key();
        let slot = (rec.id.clone(), rec.chain_id, rec.kind, rec.sentence);
        self.by_slot.entry(slot).or_insert_with(|| key.clone());
        self.by_key.entry(key).or_insert((line, rec));
    }

    /// Whether the JSONL file at `path` holds perturbations (its first record has `kind` and
    /// `perturbed`), as opposed to annotations.
    pub fn looks_like(path: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(path) else {
            return false;
        };
        let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
            return false;
        };
        serde_json::from_str::<serde_json::Value>(first)
            .map(|v| v.get("kind").is_some() && v.get("perturbed").is_some())
            .unwrap_or(false)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The perturbation under `key`.
    pub fn get(&self, key: &PerturbKey) -> Option<&Perturbation> {
        self.by_key.get(key).map(|(_, p)| p)
    }

    /// The perturbation of a slot from whichever source wrote it first, checked against the
    /// chain's text there.
    pub fn find(
        &self,
        item: &str,
        chain: u32,
        kind: PerturbKind,
        n: usize,
        original: &str,
    ) -> Result<Option<&Perturbation>, Box<Mismatch>> {
        let Some(key) = self.by_slot.get(&(item.to_string(), chain, kind, n)) else {
            return Ok(None);
        };
        let (line, p) = &self.by_key[key];
        if norm(&p.original) != norm(original) {
            return Err(Box::new(Mismatch {
                path: self.path.clone(),
                line: *line,
                item: item.into(),
                chain,
                kind: kind.label(),
                n,
                original: p.original.clone(),
                found: original.into(),
            }));
        }
        Ok(Some(p))
    }

    /// Appends one (a key kept already is not written again).
    pub fn put(&mut self, rec: &Perturbation) -> std::io::Result<()> {
        if self.by_key.contains_key(&rec.key()) {
            return Ok(());
        }
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| std::io::Error::other("perturbation file opened read-only"))?;
        log.append(rec)?;
        let line = self.by_key.len() + 1;
        self.index(line, rec.clone());
        Ok(())
    }
}

/// An external LLM behind an OpenAI-compatible server (`llm:URL[#MODEL]`), connected at its
/// first request (a resumed run that has all its perturbations never connects).
pub struct Llm {
    url: String,
    model: Option<String>,
    timeout: Duration,
    conn: OnceLock<Result<RemoteReasoner, String>>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Llm({})", self.spec())
    }
}

impl Llm {
    /// Reads `llm:URL[#MODEL]`; `None` when `spec` does not start with `llm:`.
    pub fn parse(spec: &str, timeout: Duration) -> Option<Result<Llm, String>> {
        let rest = spec.strip_prefix("llm:")?;
        let (url, model) = match rest.split_once('#') {
            Some((u, m)) => (u, Some(m.trim().to_string()).filter(|m| !m.is_empty())),
            None => (rest, None),
        };
        if !crate::model::remote::is_url(url) {
            return Some(Err(format!(
                "{spec:?}: after llm: give the server's URL, http://HOST:PORT/v1, optionally #MODEL (the served model id)"
            )));
        }
        Some(Ok(Llm {
            url: url.trim_end_matches('/').to_string(),
            model,
            timeout,
            conn: OnceLock::new(),
        }))
    }

    /// Connects now (unless connected), learning the served model id when none was given.
    pub fn connect(&self) -> Result<&RemoteReasoner, ModelError> {
        let conn = self.conn.get_or_init(|| {
            let mut opts = RemoteOptions::new(&self.url);
            opts.served_model = self.model.clone();
            opts.timeout = self.timeout;
            RemoteReasoner::connect(opts)
                .map_err(|e| format!("perturbation server {}: {e}", self.url))
        });
        conn.as_ref().map_err(|e| ModelError::Load(e.clone()))
    }

    /// The served model id: as given, else the connection's.
    pub fn model(&self) -> Option<&str> {
        self.model
            .as_deref()
            .or_else(|| self.conn.get()?.as_ref().ok().map(|r| r.name()))
    }

    /// `llm:URL#MODEL` (with the model once known), for manifests.
    pub fn spec(&self) -> String {
        match self.model() {
            Some(m) => format!("llm:{}#{m}", self.url),
            None => format!("llm:{}", self.url),
        }
    }

    /// The source recorded in trials and perturbations: `external-<model>`.
    pub fn label(&self) -> String {
        format!("external-{}", self.model().unwrap_or("unknown"))
    }
}

/// Who writes model-written perturbations.
#[derive(Debug, Clone, Default)]
pub enum Writer {
    /// The model under test, with the protocol's prompt (its clip included where the prompt
    /// has it).
    #[default]
    SameModel,
    /// An external text model (the prompt without the clip).
    Llm(std::sync::Arc<Llm>),
    /// A file from `faithscope perturb` (read, never asked).
    File(std::sync::Arc<Perturbations>),
}

impl Writer {
    /// Reads `model`, `llm:URL[#MODEL]` or the path of a perturbation file; `None` for anything
    /// else (the caller may know other sources).
    pub fn parse(spec: &str, timeout: Duration) -> Option<Result<Writer, String>> {
        if matches!(spec, "model" | "same-model" | "self") {
            return Some(Ok(Writer::SameModel));
        }
        if let Some(llm) = Llm::parse(spec, timeout) {
            return Some(llm.map(|l| Writer::Llm(std::sync::Arc::new(l))));
        }
        let path = Path::new(spec);
        if path.is_file() && Perturbations::looks_like(path) {
            return Some(
                Perturbations::read(path)
                    .map(|p| Writer::File(std::sync::Arc::new(p)))
                    .map_err(|e| e.to_string()),
            );
        }
        None
    }

    /// The source recorded for what it writes (`self`, `external-<model>`); a file's records
    /// carry their own.
    pub fn label(&self) -> String {
        match self {
            Writer::SameModel => "self".into(),
            Writer::Llm(l) => l.label(),
            Writer::File(f) => format!("file:{}", f.path().display()),
        }
    }

    /// The manifest's spelling (`model`, `llm:URL#MODEL`, the file's path).
    pub fn spec(&self) -> String {
        match self {
            Writer::SameModel => "model".into(),
            Writer::Llm(l) => l.spec(),
            Writer::File(f) => f.path().display().to_string(),
        }
    }
}

/// What [`perturb_chains`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerturbSummary {
    /// Perturbations asked for and written now.
    pub written: usize,
    /// Of those, how many the writer gave nothing usable for (kept as `null`).
    pub unusable: usize,
    /// Perturbations the file had already.
    pub kept: usize,
    /// Chains whose item is not in the dataset (skipped).
    pub unknown_items: Vec<String>,
    /// Requests that failed, with the reason (not written: a run again asks for them).
    pub failed: Vec<String>,
}

/// Writes the perturbations of `kinds` for every chain into `out` with the external `llm`
/// (`faithscope perturb`, the paper's `generate_perturbations.py` step): the same requests and
/// seeds as a run with seed `run_seed` makes, so a run reading `out` gets what it would have
/// asked for. What `out` has is not asked again; answers are written as they come, `width`
/// requests in flight, so a killed job loses at most those.
#[allow(clippy::too_many_arguments)]
pub fn perturb_chains(
    llm: &Llm,
    protocol: &Protocol,
    run_seed: u64,
    items: &[Item],
    chains: &[crate::faith::sweep::Chain],
    kinds: &[PerturbKind],
    out: &mut Perturbations,
    width: usize,
    on_progress: &mut dyn FnMut(&PerturbSummary, usize),
) -> Result<PerturbSummary, PerturbFailure> {
    let by_id: HashMap<&str, &Item> = items.iter().map(|it| (it.id.as_str(), it)).collect();
    if llm.model().is_none() {
        // the records' source names the served model
        llm.connect()
            .map_err(|e| PerturbFailure::Connect(e.to_string()))?;
    }
    let source = llm.label();
    let mut sum = PerturbSummary::default();
    let mut todo: Vec<(&Item, &crate::faith::sweep::Chain, PerturbKind, usize, u64)> = Vec::new();
    for c in chains {
        let Some(item) = by_id.get(c.id.as_str()) else {
            sum.unknown_items.push(c.id.clone());
            continue;
        };
        for &kind in kinds {
            for n in slots(protocol, kind, &c.sentences) {
                let key = (c.id.clone(), c.chain_id, kind, n, source.clone());
                if out.get(&key).is_some() {
                    sum.kept += 1;
                    continue;
                }
                let seed = crate::faith::sweep::trial_seed(
                    run_seed,
                    &c.id,
                    c.chain_id,
                    &kind.trial_key(n),
                );
                todo.push((item, c, kind, n, seed));
            }
        }
    }
    let total = todo.len();
    if total == 0 {
        return Ok(sum);
    }
    let r = llm
        .connect()
        .map_err(|e| PerturbFailure::Connect(e.to_string()))?;
    for chunk in todo.chunks(width.max(1) * 2) {
        let answers = crate::par::map(chunk, width, |&(item, c, kind, n, seed)| {
            let original = kind.original(&c.sentences, n);
            let out = kind.ask(r, protocol, item, &original, seed, true);
            (original, out)
        });
        for (&(_, c, kind, n, seed), (original, answer)) in chunk.iter().zip(answers) {
            match answer {
                Ok(perturbed) => {
                    sum.unusable += perturbed.is_none() as usize;
                    let rec = Perturbation {
                        id: c.id.clone(),
                        chain_id: c.chain_id,
                        kind,
                        sentence: n,
                        source: source.clone(),
                        original,
                        perturbed,
                        seed,
                    };
                    out.put(&rec).map_err(|e| PerturbFailure::Write {
                        path: out.path().to_path_buf(),
                        source: e,
                        summary: Box::new(sum.clone()),
                    })?;
                    sum.written += 1;
                }
                Err(e) => sum.failed.push(format!(
                    "item {} chain {} {}: {e}",
                    c.id,
                    c.chain_id,
                    kind.trial_key(n)
                )),
            }
        }
        on_progress(&sum, total);
    }
    Ok(sum)
}

/// Why [`perturb_chains`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum PerturbFailure {
    /// The server could not be reached.
    #[error("{0}")]
    Connect(String),
    /// The output file could not be written (what was written before is kept).
    #[error("{path}: {source} (after {} perturbations written; run again to go on)", summary.written)]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
        /// What was done before.
        summary: Box<PerturbSummary>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        id: &str,
        kind: PerturbKind,
        n: usize,
        original: &str,
        perturbed: Option<&str>,
    ) -> Perturbation {
        Perturbation {
            id: id.into(),
            chain_id: 0,
            kind,
            sentence: n,
            source: "external-m".into(),
            original: original.into(),
            perturbed: perturbed.map(str::to_string),
            seed: 7,
        }
    }

    #[test]
    fn a_file_keeps_each_key_once_cuts_a_torn_line_and_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.jsonl");
        let a = rec(
            "x",
            PerturbKind::Mistake,
            2,
            "It beeps twice.",
            Some("It beeps once."),
        );
        let b = rec("x", PerturbKind::Paraphrase, 1, "It beeps twice.", None);
        {
            let mut f = Perturbations::open(&path).unwrap();
            f.put(&a).unwrap();
            f.put(&a).unwrap();
            f.put(&b).unwrap();
            assert_eq!(f.len(), 2);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        // a killed writer's half line: left out when read, cut when opened for appending
        std::fs::write(&path, format!("{text}{{\"id\":\"x\",\"cha")).unwrap();
        assert!(Perturbations::looks_like(&path));
        let r = Perturbations::read(&path).unwrap();
        assert_eq!(r.get(&a.key()), Some(&a));
        assert_eq!(r.get(&b.key()), Some(&b));
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("\"cha"));
        let f = Perturbations::open(&path).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_file_written_for_other_chains_is_refused_by_name_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.jsonl");
        let mut f = Perturbations::open(&path).unwrap();
        f.put(&rec(
            "x",
            PerturbKind::Mistake,
            1,
            "It beeps twice.",
            Some("It beeps once."),
        ))
        .unwrap();
        f.put(&rec(
            "x",
            PerturbKind::Mistake,
            2,
            "Two beeps.",
            Some("Three beeps."),
        ))
        .unwrap();
        let found = f
            .find("x", 0, PerturbKind::Mistake, 1, "It  beeps twice.")
            .unwrap();
        assert_eq!(found.unwrap().perturbed.as_deref(), Some("It beeps once."));
        assert!(f
            .find("x", 0, PerturbKind::Paraphrase, 1, "It beeps twice.")
            .unwrap()
            .is_none());
        assert!(f
            .find("y", 0, PerturbKind::Mistake, 1, "It beeps twice.")
            .unwrap()
            .is_none());
        let e = f
            .find("x", 0, PerturbKind::Mistake, 2, "One tone.")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.jsonl, line 2"), "{e}");
        assert!(
            e.contains("\"Two beeps.\"") && e.contains("\"One tone.\""),
            "{e}"
        );
        assert!(e.contains("faithscope perturb"), "{e}");
    }

    #[test]
    fn sources_are_read_and_labelled_as_the_paper_does() {
        let t = Duration::from_secs(1);
        assert!(matches!(
            Writer::parse("model", t),
            Some(Ok(Writer::SameModel))
        ));
        assert_eq!(Writer::SameModel.label(), "self");
        let Some(Ok(Writer::Llm(l))) = Writer::parse("llm:http://h:1/v1/#mistral-7b", t) else {
            panic!("llm spec not read");
        };
        assert_eq!(l.label(), "external-mistral-7b");
        assert_eq!(l.spec(), "llm:http://h:1/v1#mistral-7b");
        let e = Writer::parse("llm:h:1/v1", t).unwrap().unwrap_err();
        assert!(e.contains("http://HOST:PORT/v1"), "{e}");
        assert!(Writer::parse("rules", t).is_none());
        assert!(Writer::parse("/no/such/file.jsonl", t).is_none());
    }

    #[test]
    fn slots_and_cleaning_follow_the_protocol() {
        let p = Protocol::resolve("lanham").unwrap();
        let s: Vec<String> = ["Hm.", "It beeps twice in the clip.", "So (B)."]
            .iter()
            .map(|x| x.to_string())
            .collect();
        let long: Vec<usize> = (1..=3)
            .filter(|&i| s[i - 1].split_whitespace().count() >= p.mistake.min_words)
            .collect();
        assert_eq!(slots(&p, PerturbKind::Mistake, &s), long);
        assert_eq!(slots(&p, PerturbKind::Paraphrase, &s), vec![1, 2, 3]);
        assert_eq!(
            PerturbKind::Paraphrase.original(&s, 2),
            "Hm. It beeps twice in the clip."
        );
        let m = PerturbKind::Mistake;
        assert_eq!(
            m.clean("Sentence with mistake added: \"It beeps once.\"\nmore", "x")
                .as_deref(),
            Some("It beeps once.")
        );
        assert_eq!(m.clean("It  beeps twice.", "It beeps twice."), None);
        assert_eq!(PerturbKind::Paraphrase.clean("  ", "x"), None);
    }
}
