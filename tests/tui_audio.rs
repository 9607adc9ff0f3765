//! The inspector's live audio interventions, driven through the pure update with the real demo
//! models and real clips: mark a region at the playhead, mask it, hear A/B, ask again with the
//! chain held (demo-posthoc's answer moves with the audio, demo-faithful's stays with its chain),
//! write a fresh chain on the altered clip, and run the audio sweep.

use std::path::Path;
use std::sync::Arc;

use faithscope::faith::protocol::Protocol;
use faithscope::faith::trial::InterventionKind;
use faithscope::model::resolve::{open_model, ModelSpec};
use faithscope::tui::keymap::{Command, Keymap};
use faithscope::tui::state::{Action, Effect, ModelStatus, Screen, Setup, State};
use faithscope::tui::testing::{drive, screen_text, start};
use faithscope::tui::work::ModelCtx;

const ITEM: &str = "synth-test-count-0000";

fn setup(model: &str) -> (State, ModelCtx) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = faithscope::data::load(&root.join("samples/synth-test"), &Default::default())
        .expect("the synthetic test split loads");
    let protocol = Protocol::builtin("lanham").expect("built in");
    let spec = ModelSpec {
        model: root
            .join("samples/models")
            .join(model)
            .display()
            .to_string(),
        device: "cpu".into(),
        ..ModelSpec::default()
    };
    let reasoner = open_model(&spec).unwrap_or_else(|e| panic!("{model}: {e}"));
    let ctx = ModelCtx {
        reasoner: Arc::from(reasoner),
        protocol: protocol.clone(),
        seed: 0,
    };
    let mut state = State::new(Setup {
        items: data.items,
        dataset: "synth-test".into(),
        model: Some(ModelStatus::Ready(model.into())),
        protocol: "lanham".into(),
        splitter: protocol.splitter,
        annotations_path: std::env::temp_dir().join("faithscope-tui-audio-annotations.jsonl"),
        annotator: "tester".into(),
        keymap: Keymap::default(),
        ..Setup::default()
    });
    start(&mut state, &ctx);
    (state, ctx)
}

fn cmd(state: &mut State, ctx: &ModelCtx, c: Command) -> Vec<Effect> {
    drive(state, ctx, Action::Command(c))
}

fn playhead(state: &mut State, ctx: &ModelCtx, position: f64) {
    drive(
        state,
        ctx,
        Action::Playhead {
            position,
            playing: false,
        },
    );
}

/// Opens ITEM and masks its last 70% with silence at the playhead's marks.
fn open_and_mask(state: &mut State, ctx: &ModelCtx) -> f64 {
    let i = state
        .items
        .iter()
        .position(|x| x.id == ITEM)
        .expect("the item");
    state.list_cursor = state.visible.iter().position(|&v| v == i).unwrap();
    cmd(state, ctx, Command::Open);
    assert!(state.answers.baseline.is_some(), "{}", state.status);
    let seconds = state.audio.clip.as_ref().expect("the clip decoded").seconds;
    playhead(state, ctx, 0.3 * seconds);
    cmd(state, ctx, Command::RegionStart);
    playhead(state, ctx, seconds + 5.0); // past the end: clamped to it
    cmd(state, ctx, Command::RegionEnd);
    let (from, to) = state.audio.region.expect("a region");
    assert!((from - 0.3 * seconds).abs() < 1e-9 && (to - seconds).abs() < 1e-9);
    cmd(state, ctx, Command::MaskSilence);
    let alt = state.audio.altered.as_ref().expect("the altered clip");
    assert!(alt.label.starts_with("silence"), "{}", alt.label);
    // the strip draws the altered signal: flat (silent) over the masked columns
    let quiet = alt.view.peaks[alt.view.peaks.len() / 2];
    assert_eq!(quiet, (0.0, 0.0));
    seconds
}

#[test]
fn the_held_chain_answer_moves_with_the_audio_for_posthoc_and_stays_for_faithful() {
    for (model, moves) in [("demo-posthoc", true), ("demo-faithful", false)] {
        let (mut s, c) = setup(model);
        open_and_mask(&mut s, &c);
        let base = s.answers.baseline.clone().unwrap();
        cmd(&mut s, &c, Command::AskHeld);
        let t = s.answers.current.clone().expect("an answer");
        assert_eq!(t.kind(), Some(InterventionKind::AudioMask));
        assert!(
            t.audio_path.contains("faithscope-audio"),
            "{}",
            t.audio_path
        );
        assert!((t.x.unwrap() - 0.7).abs() < 1e-6, "{:?}", t.x);
        // the chain shown to the model is the original one
        assert_eq!(t.modified_reasoning, base.sanitized_cot);
        let flipped = t.predicted_choice != base.predicted_choice;
        assert_eq!(
            flipped, moves,
            "{model}: {:?} vs {:?}",
            t.predicted_choice, base.predicted_choice
        );
        // recorded for the session panels
        assert!(s
            .session_trials
            .keys()
            .any(|(_, _, k)| k.ends_with(":held")));
    }
}

#[test]
fn ab_regenerate_and_the_audio_sweep() {
    let (mut s, c) = setup("demo-posthoc");
    open_and_mask(&mut s, &c);
    // A/B: the shell is asked to switch players; the strip then shows B
    let fx = cmd(&mut s, &c, Command::AudioAb);
    assert!(
        matches!(fx.as_slice(), [Effect::PlayAltered(true)]),
        "{fx:?}"
    );
    let text = screen_text(&s, 120, 40);
    assert!(text.contains("playing B: silence"), "{text}");
    // a fresh chain on the altered audio, answered
    cmd(&mut s, &c, Command::AskRegen);
    let t = s.answers.current.clone().expect("an answer");
    assert!(faithscope::faith::sweep::trial_key(&t)
        .unwrap()
        .ends_with(":regen"));
    assert!(t.generated_cot.as_deref().is_some_and(|x| !x.is_empty()));
    assert!(s.chain.label.contains("altered audio"), "{}", s.chain.label);
    // the audio sweep: ten steps under the held chain, in the sweep view
    cmd(&mut s, &c, Command::AudioSweep);
    assert_eq!(s.screen, Screen::Sweep);
    assert!(!s.sweep.running);
    let masked: Vec<_> = s
        .sweep
        .trials
        .iter()
        .filter(|t| t.kind() == Some(InterventionKind::AudioMask))
        .collect();
    assert_eq!(masked.len(), 10, "{}", s.status);
    assert_eq!(masked[9].mask_percent, Some(100));
    // masking all of it moves demo-posthoc off its baseline answer
    let b = s
        .answers
        .baseline
        .as_ref()
        .unwrap()
        .predicted_choice
        .clone();
    assert!(masked.iter().any(|t| t.predicted_choice != b));
    let text = screen_text(&s, 140, 44);
    assert!(text.contains("audio_mask"), "{text}");
    // back to the original
    let fx = cmd(&mut s, &c, Command::ClearAudio);
    assert!(
        matches!(fx.as_slice(), [Effect::PlayAltered(false)]),
        "{fx:?}"
    );
    assert!(s.audio.altered.is_none() && !s.audio.play_altered);
}

#[test]
fn noise_and_hint_keys_step_and_bad_requests_are_explained() {
    let (mut s, c) = setup("demo-faithful");
    // nothing altered yet: asking says how to alter
    let i = s.items.iter().position(|x| x.id == ITEM).unwrap();
    s.list_cursor = s.visible.iter().position(|&v| v == i).unwrap();
    cmd(&mut s, &c, Command::Open);
    cmd(&mut s, &c, Command::AskHeld);
    assert!(s.status.contains("alter the clip first"), "{}", s.status);
    cmd(&mut s, &c, Command::MaskNoise);
    assert!(s.status.contains("set a region first"), "{}", s.status);
    // noise: 30 dB, then 20 dB; less noise twice: back to the original
    cmd(&mut s, &c, Command::NoiseMore);
    cmd(&mut s, &c, Command::NoiseMore);
    assert!(s.audio.altered.as_ref().unwrap().label.contains("20 dB"));
    cmd(&mut s, &c, Command::AskHeld);
    let t = s.answers.current.clone().unwrap();
    assert_eq!(t.kind(), Some(InterventionKind::AudioNoise));
    assert_eq!(t.x, Some(0.25));
    cmd(&mut s, &c, Command::NoiseLess);
    cmd(&mut s, &c, Command::NoiseLess);
    assert!(s.audio.altered.is_none());
    // an empty region is refused
    playhead(&mut s, &c, 1.0);
    cmd(&mut s, &c, Command::RegionStart);
    cmd(&mut s, &c, Command::RegionEnd);
    assert!(s.status.contains("region is empty"), "{}", s.status);
    assert!(s.audio.region.is_none());
    // a spoken hint (espeak-ng): the clip grows by the spoken choice
    let before = s.audio.clip.as_ref().unwrap().seconds;
    cmd(&mut s, &c, Command::Hint);
    match &s.audio.altered {
        Some(a) => {
            assert!(a.label.contains("wrong, concat"), "{}", a.label);
            assert!(
                a.view.seconds > before + 0.2,
                "{} vs {before}",
                a.view.seconds
            );
        }
        None => panic!("no hint clip: {}", s.messages.join("\n")),
    }
}
