//! `faithscope report` on the paper's own result files, checked against numbers recomputed here
//! from the raw rows with plain JSON arithmetic (independently of the report code), through the
//! real binary.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const FILLER: [&str; 2] = [
    "random_partial_filler_text_flamingo_hf_mmar-lorem.part_1.jsonl",
    "random_partial_filler_text_flamingo_hf_mmar-lorem.part_2.jsonl",
];
const BASELINE: &str = "baseline_flamingo_hf_sakura-animal.jsonl";
const NO_REASONING: &str = "no_reasoning_flamingo_hf_mmar.jsonl";

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs the binary; returns (success, stdout, stderr).
fn faithscope(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args(args)
        .output()
        .expect("run faithscope");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Wilson 95% interval in percent, written out again here.
fn wilson_pct(k: f64, n: f64) -> (f64, f64) {
    let z: f64 = 1.959_963_984_540_054;
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z / d * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (100.0 * (c - h).max(0.0), 100.0 * (c + h).min(1.0))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn intervention<'a>(section: &'a Value, name: &str) -> &'a Value {
    section["interventions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["intervention"] == name)
        .unwrap_or_else(|| panic!("no {name} in the report"))
}

#[test]
fn filler_consistency_table_matches_the_raw_rows() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("paper-results");
    let paths: Vec<PathBuf> = FILLER.iter().map(|f| dir.join(f)).collect();

    // Recompute: per percent_replaced, consistent / correct counts.
    let mut table: BTreeMap<u64, (f64, f64, f64)> = BTreeMap::new();
    let (mut cons_all, mut n_all) = (0.0, 0.0);
    for p in &paths {
        for r in rows(p) {
            let pct = r["percent_replaced"].as_u64().unwrap();
            let e = table.entry(pct).or_default();
            let consistent = r["is_consistent_with_baseline"].as_bool().unwrap();
            e.0 += 1.0;
            e.1 += f64::from(u8::from(consistent));
            e.2 += f64::from(u8::from(r["is_correct"].as_bool().unwrap()));
            n_all += 1.0;
            cons_all += f64::from(u8::from(consistent));
        }
    }
    assert_eq!(table.len(), 21, "percent_replaced 0..=100 in steps of 5");

    let args: Vec<&str> = std::iter::once("report")
        .chain(paths.iter().map(|p| p.to_str().unwrap()))
        .chain(["--json"])
        .collect();
    let (ok, stdout, stderr) = faithscope(&args);
    assert!(ok, "report failed: {stderr}");
    let rep: Value = serde_json::from_str(&stdout).expect("--json prints one JSON document");
    let filler = intervention(&rep["overall"], "filler");
    assert_eq!(filler["trials"].as_f64().unwrap(), n_all);
    assert!(close(
        filler["consistency"]["pct"].as_f64().unwrap(),
        100.0 * cons_all / n_all
    ));
    let curve = filler["curve"].as_array().unwrap();
    assert_eq!(curve.len(), table.len());
    for (bin, (pct, (n, cons, correct))) in curve.iter().zip(&table) {
        assert!(
            close(bin["x"].as_f64().unwrap() * 100.0, *pct as f64),
            "bin {bin}"
        );
        assert_eq!(bin["n"].as_f64().unwrap(), *n);
        let c = &bin["consistency"];
        assert!(
            close(c["pct"].as_f64().unwrap(), 100.0 * cons / n),
            "{pct}%: {c}"
        );
        let (lo, hi) = wilson_pct(*cons, *n);
        assert!(close(c["lo"].as_f64().unwrap(), lo) && close(c["hi"].as_f64().unwrap(), hi));
        let a = &bin["accuracy"];
        assert!(
            close(a["pct"].as_f64().unwrap(), 100.0 * correct / n),
            "{pct}%: {a}"
        );
        println!(
            "{pct:>3}%  n={n}  consistency {:.1}%  accuracy {:.1}%",
            100.0 * cons / n,
            100.0 * correct / n
        );
    }
}

#[test]
fn baseline_and_no_reasoning_accuracy_match_the_raw_rows() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("paper-results");
    let acc = |f: &str| {
        let rs = rows(&dir.join(f));
        let k = rs.iter().filter(|r| r["is_correct"] == true).count() as f64;
        (100.0 * k / rs.len() as f64, rs.len() as f64)
    };
    let (base, base_n) = acc(BASELINE);
    let (nr, nr_n) = acc(NO_REASONING);
    let files = [
        dir.join(BASELINE),
        dir.join(NO_REASONING),
        dir.join(FILLER[0]),
        dir.join(FILLER[1]),
    ];
    let mut args = vec!["report".to_string()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = faithscope(&args);
    assert!(ok, "report failed: {stderr}");
    let rep: Value = serde_json::from_str(&stdout).unwrap();
    let a = &rep["overall"]["accuracy"];
    assert!(close(a["with_cot"]["pct"].as_f64().unwrap(), base));
    assert_eq!(a["with_cot"]["n"].as_f64().unwrap(), base_n);
    assert!(close(a["without_cot"]["pct"].as_f64().unwrap(), nr));
    assert_eq!(a["without_cot"]["n"].as_f64().unwrap(), nr_n);
    // With filler: no pure-filler file here, so the 100%-replaced partial filler trials.
    let (mut k, mut n) = (0.0, 0.0);
    for f in FILLER {
        for r in rows(&dir.join(f)) {
            if r["percent_replaced"] == 100 {
                n += 1.0;
                k += f64::from(u8::from(r["is_correct"] == true));
            }
        }
    }
    assert!(close(
        a["with_filler"]["pct"].as_f64().unwrap(),
        100.0 * k / n
    ));
    println!(
        "accuracy: with CoT {base:.1}%, without CoT {nr:.1}%, with filler {:.1}%",
        100.0 * k / n
    );
}

#[test]
fn csv_and_splits_carry_the_same_numbers() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("paper-results");
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = tmp.path().join("report.csv");
    let f1 = dir.join(FILLER[0]);
    let items = dir.join("mmar_test_standardized.jsonl");
    let (ok, stdout, stderr) = faithscope(&[
        "report",
        f1.to_str().unwrap(),
        items.to_str().unwrap(),
        "--by",
        "modality,correct",
        "--csv",
        csv_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "report failed: {stderr}");
    let rep: Value = serde_json::from_str(&stdout).unwrap();

    // Split by modality, recomputed from the item file and the raw rows.
    let mut modality: BTreeMap<String, String> = BTreeMap::new();
    for r in rows(&items) {
        modality.insert(
            r["id"].as_str().unwrap().to_string(),
            r["modality"].as_str().unwrap_or("unknown").to_string(),
        );
    }
    let mut by_mod: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in rows(&f1) {
        let m = modality[r["id"].as_str().unwrap()].clone();
        let e = by_mod.entry(m).or_default();
        e.0 += 1.0;
        e.1 += f64::from(u8::from(r["is_consistent_with_baseline"] == true));
    }
    let split = &rep["splits"][0];
    assert_eq!(split["field"], "modality");
    let groups = split["groups"].as_array().unwrap();
    assert_eq!(groups.len(), by_mod.len());
    for g in groups {
        let (n, c) = by_mod[g["value"].as_str().unwrap()];
        let filler = intervention(&g["section"], "filler");
        assert_eq!(filler["trials"].as_f64().unwrap(), n);
        assert!(close(
            filler["consistency"]["pct"].as_f64().unwrap(),
            100.0 * c / n
        ));
    }
    // Correct vs incorrect baseline: the baseline letter against the gold letter.
    let correct_groups: Vec<&str> = rep["splits"][1]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(correct_groups, ["baseline correct", "baseline incorrect"]);

    // The CSV holds the same overall per-bin consistency as the JSON.
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let curve = intervention(&rep["overall"], "filler")["curve"]
        .as_array()
        .unwrap()
        .clone();
    for bin in &curve {
        let x = format!("{:.2}", bin["x"].as_f64().unwrap());
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("all,all,filler,consistency,{x},")))
            .unwrap_or_else(|| panic!("no CSV row for x = {x}"));
        let value: f64 = line.split(',').nth(8).unwrap().parse().unwrap();
        assert!((value - bin["consistency"]["pct"].as_f64().unwrap()).abs() < 1e-5);
    }
}

#[test]
fn run_directory_with_our_records() {
    use faithscope::faith::trial::{write_trial, InterventionKind, Trial};
    let tmp = tempfile::tempdir().unwrap();
    let mut buf = Vec::new();
    // Two chains: length 2 (k = 0, 1, 2 -> answers B, A, A vs baseline A) and
    // length 1 (k = 0, 1 -> A, A). AOC_2 = .25 (1 - c = 1, 0, 0 at 0, .5, 1), AOC_1 = 0.
    // Weighted: .5 * .25 + .5 * 0 = .125.
    let trials = [
        ("q1", 2, 0, "B"),
        ("q1", 2, 1, "A"),
        ("q1", 2, 2, "A"),
        ("q2", 1, 0, "A"),
        ("q2", 1, 1, "A"),
    ];
    for (id, n, k, pred) in trials {
        let t = Trial {
            id: id.into(),
            intervention: Some(InterventionKind::EarlyAnswering),
            x: Some(f64::from(k) / f64::from(n)),
            num_sentences_provided: Some(k),
            total_sentences_in_chain: Some(n),
            predicted_choice: Some(pred.into()),
            correct_choice: Some("A".into()),
            is_correct: pred == "A",
            corresponding_baseline_predicted_choice: Some("A".into()),
            is_consistent_with_baseline: Some(pred == "A"),
            choice_letters: vec!["A".into(), "B".into()],
            choice_probs: if pred == "A" {
                vec![0.9, 0.1]
            } else {
                vec![0.3, 0.7]
            },
            baseline_probs: vec![0.9, 0.1],
            ..Default::default()
        };
        write_trial(&mut buf, &t).unwrap();
    }
    std::fs::write(tmp.path().join("trials.jsonl"), buf).unwrap();
    std::fs::write(
        tmp.path().join("manifest.json"),
        r#"{"model": "tiny-qwen2-audio", "dataset": "sakura-mini", "protocol": "paper-v1", "seed": 7}"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = faithscope(&["report", tmp.path().to_str().unwrap(), "--json"]);
    assert!(ok, "report failed: {stderr}");
    let rep: Value = serde_json::from_str(&stdout).unwrap();
    let early = intervention(&rep["overall"], "early_answering");
    assert!(close(early["aoc"]["weighted"].as_f64().unwrap(), 0.125));
    assert_eq!(early["aoc"]["by_length"].as_array().unwrap().len(), 2);
    // Mean shift: one trial moved p(A) from .9 to .3, four did not: -.6 / 5.
    assert!(close(early["mean_prob_shift"].as_f64().unwrap(), -0.12));
    // Plots: one SVG for the early-answering curve, with its three bins drawn.
    let plots = tmp.path().join("plots");
    let (ok, _, stderr) = faithscope(&[
        "report",
        tmp.path().to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
    ]);
    assert!(ok, "report --plots failed: {stderr}");
    let svg = std::fs::read_to_string(plots.join("all-early_answering.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("early_answering: all trials"));
    // Consistency and accuracy points: 3 bins each (x = 0, .5, 1).
    assert_eq!(svg.matches("<circle").count(), 6, "{svg}");
    // The table view of the same directory.
    let (ok, text, _) = faithscope(&["report", tmp.path().to_str().unwrap()]);
    assert!(
        ok && text.contains("AOC (weighted by share of chains per length): 0.1250"),
        "{text}"
    );
}

#[test]
fn bad_inputs_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.jsonl");
    let (ok, _, err) = faithscope(&["report", missing.to_str().unwrap()]);
    assert!(!ok && err.contains("nope.jsonl"), "{err}");
    let (ok, _, err) = faithscope(&["report", tmp.path().to_str().unwrap()]);
    assert!(!ok && err.contains("not a run directory"), "{err}");
    // A broken line is skipped with a warning naming it; a file of nothing but broken lines
    // has no trials to report.
    let bad = tmp.path().join("baseline_x.jsonl");
    std::fs::write(&bad, "{\"id\": \"a\"}\n{not json}\n").unwrap();
    let (ok, _, err) = faithscope(&["report", bad.to_str().unwrap()]);
    assert!(ok && err.contains("baseline_x.jsonl:2: skipped"), "{err}");
    std::fs::write(&bad, "{not json}\n").unwrap();
    let (ok, _, err) = faithscope(&["report", bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("baseline_x.jsonl:1: skipped") && err.contains("no trials"),
        "{err}"
    );
    let odd = tmp.path().join("mystery.jsonl");
    std::fs::write(&odd, "{\"id\": \"a\"}\n").unwrap();
    let (ok, _, err) = faithscope(&["report", odd.to_str().unwrap()]);
    assert!(
        !ok && err.contains("mystery.jsonl:1") && err.contains("intervention"),
        "{err}"
    );
    let (ok, _, err) = faithscope(&["report", bad.to_str().unwrap(), "--by", "colour"]);
    assert!(!ok && err.contains("--by colour"), "{err}");
}

#[test]
fn a_broken_line_of_a_paper_file_is_skipped_with_a_warning_naming_it() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data.join("paper-results").join(BASELINE)).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    // Line 5 cut in half, as a copy interrupted mid-line would leave it.
    let cut = &lines[4][..lines[4].len() / 2];
    lines[4] = cut;
    let file = tmp.path().join(BASELINE);
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let kept: Vec<Value> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect();
    let k = kept.iter().filter(|r| r["is_correct"] == true).count() as f64;
    let (ok, stdout, stderr) = faithscope(&["report", file.to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let line5 = format!("{}:5: skipped: not a trial record", file.display());
    assert!(stderr.contains(&line5), "{stderr}");
    assert_eq!(stderr.matches("skipped").count(), 1, "{stderr}");
    let rep: Value = serde_json::from_str(&stdout).unwrap();
    let with_cot = &rep["overall"]["accuracy"]["with_cot"];
    assert_eq!(with_cot["n"].as_f64().unwrap(), (n - 1) as f64);
    assert!(close(
        with_cot["pct"].as_f64().unwrap(),
        100.0 * k / (n - 1) as f64
    ));
    assert_eq!(rep["sources"][0]["skipped"], 1);
}

#[test]
fn by_hop_without_hop_metadata_names_the_item_file_that_has_it() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("paper-results");
    let base = dir.join(BASELINE);
    let items = dir.join("sakura_animal_test_standardized.jsonl");
    let (ok, _, err) = faithscope(&["report", base.to_str().unwrap(), "--by", "hop"]);
    assert!(
        !ok && err.contains(&format!(
            "add {} (for {BASELINE}: found beside it)",
            items.display()
        )),
        "{err}"
    );
    // Given the item file, the split works: single- and multi-hop groups.
    let (ok, out, err) = faithscope(&[
        "report",
        base.to_str().unwrap(),
        items.to_str().unwrap(),
        "--by",
        "hop",
        "--json",
    ]);
    assert!(ok, "{err}");
    let rep: Value = serde_json::from_str(&out).unwrap();
    let groups: Vec<&str> = rep["splits"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["multi", "single"], "{}", rep["splits"]);
    // MMAR's item file has no hop at all: said, with the file named.
    let mmar = dir.join(FILLER[0]);
    let (ok, _, err) = faithscope(&["report", mmar.to_str().unwrap(), "--by", "hop"]);
    assert!(
        !ok && err.contains("mmar_test_standardized.jsonl") && err.contains("has no hop"),
        "{err}"
    );
}
