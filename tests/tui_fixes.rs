//! Inspector defects a newcomer hit (issue 17), each as a story through the pure update with the
//! deterministic test double: the chain pane after filler, revert, no-CoT and paraphrase, and the
//! help text of truncate.

use faithscope::faith::trial::InterventionKind;
use faithscope::tui::keymap::{Command, Keymap};
use faithscope::tui::state::{Action, Origin};
use faithscope::tui::testing::{ctx, drive, items, screen_text, start, state};
use faithscope::tui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn down() -> Action {
    Action::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE))
}

#[test]
fn filler_keeps_the_sentences_and_revert_puts_the_cursor_back_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    let original = s.chain.sentences.clone();
    assert_eq!(original.len(), 3);

    // Filler over the words of sentences 1-2: three sentences still, the third untouched.
    s.chain.cursor = 1;
    drive(&mut s, &c, key('f'));
    assert_eq!(s.chain.sentences.len(), 3, "{:?}", s.chain.sentences);
    assert_eq!(
        s.chain.origins,
        vec![Origin::Filler, Origin::Filler, Origin::Original]
    );
    assert_eq!(s.chain.sentences[2], original[2]);
    assert!(s.chain.sentences[0].split(' ').all(|w| w == "..."));
    assert!(s.chain.label.starts_with("filler"), "{}", s.chain.label);

    // Walk to the last sentence, revert: the cursor is on a sentence that exists.
    for _ in 0..10 {
        drive(&mut s, &c, down());
    }
    drive(&mut s, &c, key('R'));
    assert_eq!(s.chain.sentences, original);
    assert!(
        s.chain.cursor < s.chain.sentences.len(),
        "{}",
        s.chain.cursor
    );
    assert!(s.status.contains("reverted"), "{}", s.status);

    // No-CoT after a revert: the status says what is shown now.
    drive(&mut s, &c, key('n'));
    assert!(s.chain.no_cot);
    assert!(!s.status.contains("reverted"), "{}", s.status);
    assert!(s.status.contains("no-CoT"), "{}", s.status);
}

#[test]
fn paraphrase_names_itself_and_tags_only_what_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    let original = s.chain.sentences.clone();
    s.chain.cursor = 0;
    drive(&mut s, &c, key('p'));
    let cur = s
        .answers
        .current
        .as_ref()
        .expect("an answer after the paraphrase");
    assert_eq!(cur.kind(), Some(InterventionKind::Paraphrasing), "{cur:?}");
    assert!(
        s.chain.label.contains("paraphrased sentences 1-1"),
        "{}",
        s.chain.label
    );
    assert_eq!(s.chain.origins[0], Origin::Paraphrased);
    // The sentences after the paraphrased one are the model's own, untagged.
    let n = s.chain.sentences.len();
    assert_eq!(&s.chain.sentences[n - 2..], &original[1..]);
    assert!(
        s.chain.origins[n - 2..]
            .iter()
            .all(|o| *o == Origin::Original),
        "{:?}",
        s.chain.origins
    );
}

#[test]
fn filler_after_a_paraphrase_keeps_the_paraphrase_tags_where_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    s.chain.cursor = 0;
    drive(&mut s, &c, key('p'));
    let n = s.chain.sentences.len();
    s.chain.cursor = 0;
    drive(&mut s, &c, key('f'));
    assert_eq!(s.chain.sentences.len(), n);
    assert_eq!(s.chain.origins[0], Origin::Filler);
    assert_eq!(s.chain.origins[n - 1], Origin::Original);
}

#[test]
fn help_says_truncate_keeps_the_sentences_before_the_cursor() {
    let desc = Keymap::default()
        .bindings
        .into_iter()
        .find(|b| b.command == Command::Truncate)
        .map(|b| b.desc)
        .expect("truncate is in the help");
    assert!(desc.contains("before the cursor"), "{desc}");
    assert!(!desc.contains("after"), "{desc}");
}

#[test]
fn warnings_reach_the_status_line_and_the_messages_overlay_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    s.log_path = Some("/tmp/faithscope-inspect-1.log".into());
    let long =
        "only the first 3.0 s of 12.0 s are used: audio file data/Animal/audio/x.wav truncated";
    drive(&mut s, &c, Action::Warning(long.into()));
    assert!(
        s.status
            .starts_with("warning (! shows all): only the first 3.0 s of 12.0 s"),
        "{}",
        s.status
    );
    assert_eq!(s.messages.last().unwrap(), &format!("warning: {long}"));

    drive(&mut s, &c, key('!'));
    assert!(s.show_messages);
    let text = screen_text(&s, 80, 24);
    assert!(text.contains("Messages ("), "{text}");
    assert!(text.contains("only the first 3.0 s of 12.0 s"), "{text}");
    assert!(text.contains("/tmp/faithscope-inspect-1.log"), "{text}");
    // Any key closes it.
    drive(&mut s, &c, key('j'));
    assert!(!s.show_messages);
}

#[test]
fn the_annotator_falls_back_to_the_system_user_name() {
    use faithscope::tui::annotator_from;
    assert_eq!(annotator_from(Some(" ann "), &|_| None), "ann");
    assert_eq!(
        annotator_from(None, &|v| (v == "LOGNAME").then(|| "lg".into())),
        "lg"
    );
    // No $USER, no $LOGNAME: the name the system gives this uid, not "anonymous".
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let expected = String::from_utf8(id.stdout).unwrap().trim().to_string();
    assert!(!expected.is_empty());
    assert_eq!(annotator_from(None, &|_| None), expected);
}

#[test]
fn export_writes_the_answer_columns_and_names_whole_paths() {
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("annotations.jsonl");
    let c = ctx();
    let mut s = state(items(), ann.clone(), Theme::default());
    start(&mut s, &c);
    // Truncate before sentence 1 (the answer flips to B), then annotate sentence 1 of the
    // reverted chain... of the current one: revert first so there is a sentence.
    s.chain.cursor = 0;
    drive(&mut s, &c, key('t'));
    assert!(s.flipped());
    drive(&mut s, &c, key('R'));
    drive(&mut s, &c, key('a'));
    drive(
        &mut s,
        &c,
        Action::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    assert_eq!(s.annotations.len(), 1);
    let fx = drive(&mut s, &c, key('x'));
    // The shell writes the export: do what it does.
    let Some(faithscope::tui::state::Effect::Export {
        path,
        annotations,
        trials,
    }) = fx.into_iter().next()
    else {
        panic!("x asks for an export")
    };
    let paths = faithscope::tui::work::export(&path, &annotations, &trials).unwrap();
    assert!(paths.iter().all(|p| p.is_absolute()), "{paths:?}");
    let mut r = csv::Reader::from_path(&paths[0]).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "baseline_answer",
        "baseline_prob",
        "current_answer",
        "current_prob",
        "current_prob_of_baseline",
        "flipped",
    ] {
        assert!(head.contains(&col.to_string()), "{head:?}");
    }
    let row = r.records().next().unwrap().unwrap();
    let col = |name: &str| row[head.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(col("baseline_answer"), "A");
    // The baseline: three sentences, two of them with "bark": P(A) = 0.3 + 0.5.
    assert_eq!(col("baseline_prob"), "0.8000");
    assert_eq!(col("flipped"), "false");
    assert_eq!(col("annotator"), "tester");
}

#[test]
fn a_read_only_dataset_folder_asks_for_an_annotations_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ro");
    std::fs::create_dir(&data).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let line = std::fs::read_to_string(format!("{root}/samples/items.jsonl")).unwrap();
    std::fs::write(data.join("items.jsonl"), line.lines().next().unwrap()).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();

    let opts = faithscope::tui::Options {
        data: Some(data.join("items.jsonl")),
        ..Default::default()
    };
    let p = faithscope::tui::prepare(&opts).unwrap();
    let why = p.state.annotations_blocked.clone().expect("blocked");
    assert!(why.contains("read-only"), "{why}");
    assert!(why.contains("--annotations FILE"), "{why}");
    assert!(why.contains(&data.display().to_string()), "{why}");

    // Pressing a says so at once and writes nothing.
    let c = ctx();
    let mut s = p.state;
    s.model = faithscope::tui::state::ModelStatus::Ready("scripted".into());
    start(&mut s, &c);
    drive(&mut s, &c, key('a'));
    assert!(s.annotate.is_none());
    assert!(s.popup.as_deref().unwrap_or("").contains("--annotations"));
    assert!(!data.join("annotations.jsonl").exists());

    // With --annotations nothing is blocked.
    let opts = faithscope::tui::Options {
        annotations: Some(dir.path().join("mine.jsonl")),
        ..opts
    };
    assert!(faithscope::tui::prepare(&opts)
        .unwrap()
        .state
        .annotations_blocked
        .is_none());
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_audio_strip_says_how_much_of_the_clip_the_model_hears() {
    let mut s = faithscope::tui::testing::flipped(Theme::default());
    let text = |s: &faithscope::tui::state::State| screen_text(s, 100, 30);
    assert!(!text(&s).contains("model hears"));
    // The test clip is 4 s long; a model with a 3-s window hears 3 of them.
    drive(&mut s, &ctx(), Action::AudioWindow(Some(3.0)));
    let shown = text(&s);
    assert!(shown.contains("model hears 0:03.0 of 0:04.0"), "{shown}");
    // A window longer than the clip: nothing to say.
    drive(&mut s, &ctx(), Action::AudioWindow(Some(30.0)));
    assert!(!text(&s).contains("model hears"));
}

#[test]
fn a_mistake_the_model_writes_streams_under_its_sentence_then_opens_the_editor() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    drive(&mut s, &c, down());
    // What the shell receives while the model writes (the double writes at once, so the
    // pieces are sent by hand here): shown under sentence 2 as they come.
    let epoch = s.epoch;
    for piece in ["I hear", " meowing"] {
        drive(
            &mut s,
            &c,
            Action::Writing {
                epoch,
                key: "mistake:2".into(),
                text: piece.into(),
            },
        );
    }
    // a piece of an item no longer shown is dropped
    drive(
        &mut s,
        &c,
        Action::Writing {
            epoch: epoch.wrapping_sub(1),
            key: "mistake:2".into(),
            text: " LATE".into(),
        },
    );
    let text = screen_text(&s, 100, 30);
    let at = text.find("✎ mistake: I hear meowing▌").expect(&text);
    let second = text.find("The barking is loud").expect(&text);
    let third = text.find("A cat would meow").expect(&text);
    assert!(second < at && at < third, "under sentence 2:\n{text}");
    assert!(!text.contains("LATE"), "{text}");
    // The whole job: its pieces, then the editor with the cleaned mistake; nothing left streaming.
    drive(&mut s, &c, key('L'));
    assert!(s.writing.is_none());
    let ed = s.editor.as_ref().expect("the mistake editor");
    assert_eq!(ed.source, "model");
    assert_eq!(ed.area.lines().join("\n"), "I hear meowing.");
    assert!(!screen_text(&s, 100, 30).contains('✎'));
}

#[test]
fn the_sweep_streams_each_model_written_mistake_and_paraphrase_before_its_trial() {
    use faithscope::tui::state::Job;
    use faithscope::tui::work::run_job;
    let dir = tempfile::tempdir().unwrap();
    let c = ctx();
    let mut s = state(items(), dir.path().join("a.jsonl"), Theme::default());
    start(&mut s, &c);
    let job = Job::Sweep {
        epoch: s.epoch,
        item: Box::new(s.item().unwrap().clone()),
        chain: Box::new(s.chain.record.clone().unwrap()),
        baseline: Box::new(s.answers.baseline.clone().unwrap()),
    };
    let mut actions = Vec::new();
    run_job(&c, job, &|| false, &mut |a| actions.push(a));
    // Each written perturbation streams in pieces, and its trial follows them with that text.
    let mut streamed: std::collections::BTreeMap<String, String> = Default::default();
    let mut checked = Vec::new();
    for a in &actions {
        match a {
            Action::Writing { key, text, .. } => {
                streamed.entry(key.clone()).or_default().push_str(text)
            }
            Action::SweepTrial { trial, .. } => {
                let key = trial.extra["trial_key"].as_str().unwrap().to_string();
                if let Some(w) = streamed.get(&key) {
                    let detail = &trial.extra["detail"];
                    let src = if key.starts_with("mistake") {
                        "mistake_source"
                    } else {
                        "paraphrase_source"
                    };
                    assert_eq!(detail["edited"], w.trim(), "{key}");
                    assert_eq!(detail[src], "self", "{key}: {detail}");
                    checked.push(key);
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        checked,
        [
            "mistake:1",
            "mistake:2",
            "mistake:3",
            "paraphrase:1",
            "paraphrase:2",
            "paraphrase:3"
        ],
        "{actions:?}"
    );
    assert!(matches!(actions.last(), Some(Action::SweepDone { .. })));
    // While a paraphrase streams, the sweep view shows it and says what the model writes.
    drive(&mut s, &c, Action::Command(Command::ScreenSweep));
    s.sweep.running = true;
    let epoch = s.sweep.epoch;
    drive(
        &mut s,
        &c,
        Action::Writing {
            epoch,
            key: "paraphrase:2".into(),
            text: "It barks".into(),
        },
    );
    let text = screen_text(&s, 120, 30);
    assert!(text.contains("· running · writing paraphrase 2 "), "{text}");
    assert!(text.contains("✎ paraphrase ≤2 It barks▌"), "{text}");
    assert!(text.contains("I hear barking. → I hear meowing."), "{text}");
}
