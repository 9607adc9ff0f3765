//! The interactive inspector: state + actions + pure update ([`state`]), drawing ([`draw`]),
//! background work ([`work`]) and this shell, which owns the terminal, the audio player and the
//! tokio tasks, turns their results into actions and redraws on demand.

pub mod aggregate;
pub mod alter;
pub mod draw;
pub mod keymap;
pub mod state;
pub mod stderr_log;
pub mod testing;
pub mod theme;
pub mod work;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event,
};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::audio::play::{Player, PlayerState};
use crate::audio::Clip;
use crate::data::{load, Dataset, LoadOptions};
use crate::faith::mistakes::Annotations;
use crate::faith::protocol::Protocol;
use crate::faith::run::{RunStore, TRIALS};
use crate::faith::sweep::Sink;
use crate::faith::trial::read_trials;

use keymap::Keymap;
use state::{Action, Effect, Job, ModelStatus, Setup, State};
use theme::Theme;
use work::ModelCtx;

/// Where the demo model lives when no `--model` is given.
pub const DEMO_MODEL: &str = "samples/models/demo-faithful";

/// The dataset the inspector opens when no `--data` is given (the demo models' test split).
pub const DEMO_DATA: &str = "samples/synth-test";

/// The demo model of the other kind, one key away (`o`) when no `--model` is given.
pub const DEMO_COMPARE: &str = "samples/models/demo-posthoc";

/// Floor between two frames.
pub const FRAME_FLOOR: Duration = Duration::from_millis(10);

/// Playhead refresh while playing.
pub const PLAY_TICK: Duration = Duration::from_millis(50);

/// How often the aggregate panels re-read a run directory's trials while they are shown.
pub const RUN_REFRESH: Duration = Duration::from_secs(2);

/// What the inspector opens.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Dataset (file or folder); default `samples/synth-test`.
    pub data: Option<PathBuf>,
    /// Model folder or hub id; default the demo model when present.
    pub model: Option<String>,
    /// A second model, switched to with `o` (default: demo-posthoc beside the demo model).
    pub compare: Option<String>,
    /// A run directory, or the paper's result files, whose chains and trials are shown.
    pub run: Vec<PathBuf>,
    /// Protocol name or TOML file; default: the one the model folder names
    /// (`faithscope.json`), else paper-v1.
    pub protocol: Option<String>,
    /// Annotator name.
    pub annotator: Option<String>,
    /// Annotation file; default `annotations.jsonl` beside the dataset.
    pub annotations: Option<PathBuf>,
    /// Theme name or file.
    pub theme: Option<String>,
    /// Keymap file.
    pub keymap: Option<PathBuf>,
    /// Seed of sampled chains.
    pub seed: u64,
    /// Compute device.
    pub device: String,
    /// Weight dtype.
    pub dtype: Option<String>,
    /// With a model URL: the served model id.
    pub served_model: Option<String>,
    /// With a model URL: seconds one request may take (0: the default).
    pub timeout_s: u64,
    /// With a model folder: a LoRA adapter merged at load.
    pub adapter: Option<String>,
    /// With a model folder: quantisation of the linear weights.
    pub quant: crate::model::Quant,
}

impl Options {
    /// How model `model` (the first one or the compared one) is opened.
    pub fn model_spec(&self, model: String) -> crate::model::resolve::ModelSpec {
        crate::model::resolve::ModelSpec {
            model,
            device: self.device.clone(),
            dtype: self.dtype.clone(),
            served_model: self.served_model.clone(),
            timeout_s: self.timeout_s,
            adapter: self.adapter.clone(),
            quant: self.quant,
        }
    }
}

/// Everything [`run`] prepares before the terminal is taken: the first state and the model to
/// load. Errors here print normally.
pub struct Prepared {
    /// The first state.
    pub state: State,
    /// Model to load in the background (spec), if any.
    pub model: Option<String>,
    /// Protocol models are asked with.
    pub protocol: Protocol,
    /// What the aggregate panels read: the run directory, or the result files with the item
    /// file that gives their metadata; empty without `--run`.
    pub run_inputs: Vec<PathBuf>,
}

/// Loads the dataset, protocol, run, annotations, keymap and theme.
pub fn prepare(opts: &Options) -> anyhow::Result<Prepared> {
    let demo = (opts.model.is_none())
        .then(|| crate::samples::demo_model(DEMO_MODEL))
        .flatten();
    let first = opts.model.clone().or(demo.clone());
    let compare = (opts.compare.clone())
        .or_else(|| demo.and_then(|_| crate::samples::demo_model(DEMO_COMPARE)));
    let protocol_spec = opts
        .protocol
        .clone()
        .or_else(|| {
            first
                .as_deref()
                .and_then(crate::model::resolve::model_protocol)
        })
        .unwrap_or_else(|| "paper-v1".to_string());
    let mut protocol =
        Protocol::resolve(&protocol_spec).with_context(|| format!("protocol {protocol_spec}"))?;
    let mut run_chains = std::collections::BTreeMap::new();
    let mut run_trials = Vec::new();
    let mut run_label = None;
    let mut notes = Vec::new();
    // Items the run supplies when no --data is given: (where they came from, the items).
    let mut run_items = None;
    let mut run_inputs = opts.run.clone();
    match opts.run.as_slice() {
        [] => {}
        [dir] if dir.is_dir() => {
            let (store, manifest) =
                RunStore::open(dir).with_context(|| format!("opening run {}", dir.display()))?;
            protocol = manifest.protocol.clone();
            run_trials = read_trials(&dir.join(TRIALS)).unwrap_or_default();
            for t in &run_trials {
                if let Some(c) = store.chain(&t.id, 0) {
                    run_chains.entry(t.id.clone()).or_insert(c);
                }
            }
            run_label = Some(format!("run {}", dir.display()));
        }
        files => {
            let opened = open_result_files(files, &protocol, opts.data.is_none())?;
            notes = opened.warnings;
            run_chains = opened.chains;
            run_trials = opened.trials;
            // the item file also gives the aggregate panels their groups (track, hop, ...)
            let item_file = match &opened.items {
                Some(RunItems::File(f)) => Some(f.clone()),
                _ => opts
                    .data
                    .clone()
                    .filter(|d| d.to_string_lossy().ends_with("_standardized.jsonl")),
            };
            if let Some(f) = item_file.filter(|f| !run_inputs.contains(f)) {
                run_inputs.push(f);
            }
            run_items = opened.items;
            run_label = Some(opened.label);
        }
    }
    let (data, ds) = match (&opts.data, run_items) {
        (None, Some(RunItems::Rows(first, items))) => {
            // rebuilt from the result rows: annotations go beside the first result file
            let ds = Dataset {
                root: first.clone(),
                format: crate::data::Format::Standardized,
                items,
                problems: Vec::new(),
            };
            (first, ds)
        }
        (data, items) => {
            let data = match (data, items) {
                (Some(d), _) => d.clone(),
                (None, Some(RunItems::File(f))) => f,
                // The synthetic test split is what the demo models were trained for.
                _ => crate::samples::default_data(DEMO_DATA, "--data DATASET")?,
            };
            let ds = load(&data, &LoadOptions::default())
                .with_context(|| format!("loading dataset {}", data.display()))?;
            (data, ds)
        }
    };
    let annotations_path = opts.annotations.clone().unwrap_or_else(|| {
        let dir = if data.is_dir() {
            data.clone()
        } else {
            data.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        dir.join("annotations.jsonl")
    });
    let annotations_blocked = match &opts.annotations {
        Some(_) => None,
        None => annotations_path.parent().and_then(unwritable_reason),
    };
    let annotations = if annotations_path.exists() {
        Annotations::load(&annotations_path)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .records()
    } else {
        Vec::new()
    };
    let keymap = match &opts.keymap {
        Some(p) => Keymap::load(p).map_err(anyhow::Error::msg)?,
        None => Keymap::default(),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::resolve(opts.theme.as_deref(), no_color).map_err(anyhow::Error::msg)?;
    let (model, status) = match &first {
        Some(m) => (Some(m.clone()), ModelStatus::Loading(m.clone())),
        None => (
            None,
            ModelStatus::None(format!("no model ({DEMO_MODEL} is absent)")),
        ),
    };
    let models: Vec<String> = first.iter().chain(compare.iter()).cloned().collect();
    let errors = ds
        .problems
        .iter()
        .filter(|p| p.severity == crate::data::Severity::Error)
        .count();
    if errors > 0 {
        notes.insert(
            0,
            format!(
                "{} items; {errors} entries skipped (see `faithscope items {}`)",
                ds.items.len(),
                data.display()
            ),
        );
    }
    let mut state = State::new(Setup {
        items: ds.items,
        dataset: data.display().to_string(),
        model: Some(status),
        models,
        protocol: protocol.name.clone(),
        splitter: protocol.splitter,
        annotations_path,
        annotations,
        annotator: annotator_name(opts.annotator.as_deref()),
        run_dir: run_label,
        run_chains,
        run_trials,
        keymap,
        theme,
        notes,
        log_path: None,
        annotations_blocked,
    });
    if let Some(label) = &state.run_dir {
        state.status = format!("{label}: {} items", state.items.len());
        if let Some(w) = state.messages.last() {
            state.status = format!("{} · warning (! shows all): {w}", state.status);
        }
    }
    Ok(Prepared {
        state,
        model,
        protocol,
        run_inputs,
    })
}

/// What the inspector takes from the paper's result files given to `--run`.
struct ResultFiles {
    /// Shown as the source of chains and panels: the first file's name (+ how many more).
    label: String,
    trials: Vec<crate::faith::trial::Trial>,
    chains: std::collections::BTreeMap<String, crate::faith::sweep::Chain>,
    /// Where the items come from; `None` when not wanted (--data given).
    items: Option<RunItems>,
    /// Lines skipped, and where the items came from.
    warnings: Vec<String>,
}

/// Where the items of result files come from.
enum RunItems {
    /// The item file given, or found beside the first result file.
    File(PathBuf),
    /// Rebuilt from the result rows (the first result file's path: annotations go beside it).
    Rows(PathBuf, Vec<crate::data::Item>),
}

/// Reads the paper's result files (and any item files among them) for the inspector.
fn open_result_files(
    files: &[PathBuf],
    protocol: &Protocol,
    want_items: bool,
) -> anyhow::Result<ResultFiles> {
    use crate::faith::paper;
    let loaded = paper::load(files).map_err(|e| anyhow::anyhow!("--run: {e}"))?;
    let trial_files: Vec<&PathBuf> = loaded
        .sources
        .iter()
        .filter(|s| s.kind == "trials")
        .map(|s| &s.path)
        .collect();
    let Some(first) = trial_files.first().copied() else {
        anyhow::bail!(
            "--run {}: no result file among the inputs (only item files); give the paper's result files (baseline_*, early_answering_*, ...) or a run directory",
            files[0].display()
        );
    };
    if loaded.trials.is_empty() {
        anyhow::bail!(
            "--run {}: no trials in it (every line was skipped: {})",
            first.display(),
            loaded.warnings.first().map_or("empty file", String::as_str)
        );
    }
    let mut warnings = loaded.warnings.clone();
    let items = want_items.then(|| {
        let given = loaded
            .sources
            .iter()
            .find(|s| s.kind == "items")
            .map(|s| s.path.clone());
        let beside = paper::item_file_for(first);
        match given.or_else(|| beside.is_file().then_some(beside.clone())) {
            Some(item_file) => RunItems::File(item_file),
            None => {
                warnings.push(format!(
                    "no item file: {} is not beside {}; items rebuilt from the result rows (give --data or the item file for metadata and gold answers)",
                    beside.file_name().unwrap_or_default().to_string_lossy(),
                    first.display()
                ));
                let base = first.parent().unwrap_or(Path::new(""));
                RunItems::Rows(first.clone(), paper::items_from_trials(&loaded.trials, base))
            }
        }
    });
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let label = match trial_files.len() {
        1 => name(first),
        n => format!("{} (+{} more)", name(first), n - 1),
    };
    Ok(ResultFiles {
        label,
        chains: paper::recorded_chains(&loaded.trials, protocol),
        trials: loaded.trials,
        items,
        warnings,
    })
}

/// The annotator recorded with every annotation: `--annotator`, else $USER, else $LOGNAME, else
/// the system's name of the user running faithscope (uid as a last resort).
pub fn annotator_name(explicit: Option<&str>) -> String {
    annotator_from(explicit, &|v| std::env::var(v).ok())
}

/// [`annotator_name`] with the environment given as a lookup.
pub fn annotator_from(explicit: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(n) = explicit.filter(|n| !n.trim().is_empty()) {
        return n.trim().to_string();
    }
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| env(v))
        .map(|n| n.trim().to_string())
        .find(|n| !n.is_empty())
        .or_else(system_user_name)
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}

/// The user name of the process's uid from the system's user database.
fn system_user_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, both alive for the call; `result` is
    // null or points at `pwd`, whose `pw_name` points into `buf`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy();
        (!name.is_empty()).then(|| name.into_owned())
    }
}

/// Why annotations should not be written into `dir` unasked: a folder nobody may write to
/// (read-only data, even for root), one this process cannot write to, or one owned by another
/// user (a shared dataset folder). `None` when it is the user's own writable folder.
pub fn unwritable_reason(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let shown = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let meta = std::fs::metadata(shown).ok()?;
    let c = std::ffi::CString::new(shown.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    let writable = unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = if meta.mode() & 0o222 == 0 || !writable {
        "is read-only"
    } else if meta.uid() != me && me != 0 {
        "belongs to another user (a shared folder)"
    } else {
        return None;
    };
    Some(format!(
        "the dataset folder {} {why}, so annotations are not written beside it; start the inspector with --annotations FILE (e.g. --annotations ~/annotations.jsonl) to annotate and export",
        shown.display()
    ))
}

/// Messages from tasks to the UI loop.
enum Msg {
    Action(Action),
    Clip {
        epoch: u64,
        clip: Box<Clip>,
    },
    /// The altered clip, decoded for player B.
    AltClip {
        epoch: u64,
        clip: Box<Clip>,
    },
}

/// Puts the terminal back: raw mode off, main screen, no mouse capture, no bracketed paste,
/// cursor shown. Safe to call more than once.
pub fn restore_terminal() {
    stderr_log::restore();
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = out.flush();
}

struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}

/// Opens the inspector and runs it until quit.
pub fn run(opts: Options) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("the inspector needs a terminal on stdout; for batch work use `faithscope run` or `faithscope report`");
    }
    let prepared = prepare(&opts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let log = stderr_log::default_path();
    let r = rt.block_on(run_loop(prepared, opts, &log));
    // Whatever reached stderr during the session is in the log; say where, or tidy up.
    match std::fs::metadata(&log) {
        Ok(m) if m.len() > 0 => eprintln!(
            "note: what was written to stderr during the session is in {}",
            log.display()
        ),
        Ok(_) => {
            let _ = std::fs::remove_file(&log);
        }
        Err(_) => {}
    }
    r
}

async fn run_loop(prepared: Prepared, opts: Options, log: &Path) -> anyhow::Result<()> {
    let Prepared {
        mut state,
        model,
        protocol,
        run_inputs,
    } = prepared;
    install_panic_hook();
    // Nothing but the renderer writes to the terminal from here on: stderr goes to the log,
    // warnings from library code to the app.
    let _stderr = match stderr_log::StderrLog::start(log) {
        Ok(l) => {
            state.log_path = Some(l.path().display().to_string());
            Some(l)
        }
        Err(e) => anyhow::bail!(
            "cannot open the session's stderr log {}: {e}; set TMPDIR to a writable folder",
            log.display()
        ),
    };
    enable_raw_mode().context("switching the terminal to raw mode")?;
    let _guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    )
    .context("entering the alternate screen")?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;

    let (tx, mut rx) = unbounded_channel::<Msg>();
    // Terminal input on its own thread (crossterm's blocking reader).
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            while let Ok(ev) = event::read() {
                let a = match ev {
                    Event::Key(k) => Action::Key(k),
                    Event::Paste(p) => Action::Paste(p),
                    Event::Mouse(m) => Action::Mouse(m),
                    Event::Resize(_, _) => Action::Resize,
                    _ => continue,
                };
                if tx.send(Msg::Action(a)).is_err() {
                    break;
                }
            }
        });
    }
    let _warnings = {
        let tx = tx.clone();
        crate::warn::install(Arc::new(move |m: &str| {
            eprintln!("warning: {m}");
            let _ = tx.send(Msg::Action(Action::Warning(m.to_string())));
        }))
    };
    let worker = Worker::start(tx.clone(), protocol.clone(), opts.seed);
    if let Some(spec) = model {
        worker.load_model(opts.model_spec(spec));
    }
    let mut shell = Shell {
        tx: tx.clone(),
        worker,
        player: None,
        spare: None,
        playing_altered: false,
        run_inputs,
        opts: opts.clone(),
    };
    // First frame before anything has loaded.
    terminal.draw(|f| draw::draw(f, &state))?;
    let mut last_draw = Instant::now();
    let fx = state::start(&mut state);
    shell.apply(fx, &mut state);
    let mut dirty = true;
    let mut last_refresh = Instant::now();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    loop {
        let playing = shell
            .player
            .as_ref()
            .is_some_and(|p| p.state() == PlayerState::Playing)
            || state.audio.playing;
        // a run directory still being written: its panels are re-read while shown
        let live_run = state.screen == state::Screen::Aggregate
            && matches!(shell.run_inputs.as_slice(), [d] if d.is_dir());
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = tokio::time::sleep(PLAY_TICK), if playing => None,
            _ = tokio::time::sleep(RUN_REFRESH), if live_run => None,
            _ = sigterm.recv() => Some(Msg::Action(Action::Command(keymap::Command::Quit))),
            _ = sigint.recv() => Some(Msg::Action(Action::Command(keymap::Command::Quit))),
        };
        if live_run && last_refresh.elapsed() >= RUN_REFRESH {
            // A run may still be going: read its trials again.
            last_refresh = Instant::now();
            shell.apply(
                vec![Effect::Aggregate {
                    trials: Vec::new(),
                    source: String::new(),
                }],
                &mut state,
            );
        }
        let mut batch: Vec<Msg> = msg.into_iter().collect();
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        if let Some(p) = &shell.player {
            let a = Action::Playhead {
                position: p.position(),
                playing: p.state() == PlayerState::Playing,
            };
            if playing || state.audio.playing != (p.state() == PlayerState::Playing) {
                batch.push(Msg::Action(a));
            }
        }
        for m in batch {
            dirty = true;
            match m {
                Msg::Action(a) => {
                    let fx = state::update(&mut state, a);
                    shell.apply(fx, &mut state);
                }
                Msg::Clip { epoch, clip } => shell.clip(epoch, *clip, &mut state),
                Msg::AltClip { epoch, clip } => shell.alt_clip(epoch, *clip, &state),
            }
        }
        if state.quit {
            break;
        }
        if dirty {
            let since = last_draw.elapsed();
            if since < FRAME_FLOOR {
                tokio::time::sleep(FRAME_FLOOR - since).await;
                // Take what arrived meanwhile into this frame.
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Action(a) => {
                            let fx = state::update(&mut state, a);
                            shell.apply(fx, &mut state);
                        }
                        Msg::Clip { epoch, clip } => shell.clip(epoch, *clip, &mut state),
                        Msg::AltClip { epoch, clip } => shell.alt_clip(epoch, *clip, &state),
                    }
                }
            }
            terminal.draw(|f| draw::draw(f, &state))?;
            last_draw = Instant::now();
            dirty = false;
        }
    }
    shell.worker.cancel();
    // the altered clips of this session
    let _ = std::fs::remove_dir_all(alter::scratch_dir());
    drop(terminal);
    Ok(())
}

/// The model worker: one job at a time on the blocking pool, cancellable.
struct Worker {
    jobs: UnboundedSender<(u64, Job)>,
    next_id: AtomicU64,
    cancel_upto: Arc<AtomicU64>,
    ctx: Arc<Mutex<Option<ModelCtx>>>,
    protocol: Protocol,
    seed: u64,
    tx: UnboundedSender<Msg>,
}

impl Worker {
    fn start(tx: UnboundedSender<Msg>, protocol: Protocol, seed: u64) -> Worker {
        let (jobs, mut rx): (_, UnboundedReceiver<(u64, Job)>) = unbounded_channel();
        let cancel_upto = Arc::new(AtomicU64::new(0));
        let ctx: Arc<Mutex<Option<ModelCtx>>> = Arc::new(Mutex::new(None));
        {
            let cancel_upto = cancel_upto.clone();
            let ctx = ctx.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some((id, job)) = rx.recv().await {
                    if id <= cancel_upto.load(Ordering::Acquire) {
                        continue;
                    }
                    let Some(c) = ctx.lock().ok().and_then(|g| g.clone()) else {
                        let _ = tx.send(Msg::Action(Action::Error("no model is loaded".into())));
                        continue;
                    };
                    let cancel_upto = cancel_upto.clone();
                    let tx = tx.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        let cancelled = || id <= cancel_upto.load(Ordering::Acquire);
                        let mut send = |a: Action| {
                            let _ = tx.send(Msg::Action(a));
                        };
                        work::run_job(&c, job, &cancelled, &mut send);
                    })
                    .await;
                }
            });
        }
        Worker {
            jobs,
            next_id: AtomicU64::new(1),
            cancel_upto,
            ctx,
            protocol,
            seed,
            tx,
        }
    }

    fn submit(&self, job: Job) {
        let id = self.next_id.fetch_add(1, Ordering::AcqRel);
        let _ = self.jobs.send((id, job));
    }

    fn cancel(&self) {
        let last = self.next_id.load(Ordering::Acquire).saturating_sub(1);
        self.cancel_upto.store(last, Ordering::Release);
    }

    fn load_model(&self, spec: crate::model::resolve::ModelSpec) {
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        let protocol = self.protocol.clone();
        let seed = self.seed;
        tokio::task::spawn_blocking(move || {
            let r = crate::model::resolve::open_model(&spec);
            let mut described = None;
            let a = match r {
                Ok(m) => {
                    let name = m.name().to_string();
                    let window = m.audio_window_seconds();
                    let _ = tx.send(Msg::Action(Action::AudioWindow(window)));
                    // a served model: where, and what the server was found to do (after ready)
                    described = m.describe();
                    if let Ok(mut g) = ctx.lock() {
                        *g = Some(ModelCtx {
                            reasoner: Arc::from(m),
                            protocol,
                            seed,
                        });
                    }
                    Action::ModelReady(name)
                }
                Err(e) => Action::ModelFailed(format!("{e:#}")),
            };
            let _ = tx.send(Msg::Action(a));
            if let Some(d) = described {
                let _ = tx.send(Msg::Action(Action::Info(d)));
            }
        });
    }
}

/// Carries out effects.
struct Shell {
    tx: UnboundedSender<Msg>,
    worker: Worker,
    player: Option<Player>,
    /// The other of the original (A) and altered (B) clips' players, paused.
    spare: Option<Player>,
    /// `player` plays the altered clip.
    playing_altered: bool,
    /// `--run`: a run directory or result files, re-read for the aggregate panels.
    run_inputs: Vec<PathBuf>,
    /// The options the models are opened with (device, dtype, served model).
    opts: Options,
}

impl Shell {
    fn send(&self, a: Action) {
        let _ = self.tx.send(Msg::Action(a));
    }

    fn clip(&mut self, epoch: u64, clip: Clip, state: &mut State) {
        if epoch != state.epoch {
            return;
        }
        let mut p = Player::new(&clip);
        if let Some(w) = p.take_warning() {
            let fx = state::update(state, Action::AudioSilent(w));
            self.apply(fx, state);
        }
        self.player = Some(p);
        self.spare = None;
        self.playing_altered = false;
    }

    /// The altered clip's player: the spare one, or, while B plays, in place of the playing
    /// one at the same playhead.
    fn alt_clip(&mut self, epoch: u64, clip: Clip, state: &State) {
        if epoch != state.epoch {
            return;
        }
        let mut p = Player::new(&clip);
        if self.playing_altered {
            if let Some(old) = &mut self.player {
                p.seek(old.position().min(p.duration()));
                if old.state() == PlayerState::Playing {
                    p.play();
                }
                old.stop();
            }
            self.player = Some(p);
        } else {
            self.spare = Some(p);
        }
    }

    /// Switches between A and B, the playhead and play/pause kept.
    fn play_altered(&mut self, altered: bool) {
        if altered == self.playing_altered || self.spare.is_none() {
            return;
        }
        let (pos, playing) = match &self.player {
            Some(p) => (p.position(), p.state() == PlayerState::Playing),
            None => (0.0, false),
        };
        if let Some(p) = &mut self.player {
            p.pause();
        }
        std::mem::swap(&mut self.player, &mut self.spare);
        if let Some(p) = &mut self.player {
            p.seek(pos.min(p.duration()));
            if playing {
                p.play();
            }
        }
        self.playing_altered = altered;
    }

    fn apply(&mut self, effects: Vec<Effect>, state: &mut State) {
        for e in effects {
            match e {
                Effect::DecodeClip { epoch, path } => {
                    let tx = self.tx.clone();
                    tokio::task::spawn_blocking(move || match work::decode_clip(&path) {
                        Ok((clip, view)) => {
                            let _ = tx.send(Msg::Action(Action::ClipReady { epoch, clip: view }));
                            let _ = tx.send(Msg::Clip {
                                epoch,
                                clip: Box::new(clip),
                            });
                        }
                        Err(error) => {
                            let _ = tx.send(Msg::Action(Action::ClipFailed { epoch, error }));
                        }
                    });
                }
                Effect::PlayPause => {
                    if let Some(p) = &mut self.player {
                        if p.state() == PlayerState::Playing {
                            p.pause();
                        } else {
                            p.play();
                        }
                        if let Some(w) = p.take_warning() {
                            self.send(Action::AudioSilent(w));
                        }
                    }
                }
                Effect::SeekBy(d) => {
                    if let Some(p) = &mut self.player {
                        let to = (p.position() + d).clamp(0.0, p.duration());
                        p.seek(to);
                        // paused, the loop reports no playhead: the region keys need it now
                        let playing = p.state() == PlayerState::Playing;
                        let position = p.position();
                        self.send(Action::Playhead { position, playing });
                    }
                }
                Effect::Replay => {
                    if let Some(p) = &mut self.player {
                        p.seek(0.0);
                        p.play();
                    }
                }
                Effect::StopAudio => {
                    for p in [&mut self.player, &mut self.spare].into_iter().flatten() {
                        p.stop();
                    }
                    self.player = None;
                    self.spare = None;
                    self.playing_altered = false;
                }
                Effect::PlayAltered(b) => self.play_altered(b),
                Effect::AlterClip {
                    epoch,
                    item,
                    alteration,
                } => {
                    let tx = self.tx.clone();
                    let seed = self.opts.seed;
                    tokio::task::spawn_blocking(move || {
                        let dir = alter::scratch_dir();
                        let made = alter::render(&item, &alteration, seed, &dir)
                            .and_then(|path| work::decode_clip(&path).map(|c| (path, c)));
                        match made {
                            Ok((path, (clip, view))) => {
                                let altered = state::AlteredClip {
                                    path,
                                    view,
                                    label: alteration.label(),
                                };
                                let _ = tx.send(Msg::Action(Action::AlteredReady {
                                    epoch,
                                    clip: Box::new(altered),
                                }));
                                let _ = tx.send(Msg::AltClip {
                                    epoch,
                                    clip: Box::new(clip),
                                });
                            }
                            Err(error) => {
                                let _ =
                                    tx.send(Msg::Action(Action::AlteredFailed { epoch, error }));
                            }
                        }
                    });
                }
                Effect::Model(job) => self.worker.submit(job),
                Effect::CancelModel => self.worker.cancel(),
                Effect::LoadModel(spec) => self.worker.load_model(self.opts.model_spec(spec)),
                Effect::SaveAnnotation { path, record } => {
                    let tx = self.tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let a = match work::append_annotation(&path, &record) {
                            Ok(r) => Action::AnnotationSaved(Box::new(r)),
                            Err(e) => Action::Error(e),
                        };
                        let _ = tx.send(Msg::Action(a));
                    });
                }
                Effect::Export {
                    path,
                    annotations,
                    trials,
                } => {
                    let tx = self.tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let a = match work::export(&path, &annotations, &trials) {
                            Ok(paths) => Action::Info(format!(
                                "exported {}",
                                paths
                                    .iter()
                                    .map(|p| p.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                            Err(e) => Action::Error(e),
                        };
                        let _ = tx.send(Msg::Action(a));
                    });
                }
                Effect::Aggregate { trials, source } => {
                    let tx = self.tx.clone();
                    let inputs = self.run_inputs.clone();
                    let label = state.run_dir.clone().unwrap_or_default();
                    tokio::task::spawn_blocking(move || {
                        let a = if inputs.is_empty() {
                            Action::AggregateReady(Box::new(aggregate::build(&trials, &source)))
                        } else {
                            match crate::faith::paper::load(&inputs) {
                                Ok(l) => Action::AggregateReady(Box::new(aggregate::build(
                                    &l.trials, &label,
                                ))),
                                Err(e) => Action::Error(e.to_string()),
                            }
                        };
                        let _ = tx.send(Msg::Action(a));
                    });
                }
                Effect::SetMouse(on) => {
                    let mut out = std::io::stdout();
                    let r = if on {
                        execute!(out, EnableMouseCapture)
                    } else {
                        execute!(out, DisableMouseCapture)
                    };
                    if let Err(e) = r {
                        state.status = format!("mouse: {e}");
                    }
                }
                Effect::Quit => state.quit = true,
            }
        }
    }
}
