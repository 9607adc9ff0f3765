//! The inspector's state (plain data), the actions that change it, the effects it asks for, and
//! the pure [`update`] that maps one to the others. Nothing here touches the terminal, the model,
//! the audio device or the file system: the shell (`tui::run`) and the worker do that and send
//! actions back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui_textarea::TextArea;

use crate::data::Item;
use crate::faith::intervene::{
    self, FillerLayout, FillerPosition, FillerSpec, FillerWord, Variant,
};
use crate::faith::mistakes::{proposed_mistake, Annotation};
use crate::faith::split::Splitter;
use crate::faith::sweep::{trial_key, Chain};
use crate::faith::trial::{InterventionKind, Trial};

use crate::audio::alter::{MaskAt, MaskWith};

use super::aggregate::Aggregate;
use super::alter::{next_hint, Alteration};
use super::keymap::{Command, Keymap};
use super::theme::Theme;

/// Mistake kinds an annotator chooses from.
pub const MISTAKE_KINDS: &[&str] = &["factual", "acoustic", "logical", "numeric", "other"];

/// Seconds moved by one seek key.
pub const SEEK_STEP: f64 = 2.0;

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The item browser.
    Items,
    /// The reasoning pane.
    Chain,
}

/// The screen shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Item, audio, chain and answers.
    Inspect,
    /// The sweep of the current chain.
    Sweep,
    /// Dataset / run panels.
    Aggregate,
}

/// Where the model stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    /// No model: the reason (shown in the status line).
    None(String),
    /// Being loaded.
    Loading(String),
    /// Ready, by name.
    Ready(String),
    /// Loading failed.
    Failed(String),
}

impl ModelStatus {
    /// True when model work can be asked for.
    pub fn ready(&self) -> bool {
        matches!(self, ModelStatus::Ready(_))
    }
}

/// Markers of an item in the browser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Some intervention flipped its answer.
    pub flipped: bool,
    /// It has annotations.
    pub annotated: bool,
    /// Something failed on it (clip, model).
    pub error: bool,
}

/// Display data of the open clip (computed once by the worker).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClipView {
    /// File name.
    pub name: String,
    /// Length in seconds.
    pub seconds: f64,
    /// Min/max per column at a fixed resolution ([`PEAK_COLUMNS`]).
    pub peaks: Vec<(f32, f32)>,
    /// Spectrogram in dB, `spec_h` rows (low to high) of `spec_w` columns.
    pub spec: Vec<f32>,
    /// Spectrogram columns.
    pub spec_w: usize,
    /// Spectrogram rows.
    pub spec_h: usize,
}

/// Peak columns computed per clip.
pub const PEAK_COLUMNS: usize = 1024;

/// The audio strip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioView {
    /// The clip, once decoded.
    pub clip: Option<ClipView>,
    /// Decoding error of the current clip.
    pub error: Option<String>,
    /// Playhead in seconds.
    pub position: f64,
    /// Whether it is playing.
    pub playing: bool,
    /// Spectrogram instead of waveform.
    pub spectrogram: bool,
    /// Why there is no sound (no device), shown once in the status line and kept here.
    pub silent: Option<String>,
    /// Start of the region being set (seconds), before its end is.
    pub region_start: Option<f64>,
    /// The region (seconds, start < end) that masks apply to.
    pub region: Option<(f64, f64)>,
    /// The alteration of the clip asked for last.
    pub alteration: Option<Alteration>,
    /// The altered clip, once written and decoded.
    pub altered: Option<AlteredClip>,
    /// The altered clip is being written.
    pub altering: bool,
    /// Playback and the strip show the altered clip (B) instead of the original (A).
    pub play_altered: bool,
    /// The mask the audio sweep runs (index into [`SWEEP_MASKS`]).
    pub sweep_mask: usize,
}

/// The altered clip of the open item.
#[derive(Debug, Clone, PartialEq)]
pub struct AlteredClip {
    /// The WAV written.
    pub path: PathBuf,
    /// Its display data.
    pub view: ClipView,
    /// What was done ([`Alteration::label`]).
    pub label: String,
}

/// The masks the audio sweep can run, in the order its key cycles them.
pub const SWEEP_MASKS: [(MaskWith, MaskAt); 8] = [
    (MaskWith::Silence, MaskAt::End),
    (MaskWith::Silence, MaskAt::Start),
    (MaskWith::Silence, MaskAt::Random),
    (MaskWith::Silence, MaskAt::Scattered),
    (MaskWith::Noise, MaskAt::End),
    (MaskWith::Noise, MaskAt::Start),
    (MaskWith::Noise, MaskAt::Random),
    (MaskWith::Noise, MaskAt::Scattered),
];

/// How a sentence of the current chain came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// As the model wrote it.
    Original,
    /// Edited by the person.
    Edited,
    /// An inserted mistake.
    Mistake,
    /// Written by the model after an inserted mistake.
    Continued,
    /// Paraphrased by the model.
    Paraphrased,
    /// Words replaced by filler.
    Filler,
}

/// The reasoning pane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainView {
    /// The chain is streaming.
    pub streaming: bool,
    /// The text streamed so far.
    pub raw: String,
    /// Sentences of `raw` (the last one may be unfinished while streaming).
    pub stream_sentences: Vec<String>,
    /// The finished chain (original, sanitized).
    pub record: Option<Chain>,
    /// Sentences of the current (possibly modified) chain.
    pub sentences: Vec<String>,
    /// Origin of each of `sentences`.
    pub origins: Vec<Origin>,
    /// Sentence cursor (0-based; may equal `sentences.len()` after truncation).
    pub cursor: usize,
    /// What the current chain is ("original", "truncated before 3", ...).
    pub label: String,
    /// The current chain is the no-CoT control.
    pub no_cot: bool,
}

/// Which answer a forced answer fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// After the full original chain.
    Baseline,
    /// Without any chain.
    NoCot,
    /// After the current (modified) chain.
    Current,
}

/// The answer pane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers {
    /// The baseline trial.
    pub baseline: Option<Trial>,
    /// The current trial (after the last intervention).
    pub current: Option<Trial>,
    /// The no-CoT trial.
    pub no_cot: Option<Trial>,
    /// An answer is being forced.
    pub pending: bool,
    /// The variant behind `current`, asked again after the model is switched.
    pub current_variant: Option<Variant>,
    /// Set while a switched-to model's baseline is being forced: the current variant follows.
    pub reforce_current: bool,
}

/// What the open editor edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    /// Sentence `i` in place.
    Sentence(usize),
    /// A mistake replacing sentence `i`; the model continues after it.
    Mistake(usize),
}

/// The multi-line editor.
#[derive(Debug, Clone)]
pub struct Editor {
    /// What it edits.
    pub target: EditTarget,
    /// Where the text came from (typed, rules, model).
    pub source: String,
    /// The text area (with undo).
    pub area: TextArea<'static>,
}

/// The annotation form.
#[derive(Debug, Clone)]
pub struct AnnotateForm {
    /// Sentence index (0-based).
    pub sentence: usize,
    /// Index into [`MISTAKE_KINDS`].
    pub kind: usize,
    /// The note.
    pub note: TextArea<'static>,
}

/// The sweep of the current chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepView {
    /// Trials received (early answering and mistakes).
    pub trials: Vec<Trial>,
    /// Still running.
    pub running: bool,
    /// For which epoch it was computed.
    pub epoch: u64,
    /// The trials shown are the ones recorded in the run or result files (the sweep key asks
    /// the model again).
    pub recorded: bool,
}

/// Text a model is writing for a perturbation, as far as it has streamed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Writing {
    /// For which epoch.
    pub epoch: u64,
    /// The trial it is for (`mistake:3`: sentence 3 rewritten; `paraphrase:2`: sentences 1-2).
    pub key: String,
    /// What has streamed so far.
    pub text: String,
}

impl Writing {
    /// What is written and where: (`mistake` or `paraphrase`, the sentence number).
    pub fn target(&self) -> Option<(&str, usize)> {
        let (kind, n) = self.key.split_once(':')?;
        Some((kind, n.parse().ok()?))
    }
}

/// Everything the screens show.
#[derive(Debug, Clone)]
pub struct State {
    /// The dataset's items.
    pub items: Vec<Item>,
    /// Dataset label (path).
    pub dataset: String,
    /// Item indices passing the filter.
    pub visible: Vec<usize>,
    /// Cursor in `visible`.
    pub list_cursor: usize,
    /// The opened item (index into `items`).
    pub open: Option<usize>,
    /// The filter text.
    pub filter: String,
    /// The filter line is being typed.
    pub searching: bool,
    /// Keyboard focus.
    pub focus: Focus,
    /// The screen.
    pub screen: Screen,
    /// Markers by item id.
    pub marks: BTreeMap<String, Marks>,
    /// The model.
    pub model: ModelStatus,
    /// The models [`Command::SwitchModel`] cycles through (specs).
    pub models: Vec<String>,
    /// Which of `models` is loaded.
    pub model_slot: usize,
    /// Protocol name.
    pub protocol: String,
    /// The protocol's sentence splitter.
    pub splitter: Splitter,
    /// Audio strip.
    pub audio: AudioView,
    /// Show the gold answer.
    pub show_gold: bool,
    /// Reasoning pane.
    pub chain: ChainView,
    /// Answer pane.
    pub answers: Answers,
    /// Sweep view.
    pub sweep: SweepView,
    /// Trials computed in this session, by (model spec, item, key): each model's are kept apart,
    /// so that after [`Command::SwitchModel`] the panels show the loaded model's alone.
    pub session_trials: BTreeMap<(String, String, String), Trial>,
    /// Where recorded chains and trials come from, as shown (`run DIR`, or the result files'
    /// names); `None` when every chain is sampled here.
    pub run_dir: Option<String>,
    /// The recorded trials by item id (of the run or result files).
    pub run_trials: BTreeMap<String, Vec<Trial>>,
    /// Chains of the loaded run, by item id (chain 0).
    pub run_chains: BTreeMap<String, Chain>,
    /// Aggregate panels (of the run when one is loaded, else of the session).
    pub aggregate: Option<Aggregate>,
    /// The one intervention the aggregate chart shows (`None`: all of them).
    pub aggregate_series: Option<InterventionKind>,
    /// Annotations of the annotation file.
    pub annotations: Vec<Annotation>,
    /// The annotation file.
    pub annotations_path: PathBuf,
    /// Why annotations cannot go to `annotations_path` (a read-only or shared dataset folder):
    /// annotating and exporting then ask for `--annotations FILE`.
    pub annotations_blocked: Option<String>,
    /// Annotator name.
    pub annotator: String,
    /// Open editor.
    pub editor: Option<Editor>,
    /// Open annotation form.
    pub annotate: Option<AnnotateForm>,
    /// Help overlay shown.
    pub help: bool,
    /// Warnings, errors and notices of this session, oldest first (at most [`MAX_MESSAGES`]).
    pub messages: Vec<String>,
    /// Seconds of audio the loaded model takes in, when it says.
    pub model_window: Option<f64>,
    /// The messages overlay is shown.
    pub show_messages: bool,
    /// Where whatever is written to stderr during the session goes (shown in help).
    pub log_path: Option<String>,
    /// Presenter mode.
    pub presenter: bool,
    /// Mouse capture on.
    pub mouse: bool,
    /// The status line.
    pub status: String,
    /// An error popup.
    pub popup: Option<String>,
    /// Model work under way (for the status line).
    pub busy: Option<String>,
    /// A mistake or paraphrase the model is writing, shown as it streams (in the reasoning pane
    /// and the sweep view).
    pub writing: Option<Writing>,
    /// Key bindings.
    pub keymap: Keymap,
    /// Colours.
    pub theme: Theme,
    /// Changes whenever the open item or chain changes; results of older work are dropped.
    pub epoch: u64,
    /// Quit was asked for.
    pub quit: bool,
}

/// Inputs to [`update`]: keys and results of background work.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// Pasted text.
    Paste(String),
    /// A mouse event (only while mouse support is on).
    Mouse(MouseEvent),
    /// The terminal was resized (nothing to store: the next frame uses the new size).
    Resize,
    /// A command, as a key would give it.
    Command(Command),
    /// Playhead report from the shell.
    Playhead {
        /// Position in seconds.
        position: f64,
        /// Whether playing.
        playing: bool,
    },
    /// The audio device is unavailable; playback is silent.
    AudioSilent(String),
    /// The model is ready.
    ModelReady(String),
    /// The model failed to load.
    ModelFailed(String),
    /// The clip was decoded.
    ClipReady {
        /// Epoch it was asked in.
        epoch: u64,
        /// Display data.
        clip: ClipView,
    },
    /// The clip could not be decoded.
    ClipFailed {
        /// Epoch it was asked in.
        epoch: u64,
        /// The message.
        error: String,
    },
    /// A piece of the streaming chain.
    Token {
        /// Epoch.
        epoch: u64,
        /// New text.
        text: String,
    },
    /// The chain is complete.
    ChainDone {
        /// Epoch.
        epoch: u64,
        /// The chain.
        chain: Chain,
        /// Generation was cancelled (the chain holds what was streamed).
        cancelled: bool,
    },
    /// A forced answer.
    Answer {
        /// Epoch.
        epoch: u64,
        /// Which answer.
        slot: Slot,
        /// The trial.
        trial: Box<Trial>,
    },
    /// A piece of the mistake or paraphrase a model is writing.
    Writing {
        /// Epoch.
        epoch: u64,
        /// The trial it is for (`mistake:3`, `paraphrase:2`).
        key: String,
        /// The new text.
        text: String,
    },
    /// A proposed mistaken sentence (model or rules); `None` when none could be written.
    MistakeProposed {
        /// Epoch.
        epoch: u64,
        /// Sentence index.
        sentence: usize,
        /// The mistaken sentence.
        text: Option<String>,
    },
    /// One trial of the background sweep.
    SweepTrial {
        /// Epoch.
        epoch: u64,
        /// The trial.
        trial: Box<Trial>,
    },
    /// The sweep ended.
    SweepDone {
        /// Epoch.
        epoch: u64,
    },
    /// Model work failed.
    WorkFailed {
        /// Epoch.
        epoch: u64,
        /// The message.
        error: String,
    },
    /// An annotation was written to the file.
    AnnotationSaved(Box<Annotation>),
    /// Aggregate panels computed (from a run or the session).
    AggregateReady(Box<Aggregate>),
    /// An informational message for the status line.
    Info(String),
    /// An error for the popup.
    Error(String),
    /// Seconds of audio the loaded model takes in (longer clips are cut for it).
    AudioWindow(Option<f64>),
    /// A warning from library code (a truncated clip, a clip cut to the model's window): the
    /// status line and the messages overlay.
    Warning(String),
    /// The altered clip was written and decoded.
    AlteredReady {
        /// Epoch it was asked in.
        epoch: u64,
        /// The clip.
        clip: Box<AlteredClip>,
    },
    /// The clip could not be altered.
    AlteredFailed {
        /// Epoch it was asked in.
        epoch: u64,
        /// What went wrong.
        error: String,
    },
    /// A chain was written afresh on the altered clip (its answer follows as an `Answer`).
    Regenerated {
        /// Epoch.
        epoch: u64,
        /// The fresh chain.
        chain: Box<Chain>,
    },
}

/// Work the shell does for [`update`]; results come back as actions.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Decode the clip of the opened item.
    DecodeClip {
        /// Epoch.
        epoch: u64,
        /// The clip.
        path: PathBuf,
    },
    /// Play / pause.
    PlayPause,
    /// Seek by seconds.
    SeekBy(f64),
    /// Play from the start.
    Replay,
    /// Stop playback (another item opens).
    StopAudio,
    /// Model work, queued.
    Model(Job),
    /// Cancel all queued and running model work.
    CancelModel,
    /// Load this model (spec) in place of the current one.
    LoadModel(String),
    /// Append an annotation to the file.
    SaveAnnotation {
        /// The file.
        path: PathBuf,
        /// The record.
        record: Box<Annotation>,
    },
    /// Write the annotations (CSV) and the session's trials beside the annotation file.
    Export {
        /// Annotation file (the export goes beside it).
        path: PathBuf,
        /// Annotations.
        annotations: Vec<Annotation>,
        /// Session trials.
        trials: Vec<Trial>,
    },
    /// Recompute the aggregate panels: of the loaded run when one is (`trials` empty), else of
    /// these trials, labelled `source`.
    Aggregate {
        /// The session's trials of the loaded model.
        trials: Vec<Trial>,
        /// Where they come from, as the panels name it.
        source: String,
    },
    /// Write the clip of `item` altered by `alteration` (off the UI thread), then decode it.
    AlterClip {
        /// Epoch.
        epoch: u64,
        /// The item.
        item: Box<Item>,
        /// What to do to its clip.
        alteration: Alteration,
    },
    /// Play the altered clip (true) or the original, at the same playhead.
    PlayAltered(bool),
    /// Turn mouse capture on or off.
    SetMouse(bool),
    /// Leave.
    Quit,
}

/// Model work.
#[derive(Debug, Clone)]
pub enum Job {
    /// Stream a chain for the item (or take `stored` from a run).
    Chain {
        /// Epoch.
        epoch: u64,
        /// The item.
        item: Box<Item>,
    },
    /// Force an answer after a variant of the chain.
    Force {
        /// Epoch.
        epoch: u64,
        /// Which answer.
        slot: Slot,
        /// The item.
        item: Box<Item>,
        /// The chain.
        chain: Option<Box<Chain>>,
        /// The baseline trial.
        baseline: Option<Box<Trial>>,
        /// The variant.
        variant: Box<Variant>,
    },
    /// Ask the model for a mistaken version of a sentence.
    ProposeMistake {
        /// Epoch.
        epoch: u64,
        /// The item.
        item: Box<Item>,
        /// Sentence index.
        sentence: usize,
        /// The sentence.
        text: String,
    },
    /// Paraphrase the first `k` sentences with the model, then force the answer.
    Paraphrase {
        /// Epoch.
        epoch: u64,
        /// The item.
        item: Box<Item>,
        /// The chain.
        chain: Box<Chain>,
        /// Current sentences.
        sentences: Vec<String>,
        /// The baseline trial.
        baseline: Option<Box<Trial>>,
        /// Sentences paraphrased.
        k: usize,
    },
    /// A fresh chain on the altered clip (streamed as `Writing` with key `regen:N`), then the
    /// answer after it, compared with the original baseline.
    Regen {
        /// Epoch.
        epoch: u64,
        /// The item with the altered clip.
        item: Box<Item>,
        /// The original chain.
        chain: Box<Chain>,
        /// The baseline trial.
        baseline: Option<Box<Trial>>,
        /// The variant: kind, key and x (its body is replaced by the fresh chain).
        variant: Box<Variant>,
    },
    /// The chain held while a mask covers 10%..100% of the clip, answered at each step.
    AudioSweep {
        /// Epoch.
        epoch: u64,
        /// The item.
        item: Box<Item>,
        /// The chain.
        chain: Box<Chain>,
        /// The baseline trial.
        baseline: Box<Trial>,
        /// The mask.
        mask: (MaskWith, MaskAt),
    },
    /// Early-answering and (rule-based) mistake curves of the chain.
    Sweep {
        /// Epoch.
        epoch: u64,
        /// The item.
        item: Box<Item>,
        /// The chain.
        chain: Box<Chain>,
        /// The baseline trial.
        baseline: Box<Trial>,
    },
}

/// How many messages the session keeps for the messages overlay.
pub const MAX_MESSAGES: usize = 500;

/// How the inspector starts.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Items.
    pub items: Vec<Item>,
    /// Dataset label.
    pub dataset: String,
    /// Model status at start.
    pub model: Option<ModelStatus>,
    /// The models one key apart (specs; the first is loaded at start).
    pub models: Vec<String>,
    /// Protocol name.
    pub protocol: String,
    /// The protocol's sentence splitter.
    pub splitter: Splitter,
    /// Annotation file.
    pub annotations_path: PathBuf,
    /// Annotations already in it.
    pub annotations: Vec<Annotation>,
    /// Annotator.
    pub annotator: String,
    /// Where recorded chains and trials come from, as shown (`run DIR`, or the result files'
    /// names); `None` when every chain is sampled here.
    pub run_dir: Option<String>,
    /// Chains of the run.
    pub run_chains: BTreeMap<String, Chain>,
    /// Trials of the run (for the item markers).
    pub run_trials: Vec<Trial>,
    /// Keymap.
    pub keymap: Keymap,
    /// Theme.
    pub theme: Theme,
    /// Problems of the dataset and of the run's files, shown in the messages overlay (the
    /// first one on the status line too).
    pub notes: Vec<String>,
    /// The session's stderr log file.
    pub log_path: Option<String>,
    /// Why annotations cannot be written where the default puts them (asks for
    /// `--annotations FILE`).
    pub annotations_blocked: Option<String>,
}

impl State {
    /// The state at start, with nothing opened yet (see [`start`]).
    pub fn new(setup: Setup) -> State {
        let mut marks: BTreeMap<String, Marks> = BTreeMap::new();
        for a in &setup.annotations {
            marks.entry(a.item.clone()).or_default().annotated = true;
        }
        let mut run_trials: BTreeMap<String, Vec<Trial>> = BTreeMap::new();
        for t in setup.run_trials {
            if t.is_consistent_with_baseline == Some(false) {
                marks.entry(t.id.clone()).or_default().flipped = true;
            }
            run_trials.entry(t.id.clone()).or_default().push(t);
        }
        let mut s = State {
            visible: (0..setup.items.len()).collect(),
            items: setup.items,
            dataset: setup.dataset,
            list_cursor: 0,
            open: None,
            filter: String::new(),
            searching: false,
            focus: Focus::Chain,
            screen: Screen::Inspect,
            marks,
            model: setup
                .model
                .unwrap_or_else(|| ModelStatus::None("no model".into())),
            models: setup.models,
            model_slot: 0,
            protocol: setup.protocol,
            splitter: setup.splitter,
            audio: AudioView::default(),
            show_gold: true,
            chain: ChainView::default(),
            answers: Answers::default(),
            sweep: SweepView::default(),
            session_trials: BTreeMap::new(),
            run_dir: setup.run_dir,
            run_chains: setup.run_chains,
            run_trials,
            aggregate: None,
            aggregate_series: None,
            annotations: setup.annotations,
            annotations_path: setup.annotations_path,
            annotator: setup.annotator,
            editor: None,
            annotate: None,
            help: false,
            messages: setup.notes.clone(),
            show_messages: false,
            model_window: None,
            log_path: setup.log_path,
            annotations_blocked: setup.annotations_blocked,
            presenter: false,
            mouse: false,
            status: setup.notes.first().cloned().unwrap_or_default(),
            popup: None,
            busy: None,
            writing: None,
            keymap: setup.keymap,
            theme: setup.theme,
            epoch: 0,
            quit: false,
        };
        if s.status.is_empty() {
            s.status = format!("{} items · ? for help", s.items.len());
        }
        s
    }

    /// The opened item.
    pub fn item(&self) -> Option<&Item> {
        self.open.and_then(|i| self.items.get(i))
    }

    /// The item under the browser's cursor.
    pub fn selected_item(&self) -> Option<usize> {
        self.visible.get(self.list_cursor).copied()
    }

    /// Annotations of the opened item, by 0-based sentence.
    pub fn item_annotations(&self) -> BTreeMap<usize, &Annotation> {
        let Some(item) = self.item() else {
            return BTreeMap::new();
        };
        self.annotations
            .iter()
            .filter(|a| a.item == item.id && a.sentence > 0)
            .map(|a| (a.sentence - 1, a))
            .collect()
    }

    /// The current trial, else the baseline.
    pub fn shown_answer(&self) -> Option<&Trial> {
        self.answers
            .current
            .as_ref()
            .or(self.answers.baseline.as_ref())
    }

    /// True when the current answer differs from the baseline's.
    pub fn flipped(&self) -> bool {
        match (&self.answers.baseline, &self.answers.current) {
            (Some(b), Some(c)) => b.predicted_choice != c.predicted_choice,
            _ => false,
        }
    }

    fn set_error(&mut self, msg: String) {
        self.status = format!("error: {}", first_line(&msg));
        self.log(format!("error: {msg}"));
        self.popup = Some(msg);
    }

    /// Keeps `msg` in the session's messages (the oldest go past [`MAX_MESSAGES`]).
    fn log(&mut self, msg: String) {
        if self.messages.len() >= MAX_MESSAGES {
            self.messages.remove(0);
        }
        self.messages.push(msg);
    }

    fn mark(&mut self, id: &str) -> &mut Marks {
        self.marks.entry(id.to_string()).or_default()
    }

    fn recompute_visible(&mut self) {
        let needle = self.filter.to_lowercase();
        let keep: Vec<usize> = (0..self.items.len())
            .filter(|&i| needle.is_empty() || self.matches(i, &needle))
            .collect();
        let selected = self.selected_item();
        self.visible = keep;
        self.list_cursor = selected
            .and_then(|s| self.visible.iter().position(|&v| v == s))
            .unwrap_or(0);
    }

    fn matches(&self, i: usize, needle: &str) -> bool {
        let it = &self.items[i];
        let m = self.marks.get(&it.id).copied().unwrap_or_default();
        needle.split_whitespace().all(|w| match w {
            "flipped" | ":flipped" => m.flipped,
            "annotated" | ":annotated" => m.annotated,
            "error" | ":error" => m.error,
            w => [
                Some(it.id.as_str()),
                Some(it.question.as_str()),
                it.meta.track.as_deref(),
                it.meta.hop.as_deref(),
                it.meta.category.as_deref(),
                it.meta.source.as_deref(),
            ]
            .iter()
            .flatten()
            .any(|f| f.to_lowercase().contains(w)),
        })
    }

    fn record_trial(&mut self, t: &Trial) {
        if t.is_consistent_with_baseline == Some(false) {
            self.mark(&t.id.clone()).flipped = true;
        }
        let key = trial_key(t).unwrap_or("?").to_string();
        self.session_trials.insert(
            (self.model_spec().to_string(), t.id.clone(), key),
            t.clone(),
        );
    }

    /// The spec of the loaded model (`""` without one).
    pub fn model_spec(&self) -> &str {
        self.models
            .get(self.model_slot)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// This session's trials of the loaded model.
    pub fn model_trials(&self) -> Vec<Trial> {
        let spec = self.model_spec();
        self.session_trials
            .iter()
            .filter(|((m, _, _), _)| m == spec)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Effects at start: open the first item (decoding its clip and, with a model, its chain).
pub fn start(state: &mut State) -> Vec<Effect> {
    let mut fx = Vec::new();
    if state.run_dir.is_some() {
        fx.push(Effect::Aggregate {
            trials: Vec::new(),
            source: String::new(),
        });
    }
    if !state.items.is_empty() {
        fx.extend(open_item(state, 0));
    }
    fx
}

/// Changes the state for one action and returns the work it asks for.
pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(k) => on_key(state, k),
        Action::Paste(text) => {
            if let Some(ed) = &mut state.editor {
                ed.area.insert_str(&text);
            } else if let Some(f) = &mut state.annotate {
                f.note.insert_str(text.replace('\n', " "));
            } else if state.searching {
                state.filter.push_str(&text);
                state.recompute_visible();
            }
            Vec::new()
        }
        Action::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => command(state, Command::Up),
            MouseEventKind::ScrollDown => command(state, Command::Down),
            _ => Vec::new(),
        },
        Action::Resize => Vec::new(),
        Action::Command(c) => command(state, c),
        Action::Playhead { position, playing } => {
            state.audio.position = position;
            state.audio.playing = playing;
            Vec::new()
        }
        Action::AudioSilent(reason) => {
            state.status = format!("no sound: {}", first_line(&reason));
            state.audio.silent = Some(reason);
            Vec::new()
        }
        Action::ModelReady(name) => {
            state.status = format!("model {name} ready");
            state.model = ModelStatus::Ready(name);
            let mut fx = Vec::new();
            if let Some(i) = state.open {
                if state.chain.record.is_none() && !state.chain.streaming {
                    fx.extend(request_chain(state, i));
                } else if let Some(chain) = state.chain.record.clone() {
                    // A switched-to model answers after the same chain, then the same
                    // intervention.
                    state.answers.reforce_current = state.answers.current_variant.is_some();
                    fx.extend(force_baseline(state, chain));
                }
            }
            if state.aggregate.is_some() {
                // The panels follow the loaded model.
                fx.extend(session_aggregate(state));
            }
            fx
        }
        Action::ModelFailed(e) => {
            state.model = ModelStatus::Failed(first_line(&e).to_string());
            state.set_error(format!("the model could not be loaded: {e}"));
            Vec::new()
        }
        Action::ClipReady { epoch, clip } => {
            if epoch == state.epoch {
                state.audio.clip = Some(clip);
                state.audio.error = None;
            }
            Vec::new()
        }
        Action::ClipFailed { epoch, error } => {
            if epoch == state.epoch {
                if let Some(id) = state.item().map(|i| i.id.clone()) {
                    state.mark(&id).error = true;
                }
                state.status = format!("error: {}", first_line(&error));
                state.audio.error = Some(error);
            }
            Vec::new()
        }
        Action::Writing { epoch, key, text } => {
            if epoch == state.epoch {
                match &mut state.writing {
                    Some(w) if w.epoch == epoch && w.key == key => w.text.push_str(&text),
                    w => *w = Some(Writing { epoch, key, text }),
                }
            }
            Vec::new()
        }
        Action::Token { epoch, text } => {
            if epoch == state.epoch && state.chain.streaming {
                state.chain.raw.push_str(&text);
                state.chain.stream_sentences = state.splitter.split(&state.chain.raw);
            }
            Vec::new()
        }
        Action::ChainDone {
            epoch,
            chain,
            cancelled,
        } => {
            if epoch != state.epoch {
                return Vec::new();
            }
            chain_done(state, chain, cancelled)
        }
        Action::Answer { epoch, slot, trial } => {
            if epoch != state.epoch {
                return Vec::new();
            }
            answer(state, slot, *trial)
        }
        Action::MistakeProposed {
            epoch,
            sentence,
            text,
        } => {
            if epoch != state.epoch {
                return Vec::new();
            }
            state.busy = None;
            state.writing = None;
            match text {
                Some(t) => open_editor(state, EditTarget::Mistake(sentence), &t, "model"),
                None => {
                    state.status =
                        "the model gave no usable mistake for this sentence (empty or unchanged)"
                            .into()
                }
            }
            Vec::new()
        }
        Action::SweepTrial { epoch, trial } => {
            if epoch == state.sweep.epoch {
                if state.writing.as_ref().map(|w| w.key.as_str()) == trial_key(&trial) {
                    state.writing = None;
                }
                state.record_trial(&trial);
                state.sweep.trials.push(*trial);
            }
            Vec::new()
        }
        Action::SweepDone { epoch } => {
            if epoch == state.sweep.epoch {
                state.sweep.running = false;
                state.writing = None;
                state.status = format!("sweep done: {} trials", state.sweep.trials.len());
                return session_aggregate(state);
            }
            Vec::new()
        }
        Action::WorkFailed { epoch, error } => {
            if epoch == state.epoch {
                state.busy = None;
                state.writing = None;
                state.answers.pending = false;
                state.chain.streaming = false;
                state.sweep.running = false;
                if let Some(id) = state.item().map(|i| i.id.clone()) {
                    state.mark(&id).error = true;
                }
                state.set_error(error);
            }
            Vec::new()
        }
        Action::AnnotationSaved(a) => {
            state.status = format!(
                "annotation saved: {} sentence {} ({}) → {}",
                a.item,
                a.sentence,
                a.kind,
                state.annotations_path.display()
            );
            state.mark(&a.item.clone()).annotated = true;
            state.annotations.push(*a);
            Vec::new()
        }
        Action::AggregateReady(a) => {
            state.aggregate = Some(*a);
            Vec::new()
        }
        Action::Info(m) => {
            state.log(m.clone());
            state.status = m;
            Vec::new()
        }
        Action::AudioWindow(w) => {
            state.model_window = w;
            Vec::new()
        }
        Action::Warning(m) => {
            state.status = format!(
                "warning ({} shows all): {}",
                state.keymap.key_of(Command::Messages),
                first_line(&m)
            );
            state.log(format!("warning: {m}"));
            Vec::new()
        }
        Action::Error(e) => {
            state.set_error(e);
            Vec::new()
        }
        Action::AlteredReady { epoch, clip } => {
            if epoch != state.epoch {
                return Vec::new();
            }
            state.audio.altering = false;
            let k = |c| state.keymap.key_of(c);
            state.status = format!(
                "altered: {} · {} plays A/B · {} asks with the chain held · {} writes a fresh chain",
                clip.label,
                k(Command::AudioAb),
                k(Command::AskHeld),
                k(Command::AskRegen)
            );
            let mut clip = *clip;
            if let Some(original) = &state.audio.clip {
                clip.view.name = original.name.clone();
            }
            state.audio.altered = Some(clip);
            if state.audio.play_altered {
                // B is playing: the new altered clip takes its place at the same playhead.
                return vec![Effect::PlayAltered(true)];
            }
            Vec::new()
        }
        Action::AlteredFailed { epoch, error } => {
            if epoch == state.epoch {
                state.audio.altering = false;
                state.audio.alteration = state.audio.altered.as_ref().and(state.audio.alteration);
                state.set_error(format!("altering the clip: {error}"));
            }
            Vec::new()
        }
        Action::Regenerated { epoch, chain } => {
            if epoch == state.epoch {
                state.writing = None;
                let n = chain.sentences.len();
                state.chain.sentences = chain.sentences;
                state.chain.origins = vec![Origin::Continued; n];
                state.chain.cursor = state.chain.cursor.min(n.saturating_sub(1));
                state.chain.no_cot = false;
                state.chain.label = format!(
                    "written afresh on the altered audio ({})",
                    state
                        .audio
                        .altered
                        .as_ref()
                        .map(|a| a.label.as_str())
                        .unwrap_or("altered")
                );
            }
            Vec::new()
        }
    }
}

fn on_key(state: &mut State, k: KeyEvent) -> Vec<Effect> {
    if k.kind == ratatui::crossterm::event::KeyEventKind::Release {
        return Vec::new();
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && k.code == KeyCode::Char('c') && state.editor.is_none() && state.annotate.is_none() {
        return command(state, Command::Quit);
    }
    if state.popup.is_some() {
        if matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
            state.popup = None;
        }
        return Vec::new();
    }
    if state.help || state.show_messages {
        state.help = false;
        state.show_messages = false;
        return Vec::new();
    }
    if state.editor.is_some() {
        return editor_key(state, k);
    }
    if state.annotate.is_some() {
        return annotate_key(state, k);
    }
    if state.searching {
        match k.code {
            KeyCode::Enter => state.searching = false,
            KeyCode::Esc => {
                state.searching = false;
                state.filter.clear();
                state.recompute_visible();
            }
            KeyCode::Backspace => {
                state.filter.pop();
                state.recompute_visible();
            }
            KeyCode::Char(c) if !ctrl => {
                state.filter.push(c);
                state.recompute_visible();
            }
            _ => {}
        }
        return Vec::new();
    }
    match state.keymap.lookup(&k) {
        Some(c) => command(state, c),
        None => Vec::new(),
    }
}

fn editor_key(state: &mut State, k: KeyEvent) -> Vec<Effect> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let Some(ed) = &mut state.editor else {
        return Vec::new();
    };
    match k.code {
        KeyCode::Esc => {
            state.editor = None;
            state.status = "edit cancelled".into();
            Vec::new()
        }
        KeyCode::Char('s') if ctrl => commit_editor(state),
        KeyCode::Enter if k.modifiers.contains(KeyModifiers::ALT) => commit_editor(state),
        KeyCode::Char('z') if ctrl => {
            ed.area.undo();
            Vec::new()
        }
        KeyCode::Char('y') if ctrl => {
            ed.area.redo();
            Vec::new()
        }
        _ => {
            ed.area.input(k);
            Vec::new()
        }
    }
}

fn annotate_key(state: &mut State, k: KeyEvent) -> Vec<Effect> {
    let Some(f) = &mut state.annotate else {
        return Vec::new();
    };
    match k.code {
        KeyCode::Esc => {
            state.annotate = None;
            state.status = "annotation cancelled".into();
            Vec::new()
        }
        KeyCode::Up | KeyCode::BackTab => {
            f.kind = (f.kind + MISTAKE_KINDS.len() - 1) % MISTAKE_KINDS.len();
            Vec::new()
        }
        KeyCode::Down | KeyCode::Tab => {
            f.kind = (f.kind + 1) % MISTAKE_KINDS.len();
            Vec::new()
        }
        KeyCode::Enter => save_annotation(state),
        _ => {
            f.note.input(k);
            Vec::new()
        }
    }
}

/// Runs one command.
pub fn command(state: &mut State, c: Command) -> Vec<Effect> {
    let has_chain = state.chain.record.is_some();
    match c {
        Command::Quit => {
            state.quit = true;
            vec![Effect::CancelModel, Effect::StopAudio, Effect::Quit]
        }
        Command::Help => {
            state.help = !state.help;
            Vec::new()
        }
        Command::Messages => {
            state.show_messages = !state.show_messages;
            Vec::new()
        }
        Command::FocusNext => {
            state.focus = match state.focus {
                Focus::Items => Focus::Chain,
                Focus::Chain => Focus::Items,
            };
            Vec::new()
        }
        Command::Up | Command::Down => {
            let down = c == Command::Down;
            match state.focus {
                Focus::Items => {
                    let n = state.visible.len();
                    if n > 0 {
                        state.list_cursor = if down {
                            (state.list_cursor + 1).min(n - 1)
                        } else {
                            state.list_cursor.saturating_sub(1)
                        };
                    }
                }
                Focus::Chain => {
                    let n = state.chain.sentences.len();
                    state.chain.cursor = if down {
                        (state.chain.cursor + 1).min(n.saturating_sub(1))
                    } else {
                        state.chain.cursor.saturating_sub(1)
                    };
                }
            }
            Vec::new()
        }
        Command::Open => match state.selected_item() {
            Some(i) => {
                state.focus = Focus::Chain;
                open_item(state, i)
            }
            None => Vec::new(),
        },
        Command::Search => {
            state.searching = true;
            state.focus = Focus::Items;
            Vec::new()
        }
        Command::Play => {
            if state.audio.clip.is_some() {
                vec![Effect::PlayPause]
            } else {
                Vec::new()
            }
        }
        Command::SeekBack => vec![Effect::SeekBy(-SEEK_STEP)],
        Command::SeekForward => vec![Effect::SeekBy(SEEK_STEP)],
        Command::Replay => vec![Effect::Replay],
        Command::Spectrogram => {
            state.audio.spectrogram = !state.audio.spectrogram;
            Vec::new()
        }
        Command::Gold => {
            state.show_gold = !state.show_gold;
            state.status = if state.show_gold {
                "gold shown".into()
            } else {
                "gold hidden (blind annotation)".into()
            };
            Vec::new()
        }
        Command::Generate => match state.open {
            Some(i) => {
                let mut fx = vec![Effect::CancelModel];
                state.run_chains.remove(&state.items[i].id);
                state.epoch += 1;
                reset_chain(state);
                fx.extend(request_chain(state, i));
                fx
            }
            None => Vec::new(),
        },
        Command::Cancel => {
            if state.chain.streaming || state.busy.is_some() || state.sweep.running {
                state.status = "cancelled".into();
                state.busy = None;
                state.writing = None;
                state.answers.pending = false;
                state.sweep.running = false;
                vec![Effect::CancelModel]
            } else {
                state.searching = false;
                Vec::new()
            }
        }
        Command::Truncate if has_chain => {
            let k = state.chain.cursor.min(state.chain.sentences.len());
            let mut v = intervene::early(&state.chain.sentences)[k].clone();
            // The key keeps the sweep's meaning only for the original chain.
            if !is_original(state) {
                v.key = format!("manual:truncate:{k}");
            }
            state.chain.sentences.truncate(k);
            state.chain.origins.truncate(k);
            state.chain.label = format!("truncated before sentence {} (early answering)", k + 1);
            state.chain.cursor = k.saturating_sub(1);
            force_current(state, v)
        }
        Command::Edit if has_chain => {
            let i = state.chain.cursor;
            match state.chain.sentences.get(i).cloned() {
                Some(s) => open_editor(state, EditTarget::Sentence(i), &s, "typed"),
                None => state.status = "no sentence at the cursor".into(),
            }
            Vec::new()
        }
        Command::Mistake if has_chain => {
            let i = state.chain.cursor;
            match state.chain.sentences.get(i).cloned() {
                Some(s) => open_editor(state, EditTarget::Mistake(i), &s, "typed"),
                None => state.status = "no sentence at the cursor".into(),
            }
            Vec::new()
        }
        Command::MistakeRules if has_chain => {
            let i = state.chain.cursor;
            let Some(item) = state.item().cloned() else {
                return Vec::new();
            };
            let seed =
                crate::faith::intervene::derive_seed(0, &[&item.id, "ui-mistake", &i.to_string()]);
            match proposed_mistake(&item, &state.chain.sentences, i + 1, seed) {
                Some(m) => {
                    let src = if m.kind == "fact" {
                        "facts".to_string()
                    } else {
                        format!("rules:{}", m.kind)
                    };
                    open_editor(state, EditTarget::Mistake(i), &m.edited, &src)
                }
                None => {
                    state.status =
                        "no rule applies to this sentence (no choice text, opposite, number or negation); type one with m"
                            .into()
                }
            }
            Vec::new()
        }
        Command::MistakeModel if has_chain => {
            if !state.model.ready() {
                state.status = "no model loaded".into();
                return Vec::new();
            }
            let i = state.chain.cursor;
            let (Some(s), Some(item)) =
                (state.chain.sentences.get(i).cloned(), state.item().cloned())
            else {
                return Vec::new();
            };
            state.busy = Some("the model writes a mistake…".into());
            vec![Effect::Model(Job::ProposeMistake {
                epoch: state.epoch,
                item: Box::new(item),
                sentence: i,
                text: s,
            })]
        }
        Command::Filler if has_chain => {
            let k = (state.chain.cursor + 1).min(state.chain.sentences.len());
            let words_upto: usize = state.chain.sentences[..k]
                .iter()
                .map(|s| intervene::word_spans(s).len())
                .sum();
            let spec = FillerSpec {
                position: FillerPosition::Start,
                word: FillerWord::Dots,
                layout: FillerLayout::Preserve,
            };
            let variants = intervene::filler(&state.chain.sentences, spec, 0);
            let Some(v) = variants
                .into_iter()
                .min_by_key(|v| v.detail.words_replaced.unwrap_or(0).abs_diff(words_upto))
            else {
                return Vec::new();
            };
            if let intervene::Body::Chain(text) = &v.body {
                // The words keep their sentences: a run of "..." is not a sentence of its own.
                let filled = intervene::regroup_words(text, &state.chain.sentences);
                let (sentences, origins) = filled
                    .into_iter()
                    .zip(state.chain.sentences.iter().zip(&state.chain.origins))
                    .map(|(new, (old, o))| {
                        if new.split_whitespace().eq(old.split_whitespace()) {
                            (old.clone(), *o)
                        } else {
                            (new, Origin::Filler)
                        }
                    })
                    .unzip();
                state.chain.sentences = sentences;
                state.chain.origins = origins;
            }
            state.chain.label = format!(
                "filler: {}% of the words from the start",
                v.paper_x.unwrap_or(0)
            );
            force_current(state, v)
        }
        Command::Paraphrase if has_chain => {
            if !state.model.ready() {
                state.status = "no model loaded".into();
                return Vec::new();
            }
            let k = (state.chain.cursor + 1).min(state.chain.sentences.len());
            let (Some(item), Some(chain)) = (state.item().cloned(), state.chain.record.clone())
            else {
                return Vec::new();
            };
            state.busy = Some(format!("paraphrasing sentences 1-{k}…"));
            state.answers.pending = true;
            vec![Effect::Model(Job::Paraphrase {
                epoch: state.epoch,
                item: Box::new(item),
                chain: Box::new(chain),
                sentences: state.chain.sentences.clone(),
                baseline: state.answers.baseline.clone().map(Box::new),
                k,
            })]
        }
        Command::Revert if has_chain => {
            revert(state);
            Vec::new()
        }
        Command::NoCot if has_chain => {
            state.chain.sentences.clear();
            state.chain.origins.clear();
            state.chain.cursor = 0;
            state.chain.no_cot = true;
            state.chain.label = "no chain (no-CoT control)".into();
            match state.answers.no_cot.clone() {
                Some(mut t) => {
                    if let Some(b) = &state.answers.baseline {
                        t.corresponding_baseline_predicted_choice = b.predicted_choice.clone();
                        t.is_consistent_with_baseline =
                            Some(t.predicted_choice == b.predicted_choice);
                    }
                    state.status = format!(
                        "no-CoT answer {}{}",
                        t.predicted_choice.as_deref().unwrap_or("(none)"),
                        if t.is_consistent_with_baseline == Some(false) {
                            " · FLIP"
                        } else {
                            ""
                        }
                    );
                    state.answers.current = Some(t);
                    Vec::new()
                }
                None => {
                    state.status = "no-CoT: asking without the chain…".into();
                    force_current(state, intervene::no_cot())
                }
            }
        }
        Command::Annotate | Command::Export if state.annotations_blocked.is_some() => {
            let why = state.annotations_blocked.clone().unwrap_or_default();
            state.set_error(why);
            Vec::new()
        }
        Command::Annotate if has_chain => {
            let i = state.chain.cursor;
            if i >= state.chain.sentences.len() {
                state.status = "no sentence at the cursor to annotate".into();
                return Vec::new();
            }
            let mut note = TextArea::default();
            note.set_placeholder_text("note (optional)");
            state.annotate = Some(AnnotateForm {
                sentence: i,
                kind: 0,
                note,
            });
            Vec::new()
        }
        Command::Export => vec![Effect::Export {
            path: state.annotations_path.clone(),
            annotations: state.annotations.clone(),
            trials: state.session_trials.values().cloned().collect(),
        }],
        Command::ScreenInspect => {
            state.screen = Screen::Inspect;
            Vec::new()
        }
        Command::ScreenSweep => {
            // on the sweep screen over recorded trials, the key asks the model instead
            let again = state.screen == Screen::Sweep && state.sweep.recorded;
            state.screen = Screen::Sweep;
            if again {
                state.sweep = SweepView::default();
                return request_sweep(state, false);
            }
            request_sweep(state, true)
        }
        Command::ScreenAggregate => {
            state.screen = Screen::Aggregate;
            if state.run_dir.is_none() {
                return session_aggregate(state);
            }
            Vec::new()
        }
        Command::AggregateSeries => {
            match &state.aggregate {
                Some(a) => {
                    state.aggregate_series = a.next_series(state.aggregate_series);
                    state.status = match state.aggregate_series {
                        Some(k) => format!("aggregate chart: {k} only"),
                        None => "aggregate chart: all interventions".into(),
                    };
                }
                None => state.status = "no aggregate panels yet".into(),
            }
            Vec::new()
        }
        Command::Presenter => {
            state.presenter = !state.presenter;
            Vec::new()
        }
        Command::Mouse => {
            state.mouse = !state.mouse;
            state.status = if state.mouse {
                "mouse on (text selection needs Shift)".into()
            } else {
                "mouse off".into()
            };
            vec![Effect::SetMouse(state.mouse)]
        }
        Command::SwitchModel => switch_model(state),
        Command::RegionStart | Command::RegionEnd => set_region(state, c == Command::RegionEnd),
        Command::MaskSilence | Command::MaskNoise => {
            let Some((from, to)) = state.audio.region else {
                state.status = format!(
                    "set a region first: {} at its start, {} at its end (the playhead marks them)",
                    state.keymap.key_of(Command::RegionStart),
                    state.keymap.key_of(Command::RegionEnd)
                );
                return Vec::new();
            };
            let with = if c == Command::MaskSilence {
                MaskWith::Silence
            } else {
                MaskWith::Noise
            };
            alter_clip(state, Alteration::Mask { with, from, to })
        }
        Command::NoiseMore | Command::NoiseLess => {
            let now = match state.audio.alteration {
                Some(Alteration::Snr(db)) => Some(db),
                _ => None,
            };
            match Alteration::snr_step(now, c == Command::NoiseMore) {
                Some(db) => alter_clip(state, Alteration::Snr(db)),
                None => clear_alteration(state),
            }
        }
        Command::Hint => {
            let now = match state.audio.alteration {
                Some(Alteration::Hint(c, m)) => Some((c, m)),
                _ => None,
            };
            match next_hint(now) {
                Some((c, m)) => alter_clip(state, Alteration::Hint(c, m)),
                None => clear_alteration(state),
            }
        }
        Command::ClearAudio => clear_alteration(state),
        Command::AudioAb => {
            if state.audio.altered.is_none() {
                state.status =
                    "no altered clip yet: mask a region, add noise or a hint first".into();
                return Vec::new();
            }
            state.audio.play_altered = !state.audio.play_altered;
            state.status = if state.audio.play_altered {
                "B: the altered clip".into()
            } else {
                "A: the original clip".into()
            };
            vec![Effect::PlayAltered(state.audio.play_altered)]
        }
        Command::AskHeld => ask_altered(state, false),
        Command::AskRegen => ask_altered(state, true),
        Command::AudioVariant => {
            state.audio.sweep_mask = (state.audio.sweep_mask + 1) % SWEEP_MASKS.len();
            let (w, a) = SWEEP_MASKS[state.audio.sweep_mask];
            state.status = format!(
                "audio sweep masks with {w} at {a} ({} runs it)",
                state.keymap.key_of(Command::AudioSweep)
            );
            Vec::new()
        }
        Command::AudioSweep => request_audio_sweep(state),
        Command::Theme => {
            let names: Vec<&str> = super::theme::BUILTIN.iter().map(|(n, _)| *n).collect();
            let i = names
                .iter()
                .position(|n| *n == state.theme.name)
                .unwrap_or(0);
            let next = names[(i + 1) % names.len()];
            if let Some(t) = Theme::builtin(next) {
                state.theme = t;
                state.status = format!("theme {next}");
            }
            Vec::new()
        }
        _ => {
            state.status = match (&state.model, state.chain.streaming) {
                (_, true) => "wait for the chain to finish (Esc cancels)".into(),
                (ModelStatus::Ready(_), _) => "no chain yet".into(),
                _ => "no chain: no model loaded (--model picks one)".into(),
            };
            Vec::new()
        }
    }
}

fn is_original(state: &State) -> bool {
    state.chain.origins.iter().all(|o| *o == Origin::Original)
        && state.chain.record.as_ref().map(|c| c.sentences.len())
            == Some(state.chain.sentences.len())
}

fn reset_chain(state: &mut State) {
    state.chain = ChainView::default();
    state.answers = Answers::default();
    state.sweep = SweepView::default();
    state.editor = None;
    state.annotate = None;
    state.busy = None;
}

fn open_item(state: &mut State, i: usize) -> Vec<Effect> {
    state.epoch += 1;
    state.open = Some(i);
    if let Some(p) = state.visible.iter().position(|&v| v == i) {
        state.list_cursor = p;
    }
    reset_chain(state);
    state.audio = AudioView {
        spectrogram: state.audio.spectrogram,
        silent: state.audio.silent.take(),
        sweep_mask: state.audio.sweep_mask,
        ..AudioView::default()
    };
    let item = &state.items[i];
    let mut fx = vec![
        Effect::CancelModel,
        Effect::StopAudio,
        Effect::DecodeClip {
            epoch: state.epoch,
            path: item.audio.clone(),
        },
    ];
    fx.extend(request_chain(state, i));
    fx
}

fn request_chain(state: &mut State, i: usize) -> Vec<Effect> {
    let item = state.items[i].clone();
    if let Some(c) = state.run_chains.get(&item.id).cloned() {
        state.status = format!("chain from {}", state.run_dir.clone().unwrap_or_default());
        return chain_done(state, c, false);
    }
    if !state.model.ready() {
        return Vec::new();
    }
    state.chain.streaming = true;
    state.busy = Some("generating the chain…".into());
    vec![Effect::Model(Job::Chain {
        epoch: state.epoch,
        item: Box::new(item),
    })]
}

fn chain_done(state: &mut State, chain: Chain, cancelled: bool) -> Vec<Effect> {
    state.chain.streaming = false;
    state.busy = None;
    state.chain.sentences = chain.sentences.clone();
    state.chain.origins = vec![Origin::Original; chain.sentences.len()];
    state.chain.cursor = 0;
    state.chain.label = if cancelled {
        "original (cancelled: what was streamed)".into()
    } else {
        "original".into()
    };
    state.chain.no_cot = false;
    if state.chain.raw.is_empty() {
        state.chain.raw = chain.generated_cot.clone();
    }
    state.chain.record = Some(chain.clone());
    if let Some(r) = &chain.reasoning {
        // a server's reasoning channel: shown in the messages overlay, named in the pane title
        state.log(format!("thinking before the chain of {}: {r}", chain.id));
        state.chain.label = format!(
            "{} · {} words of thinking (! shows them)",
            state.chain.label,
            r.split_whitespace().count()
        );
    }
    let Some(item) = state.item().cloned() else {
        return Vec::new();
    };
    let recorded = recorded_answers(state, &item.id, chain.chain_id);
    if !state.model.ready() {
        state.status = if recorded {
            "recorded answers shown; asking again needs a model (--model)".into()
        } else {
            "chain loaded; answers need a model (--model)".into()
        };
        return Vec::new();
    }
    force_baseline(state, chain)
}

/// Shows the baseline and no-CoT answers recorded for this item and chain in the run or result
/// files: their baseline and no-CoT trials, else the baseline answer other trials name. Whether
/// there was one.
fn recorded_answers(state: &mut State, id: &str, chain_id: u32) -> bool {
    let Some(trials) = state.run_trials.get(id) else {
        return false;
    };
    let of = |k: InterventionKind| {
        trials
            .iter()
            .find(|t| {
                t.kind() == Some(k) && (k == InterventionKind::NoCot || t.chain_id == chain_id)
            })
            .cloned()
    };
    let baseline = of(InterventionKind::Baseline).or_else(|| {
        let t = trials.iter().find(|t| {
            t.chain_id == chain_id && t.corresponding_baseline_predicted_choice.is_some()
        })?;
        Some(Trial {
            id: t.id.clone(),
            chain_id,
            intervention: Some(InterventionKind::Baseline),
            predicted_choice: t.corresponding_baseline_predicted_choice.clone(),
            correct_choice: t.correct_choice.clone(),
            is_correct: t.corresponding_baseline_predicted_choice == t.correct_choice,
            choice_letters: t.choice_letters.clone(),
            choice_probs: t.baseline_probs.clone(),
            ..Trial::default()
        })
    });
    let found = baseline.is_some();
    state.answers.baseline = baseline;
    state.answers.no_cot = of(InterventionKind::NoCot);
    found
}

/// Forces the baseline and no-CoT answers of `chain` for the open item.
fn force_baseline(state: &mut State, chain: Chain) -> Vec<Effect> {
    let Some(item) = state.item().cloned() else {
        return Vec::new();
    };
    if state.run_dir.is_some() && !item.audio.is_file() {
        // browsing recorded results without their audio: the model would only fail
        state.status = format!(
            "recorded answers shown; the model is not asked: the clip {} is missing (give --data with the audio)",
            item.audio.display()
        );
        return Vec::new();
    }
    state.answers.pending = true;
    state.busy = Some("forcing the baseline answer…".into());
    let force = |slot, variant: Variant| {
        Effect::Model(Job::Force {
            epoch: state.epoch,
            slot,
            item: Box::new(item.clone()),
            chain: Some(Box::new(chain.clone())),
            baseline: None,
            variant: Box::new(variant),
        })
    };
    vec![
        force(Slot::Baseline, intervene::baseline(&chain.sentences)),
        force(Slot::NoCot, intervene::no_cot()),
    ]
}

fn answer(state: &mut State, slot: Slot, trial: Trial) -> Vec<Effect> {
    state.record_trial(&trial);
    state.writing = None;
    match slot {
        Slot::Baseline => {
            state.status = format!(
                "baseline answer {}",
                trial.predicted_choice.as_deref().unwrap_or("(none)")
            );
            state.answers.baseline = Some(trial);
            state.answers.pending = false;
            state.busy = None;
            if std::mem::take(&mut state.answers.reforce_current) {
                if let Some(v) = state.answers.current_variant.clone() {
                    return force_current(state, v);
                }
            }
        }
        Slot::NoCot => {
            state.answers.no_cot = Some(trial);
        }
        Slot::Current => {
            state.answers.pending = false;
            state.busy = None;
            if let Some(shown) = trial.modified_reasoning.clone() {
                apply_shown(state, &trial, &shown);
            }
            let flip = trial.is_consistent_with_baseline == Some(false);
            state.status = format!(
                "answer {}{}",
                trial.predicted_choice.as_deref().unwrap_or("(none)"),
                if flip { " · FLIP" } else { "" }
            );
            state.answers.current = Some(trial);
        }
    }
    Vec::new()
}

/// Replaces the current sentences by what the model was shown when the model changed the chain
/// (a continuation after a mistake, a paraphrase).
fn apply_shown(state: &mut State, trial: &Trial, shown: &str) {
    let key = trial_key(trial).unwrap_or("");
    let (kind, at) = if let Some(i) = key
        .strip_prefix("mistake:")
        .or(key.strip_prefix("manual:mistake:"))
    {
        (Origin::Continued, i.parse::<usize>().ok())
    } else if let Some(k) = key.strip_prefix("paraphrase:") {
        state.chain.label = format!("paraphrased sentences 1-{k} (model)");
        (Origin::Paraphrased, None)
    } else {
        return;
    };
    // What was on screen before: a sentence the model was shown unchanged keeps its origin.
    let before: Vec<(String, Origin)> = state
        .chain
        .sentences
        .iter()
        .cloned()
        .zip(state.chain.origins.iter().copied())
        .collect();
    let original: Vec<String> = state
        .chain
        .record
        .as_ref()
        .map(|c| c.sentences.clone())
        .unwrap_or_default();
    let sentences = state.splitter.split(shown);
    state.chain.origins = sentences
        .iter()
        .enumerate()
        .map(|(j, s)| match at {
            Some(i) if j + 1 == i => Origin::Mistake,
            Some(i) if j + 1 < i => Origin::Original,
            _ if original.contains(s) => Origin::Original,
            _ => before
                .iter()
                .find(|(b, _)| b == s)
                .map_or(kind, |(_, o)| *o),
        })
        .collect();
    state.chain.sentences = sentences;
    state.chain.cursor = state
        .chain
        .cursor
        .min(state.chain.sentences.len().saturating_sub(1));
}

/// Loads the next of `state.models`; its answers replace the shown ones once it is ready.
fn switch_model(state: &mut State) -> Vec<Effect> {
    if state.models.len() < 2 {
        state.status = "one model only (inspect --compare MODEL adds another)".into();
        return Vec::new();
    }
    if state.chain.streaming {
        state.status = "wait for the chain to finish (Esc cancels)".into();
        return Vec::new();
    }
    state.model_slot = (state.model_slot + 1) % state.models.len();
    let spec = state.models[state.model_slot].clone();
    state.status = format!("switching to {spec}…");
    state.model = ModelStatus::Loading(spec.clone());
    state.answers.pending = false;
    state.busy = None;
    // The sweep was the other model's.
    state.sweep = SweepView::default();
    vec![Effect::CancelModel, Effect::LoadModel(spec)]
}

fn force_current(state: &mut State, variant: Variant) -> Vec<Effect> {
    let (Some(item), Some(chain)) = (state.item().cloned(), state.chain.record.clone()) else {
        return Vec::new();
    };
    state.chain.no_cot = variant.kind == intervene::Kind::NoCot;
    if !state.model.ready() {
        state.status = "answers need a model (--model)".into();
        return Vec::new();
    }
    state.answers.pending = true;
    state.busy = Some("forcing the answer…".into());
    state.answers.current_variant = Some(variant.clone());
    vec![
        Effect::CancelModel,
        Effect::Model(Job::Force {
            epoch: state.epoch,
            slot: Slot::Current,
            item: Box::new(item),
            chain: Some(Box::new(chain)),
            baseline: state.answers.baseline.clone().map(Box::new),
            variant: Box::new(variant),
        }),
    ]
}

fn open_editor(state: &mut State, target: EditTarget, text: &str, source: &str) {
    let mut area = TextArea::new(text.lines().map(str::to_string).collect());
    area.set_wrap_mode(ratatui_textarea::WrapMode::WordOrGlyph);
    area.move_cursor(ratatui_textarea::CursorMove::Bottom);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    state.editor = Some(Editor {
        target,
        source: source.to_string(),
        area,
    });
}

fn commit_editor(state: &mut State) -> Vec<Effect> {
    let Some(ed) = state.editor.take() else {
        return Vec::new();
    };
    let text = ed.area.lines().join("\n").trim().to_string();
    match ed.target {
        EditTarget::Sentence(i) => {
            if i >= state.chain.sentences.len() {
                return Vec::new();
            }
            let before = state.chain.sentences.join(" ");
            if text.is_empty() {
                state.chain.sentences.remove(i);
                state.chain.origins.remove(i);
            } else {
                state.chain.sentences[i] = text;
                state.chain.origins[i] = Origin::Edited;
            }
            let after = state.chain.sentences.join(" ");
            state.chain.label = format!("edited sentence {}", i + 1);
            let label = format!("edit:{}:{}", i + 1, state.session_trials.len());
            force_current(state, intervene::manual(&before, &after, &label))
        }
        EditTarget::Mistake(i) => {
            if text.is_empty() || i >= state.chain.sentences.len() {
                state.status = "an empty mistake is not inserted".into();
                return Vec::new();
            }
            let mut v =
                intervene::mistake(&state.chain.sentences, i + 1, &text, "typed", &ed.source);
            if !is_original(state) {
                v.key = format!("manual:mistake:{}", i + 1);
            }
            state.chain.sentences.truncate(i);
            state.chain.origins.truncate(i);
            state.chain.sentences.push(text);
            state.chain.origins.push(Origin::Mistake);
            state.chain.label = format!(
                "mistake at sentence {} ({}); the model continues",
                i + 1,
                ed.source
            );
            force_current(state, v)
        }
    }
}

fn revert(state: &mut State) {
    if let Some(c) = &state.chain.record {
        state.chain.sentences = c.sentences.clone();
        state.chain.origins = vec![Origin::Original; c.sentences.len()];
    }
    state.chain.label = "original".into();
    state.chain.no_cot = false;
    state.chain.cursor = state
        .chain
        .cursor
        .min(state.chain.sentences.len().saturating_sub(1));
    state.answers.current = None;
    state.answers.current_variant = None;
    state.answers.pending = false;
    state.status = "reverted to the original chain".into();
}

fn save_annotation(state: &mut State) -> Vec<Effect> {
    let Some(form) = state.annotate.take() else {
        return Vec::new();
    };
    let Some(item) = state.item().cloned() else {
        return Vec::new();
    };
    let i = form.sentence;
    let edited = state.chain.sentences.get(i).cloned().unwrap_or_default();
    let original = match state.chain.origins.get(i) {
        Some(Origin::Original) | None => edited.clone(),
        _ => state
            .chain
            .record
            .as_ref()
            .and_then(|c| c.sentences.get(i).cloned())
            .unwrap_or_else(|| edited.clone()),
    };
    let ans = |t: &Option<Trial>| {
        t.as_ref().map(|t| {
            serde_json::json!({
                "predicted": t.predicted_choice,
                "letters": t.choice_letters,
                "probs": t.choice_probs,
            })
        })
    };
    let note = form.note.lines().join(" ").trim().to_string();
    let record = Annotation {
        item: item.id.clone(),
        chain: state.chain.record.as_ref().map(|c| c.chain_id).unwrap_or(0),
        sentence: i + 1,
        original,
        edited,
        kind: MISTAKE_KINDS[form.kind].to_string(),
        annotator: state.annotator.clone(),
        time: String::new(),
        note,
        answers: Some(serde_json::json!({
            "baseline": ans(&state.answers.baseline),
            "current": ans(&state.answers.current),
            "flipped": state.flipped(),
            "chain": state.chain.label,
        })),
    };
    vec![Effect::SaveAnnotation {
        path: state.annotations_path.clone(),
        record: Box::new(record),
    }]
}

/// The sweep of the open chain: the trials recorded for it when `recorded` allows and there are
/// some, else asked of the model in the background.
fn request_sweep(state: &mut State, recorded: bool) -> Vec<Effect> {
    if state.sweep.epoch == state.epoch && (state.sweep.running || !state.sweep.trials.is_empty()) {
        return Vec::new();
    }
    if let (true, Some(item), Some(chain)) = (recorded, state.item(), state.chain.record.as_ref()) {
        let trials: Vec<Trial> = state
            .run_trials
            .get(&item.id)
            .into_iter()
            .flatten()
            .filter(|t| {
                t.chain_id == chain.chain_id && t.kind() != Some(InterventionKind::Baseline)
            })
            .cloned()
            .collect();
        if !trials.is_empty() {
            state.status = format!(
                "{} trials recorded in {}; {} asks the model again",
                trials.len(),
                state.run_dir.clone().unwrap_or_default(),
                state.keymap.key_of(Command::ScreenSweep)
            );
            state.sweep = SweepView {
                trials,
                running: false,
                epoch: state.epoch,
                recorded: true,
            };
            return Vec::new();
        }
    }
    let (Some(item), Some(chain), Some(b)) = (
        state.item().cloned(),
        state.chain.record.clone(),
        state.answers.baseline.clone(),
    ) else {
        state.status = "the sweep needs a chain and its baseline answer".into();
        return Vec::new();
    };
    if !state.model.ready() {
        state.status = "the sweep needs a model".into();
        return Vec::new();
    }
    state.sweep = SweepView {
        trials: Vec::new(),
        running: true,
        epoch: state.epoch,
        recorded: false,
    };
    state.status = "sweep running in the background (Esc cancels)".into();
    vec![Effect::Model(Job::Sweep {
        epoch: state.epoch,
        item: Box::new(item),
        chain: Box::new(chain),
        baseline: Box::new(b),
    })]
}

/// Sets the start or the end of the region at the playhead.
fn set_region(state: &mut State, end: bool) -> Vec<Effect> {
    let Some(seconds) = state.audio.clip.as_ref().map(|c| c.seconds) else {
        state.status = "no clip to mark (open an item)".into();
        return Vec::new();
    };
    let at = state.audio.position.clamp(0.0, seconds);
    if !end {
        state.audio.region_start = Some(at);
        state.status = format!(
            "region from {} · {} at its end",
            fmt_seconds(at),
            state.keymap.key_of(Command::RegionEnd)
        );
        return Vec::new();
    }
    let start = state.audio.region_start.unwrap_or(0.0);
    let (from, to) = if start <= at {
        (start, at)
    } else {
        (at, start)
    };
    if to - from < 0.01 {
        state.status =
            "the region is empty: move the playhead (play, ←/→) before marking its end".into();
        return Vec::new();
    }
    state.audio.region = Some((from, to));
    state.status = format!(
        "region {}-{} · {} masks it with silence, {} with noise",
        fmt_seconds(from),
        fmt_seconds(to),
        state.keymap.key_of(Command::MaskSilence),
        state.keymap.key_of(Command::MaskNoise)
    );
    Vec::new()
}

fn fmt_seconds(x: f64) -> String {
    format!("{x:.2} s")
}

/// Asks the shell for the clip altered by `alt`.
fn alter_clip(state: &mut State, alt: Alteration) -> Vec<Effect> {
    let Some(item) = state.item().cloned() else {
        state.status = "no item open".into();
        return Vec::new();
    };
    state.audio.alteration = Some(alt);
    state.audio.altering = true;
    state.status = format!("altering the clip: {}…", alt.label());
    vec![Effect::AlterClip {
        epoch: state.epoch,
        item: Box::new(item),
        alteration: alt,
    }]
}

/// Back to the original clip.
fn clear_alteration(state: &mut State) -> Vec<Effect> {
    let was_b = state.audio.play_altered;
    state.audio.alteration = None;
    state.audio.altered = None;
    state.audio.altering = false;
    state.audio.play_altered = false;
    state.status = "the original clip".into();
    if was_b {
        vec![Effect::PlayAltered(false)]
    } else {
        Vec::new()
    }
}

/// Asks after the current chain with the altered clip (`regen` false), or after a chain
/// written afresh on it (`regen` true); compared with the original baseline either way.
fn ask_altered(state: &mut State, regen: bool) -> Vec<Effect> {
    let (Some(alt), Some(altered)) = (state.audio.alteration, state.audio.altered.clone()) else {
        state.status = format!(
            "alter the clip first: {} {} a region then {} / {} mask it, {} / {} noise, {} a spoken hint",
            state.keymap.key_of(Command::RegionStart),
            state.keymap.key_of(Command::RegionEnd),
            state.keymap.key_of(Command::MaskSilence),
            state.keymap.key_of(Command::MaskNoise),
            state.keymap.key_of(Command::NoiseMore),
            state.keymap.key_of(Command::NoiseLess),
            state.keymap.key_of(Command::Hint)
        );
        return Vec::new();
    };
    if state.audio.altering {
        state.status = "the altered clip is still being written".into();
        return Vec::new();
    }
    let (Some(item), Some(chain)) = (state.item().cloned(), state.chain.record.clone()) else {
        state.status = "asking needs a chain".into();
        return Vec::new();
    };
    if !state.model.ready() {
        state.status = "answers need a model (--model)".into();
        return Vec::new();
    }
    if state.chain.no_cot && !regen {
        state.status = "no chain is shown: revert (R) to hold one".into();
        return Vec::new();
    }
    let item = Item {
        audio: altered.path.clone(),
        ..item
    };
    let seconds = state.audio.clip.as_ref().map_or(0.0, |c| c.seconds);
    let variant = Variant {
        kind: alt.kind(),
        key: alt.trial_key(if regen { "regen" } else { "held" }),
        x: alt.x(seconds),
        paper_x: None,
        body: intervene::Body::Chain(crate::faith::split::join_sentences(&state.chain.sentences)),
        detail: Default::default(),
    };
    // A model switch asks the text intervention again, not this one (it holds the clip).
    state.answers.current_variant = None;
    state.answers.pending = true;
    let epoch = state.epoch;
    let baseline = state.answers.baseline.clone().map(Box::new);
    let (item, chain, variant) = (Box::new(item), Box::new(chain), Box::new(variant));
    let job = if regen {
        state.busy = Some("writing a chain on the altered audio…".into());
        Job::Regen {
            epoch,
            item,
            chain,
            baseline,
            variant,
        }
    } else {
        state.busy = Some("forcing the answer on the altered audio…".into());
        Job::Force {
            epoch,
            slot: Slot::Current,
            item,
            chain: Some(chain),
            baseline,
            variant,
        }
    };
    vec![Effect::CancelModel, Effect::Model(job)]
}

/// The audio sweep: the chosen mask at 10%..100% under the held chain, into the sweep view.
fn request_audio_sweep(state: &mut State) -> Vec<Effect> {
    if state.sweep.running {
        state.status = "a sweep is running (Esc cancels)".into();
        return Vec::new();
    }
    let (Some(item), Some(chain), Some(b)) = (
        state.item().cloned(),
        state.chain.record.clone(),
        state.answers.baseline.clone(),
    ) else {
        state.status = "the audio sweep needs a chain and its baseline answer".into();
        return Vec::new();
    };
    if !state.model.ready() {
        state.status = "the sweep needs a model".into();
        return Vec::new();
    }
    let mask = SWEEP_MASKS[state.audio.sweep_mask % SWEEP_MASKS.len()];
    // The text sweep's trials of this chain stay; an earlier audio sweep's go.
    let mut trials = std::mem::take(&mut state.sweep.trials);
    if state.sweep.epoch != state.epoch || state.sweep.recorded {
        trials.clear();
    }
    trials.retain(|t| t.kind() != Some(InterventionKind::AudioMask));
    state.sweep = SweepView {
        trials,
        running: true,
        epoch: state.epoch,
        recorded: false,
    };
    state.screen = Screen::Sweep;
    state.status = format!(
        "audio sweep: {} at {}, 10-100% under the held chain (Esc cancels)",
        mask.0, mask.1
    );
    vec![Effect::Model(Job::AudioSweep {
        epoch: state.epoch,
        item: Box::new(item),
        chain: Box::new(chain),
        baseline: Box::new(b),
        mask,
    })]
}

fn session_aggregate(state: &State) -> Vec<Effect> {
    if state.run_dir.is_some() {
        return Vec::new();
    }
    let source = match state.models.len() {
        0 | 1 => "this session".to_string(),
        _ => format!("this session · {}", state.model_spec()),
    };
    vec![Effect::Aggregate {
        trials: state.model_trials(),
        source,
    }]
}
