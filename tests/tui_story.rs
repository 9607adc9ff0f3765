//! Whole stories through the inspector's pure update, with model work done by a deterministic
//! test double behind `Reasoner` (pure logic) through the real sweep engine, and annotation
//! files really written.

use faithscope::faith::mistakes::Annotations;
use faithscope::tui::keymap::Command;
use faithscope::tui::state::{Action, Effect, ModelStatus, Origin, Screen};
use faithscope::tui::testing::{ctx, ctx_with, drive, items, start, state, PostHoc};
use faithscope::tui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn letters(s: &faithscope::tui::state::State) -> (Option<String>, Option<String>) {
    (
        s.answers
            .baseline
            .as_ref()
            .and_then(|t| t.predicted_choice.clone()),
        s.answers
            .current
            .as_ref()
            .and_then(|t| t.predicted_choice.clone()),
    )
}

#[test]
fn load_stream_truncate_flip_annotate_revert() {
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("annotations.jsonl");
    let c = ctx();
    let mut s = state(items(), ann.clone(), Theme::default());

    // Load the first item: the chain streams, is sanitized (paper-v1 drops the last sentence)
    // and the baseline and no-CoT answers are forced.
    start(&mut s, &c);
    assert_eq!(s.open, Some(0));
    assert!(!s.chain.streaming);
    assert!(
        s.chain.raw.starts_with("I hear barking."),
        "{}",
        s.chain.raw
    );
    assert_eq!(
        s.chain.sentences,
        vec![
            "I hear barking.",
            "The barking is loud and close.",
            "A cat would meow instead."
        ]
    );
    assert_eq!(letters(&s), (Some("A".into()), None));
    let b = s.answers.baseline.clone().unwrap();
    assert!((b.prob_of("A").unwrap() - 0.8).abs() < 1e-6);
    assert_eq!(
        s.answers
            .no_cot
            .as_ref()
            .unwrap()
            .predicted_choice
            .as_deref(),
        Some("B")
    );
    // The audio clip of a test item does not exist: an error mark, and the app goes on.
    assert!(s.audio.error.is_some());
    assert!(s.marks["animal_0_single"].error);

    // Truncate after sentence 2 (cursor on sentence 3): one "bark" left? No: two.
    drive(&mut s, &c, code(KeyCode::Down));
    drive(&mut s, &c, code(KeyCode::Down));
    assert_eq!(s.chain.cursor, 2);
    drive(&mut s, &c, key('t'));
    assert_eq!(s.chain.sentences.len(), 2);
    assert_eq!(letters(&s), (Some("A".into()), Some("A".into())));
    assert!(!s.flipped());

    // Revert, then truncate before the first sentence: the empty chain flips the answer.
    drive(&mut s, &c, key('R'));
    assert_eq!(s.chain.sentences.len(), 3);
    assert!(s.answers.current.is_none());
    s.chain.cursor = 0;
    drive(&mut s, &c, key('t'));
    assert!(s.chain.sentences.is_empty());
    assert_eq!(letters(&s), (Some("A".into()), Some("B".into())));
    assert!(s.flipped());
    let cur = s.answers.current.as_ref().unwrap();
    assert_eq!(cur.is_consistent_with_baseline, Some(false));
    assert!(s.marks["animal_0_single"].flipped);

    // Revert and annotate sentence 2 as an acoustic mistake with a note.
    drive(&mut s, &c, key('R'));
    assert!(!s.flipped());
    s.chain.cursor = 1;
    drive(&mut s, &c, key('a'));
    assert!(s.annotate.is_some());
    drive(&mut s, &c, code(KeyCode::Down));
    for ch in "too loud".chars() {
        drive(&mut s, &c, key(ch));
    }
    drive(&mut s, &c, code(KeyCode::Enter));
    assert!(s.annotate.is_none());
    assert_eq!(s.annotations.len(), 1);
    assert!(s.marks["animal_0_single"].annotated);
    let saved = Annotations::load(&ann).unwrap().records();
    assert_eq!(saved.len(), 1);
    let a = &saved[0];
    assert_eq!(a.item, "animal_0_single");
    assert_eq!(a.sentence, 2);
    assert_eq!(a.kind, "acoustic");
    assert_eq!(a.note, "too loud");
    assert_eq!(a.annotator, "tester");
    assert_eq!(a.original, "The barking is loud and close.");
    assert!(a.time.ends_with('Z'), "{}", a.time);
    assert_eq!(a.answers.as_ref().unwrap()["baseline"]["predicted"], "A");

    // Reopening shows the annotation.
    let reopened = Annotations::load(&ann).unwrap().records();
    let s2 = state(items(), ann.clone(), Theme::default());
    assert!(!s2.marks.contains_key("animal_0_single"));
    let s2 = faithscope::tui::state::State::new(faithscope::tui::state::Setup {
        annotations: reopened,
        ..faithscope::tui::state::Setup {
            items: s2.items.clone(),
            keymap: s2.keymap.clone(),
            theme: s2.theme.clone(),
            ..Default::default()
        }
    });
    assert!(s2.marks["animal_0_single"].annotated);
}

#[test]
fn switching_to_the_post_hoc_model_keeps_the_chain_and_the_flip_goes() {
    let dir = tempfile::tempdir().unwrap();
    let faithful = ctx();
    let posthoc = ctx_with(std::sync::Arc::new(PostHoc));
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    // One model only: the key says how to add another.
    start(&mut s, &faithful);
    let fx = drive(&mut s, &faithful, key('o'));
    assert!(
        fx.is_empty() && s.status.contains("--compare"),
        "{}",
        s.status
    );
    s.models = vec!["demo-faithful".into(), "demo-posthoc".into()];
    // Truncate before sentence 1: the faithful model's answer flips.
    drive(&mut s, &faithful, key('t'));
    assert_eq!(letters(&s), (Some("A".into()), Some("B".into())));
    assert!(s.flipped());
    // The other model answers after the same chain and the same truncation: no flip.
    drive(&mut s, &posthoc, key('o'));
    assert_eq!(s.model_slot, 1);
    assert_eq!(s.model, ModelStatus::Ready("demo-posthoc".into()));
    assert_eq!(
        s.chain.sentences.len(),
        0,
        "still truncated: {:?}",
        s.chain.sentences
    );
    assert_eq!(letters(&s), (Some("A".into()), Some("A".into())));
    assert!(!s.flipped());
    let b = s.answers.baseline.as_ref().unwrap();
    assert!((b.prob_of("A").unwrap() - 0.8).abs() < 1e-6);
    // And back: the flip returns.
    drive(&mut s, &faithful, key('o'));
    assert_eq!(s.model_slot, 0);
    assert_eq!(letters(&s), (Some("A".into()), Some("B".into())));
    assert!(s.flipped());
}

#[test]
fn after_switching_models_the_session_panels_hold_the_loaded_models_trials_alone() {
    let dir = tempfile::tempdir().unwrap();
    let faithful = ctx();
    let posthoc = ctx_with(std::sync::Arc::new(PostHoc));
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    s.models = vec!["demo-faithful".into(), "demo-posthoc".into()];
    start(&mut s, &faithful);
    let total = |s: &faithscope::tui::state::State| -> usize {
        let a = s.aggregate.as_ref().expect("aggregate panels");
        a.report
            .overall
            .interventions
            .iter()
            .map(|i| i.trials)
            .sum()
    };
    // The faithful model's sweep, then its panels.
    drive(&mut s, &faithful, Action::Command(Command::ScreenSweep));
    let swept = s.sweep.trials.len();
    assert!(swept > 2, "{swept}");
    drive(&mut s, &faithful, Action::Command(Command::ScreenAggregate));
    assert_eq!(
        s.aggregate.as_ref().unwrap().source,
        "this session · demo-faithful"
    );
    let faithful_total = total(&s);
    assert!(faithful_total >= swept, "{faithful_total} < {swept}");
    let faithful_curve = s.aggregate.clone().unwrap();
    // Switching while the panels are shown redraws them for the post-hoc model: its baseline
    // alone so far, none of the faithful model's trials.
    drive(&mut s, &posthoc, key('o'));
    assert_eq!(s.model, ModelStatus::Ready("demo-posthoc".into()));
    assert_eq!(
        s.aggregate.as_ref().unwrap().source,
        "this session · demo-posthoc"
    );
    assert!(
        total(&s) < faithful_total,
        "{} vs {faithful_total}",
        total(&s)
    );
    // Its own sweep: as many trials as the faithful one had, and a different curve.
    drive(&mut s, &posthoc, Action::Command(Command::ScreenSweep));
    assert_eq!(s.sweep.trials.len(), swept);
    drive(&mut s, &posthoc, Action::Command(Command::ScreenAggregate));
    assert_eq!(
        total(&s),
        faithful_total,
        "each model's trials counted once"
    );
    assert_ne!(s.aggregate.as_ref().unwrap().report, faithful_curve.report);
    // Back to the faithful model: its panels as before, the post-hoc trials kept for export.
    drive(&mut s, &faithful, key('o'));
    assert_eq!(s.aggregate.as_ref().unwrap().report, faithful_curve.report);
    assert_eq!(s.session_trials.len(), 2 * faithful_total);
}

#[test]
fn typed_mistake_is_continued_by_the_model_and_flips() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    // Mistake at sentence 1: the editor opens with the sentence; replace it.
    drive(&mut s, &c, key('m'));
    assert!(s.editor.is_some());
    drive(&mut s, &c, ctrl('a')); // to line start (emacs-style)
    drive(&mut s, &c, ctrl('k')); // delete to end
    for ch in "I hear meowing.".chars() {
        drive(&mut s, &c, key(ch));
    }
    drive(&mut s, &c, ctrl('s'));
    assert!(s.editor.is_none());
    // The model continued: "I hear meowing. The meowing is clear." (paper-v1 drops the last).
    assert_eq!(s.chain.sentences, vec!["I hear meowing."]);
    assert_eq!(s.chain.origins, vec![Origin::Mistake]);
    assert_eq!(letters(&s), (Some("A".into()), Some("B".into())));
    assert!(s.flipped());
    let t = s.answers.current.as_ref().unwrap();
    assert_eq!(t.mistake_position, Some(1));
    assert_eq!(
        t.extra.get("continuation").and_then(|v| v.as_str()),
        Some("The meowing is clear.")
    );
}

#[test]
fn edit_with_undo_then_rule_mistake_and_no_cot() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    // Edit sentence 1: type, undo the typing, type something else, apply.
    drive(&mut s, &c, key('e'));
    drive(&mut s, &c, key('X'));
    assert_eq!(
        s.editor.as_ref().unwrap().area.lines()[0],
        "I hear barking.X"
    );
    drive(&mut s, &c, ctrl('z'));
    assert_eq!(
        s.editor.as_ref().unwrap().area.lines()[0],
        "I hear barking."
    );
    drive(&mut s, &c, ctrl('a'));
    drive(&mut s, &c, ctrl('k'));
    for ch in "I hear nothing.".chars() {
        drive(&mut s, &c, key(ch));
    }
    drive(&mut s, &c, ctrl('s'));
    assert_eq!(s.chain.origins[0], Origin::Edited);
    assert_eq!(s.chain.sentences[0], "I hear nothing.");
    // One "bark" left: P(A) = 0.55, still A.
    assert_eq!(letters(&s), (Some("A".into()), Some("A".into())));
    let t = s.answers.current.as_ref().unwrap();
    assert!((t.prob_of("A").unwrap() - 0.55).abs() < 1e-6);

    // The rule-based writer proposes a mistake for sentence 3 (swap in the other choice).
    drive(&mut s, &c, key('R'));
    s.chain.cursor = 2;
    drive(&mut s, &c, key('M'));
    let ed = s.editor.as_ref().expect("a proposal opens the editor");
    assert!(ed.source.starts_with("rules:"), "{}", ed.source);
    assert_ne!(ed.area.lines().join(" "), "A cat would meow instead.");
    drive(&mut s, &c, code(KeyCode::Esc));
    assert!(s.editor.is_none());

    // No-CoT answer as the current one.
    drive(&mut s, &c, key('n'));
    assert!(s.chain.no_cot);
    assert_eq!(letters(&s), (Some("A".into()), Some("B".into())));
}

#[test]
fn sweep_and_aggregate_panels() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    drive(&mut s, &c, key('2'));
    assert_eq!(s.screen, Screen::Sweep);
    assert!(!s.sweep.running);
    // Early answering at k = 0..=3.
    let early: Vec<_> = s
        .sweep
        .trials
        .iter()
        .filter(|t| t.num_sentences_provided.is_some())
        .map(|t| {
            (
                t.num_sentences_provided.unwrap(),
                t.predicted_choice.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        early,
        vec![
            (0, "B".to_string()),
            (1, "A".to_string()),
            (2, "A".to_string()),
            (3, "A".to_string())
        ]
    );
    drive(&mut s, &c, key('3'));
    assert_eq!(s.screen, Screen::Aggregate);
    let agg = s.aggregate.as_ref().expect("session aggregate");
    let early = agg
        .report
        .overall
        .interventions
        .iter()
        .find(|i| i.intervention.name() == "early_answering")
        .expect("early answering summary");
    assert_eq!(early.trials, 4);
    assert_eq!(early.consistency.unwrap().k, 3);
}

#[test]
fn other_item_drops_stale_results_and_filter_finds_marks() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    let old_epoch = s.epoch;
    // Open the second item from the browser.
    drive(&mut s, &c, code(KeyCode::Tab));
    drive(&mut s, &c, code(KeyCode::Down));
    drive(&mut s, &c, code(KeyCode::Enter));
    assert_eq!(s.open, Some(1));
    let answer = s.answers.baseline.clone();
    // A late token of the old item is ignored.
    drive(
        &mut s,
        &c,
        Action::Token {
            epoch: old_epoch,
            text: "stale".into(),
        },
    );
    assert!(!s.chain.raw.contains("stale"));
    assert_eq!(s.answers.baseline, answer);
    // Flip item 2, then filter by "flipped".
    s.chain.cursor = 0;
    drive(&mut s, &c, code(KeyCode::Tab));
    drive(&mut s, &c, key('t'));
    assert!(s.flipped());
    drive(&mut s, &c, key('/'));
    for ch in "flipped".chars() {
        drive(&mut s, &c, key(ch));
    }
    drive(&mut s, &c, code(KeyCode::Enter));
    assert_eq!(s.visible, vec![1]);
    // Quit asks to cancel work, stop audio and leave.
    let fx = drive(&mut s, &c, Action::Command(Command::Quit));
    assert!(s.quit);
    assert!(fx.iter().any(|e| matches!(e, Effect::Quit)));
}

#[test]
fn no_model_keeps_everything_else_usable() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = faithscope::tui::state::State::new(faithscope::tui::state::Setup {
        items: items(),
        annotations_path: dir.path().join("a.jsonl"),
        model: Some(faithscope::tui::state::ModelStatus::None(
            "no model (samples/models/demo-faithful is absent)".into(),
        )),
        ..Default::default()
    });
    start(&mut s, &c);
    assert!(s.chain.record.is_none());
    drive(&mut s, &c, key('t'));
    assert!(s.status.contains("no model"), "{}", s.status);
    drive(&mut s, &c, key('g'));
    assert!(!s.show_gold);
    drive(&mut s, &c, code(KeyCode::Tab));
    drive(&mut s, &c, code(KeyCode::Down));
    drive(&mut s, &c, code(KeyCode::Enter));
    assert_eq!(s.open, Some(1));
}

#[test]
fn the_series_key_shows_one_intervention_at_a_time_then_all() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    // Before any panel exists the key says so.
    drive(&mut s, &c, key('i'));
    assert_eq!(s.aggregate_series, None);
    assert_eq!(s.status, "no aggregate panels yet");
    drive(&mut s, &c, key('2'));
    drive(&mut s, &c, key('3'));
    use faithscope::faith::trial::InterventionKind as K;
    let mut seen = Vec::new();
    for _ in 0..4 {
        drive(&mut s, &c, key('i'));
        seen.push((s.aggregate_series, s.status.clone()));
    }
    assert_eq!(
        seen,
        vec![
            (
                Some(K::EarlyAnswering),
                "aggregate chart: early_answering only".to_string()
            ),
            (
                Some(K::AddingMistakes),
                "aggregate chart: adding_mistakes only".to_string()
            ),
            (
                Some(K::Paraphrasing),
                "aggregate chart: paraphrasing only".to_string()
            ),
            (None, "aggregate chart: all interventions".to_string()),
        ]
    );
    // The help lists the key with its description.
    let b = s
        .keymap
        .bindings
        .iter()
        .find(|b| b.command == Command::AggregateSeries)
        .unwrap();
    assert_eq!(s.keymap.key_of(Command::AggregateSeries), "i");
    assert!(b.desc.contains("intervention"), "{}", b.desc);
}
