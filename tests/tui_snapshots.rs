//! Snapshots of the inspector's main screens drawn on ratatui's TestBackend. The buffer's Debug
//! is snapshotted, so colours and modifiers are part of the snapshot.

use faithscope::tui::draw::draw;
use faithscope::tui::keymap::Command;
use faithscope::tui::state::{Action, State};
use faithscope::tui::testing::{ctx, drive, flipped};
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
            // The audio pane is the box right of the item list, rows 1 to 3 inside.
            let top = row_text(&term, 0, 0, w);
            let x0 = top
                .chars()
                .skip(1)
                .position(|c| c == '┌' || c == '┏')
                .unwrap() as u16
                + 2;
            let bottom = row_text(&term, 3, x0, w - 1);
            let beeps = bottom.split(' ').filter(|run| !run.is_empty()).count();
            assert_eq!(beeps, count, "{path:?} at {w}x{h}: {bottom:?}");
            // The silence before the first beep is blank on every row.
            for y in 1..=3 {
                let row = row_text(&term, y, x0, w - 1);
                assert!(row.starts_with(' '), "{path:?} row {y}: {row:?}");
            }
        }
    }
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
