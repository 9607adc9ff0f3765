//! Helpers for tests and benchmarks of the inspector: a deterministic [`Reasoner`] test double
//! (pure logic, no model) and [`drive`], which runs [`update`] and carries out its effects
//! synchronously, the way the shell does with tasks.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::data::Item;
use crate::faith::protocol::Protocol;
use crate::model::{
    ChoiceProbs, Conversation, GenParams, Generation, ModelError, Reasoner, Role, StopReason,
};

use super::aggregate;
use super::keymap::Command;
use super::keymap::Keymap;
use super::state::{update, Action, ClipView, Effect, ModelStatus, Setup, State};
use super::theme::Theme;
use super::work::{self, ModelCtx};

/// The chain the test double writes: paper-v1 drops its last sentence, leaving three.
pub const CHAIN: &str =
    "I hear barking. The barking is loud and close. A cat would meow instead. So the answer is (A).";

/// A deterministic stand-in for a model: it streams [`CHAIN`] word by word, continues a partial
/// chain with "The meowing is clear.", writes "I hear meowing." as a mistake, and answers from
/// how often "bark" occurs after the question: P(A) = 0.3 + 0.25 per occurrence (capped at 0.95).
#[derive(Debug, Default)]
pub struct Scripted;

impl Scripted {
    fn p_a(conv: &Conversation) -> f32 {
        let text: String = conv
            .messages
            .iter()
            .skip(1)
            .map(|m| m.text.as_str())
            .chain(conv.prefill.as_deref())
            .collect::<Vec<_>>()
            .join(" ");
        let n = text.matches("bark").count() as f32;
        (0.3 + 0.25 * n).min(0.95)
    }

    fn probs(conv: &Conversation, letters: &[String]) -> Vec<f32> {
        first_letter(Self::p_a(conv), letters.len())
    }
}

impl Reasoner for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn generate(
        &self,
        conv: &Conversation,
        _params: &GenParams,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        let last = conv.messages.last();
        let text = match last {
            Some(m) if m.role == Role::User && m.text.contains("most likely answer") => {
                let p = Self::probs(conv, &["A".into(), "B".into()]);
                if p[0] >= p[1] { "(A)" } else { "(B)" }.to_string()
            }
            Some(m)
                if m.role == Role::Assistant && m.text.trim() == "Let's think step by step:" =>
            {
                CHAIN.to_string()
            }
            Some(m) if m.role == Role::Assistant => "The meowing is clear.".to_string(),
            _ => "I hear meowing.".to_string(),
        };
        let mut out = String::new();
        let mut stop = StopReason::EndToken;
        for (i, w) in text.split(' ').enumerate() {
            let piece = if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            };
            out.push_str(&piece);
            if on_delta(&piece).is_break() {
                stop = StopReason::Cancelled;
                break;
            }
        }
        Ok(Generation {
            text: out,
            tokens: Vec::new(),
            stop,
            reasoning: String::new(),
        })
    }

    fn choice_probs(
        &self,
        conv: &Conversation,
        letters: &[String],
    ) -> Result<ChoiceProbs, ModelError> {
        Ok(choice_probs(letters, Self::probs(conv, letters)))
    }
}

/// `a` for the first of `n` letters, the rest shared equally by the others.
fn first_letter(a: f32, n: usize) -> Vec<f32> {
    let rest = (1.0 - a) / (n.max(2) - 1) as f32;
    (0..n).map(|i| if i == 0 { a } else { rest }).collect()
}

/// The double's answer distribution over `letters`.
fn choice_probs(letters: &[String], probs: Vec<f32>) -> ChoiceProbs {
    ChoiceProbs {
        letters: letters.to_vec(),
        logprobs: probs.iter().map(|p| p.ln()).collect(),
        probs,
        missing: Vec::new(),
    }
}

/// A post-hoc stand-in: it reasons like [`Scripted`] but answers A with probability 0.8 whatever
/// the chain says (for stories that switch between a faithful and a post-hoc model).
#[derive(Debug, Default)]
pub struct PostHoc;

impl Reasoner for PostHoc {
    fn name(&self) -> &str {
        "posthoc"
    }

    fn generate(
        &self,
        conv: &Conversation,
        params: &GenParams,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        let mut g = Scripted.generate(conv, params, on_delta)?;
        if g.text == "(B)" {
            g.text = "(A)".into();
        }
        Ok(g)
    }

    fn choice_probs(
        &self,
        _conv: &Conversation,
        letters: &[String],
    ) -> Result<ChoiceProbs, ModelError> {
        Ok(choice_probs(letters, first_letter(0.8, letters.len())))
    }
}

/// Two items about barking and meowing (the clips need not exist for update-level tests).
pub fn items() -> Vec<Item> {
    let mk = |id: &str, track: &str, hop: &str, gold: usize| Item {
        id: id.into(),
        audio: PathBuf::from(format!("samples/{id}.wav")),
        question: "Which animal is heard?".into(),
        choices: vec!["dog".into(), "cat".into()],
        gold: Some(gold),
        meta: crate::data::ItemMeta {
            track: Some(track.into()),
            hop: Some(hop.into()),
            category: Some("animal".into()),
            ..Default::default()
        },
    };
    vec![
        mk("animal_0_single", "Animal", "single", 0),
        mk("animal_1_multi", "Animal", "multi", 1),
    ]
}

/// A state over `items` with the model marked ready (the test double) and the given theme.
pub fn state(items: Vec<Item>, annotations: PathBuf, theme: Theme) -> State {
    State::new(Setup {
        items,
        dataset: "test".into(),
        model: Some(ModelStatus::Ready("scripted".into())),
        protocol: "paper-v1".into(),
        annotations_path: annotations,
        annotator: "tester".into(),
        keymap: Keymap::default(),
        theme,
        ..Setup::default()
    })
}

/// The model context of the test double with the paper-v1 protocol.
pub fn ctx() -> ModelCtx {
    ctx_with(Arc::new(Scripted))
}

/// The model context of `reasoner` with the paper-v1 protocol.
pub fn ctx_with(reasoner: Arc<dyn Reasoner>) -> ModelCtx {
    ModelCtx {
        reasoner,
        protocol: Protocol::builtin("paper-v1").expect("built in"),
        seed: 0,
    }
}

/// The screen `state` draws on a `width` x `height` terminal, as text (one line per row).
pub fn screen_text(state: &State, width: u16, height: u16) -> String {
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
        .expect("a test terminal");
    term.draw(|f| super::draw::draw(f, state))
        .expect("drawing on a test terminal");
    let b = term.backend().buffer().clone();
    (0..b.area.height)
        .map(|y| {
            (0..b.area.width)
                .map(|x| b[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Applies `action` and every action its effects produce, carrying out model work, decoding and
/// file writes synchronously; audio, mouse and quit effects are returned for inspection.
pub fn drive(state: &mut State, ctx: &ModelCtx, action: Action) -> Vec<Effect> {
    let mut queue = VecDeque::from([action]);
    let mut rest = Vec::new();
    while let Some(a) = queue.pop_front() {
        for e in update(state, a) {
            carry_out(e, ctx, &mut queue, &mut rest);
        }
    }
    rest
}

/// Effects of [`super::state::start`], carried out like [`drive`] does.
pub fn start(state: &mut State, ctx: &ModelCtx) -> Vec<Effect> {
    let mut queue = VecDeque::new();
    let mut rest = Vec::new();
    for e in super::state::start(state) {
        carry_out(e, ctx, &mut queue, &mut rest);
    }
    while let Some(a) = queue.pop_front() {
        for e in update(state, a) {
            carry_out(e, ctx, &mut queue, &mut rest);
        }
    }
    rest
}

fn carry_out(e: Effect, ctx: &ModelCtx, queue: &mut VecDeque<Action>, rest: &mut Vec<Effect>) {
    match e {
        Effect::Model(job) => work::run_job(ctx, job, &|| false, &mut |a| queue.push_back(a)),
        Effect::DecodeClip { epoch, path } => queue.push_back(match work::decode_clip(&path) {
            Ok((_, clip)) => Action::ClipReady { epoch, clip },
            Err(error) => Action::ClipFailed { epoch, error },
        }),
        Effect::SaveAnnotation { path, record } => {
            queue.push_back(match work::append_annotation(&path, &record) {
                Ok(r) => Action::AnnotationSaved(Box::new(r)),
                Err(e) => Action::Error(e),
            })
        }
        Effect::Aggregate { trials, source } => queue.push_back(Action::AggregateReady(Box::new(
            aggregate::build(&trials, &source),
        ))),
        Effect::AlterClip {
            epoch,
            item,
            alteration,
        } => {
            let made = super::alter::render(&item, &alteration, 0, &super::alter::scratch_dir())
                .and_then(|path| work::decode_clip(&path).map(|(_, view)| (path, view)));
            queue.push_back(match made {
                Ok((path, view)) => Action::AlteredReady {
                    epoch,
                    clip: Box::new(super::state::AlteredClip {
                        path,
                        view,
                        label: alteration.label(),
                    }),
                },
                Err(error) => Action::AlteredFailed { epoch, error },
            })
        }
        Effect::CancelModel => {}
        // The test double answers for every model: the switched-to one is ready at once.
        Effect::LoadModel(spec) => queue.push_back(Action::ModelReady(spec)),
        other => rest.push(other),
    }
}

/// A state (for snapshots and benchmarks) with the first item open, streamed, its clip shown and the answer flipped by
/// truncation.
pub fn flipped(theme: Theme) -> State {
    let c = ctx();
    let mut s = state(items(), "annotations.jsonl".into(), theme);
    start(&mut s, &c);
    // A fixed synthetic clip view (the test items have no audio files).
    let peaks: Vec<(f32, f32)> = (0..1024)
        .map(|i| {
            let a = ((i as f32 / 40.0).sin() * 0.8).abs();
            (-a, a)
        })
        .collect();
    let clip = ClipView {
        name: "animal_0_single.wav".into(),
        seconds: 4.0,
        peaks,
        spec: (0..512 * 32).map(|i| -100.0 + (i % 97) as f32).collect(),
        spec_w: 512,
        spec_h: 32,
    };
    let epoch = s.epoch;
    drive(&mut s, &c, Action::ClipReady { epoch, clip });
    drive(
        &mut s,
        &c,
        Action::Playhead {
            position: 1.0,
            playing: true,
        },
    );
    s.chain.cursor = 0;
    drive(&mut s, &c, Action::Command(Command::Truncate));
    s.status = "answer B · FLIP".into();
    s
}
