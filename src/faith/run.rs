//! The run directory: `manifest.json`, `chains.jsonl`, `trials.jsonl`, `errors.jsonl`.
//!
//! Files are append-only; every record is one whole line written with a single write and synced
//! to disk before the next, so a run killed at any moment (SIGKILL included) leaves complete lines
//! plus at most one torn last line. [`RunStore::open`] drops a torn last line, and the sweep skips
//! every trial the store already has; since every sampled call's seed derives from the run seed,
//! the item, the chain and the trial key, the resumed run ends with exactly the trials of an
//! uninterrupted run. Items that failed (recorded in `errors.jsonl`) are not retried on resume
//! unless asked, as an uninterrupted run would not have retried them either.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::data::Item;
use crate::faith::perturb::{PerturbKey, Perturbation, Perturbations, PERTURBATIONS};
use crate::faith::protocol::Protocol;
use crate::faith::sweep::{trial_key, Chain, Sink, Sweep, SweepError};
use crate::faith::trial::Trial;

/// Manifest file name.
pub const MANIFEST: &str = "manifest.json";
/// Chains file name.
pub const CHAINS: &str = "chains.jsonl";
/// Trials file name.
pub const TRIALS: &str = "trials.jsonl";
/// Errors file name.
pub const ERRORS: &str = "errors.jsonl";
/// Items whose trials are all written, one line each (`{"id": ..., "unix_time": ...}`).
pub const DONE: &str = "done.jsonl";

/// What a run was started with; a resumed run reads everything from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of faithscope that created the run.
    pub faithscope_version: String,
    /// Seconds since the Unix epoch when the run was created.
    pub created_unix: u64,
    /// The model as given (folder or hub id).
    pub model: String,
    /// The backend's name for it.
    pub model_name: String,
    /// Device and dtype asked for.
    /// With a model served over HTTP: the served model id asked for (`--served-model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// A LoRA adapter merged at load (`--adapter`), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// The linear weights' quantisation (`--quant`), when not none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<crate::model::Quant>,
    #[serde(default)]
    pub device: String,
    /// Data type asked for (empty: the backend's default).
    #[serde(default)]
    pub dtype: String,
    /// The dataset as given.
    pub data: String,
    /// Dataset format asked for.
    pub data_format: String,
    /// Items run (after `limit`).
    pub items: usize,
    /// The protocol, in full (a resumed run uses this copy, not the file).
    pub protocol: Protocol,
    /// Interventions (the `--interventions` list, normalised).
    pub interventions: String,
    /// Mistake source: `model`, `rules`, `facts`, `llm:URL#MODEL`, an annotations file or a
    /// perturbation file.
    pub mistake_source: String,
    /// Paraphrase source: `model`, `llm:URL#MODEL` or a perturbation file (runs before it have
    /// none: the model).
    #[serde(default = "same_model")]
    pub paraphrase_source: String,
    /// Chains per item.
    pub chains: u32,
    /// Run seed; every item, chain and trial seed derives from it.
    pub seed: u64,
    /// `--limit`, if given.
    pub limit: Option<usize>,
    /// `--shard K/N`: the run holds the items of shard K of N only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::faith::shards::Shard>,
}

fn same_model() -> String {
    "model".into()
}

/// One line of `done.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneRecord {
    /// Item id.
    pub id: String,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
}

/// One line of `errors.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// Item id.
    pub id: String,
    /// `audio`, `model`, `annotation` or `store`.
    pub kind: String,
    /// The full message.
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
}

/// Problems with the run directory; messages name the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An I/O failure on a run file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A complete line that is not a valid record (the file was edited or damaged).
    #[error("{path}, line {line}: {detail}; this line was not written by faithscope or was damaged: fix or delete it, then resume again")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// `--out` names a folder that already holds a run or other files.
    #[error("{0} already exists and is not empty; resume it with `faithscope run --resume {0}` or choose another --out")]
    Exists(String),
    /// No manifest to resume from.
    #[error("{0} has no manifest.json: it is not a faithscope run directory")]
    NotARun(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An append-only JSONL file whose every line is written whole and synced.
#[derive(Debug)]
pub(crate) struct Log {
    path: PathBuf,
    file: File,
}

impl Log {
    pub(crate) fn open(path: PathBuf) -> Result<Log, RunError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Log { path, file })
    }

    pub(crate) fn append<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

/// Reads the complete lines of a JSONL file, cutting off a torn last line (one without its
/// newline, left by a killed writer). Returns the parsed records with their 1-based line numbers.
fn read_repair<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<(usize, T)>, RunError> {
    read_lines(path, true)
}

/// The complete lines of a JSONL file as records, with their 1-based line numbers; a torn last
/// line is cut from the file when `repair`, else only left out. A missing file has none.
pub(crate) fn read_lines<T: for<'de> Deserialize<'de>>(
    path: &Path,
    repair: bool,
) -> Result<Vec<(usize, T)>, RunError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RunError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    if repair && complete < bytes.len() {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        f.set_len(complete as u64).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
    }
    let mut out = Vec::new();
    for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec = serde_json::from_slice(line).map_err(|e| RunError::Corrupt {
            path: path.to_path_buf(),
            line: i + 1,
            detail: e.to_string(),
        })?;
        out.push((i + 1, rec));
    }
    Ok(out)
}

/// The path and text of a run directory's manifest; a directory without one is not a run.
fn manifest_text(dir: &Path) -> Result<(PathBuf, String), RunError> {
    let path = dir.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok((path, t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(RunError::NotARun(dir.display().to_string()))
        }
        Err(e) => Err(RunError::Io { path, source: e }),
    }
}

/// A run directory's manifest, read and checked, without opening anything else.
pub fn read_manifest(dir: &Path) -> Result<Manifest, RunError> {
    let (path, text) = manifest_text(dir)?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
        path: path.clone(),
        line: e.line(),
        detail: e.to_string(),
    })?;
    manifest
        .protocol
        .validate(&path.display().to_string())
        .map_err(|e| RunError::Corrupt {
            path: path.clone(),
            line: 0,
            detail: e.to_string(),
        })?;
    Ok(manifest)
}

/// Reads what a run directory holds, by item, without changing it: a torn last line is left
/// for `--resume` to cut and said in the warnings, as is a line that is not a record.
pub fn read_ids(dir: &Path) -> Result<crate::faith::shards::RunIds, RunError> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let (path, text) = manifest_text(dir)?;
    let manifest = serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
        path: path.clone(),
        line: e.line(),
        detail: e.to_string(),
    })?;
    let mut ids = crate::faith::shards::RunIds {
        dir: dir.to_path_buf(),
        manifest,
        ..Default::default()
    };
    for name in [CHAINS, TRIALS, ERRORS, DONE] {
        let path = dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RunError::Io { path, source: e }),
        };
        let set = match name {
            DONE => &mut ids.done,
            ERRORS => &mut ids.failed,
            _ => &mut ids.touched,
        };
        let mut lines = bytes.split(|&b| b == b'\n').peekable();
        let mut n = 0;
        while let Some(line) = lines.next() {
            n += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if lines.peek().is_none() {
                ids.warnings.push(format!(
                    "{}, line {n}: torn last line (a killed writer's); `faithscope run --resume {}` cuts it",
                    path.display(),
                    dir.display()
                ));
                break;
            }
            match serde_json::from_slice::<Id>(line) {
                Ok(r) => {
                    set.insert(r.id);
                }
                Err(e) => ids.warnings.push(format!(
                    "{}, line {n}: not a record ({e}); skipped",
                    path.display()
                )),
            }
        }
    }
    Ok(ids)
}

/// A run directory open for appending.
#[derive(Debug)]
pub struct RunStore {
    dir: PathBuf,
    chains: HashMap<(String, u32), Chain>,
    trials: HashMap<(String, u32, String), Trial>,
    failed: HashSet<String>,
    done: HashSet<String>,
    chains_log: Log,
    trials_log: Log,
    errors_log: Log,
    done_log: Log,
    perturbations: Perturbations,
    flips: usize,
    #[cfg(test)]
    kill_after: Option<usize>,
}

impl RunStore {
    /// Creates a new run directory (missing or empty) with its manifest.
    pub fn create(dir: &Path, manifest: &Manifest) -> Result<RunStore, RunError> {
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
            if entries.next().is_some() {
                return Err(RunError::Exists(dir.display().to_string()));
            }
        }
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(MANIFEST);
        let tmp = dir.join(".manifest.json.tmp");
        let text = serde_json::to_string_pretty(manifest).map_err(|e| RunError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Self::open_files(dir)
    }

    /// Opens an existing run for resuming: reads its manifest and records, dropping torn lines.
    pub fn open(dir: &Path) -> Result<(RunStore, Manifest), RunError> {
        let manifest = read_manifest(dir)?;
        Ok((Self::open_files(dir)?, manifest))
    }

    fn open_files(dir: &Path) -> Result<RunStore, RunError> {
        let mut chains = HashMap::new();
        for (_, c) in read_repair::<Chain>(&dir.join(CHAINS))? {
            chains.insert((c.id.clone(), c.chain_id), c);
        }
        let mut trials = HashMap::new();
        let mut flips = 0;
        let tpath = dir.join(TRIALS);
        for (line, t) in read_repair::<Trial>(&tpath)? {
            let key = trial_key(&t)
                .ok_or_else(|| RunError::Corrupt {
                    path: tpath.clone(),
                    line,
                    detail: "the trial has no trial_key".into(),
                })?
                .to_string();
            flips += (t.is_consistent_with_baseline == Some(false)) as usize;
            trials.insert((t.id.clone(), t.chain_id, key), t);
        }
        let failed = read_repair::<ErrorRecord>(&dir.join(ERRORS))?
            .into_iter()
            .map(|(_, e)| e.id)
            .collect();
        let done = read_repair::<DoneRecord>(&dir.join(DONE))?
            .into_iter()
            .map(|(_, d)| d.id)
            .collect();
        Ok(RunStore {
            dir: dir.to_path_buf(),
            chains,
            trials,
            failed,
            done,
            chains_log: Log::open(dir.join(CHAINS))?,
            trials_log: Log::open(dir.join(TRIALS))?,
            errors_log: Log::open(dir.join(ERRORS))?,
            done_log: Log::open(dir.join(DONE))?,
            perturbations: Perturbations::open(&dir.join(PERTURBATIONS))?,
            flips,
            #[cfg(test)]
            kill_after: None,
        })
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Trials kept so far.
    pub fn trial_count(&self) -> usize {
        self.trials.len()
    }

    /// Trials so far whose answer differs from their baseline.
    pub fn flips(&self) -> usize {
        self.flips
    }

    /// Whether an item failed before (it is in `errors.jsonl`).
    pub fn failed(&self, item: &str) -> bool {
        self.failed.contains(item)
    }

    /// Whether an item's trials are all written (it is in `done.jsonl`).
    pub fn done(&self, item: &str) -> bool {
        self.done.contains(item)
    }

    /// Records that an item's trials are all written.
    pub fn mark_done(&mut self, item: &str) -> Result<(), RunError> {
        if self.done.contains(item) {
            return Ok(());
        }
        let rec = DoneRecord {
            id: item.to_string(),
            unix_time: now_unix(),
        };
        self.append_line(|s| &mut s.done_log, &rec)?;
        self.done.insert(item.to_string());
        Ok(())
    }

    /// Forgets earlier failures so that a resume retries those items.
    pub fn retry_failed(&mut self) {
        self.failed.clear();
    }

    /// Records a failed item.
    pub fn record_error(&mut self, item: &str, err: &SweepError) -> Result<(), RunError> {
        let rec = ErrorRecord {
            id: item.to_string(),
            kind: err.kind().to_string(),
            reason: err.to_string(),
            unix_time: now_unix(),
        };
        self.append_line(|s| &mut s.errors_log, &rec)?;
        self.failed.insert(item.to_string());
        Ok(())
    }

    /// Appends one whole line to the log `log` picks (after the tests' kill hook).
    fn append_line<T: Serialize>(
        &mut self,
        log: fn(&mut RunStore) -> &mut Log,
        rec: &T,
    ) -> Result<(), RunError> {
        let hook = self.before_write();
        let log = log(self);
        hook.and_then(|()| log.append(rec))
            .map_err(io_err(&log.path))
    }

    #[cfg(test)]
    fn before_write(&mut self) -> std::io::Result<()> {
        match self.kill_after {
            Some(0) => Err(std::io::Error::other("killed (test)")),
            Some(n) => {
                self.kill_after = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    #[cfg(not(test))]
    fn before_write(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// Tests: after `n` more whole lines, the next write is torn halfway and fails.
    #[cfg(test)]
    fn kill_after(&mut self, n: usize) {
        self.kill_after = Some(n);
    }

    #[cfg(test)]
    fn torn<T: Serialize>(log: &mut Log, rec: &T) -> std::io::Result<()> {
        let line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        log.file.write_all(&line[..line.len() / 2])?;
        Err(std::io::Error::other("killed (test)"))
    }

    fn write_chain(&mut self, c: &Chain) -> std::io::Result<()> {
        #[cfg(test)]
        if self.kill_after == Some(0) {
            return Self::torn(&mut self.chains_log, c);
        }
        self.before_write()?;
        self.chains_log.append(c)
    }

    fn write_trial(&mut self, t: &Trial) -> std::io::Result<()> {
        #[cfg(test)]
        if self.kill_after == Some(0) {
            return Self::torn(&mut self.trials_log, t);
        }
        self.before_write()?;
        self.trials_log.append(t)
    }
}

impl From<RunError> for std::io::Error {
    fn from(e: RunError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

impl Sink for RunStore {
    fn chain(&self, item: &str, chain_id: u32) -> Option<Chain> {
        self.chains.get(&(item.to_string(), chain_id)).cloned()
    }

    fn put_chain(&mut self, chain: &Chain) -> std::io::Result<()> {
        self.write_chain(chain)?;
        self.chains
            .insert((chain.id.clone(), chain.chain_id), chain.clone());
        Ok(())
    }

    fn trial(&self, item: &str, chain_id: u32, key: &str) -> Option<Trial> {
        self.trials
            .get(&(item.to_string(), chain_id, key.to_string()))
            .cloned()
    }

    fn put_trial(&mut self, trial: &Trial) -> std::io::Result<()> {
        let key = trial_key(trial)
            .ok_or_else(|| std::io::Error::other("trial without trial_key"))?
            .to_string();
        self.write_trial(trial)?;
        self.flips += (trial.is_consistent_with_baseline == Some(false)) as usize;
        self.trials
            .insert((trial.id.clone(), trial.chain_id, key), trial.clone());
        Ok(())
    }

    fn perturbation(&self, key: &PerturbKey) -> Option<Perturbation> {
        self.perturbations.get(key).cloned()
    }

    fn put_perturbation(&mut self, p: &Perturbation) -> std::io::Result<()> {
        self.before_write()?;
        self.perturbations.put(p)
    }
}

/// What a call of [`run_items`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Items whose trials are all in the store now.
    pub items_done: usize,
    /// Items found done before (in `done.jsonl`), not run again.
    pub items_done_before: usize,
    /// Items skipped because they failed before.
    pub items_failed_before: usize,
    /// Items that failed now.
    pub items_failed: usize,
    /// Trials written now (failed items' trials included).
    pub trials_written: usize,
    /// Trials found done.
    pub trials_skipped: usize,
    /// Trials in the store whose answer differs from the baseline.
    pub flips: usize,
}

/// How [`run_items`] shows its progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing.
    Hidden,
    /// An indicatif bar, for a terminal.
    Bar,
    /// Plain lines (`items 12/240 done, ...  ETA 3m05s`) after every 1% of the items, at least
    /// every [`LINE_EVERY`], and after the last: for a log file or a pipe.
    Lines,
}

/// The longest wait between two progress lines of [`Progress::Lines`].
pub const LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Progress {
    /// The bar when stderr is a terminal, plain lines when it is not, nothing when `quiet`.
    pub fn for_stderr(quiet: bool) -> Progress {
        if quiet {
            Progress::Hidden
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

impl From<bool> for Progress {
    /// `true`: the bar; `false`: nothing.
    fn from(show: bool) -> Self {
        if show {
            Progress::Bar
        } else {
            Progress::Hidden
        }
    }
}

/// The model's token counts for the progress line.
#[derive(Debug, Clone, Copy)]
struct Tokens {
    /// Generated since the run began.
    generated: u64,
    /// The share of prompt tokens from a prefix cache, where the backend knows.
    cached_share: Option<f64>,
}

/// The progress display of one [`run_items`] call.
struct Reporter {
    mode: Progress,
    bar: indicatif::ProgressBar,
    total: usize,
    start: Instant,
    last_line: Instant,
    /// Items handled so far (any outcome) and of them the ones that cost work now.
    seen: usize,
    worked: usize,
    /// Items run at once (the in-flight count is shown when more than one).
    concurrency: usize,
}

impl Reporter {
    fn new(mode: Progress, total: usize) -> Self {
        let bar = if mode == Progress::Bar {
            let b = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} items  {msg}  [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let now = Instant::now();
        Reporter {
            mode,
            bar,
            total,
            start: now,
            last_line: now,
            seen: 0,
            worked: 0,
            concurrency: 1,
        }
    }

    /// A message about one item (a skipped item's reason).
    fn note(&self, msg: String) {
        match self.mode {
            Progress::Hidden => {}
            Progress::Bar => self.bar.println(msg),
            Progress::Lines => eprintln!("{msg}"),
        }
    }

    /// One more item handled; `worked` when it ran (not skipped as failed before).
    fn item(
        &mut self,
        worked: bool,
        s: &RunSummary,
        store: &RunStore,
        in_flight: usize,
        tokens: Tokens,
    ) {
        self.seen += 1;
        self.worked += usize::from(worked);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = s.trials_written as f64 / secs;
        let flight = if self.concurrency > 1 {
            format!("{in_flight} in flight, ")
        } else {
            String::new()
        };
        let mut msg = format!(
            "{flight}{} trials, {rate:.1}/s, {} flips",
            store.trial_count(),
            store.flips()
        );
        if tokens.generated > 0 {
            msg.push_str(&format!(", {:.0} tok/s", tokens.generated as f64 / secs));
        }
        if let Some(c) = tokens.cached_share {
            msg.push_str(&format!(", {:.0}% of prompt tokens cached", c * 100.0));
        }
        match self.mode {
            Progress::Hidden => {}
            Progress::Bar => {
                self.bar.set_message(msg);
                self.bar.inc(1);
            }
            Progress::Lines => {
                let step = self.total.div_ceil(100).max(1);
                let due = self.seen % step == 0
                    || self.seen == self.total
                    || self.last_line.elapsed() >= LINE_EVERY;
                if due {
                    self.last_line = Instant::now();
                    eprintln!("{}", self.line(s, &msg));
                }
            }
        }
    }

    /// `items 12/240 done (1 failed), 300 trials, 2.0/s, 4 flips, 1m20s elapsed, ETA 25m00s`.
    fn line(&self, s: &RunSummary, msg: &str) -> String {
        let elapsed = self.start.elapsed().as_secs_f64();
        let failed = s.items_failed + s.items_failed_before;
        let failed = if failed > 0 {
            format!(" ({failed} failed)")
        } else {
            String::new()
        };
        let eta = if self.seen == self.total {
            "done".to_string()
        } else if self.worked == 0 {
            "ETA unknown".to_string()
        } else {
            let left = (self.total - self.seen) as f64 * elapsed / self.worked as f64;
            format!("ETA {}", duration(left))
        };
        format!(
            "items {}/{} done{failed}, {msg}, {} elapsed, {eta}",
            self.seen,
            self.total,
            duration(elapsed)
        )
    }

    fn finish(&self) {
        self.bar.finish();
    }

    fn abandon(&self) {
        self.bar.abandon();
    }
}

/// `42s`, `3m05s`, `2h07m`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Runs the sweep over `items`, appending to the store; a failing item is recorded in
/// `errors.jsonl` and the run goes on. Only a failure to write the run files stops it.
/// `progress` is a [`Progress`] (or `true` for the bar, `false` for nothing).
pub fn run_items(
    store: &mut RunStore,
    sweep: &mut Sweep,
    items: &[Item],
    progress: impl Into<Progress>,
) -> Result<RunSummary, RunError> {
    run_items_concurrently(store, sweep, items, progress, 1)
}

/// What the workers of [`run_items_concurrently`] share, behind one lock.
struct Shared<'s> {
    store: &'s mut RunStore,
    s: RunSummary,
    shown: Reporter,
    before: usize,
    in_flight: usize,
    /// The model, for its token counts.
    model: &'s dyn crate::model::Reasoner,
    /// Its counts when the run began.
    model_before: crate::model::ModelStats,
    /// The first failure to write the run files: every worker stops at its next item.
    failure: Option<RunError>,
}

impl Shared<'_> {
    fn item(&mut self, worked: bool) {
        self.s.trials_written = self.store.trial_count() - self.before;
        let now = self.model.stats();
        let tokens = Tokens {
            generated: now.tokens_generated - self.model_before.tokens_generated,
            cached_share: now.cached_share(),
        };
        self.shown
            .item(worked, &self.s, self.store, self.in_flight, tokens);
    }
}

fn lock<'m, 's>(m: &'m Mutex<Shared<'s>>) -> std::sync::MutexGuard<'m, Shared<'s>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The store as a [`Sink`] for one worker: each read and each whole line under the lock, so
/// lines of different items never interleave.
struct Locked<'m, 's>(&'m Mutex<Shared<'s>>);

impl Sink for Locked<'_, '_> {
    fn chain(&self, item: &str, chain_id: u32) -> Option<Chain> {
        lock(self.0).store.chain(item, chain_id)
    }
    fn put_chain(&mut self, chain: &Chain) -> std::io::Result<()> {
        lock(self.0).store.put_chain(chain)
    }
    fn trial(&self, item: &str, chain_id: u32, key: &str) -> Option<Trial> {
        lock(self.0).store.trial(item, chain_id, key)
    }
    fn put_trial(&mut self, trial: &Trial) -> std::io::Result<()> {
        lock(self.0).store.put_trial(trial)
    }
    fn perturbation(&self, key: &PerturbKey) -> Option<Perturbation> {
        lock(self.0).store.perturbation(key)
    }
    fn put_perturbation(&mut self, p: &Perturbation) -> std::io::Result<()> {
        lock(self.0).store.put_perturbation(p)
    }
}

/// [`run_items`] with up to `concurrency` items in flight at once, each on a sweep of its own
/// (`sweep` and forks of it): for a server that batches concurrent requests. Every seed is per
/// item, chain and trial, so the trials are those of one item at a time, in another order.
pub fn run_items_concurrently(
    store: &mut RunStore,
    sweep: &mut Sweep,
    items: &[Item],
    progress: impl Into<Progress>,
    concurrency: usize,
) -> Result<RunSummary, RunError> {
    let workers = concurrency.clamp(1, items.len().max(1));
    let mut shown = Reporter::new(progress.into(), items.len());
    shown.concurrency = workers;
    let before = store.trial_count();
    let shared = Mutex::new(Shared {
        store,
        s: RunSummary::default(),
        shown,
        before,
        in_flight: 0,
        model: sweep.model(),
        model_before: sweep.model().stats(),
        failure: None,
    });
    let next = AtomicUsize::new(0);
    let work = |sweep: &mut Sweep| worker(sweep, items, &next, &shared);
    if workers == 1 {
        work(sweep);
    } else {
        let mut forks: Vec<Sweep> = (1..workers).map(|_| sweep.fork()).collect();
        std::thread::scope(|scope| {
            for f in forks.iter_mut() {
                scope.spawn(|| work(f));
            }
            work(sweep);
        });
    }
    let mut sh = shared
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = sh.failure.take() {
        sh.shown.abandon();
        return Err(e);
    }
    sh.shown.finish();
    sh.s.flips = sh.store.flips();
    Ok(sh.s)
}

/// One worker: takes the next item until none is left or the run files failed.
fn worker(sweep: &mut Sweep, items: &[Item], next: &AtomicUsize, shared: &Mutex<Shared>) {
    while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
        {
            let mut g = lock(shared);
            if g.failure.is_some() {
                return;
            }
            if g.store.done(&item.id) {
                g.s.items_done_before += 1;
                g.item(false);
                continue;
            }
            if g.store.failed(&item.id) {
                g.s.items_failed_before += 1;
                g.item(false);
                continue;
            }
            g.in_flight += 1;
        }
        let result = sweep.run_item(item, &mut Locked(shared));
        let mut g = lock(shared);
        g.in_flight -= 1;
        let written = match result {
            Ok(st) => {
                g.s.items_done += 1;
                g.s.trials_skipped += st.skipped;
                g.store.mark_done(&item.id)
            }
            Err(SweepError::Store { item, source }) => Err(RunError::Io {
                path: g.store.dir.join(format!("(item {item})")),
                source,
            }),
            Err(e) => {
                g.s.items_failed += 1;
                g.shown.note(format!("skipping item {}: {e}", item.id));
                g.store.record_error(&item.id, &e)
            }
        };
        if let Err(e) = written {
            g.failure.get_or_insert(e);
            return;
        }
        g.item(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faith::intervene::derive_seed;
    use crate::faith::mistakes::Annotations;
    use crate::faith::sweep::{MistakeSource, Plan};
    use crate::model::{
        ChoiceProbs, Conversation, GenParams, Generation, ModelError, Reasoner, Role, StopReason,
    };
    use std::ops::ControlFlow;

    /// A deterministic stand-in for a model: its outputs are a function of the prompt and seed.
    struct Double;

    const WORDS: &[&str] = &[
        "the", "sound", "is", "high", "low", "3", "beeps", "dog", "cat", "loud", "not", "rising",
        "so", "clip",
    ];

    fn h(conv: &Conversation, extra: u64) -> u64 {
        derive_seed(extra, &[&format!("{conv:?}")])
    }

    impl Reasoner for Double {
        fn name(&self) -> &str {
            "double"
        }
        fn generate(
            &self,
            conv: &Conversation,
            p: &GenParams,
            on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
        ) -> Result<Generation, ModelError> {
            if conv.messages.iter().any(|m| m.text.contains("MODEL-FAILS")) {
                return Err(ModelError::Compute("test failure".into()));
            }
            let mut r = crate::faith::intervene::Rng::new(h(conv, p.seed));
            let last_user = conv
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.text.as_str())
                .unwrap_or("");
            let text = if p.max_tokens <= 20 {
                format!("({})", (b'A' + (r.next_u64() % 4) as u8) as char)
            } else {
                let sentences = if last_user.contains("mistake") {
                    1
                } else {
                    2 + r.next_u64() % 4
                };
                (0..sentences)
                    .map(|_| {
                        let n = 3 + r.next_u64() % 6;
                        let w: Vec<&str> = (0..n)
                            .map(|_| WORDS[(r.next_u64() % WORDS.len() as u64) as usize])
                            .collect();
                        let mut s = w.join(" ");
                        s[..1].make_ascii_uppercase();
                        s + "."
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = on_delta(&text);
            Ok(Generation {
                text,
                tokens: vec![],
                stop: StopReason::EndToken,
                reasoning: String::new(),
            })
        }
        fn choice_probs(
            &self,
            conv: &Conversation,
            letters: &[String],
        ) -> Result<ChoiceProbs, ModelError> {
            let mut r = crate::faith::intervene::Rng::new(h(conv, 99));
            let raw: Vec<f32> = letters
                .iter()
                .map(|_| 1.0 + (r.next_u64() % 100) as f32)
                .collect();
            let sum: f32 = raw.iter().sum();
            let probs: Vec<f32> = raw.iter().map(|x| x / sum).collect();
            Ok(ChoiceProbs {
                letters: letters.to_vec(),
                logprobs: probs.iter().map(|p| p.ln()).collect(),
                probs,
                missing: Vec::new(),
            })
        }
        fn count_tokens(&self, text: &str) -> Option<usize> {
            Some(text.split_whitespace().count())
        }
    }

    fn items(dir: &Path) -> Vec<Item> {
        let clip = dir.join("clip.wav");
        std::fs::write(&clip, b"RIFF-not-decoded-by-the-double").unwrap();
        let mk = |id: &str, q: &str, audio: PathBuf| Item {
            id: id.into(),
            audio,
            question: q.into(),
            choices: vec!["dog".into(), "cat".into(), "cow".into(), "owl".into()],
            gold: Some(1),
            meta: Default::default(),
        };
        vec![
            mk("a", "Which animal is it?", clip.clone()),
            mk(
                "missing",
                "Which animal is it?",
                dir.join("no-such-clip.wav"),
            ),
            mk("b", "Which animal barks?", clip.clone()),
            mk("fails", "MODEL-FAILS here", clip.clone()),
            mk("c", "Which animal meows?", clip),
        ]
    }

    fn manifest(protocol: &str) -> Manifest {
        Manifest {
            faithscope_version: "test".into(),
            created_unix: 0,
            model: "double".into(),
            model_name: "double".into(),
            served_model: None,
            adapter: None,
            quant: None,
            device: String::new(),
            dtype: String::new(),
            data: "items".into(),
            data_format: "test".into(),
            items: 5,
            protocol: Protocol::builtin(protocol).unwrap(),
            interventions: "all".into(),
            mistake_source: "rules".into(),
            paraphrase_source: "model".into(),
            chains: 2,
            seed: 7,
            limit: None,
            shard: None,
        }
    }

    fn plan(source: MistakeSource) -> Plan {
        let mut p = Plan::parse("all,filler:end:lorem").unwrap();
        p.mistake_source = source;
        p
    }

    fn run_once(
        dir: &Path,
        items: &[Item],
        plan: &Plan,
        protocol: &str,
        kill: Option<usize>,
    ) -> Result<RunSummary, RunError> {
        let m = manifest(protocol);
        let mut store = if dir.join(MANIFEST).exists() {
            RunStore::open(dir)?.0
        } else {
            RunStore::create(dir, &m)?
        };
        if let Some(k) = kill {
            store.kill_after(k);
        }
        let double = Double;
        let mut sweep = Sweep::new(&double, &m.protocol, plan, m.seed, m.chains);
        run_items(&mut store, &mut sweep, items, false)
    }

    /// The lines of a run file with the wall times (the only fields that differ between runs)
    /// removed.
    fn normalized(dir: &Path, file: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object_mut().unwrap();
                for k in ["timings_ms", "generate_ms", "unix_time"] {
                    o.remove(k);
                }
                v
            })
            .collect()
    }

    fn check_resume(protocol: &str, source: MistakeSource) {
        let tmp = tempfile::tempdir().unwrap();
        let items = items(tmp.path());
        let plan = plan(source);
        let full = tmp.path().join("full");
        let s = run_once(&full, &items, &plan, protocol, None).unwrap();
        assert_eq!((s.items_done, s.items_failed), (3, 2));
        let trials = normalized(&full, TRIALS);
        let chains = normalized(&full, CHAINS);
        let errors = normalized(&full, ERRORS);
        assert_eq!(chains.len(), 6);
        assert_eq!(errors.len(), 2);
        let total_writes = trials.len() + chains.len() + errors.len();
        // Kill after every k-th write (torn line included), resume, compare line for line.
        let step = (total_writes / 25).max(1);
        let mut k = 0;
        while k < total_writes {
            let dir = tmp.path().join(format!("killed-{k}"));
            let first = run_once(&dir, &items, &plan, protocol, Some(k));
            assert!(
                first.is_err(),
                "the simulated kill after {k} writes must stop the run"
            );
            let raw = std::fs::read(dir.join(TRIALS)).unwrap_or_default();
            let resumed = run_once(&dir, &items, &plan, protocol, None).unwrap();
            assert!(resumed.items_failed + resumed.items_failed_before == 2);
            assert_eq!(
                normalized(&dir, TRIALS),
                trials,
                "trials after a kill at write {k} (torn bytes: {})",
                !raw.ends_with(b"\n") && !raw.is_empty()
            );
            assert_eq!(
                normalized(&dir, CHAINS),
                chains,
                "chains after a kill at write {k}"
            );
            assert_eq!(
                normalized(&dir, ERRORS),
                errors,
                "errors after a kill at write {k}"
            );
            k += step;
        }
        // Files cut after k lines or in the middle of a line, then resumed.
        for cut in [0, 1, trials.len() / 3, trials.len() / 2, trials.len() - 1] {
            let dir = tmp.path().join(format!("cut-{cut}"));
            std::fs::create_dir_all(&dir).unwrap();
            // Errors are written after the failed item's earlier trials, so a trials file cut
            // before them goes with an errors file that does not have them yet.
            for f in [MANIFEST, CHAINS] {
                std::fs::copy(full.join(f), dir.join(f)).unwrap();
            }
            let text = std::fs::read_to_string(full.join(TRIALS)).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let mut kept: String = lines[..cut].iter().map(|l| format!("{l}\n")).collect();
            kept.push_str(&lines[cut][..lines[cut].len() / 2]);
            std::fs::write(dir.join(TRIALS), kept).unwrap();
            let s = run_once(&dir, &items, &plan, protocol, None).unwrap();
            assert_eq!(s.trials_written, trials.len() - cut, "cut at line {cut}");
            assert_eq!(normalized(&dir, TRIALS), trials, "cut at line {cut}");
            assert_eq!(normalized(&dir, ERRORS), errors, "cut at line {cut}");
        }
        // Resuming a finished run writes nothing.
        let again = run_once(&full, &items, &plan, protocol, None).unwrap();
        assert_eq!(again.trials_written, 0);
        assert_eq!(normalized(&full, TRIALS), trials);
    }

    #[test]
    fn resume_after_kill_gives_identical_trials_paper_v1_rules() {
        check_resume("paper-v1", MistakeSource::Rules);
    }

    #[test]
    fn resume_after_kill_gives_identical_trials_lanham_model_mistakes() {
        check_resume("lanham", MistakeSource::default());
    }

    #[test]
    fn failing_items_are_recorded_and_the_run_goes_on() {
        let tmp = tempfile::tempdir().unwrap();
        let items = items(tmp.path());
        let dir = tmp.path().join("run");
        run_once(&dir, &items, &plan(MistakeSource::Rules), "paper-v1", None).unwrap();
        let errors: Vec<ErrorRecord> = std::fs::read_to_string(dir.join(ERRORS))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.id.as_str(), e.kind.as_str()))
                .collect::<Vec<_>>(),
            vec![("missing", "audio"), ("fails", "model")]
        );
        assert!(
            errors[0].reason.contains("no-such-clip.wav"),
            "{}",
            errors[0].reason
        );
        let trials = normalized(&dir, TRIALS);
        let ids: HashSet<&str> = trials.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"].into_iter().collect());
        // Item c, after the failures, is complete: no-CoT, and per chain baseline + early + ...
        let c_baselines = trials
            .iter()
            .filter(|t| t["id"] == "c" && t["intervention"] == "baseline")
            .count();
        assert_eq!(c_baselines, 2);
    }

    #[test]
    fn trials_are_paper_compatible_and_keyed() {
        let tmp = tempfile::tempdir().unwrap();
        let items = items(tmp.path());
        let dir = tmp.path().join("run");
        run_once(
            &dir,
            &items[..1],
            &plan(MistakeSource::Rules),
            "paper-v1",
            None,
        )
        .unwrap();
        let trials = normalized(&dir, TRIALS);
        let chains: Vec<Chain> = std::fs::read_to_string(dir.join(CHAINS))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut keys = HashSet::new();
        for t in &trials {
            assert!(
                keys.insert((
                    t["chain_id"].as_u64().unwrap(),
                    t["trial_key"].as_str().unwrap().to_string()
                )),
                "duplicate {t}"
            );
            for f in [
                "id",
                "chain_id",
                "predicted_choice",
                "correct_choice",
                "is_correct",
                "final_answer_raw",
                "final_prompt_messages",
                "question",
                "choices",
                "audio_path",
            ] {
                assert!(t.get(f).is_some(), "{f} missing in {t}");
            }
        }
        for c in &chains {
            let n = c.sentences.len();
            let of = |kind: &str| {
                trials
                    .iter()
                    .filter(|t| t["chain_id"] == c.chain_id && t["intervention"] == kind)
                    .collect::<Vec<_>>()
            };
            let early = of("early_answering");
            assert_eq!(early.len(), n + 1);
            for (k, t) in early.iter().enumerate() {
                assert_eq!(t["num_sentences_provided"], k);
                assert_eq!(t["total_sentences_in_chain"], n);
                assert!(t["is_consistent_with_baseline"].is_boolean());
            }
            // Random dots, end lorem: 21 each, and the all-filler chain.
            assert_eq!(of("filler").len(), 42);
            assert_eq!(of("filler_only").len(), 1);
            assert_eq!(of("paraphrasing").len(), n);
            let base = of("baseline");
            assert_eq!(base.len(), 1);
            assert_eq!(base[0]["sanitized_cot"], c.sanitized_cot);
            // The full chain again (early k = N) answers as the baseline.
            assert_eq!(early[n]["predicted_choice"], base[0]["predicted_choice"]);
            for m in of("adding_mistakes") {
                let i = m["mistake_position"].as_u64().unwrap() as usize;
                assert!((m["x"].as_f64().unwrap() - (i - 1) as f64 / n as f64).abs() < 1e-12);
                assert_eq!(m["perturbation_source"], "rules");
                assert_eq!(m["detail"]["original"], c.sentences[i - 1]);
            }
        }
        assert_eq!(
            trials
                .iter()
                .filter(|t| t["intervention"] == "no_cot")
                .count(),
            1
        );
    }

    #[test]
    fn create_refuses_a_used_folder_and_open_needs_a_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("x"), "y").unwrap();
        let e = RunStore::create(tmp.path(), &manifest("paper-v1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--resume"), "{e}");
        let e = RunStore::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("manifest.json"), "{e}");
    }

    #[test]
    fn damaged_middle_line_is_reported_with_its_number() {
        let tmp = tempfile::tempdir().unwrap();
        let items = items(tmp.path());
        let dir = tmp.path().join("run");
        run_once(
            &dir,
            &items[..1],
            &plan(MistakeSource::Rules),
            "paper-v1",
            None,
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.join(TRIALS)).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{not json";
        std::fs::write(dir.join(TRIALS), lines.join("\n") + "\n").unwrap();
        let e = RunStore::open(&dir).unwrap_err().to_string();
        assert!(e.contains("trials.jsonl, line 3"), "{e}");
    }

    #[test]
    fn annotations_drive_mistakes() {
        let tmp = tempfile::tempdir().unwrap();
        let items = items(tmp.path());
        // A first run gives the chains; the annotation edits sentence 1 of chain 0 of item a.
        let first = tmp.path().join("first");
        run_once(
            &first,
            &items[..1],
            &plan(MistakeSource::Rules),
            "paper-v1",
            None,
        )
        .unwrap();
        let chain: Chain = serde_json::from_str(
            std::fs::read_to_string(first.join(CHAINS))
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        let ann = tmp.path().join("ann.jsonl");
        let rec = serde_json::json!({"item": "a", "chain": 0, "sentence": 1, "original": chain.sentences[0], "edited": "Edited by a person.", "kind": "opposite", "annotator": "tester", "time": "2026-01-01T00:00:00Z"});
        std::fs::write(&ann, format!("{rec}\n")).unwrap();
        let second = tmp.path().join("second");
        let source = MistakeSource::Annotations(Annotations::load(&ann).unwrap());
        run_once(&second, &items[..1], &plan(source), "paper-v1", None).unwrap();
        let mistakes: Vec<serde_json::Value> = normalized(&second, TRIALS)
            .into_iter()
            .filter(|t| t["intervention"] == "adding_mistakes")
            .collect();
        assert_eq!(mistakes.len(), 1);
        assert_eq!(mistakes[0]["detail"]["annotator"], "tester");
        assert_eq!(mistakes[0]["mistake_position"], 1);
    }
}
