//! Inspector defects a newcomer hit (issue 17), each as a story through the pure update with the
//! deterministic test double: the chain pane after filler, revert, no-CoT and paraphrase, and the
//! help text of truncate.

use faithscope::faith::trial::InterventionKind;
use faithscope::tui::keymap::{Command, Keymap};
use faithscope::tui::state::{Action, Origin};
use faithscope::tui::testing::{ctx, drive, items, start, state};
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
    assert!(s.chain.cursor < s.chain.sentences.len(), "{}", s.chain.cursor);
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
    let cur = s.answers.current.as_ref().expect("an answer after the paraphrase");
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
        s.chain.origins[n - 2..].iter().all(|o| *o == Origin::Original),
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
