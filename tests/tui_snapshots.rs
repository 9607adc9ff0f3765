//! Snapshots of the inspector's main screens drawn on ratatui's TestBackend. The buffer's Debug
//! is snapshotted, so colours and modifiers are part of the snapshot.

use faithscope::data::{Item, ItemMeta};
use faithscope::tui::draw::draw;
use faithscope::tui::keymap::Command;
use faithscope::tui::state::Focus;
use faithscope::tui::state::{Action, State};
use faithscope::tui::testing::{ctx, drive, flipped, start, state};
use faithscope::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn render(s: &State, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, s)).unwrap();
    format!("{:?}", term.backend().buffer())
}

#[test]
fn inspector_80x24_dark() {
    let s = flipped(Theme::default());
    insta::assert_snapshot!(render(&s, 80, 24));
}

#[test]
fn inspector_120x40_light() {
    let mut s = flipped(Theme::builtin("light").unwrap());
    drive(&mut s, &ctx(), Action::Command(Command::Revert));
    s.status = "reverted".into();
    insta::assert_snapshot!(render(&s, 120, 40));
}

#[test]
fn too_small_40x10() {
    let s = flipped(Theme::default());
    insta::assert_snapshot!(render(&s, 40, 10));
}

#[test]
fn sweep_and_aggregate_100x30() {
    let c = ctx();
    let mut s = flipped(Theme::default());
    drive(&mut s, &c, Action::Command(Command::Revert));
    drive(&mut s, &c, Action::Command(Command::ScreenSweep));
    insta::assert_snapshot!("sweep", render(&s, 100, 30));
    drive(&mut s, &c, Action::Command(Command::ScreenAggregate));
    insta::assert_snapshot!("aggregate", render(&s, 100, 30));
}

#[test]
fn presenter_help_and_monochrome() {
    let c = ctx();
    let mut s = flipped(Theme::builtin("monochrome").unwrap());
    drive(&mut s, &c, Action::Command(Command::Presenter));
    insta::assert_snapshot!("presenter_mono", render(&s, 80, 24));
    drive(&mut s, &c, Action::Command(Command::Presenter));
    drive(&mut s, &c, Action::Command(Command::Help));
    insta::assert_snapshot!("help_mono", render(&s, 100, 30));
}

/// Cells of row `y` between columns `x0` and `x1` (exclusive).
fn row_text(term: &Terminal<TestBackend>, y: u16, x0: u16, x1: u16) -> String {
    let buf = term.backend().buffer();
    (x0..x1).map(|x| buf[(x, y)].symbol()).collect()
}

#[test]
fn waveform_of_counting_clips_shows_each_beep() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/synth-test");
    let text = std::fs::read_to_string(dir.join("items.jsonl")).unwrap();
    let counting: Vec<(std::path::PathBuf, usize)> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["meta"]["track"] == "count")
        .take(8)
        .map(|v| {
            let n = v["meta"]["facts"]["sound"]["count"].as_u64().unwrap() as usize;
            (dir.join(v["audio"].as_str().unwrap()), n)
        })
        .collect();
    let mut s = flipped(Theme::builtin("monochrome").unwrap());
    s.audio.position = 0.0;
    s.audio.playing = false;
    for (path, count) in counting {
        let (_, clip) = faithscope::tui::work::decode_clip(&path).unwrap();
        s.audio.clip = Some(clip);
        for (w, h) in [(80u16, 24u16), (120, 40), (200, 50)] {
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            term.draw(|f| draw(f, &s)).unwrap();
            // The audio pane is the box right of the item list, from row 1 to its bottom border.
            let top = row_text(&term, 0, 0, w);
            let x0 = top
                .chars()
                .skip(1)
                .position(|c| c == '┌' || c == '┏')
                .unwrap() as u16
                + 2;
            let end = (1..h)
                .find(|&y| matches!(row_text(&term, y, x0 - 1, x0).as_str(), "└" | "┗"))
                .unwrap();
            let bottom = row_text(&term, end - 1, x0, w - 1);
            let beeps = bottom.split(' ').filter(|run| !run.is_empty()).count();
            assert_eq!(beeps, count, "{path:?} at {w}x{h}: {bottom:?}");
            // The silence before the first beep is blank on every row.
            for y in 1..end {
                let row = row_text(&term, y, x0, w - 1);
                assert!(row.starts_with(' '), "{path:?} row {y}: {row:?}");
            }
        }
    }
}

/// The screen's rows as text.
fn rows(term: &Terminal<TestBackend>) -> Vec<String> {
    let a = term.backend().buffer().area;
    (0..a.height)
        .map(|y| row_text(term, y, 0, a.width))
        .collect()
}

/// Synthetic-split items with their long ids; the open one has six choices. Its baseline answer
/// is B (62%), the current one F (55%), after a chain of 14 sentences with the cursor on 12.
fn six_choices_flipped_to_f(theme: Theme) -> State {
    let mk = |id: &str| Item {
        id: id.into(),
        audio: format!("samples/{id}.wav").into(),
        question: "How many beeps do you hear?".into(),
        choices: ["one", "two", "three", "four", "five", "six"]
            .map(String::from)
            .to_vec(),
        gold: Some(1),
        meta: ItemMeta {
            track: Some("count".into()),
            hop: Some("single".into()),
            ..Default::default()
        },
    };
    let items = vec![
        mk("synth-test-direction-0000"),
        mk("synth-test-direction-0001"),
        mk("synth-test-multihop-0017"),
    ];
    let c = ctx();
    let mut s = state(items, "annotations.jsonl".into(), theme);
    start(&mut s, &c);
    let sentences: Vec<String> = (1..=14)
        .map(|i| format!("Sentence {i} says that beep number {i} is followed by a short silence."))
        .collect();
    s.chain.origins = vec![faithscope::tui::state::Origin::Original; sentences.len()];
    s.chain.sentences = sentences;
    s.chain.cursor = 11;
    let letters: Vec<String> = (0..6).map(|i| Item::letter(i).to_string()).collect();
    let mut b = s.answers.baseline.clone().unwrap();
    b.choice_letters = letters.clone();
    b.choice_probs = vec![0.05, 0.62, 0.1, 0.1, 0.08, 0.05];
    b.predicted_choice = Some("B".into());
    let mut cur = b.clone();
    cur.choice_probs = vec![0.05, 0.2, 0.05, 0.1, 0.05, 0.55];
    cur.predicted_choice = Some("F".into());
    cur.is_consistent_with_baseline = Some(false);
    s.answers.baseline = Some(b);
    s.answers.current = Some(cur);
    s
}

#[test]
fn at_80x24_the_answers_the_flip_the_cursor_sentence_and_the_ids_are_on_screen() {
    let mut s = six_choices_flipped_to_f(Theme::builtin("monochrome").unwrap());
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| draw(f, &s)).unwrap();
    let screen = rows(&term);
    let all = screen.join("\n");
    // Both answers with their probabilities and the FLIP, on one line.
    assert!(
        screen.iter().any(|r| r.contains("baseline B 62%")
            && r.contains("current F 55%")
            && r.contains("FLIP")),
        "{all}"
    );
    // Bars for the baseline's and the current answer's choices, whatever else fits.
    let bar = |l: &str| {
        screen
            .iter()
            .any(|r| r.contains(&format!("│{l} ")) || r.contains(&format!("│{l}★")))
    };
    assert!(bar("B") && bar("F"), "{all}");
    // The reasoning pane shows several sentences, the cursor's whole, marked ▶, and says where
    // the view is.
    let numbered = screen
        .iter()
        .filter(|r| r.contains("Sentence ") && r.contains(" says"))
        .count();
    assert!(numbered >= 3, "{all}");
    let cursor = screen
        .iter()
        .position(|r| r.contains("▶12 Sentence 12"))
        .expect(&all);
    assert!(screen[cursor + 1].contains("silence."), "{all}");
    assert!(all.contains(" of "), "scroll position: {all}");
    // The ids' distinguishing ends, the shared start said once.
    for id in ["direction-0000", "direction-0001", "multihop-0017"] {
        assert!(all.contains(id), "{id}: {all}");
    }
    assert!(all.contains("ids: synth-test-…"), "{all}");
    // Moving the cursor to the first and the last sentence scrolls the pane with it.
    for (cursor, shown) in [(0, "▶ 1 Sentence 1 "), (13, "▶14 Sentence 14 ")] {
        s.chain.cursor = cursor;
        term.draw(|f| draw(f, &s)).unwrap();
        let all = rows(&term).join("\n");
        assert!(all.contains(shown), "{shown}: {all}");
    }
    // With the focus on the items the cursor stays marked, hollow.
    s.focus = Focus::Items;
    term.draw(|f| draw(f, &s)).unwrap();
    assert!(rows(&term).join("\n").contains("▷14 Sentence 14 "));
    insta::assert_snapshot!(
        "six_choices_80x24_mono",
        format!("{:?}", term.backend().buffer())
    );
}

#[test]
fn any_size_draws_without_panic() {
    let s = flipped(Theme::default());
    for w in [0u16, 1, 2, 10, 79, 80, 81, 200] {
        for h in [0u16, 1, 3, 23, 24, 25, 60] {
            let _ = render(&s, w, h);
        }
    }
}
