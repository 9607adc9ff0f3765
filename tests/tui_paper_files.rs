//! The paper's result files opened in the inspector (`inspect --run FILE...`): items from the
//! item file beside them (or from the rows), chains from the rows that hold them whole, the
//! recorded answers and trials per item, and the aggregate panels over the files. Expected values
//! are read from the raw rows here with plain JSON code.

mod common;

use std::path::{Path, PathBuf};

use faithscope::faith::paper;
use faithscope::tui::aggregate;
use faithscope::tui::state::{update, Action, ModelStatus, State};
use faithscope::tui::testing::screen_text;
use faithscope::tui::{prepare, Options};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;

const FILLER: [&str; 2] = [
    "random_partial_filler_text_flamingo_hf_mmar-lorem.part_1.jsonl",
    "random_partial_filler_text_flamingo_hf_mmar-lorem.part_2.jsonl",
];
const BASELINE: &str = "baseline_flamingo_hf_sakura-animal.jsonl";

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Opens `files` without a model (the recorded answers are what is shown).
fn open(files: &[PathBuf], annotations: &Path) -> (State, Vec<PathBuf>) {
    let p = prepare(&Options {
        run: files.to_vec(),
        annotations: Some(annotations.to_path_buf()),
        model: Some("none".into()),
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{}", faithscope::cli::error_chain(&e)));
    let mut s = p.state;
    s.model = ModelStatus::None("test without a model".into());
    (s, p.run_inputs)
}

/// The baseline answer the answer pane shows.
fn baseline_answer(s: &State) -> Option<&str> {
    s.answers.baseline.as_ref()?.predicted_choice.as_deref()
}

fn press(s: &mut State, c: char) {
    update(
        s,
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
    );
}

#[test]
fn filler_files_open_with_items_chains_recorded_trials_and_panels() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("paper-results");
    let files: Vec<PathBuf> = FILLER.iter().map(|f| dir.join(f)).collect();
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, inputs) = open(&files, &tmp.path().join("a.jsonl"));
    // Items: the MMAR item file beside the result files.
    let item_file = dir.join("mmar_test_standardized.jsonl");
    assert_eq!(s.items.len(), rows(&item_file).len());
    assert_eq!(s.items[0].id, "mmar_0");
    assert!(inputs.contains(&item_file), "{inputs:?}");
    // Marks: every item with a trial inconsistent with its baseline.
    let raw: Vec<Value> = files.iter().flat_map(|f| rows(f)).collect();
    let mut flipped: Vec<&str> = raw
        .iter()
        .filter(|r| r["is_consistent_with_baseline"] == false)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    flipped.sort();
    flipped.dedup();
    let mut marked: Vec<&str> = s
        .marks
        .iter()
        .filter(|(_, m)| m.flipped)
        .map(|(id, _)| id.as_str())
        .collect();
    marked.sort();
    assert_eq!(marked, flipped);

    // The chain of mmar_0: the reasoning in the 0%-replaced trial's prompt, between the
    // question block and the answer cue.
    faithscope::tui::state::start(&mut s);
    let row = raw
        .iter()
        .find(|r| r["id"] == "mmar_0" && r["percent_replaced"] == 0)
        .unwrap();
    let prompt = row["final_prompt_messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    let parts: Vec<&str> = prompt.split("\n\n").collect();
    let reasoning = parts[1..parts.len() - 1].join("\n\n");
    assert_eq!(words(&s.chain.sentences.join(" ")), words(&reasoning));
    assert_eq!(s.chain.sentences.len(), 2, "{:?}", s.chain.sentences);
    // The recorded baseline answer is shown; the missing clip keeps the model from being asked.
    let baseline = row["corresponding_baseline_predicted_choice"]
        .as_str()
        .unwrap();
    assert_eq!(baseline_answer(&s), Some(baseline));

    // The sweep screen shows the item's recorded trials, filler ones in their own list.
    press(&mut s, '2');
    let mine: Vec<&Value> = raw.iter().filter(|r| r["id"] == "mmar_0").collect();
    assert!(s.sweep.recorded);
    assert_eq!(s.sweep.trials.len(), mine.len());
    let shown = screen_text(&s, 110, 32);
    assert!(
        shown.contains(&format!("other trials ({})", mine.len())),
        "{shown}"
    );
    let r5 = mine.iter().find(|r| r["percent_replaced"] == 5).unwrap();
    let line = format!(
        "filler 5% {}{}",
        r5["predicted_choice"].as_str().unwrap(),
        if r5["is_consistent_with_baseline"] == false {
            " FLIP"
        } else {
            ""
        }
    );
    assert!(shown.contains(&line), "{line}\n{shown}");
    assert!(shown.contains("· recorded"), "{shown}");
    assert!(s.status.contains("recorded"), "{}", s.status);

    // The aggregate panels read the files with the item file: consistency as in the rows, and
    // the MMAR categories as groups.
    let loaded = paper::load(&inputs).unwrap();
    let agg = aggregate::build(&loaded.trials, "files");
    let filler = agg
        .report
        .overall
        .interventions
        .iter()
        .find(|i| i.intervention.name() == "filler")
        .unwrap();
    let consistent = raw
        .iter()
        .filter(|r| r["is_consistent_with_baseline"] == true)
        .count();
    assert_eq!(filler.trials, raw.len());
    let pct = filler.consistency.unwrap().pct;
    assert!((pct - 100.0 * consistent as f64 / raw.len() as f64).abs() < 1e-9);
    let category = agg
        .report
        .splits
        .iter()
        .find(|sp| sp.field == "category")
        .unwrap();
    assert!(
        category.groups.iter().any(|g| g.value == "Semantic Layer"),
        "{:?}",
        category.groups.iter().map(|g| &g.value).collect::<Vec<_>>()
    );
}

#[test]
fn a_baseline_file_gives_each_item_its_sanitized_chain() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("paper-results");
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _) = open(&[dir.join(BASELINE)], &tmp.path().join("a.jsonl"));
    assert_eq!(
        s.items.len(),
        rows(&dir.join("sakura_animal_test_standardized.jsonl")).len()
    );
    faithscope::tui::state::start(&mut s);
    let row = rows(&dir.join(BASELINE)).into_iter().next().unwrap();
    assert_eq!(s.items[0].id, row["id"].as_str().unwrap());
    let cot = row["sanitized_cot"]
        .as_str()
        .or(row["generated_cot"].as_str())
        .unwrap();
    assert_eq!(words(&s.chain.sentences.join(" ")), words(cot));
    assert!(s.chain.sentences.len() > 1);
    assert_eq!(baseline_answer(&s), row["predicted_choice"].as_str());
    assert!(s.status.contains("model"), "{}", s.status);
}

#[test]
fn without_an_item_file_the_items_are_rebuilt_from_the_rows() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(BASELINE);
    std::fs::copy(data.join("paper-results").join(BASELINE), &file).unwrap();
    let (s, _) = open(std::slice::from_ref(&file), &tmp.path().join("a.jsonl"));
    let raw = rows(&file);
    let mut ids: Vec<&str> = raw.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(s.items.len(), ids.len());
    // "(A) sheep\n(B) cat\n..." and correct_choice "B".
    let first = &raw[0];
    let choices: Vec<String> = first["choices"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| l[4..].to_string())
        .collect();
    assert_eq!(s.items[0].choices, choices);
    let gold = first["correct_choice"].as_str().unwrap().as_bytes()[0] - b'A';
    assert_eq!(s.items[0].gold, Some(gold as usize));
    assert_eq!(s.items[0].question, first["question"].as_str().unwrap());
    assert!(
        s.messages.iter().any(|m| m.contains("no item file")),
        "{:?}",
        s.messages
    );
}

#[test]
fn unusable_result_files_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("baseline_x.jsonl");
    std::fs::write(&garbage, "{not json}\n").unwrap();
    let missing = tmp.path().join("baseline_gone.jsonl");
    let items = tmp.path().join("x_test_standardized.jsonl");
    std::fs::write(
        &items,
        r#"{"id": "a", "audio_path": "a.wav", "question": "Q?", "choices": ["x", "y"], "answer": "x", "answer_key": 0}"#,
    )
    .unwrap();
    for (files, wanted) in [
        (vec![garbage.clone()], "baseline_x.jsonl"),
        (vec![missing.clone()], "baseline_gone.jsonl"),
        (vec![items.clone()], "no result file"),
    ] {
        let e = prepare(&Options {
            run: files,
            model: Some("none".into()),
            ..Options::default()
        })
        .err()
        .expect("refused");
        let shown = faithscope::cli::error_chain(&e);
        assert!(shown.contains(wanted), "{shown}");
        // the OS reason, where there is one, is said once
        assert!(shown.matches("os error").count() <= 1, "{shown}");
    }
}
