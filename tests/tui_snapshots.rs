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

/// Text of the pane whose top border starts with `title` (inside its borders).
fn pane_text(term: &Terminal<TestBackend>, title: &str) -> Vec<String> {
    let screen = rows(term);
    let (y0, x0) = screen
        .iter()
        .enumerate()
        .find_map(|(y, r)| {
            let at = r.find(title)?;
            Some((y, r[..at].chars().count() - 2))
        })
        .unwrap_or_else(|| panic!("no pane {title}: {}", screen.join("\n")));
    let top: Vec<char> = screen[y0].chars().collect();
    let x1 = (x0 + 1..top.len())
        .find(|&x| matches!(top[x], '┐' | '┓'))
        .unwrap();
    let y1 = (y0 + 1..screen.len())
        .find(|&y| matches!(screen[y].chars().nth(x0), Some('└' | '┗')))
        .unwrap();
    (y0 + 1..y1)
        .map(|y| screen[y].chars().skip(x0 + 1).take(x1 - x0 - 1).collect())
        .collect()
}

#[test]
fn monochrome_marks_focus_and_cursor_without_colour() {
    let c = ctx();
    let mut s = flipped(Theme::builtin("monochrome").unwrap());
    drive(&mut s, &c, Action::Command(Command::Revert));
    s.chain.cursor = 1;
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let focused = |term: &Terminal<TestBackend>, title: &str| {
        rows(term)
            .iter()
            .any(|r| r.contains(&format!("┏ {title}")) || r.contains(&format!("┏▶ {title}")))
    };
    term.draw(|f| draw(f, &s)).unwrap();
    assert!(focused(&term, "Reasoning"), "{}", rows(&term).join("\n"));
    assert!(!focused(&term, "Items"));
    assert!(rows(&term).iter().any(|r| r.contains("▶2 The barking")));
    drive(&mut s, &c, Action::Command(Command::FocusNext));
    term.draw(|f| draw(f, &s)).unwrap();
    assert!(focused(&term, "Items"), "{}", rows(&term).join("\n"));
    assert!(!focused(&term, "Reasoning"));
    assert!(rows(&term).iter().any(|r| r.contains("▷2 The barking")));
    // The focused pane's title is in reverse video, which needs no colour.
    let buf = term.backend().buffer();
    let title_cell = &buf[(2, 0)];
    assert_eq!(title_cell.symbol(), "I");
    assert!(title_cell
        .modifier
        .contains(ratatui::style::Modifier::REVERSED));
}

/// The flipped state after the sweep and four more interventions (filler, paraphrase, an edit
/// and the truncation), on the aggregate screen.
fn five_interventions(theme: Theme) -> State {
    let c = ctx();
    let mut s = flipped(theme);
    let cmd = |s: &mut State, k| drive(s, &c, Action::Command(k));
    cmd(&mut s, Command::Revert);
    cmd(&mut s, Command::ScreenSweep);
    cmd(&mut s, Command::ScreenInspect);
    s.chain.cursor = 1;
    cmd(&mut s, Command::Filler);
    cmd(&mut s, Command::Revert);
    cmd(&mut s, Command::Paraphrase);
    cmd(&mut s, Command::Revert);
    cmd(&mut s, Command::Edit);
    drive(&mut s, &c, Action::Paste(" Or is it a cat?".into()));
    drive(
        &mut s,
        &c,
        Action::Key(ratatui::crossterm::event::KeyEvent::new(
            ratatui::crossterm::event::KeyCode::Char('s'),
            ratatui::crossterm::event::KeyModifiers::CONTROL,
        )),
    );
    cmd(&mut s, Command::ScreenAggregate);
    s
}

#[test]
fn aggregate_in_monochrome_has_a_legend_distinct_markers_and_one_series_at_a_time() {
    let c = ctx();
    let mut s = five_interventions(Theme::builtin("monochrome").unwrap());
    let agg = s.aggregate.clone().unwrap();
    let names: Vec<&str> = agg.curves().iter().map(|c| c.intervention.name()).collect();
    assert!(names.len() >= 3, "{names:?}");
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| draw(f, &s)).unwrap();
    let chart = pane_text(&term, "Consistency").join("\n");
    // Each curve is named in the legend with its own marker glyph, and the glyphs differ.
    let markers = ["⠤⠤", "××", "++", "oo", "◆◆", "▲▲"];
    for (name, m) in names.iter().zip(markers) {
        assert!(chart.contains(&format!("{m} {name}")), "{name}: {chart}");
    }
    assert!(chart.contains("·· 95% interval"), "{chart}");
    assert!(
        chart.contains('×'),
        "the second curve is drawn with ×: {chart}"
    );
    insta::assert_snapshot!("aggregate_mono", format!("{:?}", term.backend().buffer()));
    // One intervention at a time: only its marker is drawn and the border says which.
    drive(&mut s, &c, Action::Command(Command::AggregateSeries));
    drive(&mut s, &c, Action::Command(Command::AggregateSeries));
    term.draw(|f| draw(f, &s)).unwrap();
    let all = rows(&term).join("\n");
    let chart = pane_text(&term, "Consistency").join("\n");
    assert!(
        all.contains(&format!("{} only · i next", names[1])),
        "{all}"
    );
    assert!(chart.contains(&format!("×× {}", names[1])), "{chart}");
    assert!(!chart.contains(names[0]), "{chart}");
    assert!(!chart.contains('⠤') && !chart.contains('+'), "{chart}");
}

#[test]
fn per_group_flip_lines_wrap_inside_the_measures_pane() {
    let s = five_interventions(Theme::default());
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| draw(f, &s)).unwrap();
    let lines = pane_text(&term, "Measures");
    let text = lines.join(" ");
    let agg = s.aggregate.as_ref().unwrap();
    let mut groups = 0;
    for split in &agg.report.splits {
        for g in &split.groups {
            let start = format!("{}={} ·", split.field, g.value);
            let at = text
                .find(&start)
                .unwrap_or_else(|| panic!("{start}: {lines:#?}"));
            // Every rate of the group is there, whole, after its name.
            let rest = &text[at + start.len()..];
            let rates: Vec<String> = g
                .section
                .interventions
                .iter()
                .filter_map(|iv| Some((iv.intervention, iv.answer_change_pct?)))
                .filter(|(k, _)| !matches!(k.name(), "baseline" | "no_cot"))
                .map(|(_, p)| format!("{p:.0}%"))
                .collect();
            assert!(rates.len() >= 4, "{rates:?}");
            let mut from = 0;
            for r in &rates {
                let i = rest[from..]
                    .find(r.as_str())
                    .unwrap_or_else(|| panic!("{r} in {rest}"));
                from += i + r.len();
            }
            groups += 1;
        }
    }
    assert_eq!(groups, 3);
    // Nothing runs into the border: continuation lines are indented.
    assert!(lines.iter().any(|l| l.starts_with("  ")), "{lines:#?}");
}

#[test]
fn presenter_shows_the_choice_texts_and_probabilities() {
    let c = ctx();
    let mut s = flipped(Theme::builtin("monochrome").unwrap());
    drive(&mut s, &c, Action::Command(Command::Presenter));
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| draw(f, &s)).unwrap();
    let answer = pane_text(&term, "Answer").join("\n");
    assert!(answer.contains("dog · 80%   →   cat · 70%"), "{answer}");
    assert!(answer.contains("P(A) 80% → 30%"), "{answer}");
    assert!(answer.contains("F L I P"), "{answer}");
    // Six choices, answer F: its text and probability too.
    let mut s = six_choices_flipped_to_f(Theme::builtin("monochrome").unwrap());
    s.presenter = true;
    term.draw(|f| draw(f, &s)).unwrap();
    let answer = pane_text(&term, "Answer").join("\n");
    assert!(answer.contains("two · 62%   →   six · 55%"), "{answer}");
    assert!(answer.contains("P(B) 62% → 20%"), "{answer}");
}

#[test]
fn sweep_cells_say_they_hold_the_baseline_answers_probability() {
    let c = ctx();
    let mut s = flipped(Theme::default());
    drive(&mut s, &c, Action::Command(Command::Revert));
    drive(&mut s, &c, Action::Command(Command::ScreenSweep));
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| draw(f, &s)).unwrap();
    let table = pane_text(&term, "Sweep");
    assert!(table[1].contains("ans · P(A)   ans · P(A)"), "{table:#?}");
    // k = 0: the answer is B and P(A), the baseline answer's probability, is 30%.
    let k0 = s
        .sweep
        .trials
        .iter()
        .find(|t| t.num_sentences_provided == Some(0))
        .unwrap();
    let p = format!("{:.0}%", k0.prob_of("A").unwrap() * 100.0);
    assert!(
        table[2].starts_with(&format!("0   B {p} FLIP")),
        "{table:#?}"
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
