//! `faithscope run --shard K/N`, `run --check` and `report` over several run directories,
//! through the real binary with a demo model on the embedded synthetic items: four shards hold
//! exactly the unsharded run's trials, merge to its report, and `--check` names a missing and a
//! half-done shard.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ITEMS: usize = 14;

fn faithscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .current_dir(common::repo())
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", text(&o));
    text(&o)
}

fn start(out: &Path, extra: &[&str]) -> String {
    let model = common::repo().join("samples/models/demo-faithful");
    let limit = ITEMS.to_string();
    let mut args = vec![
        "run",
        "--data",
        "samples/synth-test",
        "--model",
        model.to_str().unwrap(),
        "--interventions",
        "early,mistakes",
        "--mistake-source",
        "facts",
        "--limit",
        &limit,
        "--seed",
        "5",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    // extra flags and values, each replacing the flag's value above or added
    for pair in extra.chunks(2) {
        match args.iter().position(|a| *a == pair[0]) {
            Some(i) => args[i + 1] = pair[1],
            None => args.extend_from_slice(pair),
        }
    }
    ok(faithscope(&args), &format!("run {extra:?}"))
}

/// Trials by (item, chain, trial key), timings left out.
fn trials(dirs: &[&Path]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for d in dirs {
        for t in common::run_lines(d, "trials.jsonl") {
            let key = format!("{} {} {}", t["id"], t["chain_id"], t["trial_key"]);
            assert!(out.insert(key.clone(), t).is_none(), "{key} twice");
        }
    }
    out
}

fn item_ids(dir: &Path) -> std::collections::BTreeSet<String> {
    common::run_lines(dir, "trials.jsonl")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

fn report_overall(dirs: &[&Path]) -> (Value, String) {
    let mut args = vec!["report", "--json"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    let o = faithscope(&args);
    assert!(o.status.success(), "report failed: {}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        v["overall"].clone(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn check(dirs: &[&Path]) -> (bool, String) {
    let mut args = vec!["run", "--check"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    let o = faithscope(&args);
    (o.status.success(), text(&o))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn four_shards_hold_the_unsharded_run_and_merge_to_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    start(&full, &[]);
    let shards: Vec<PathBuf> = (0..4)
        .map(|k| tmp.path().join(format!("shard-{k}")))
        .collect();
    for (k, dir) in shards.iter().enumerate() {
        start(dir, &["--shard", &format!("{k}/4")]);
        let m: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(m["shard"], serde_json::json!({"index": k, "count": 4}));
        assert_eq!(m["items"].as_u64().unwrap() as usize, item_ids(dir).len());
    }
    let parts: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();

    // the shards partition the items and hold exactly the unsharded run's trials
    let sizes: Vec<usize> = parts.iter().map(|d| item_ids(d).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), ITEMS, "{sizes:?}");
    assert!(sizes.iter().filter(|&&n| n > 0).count() >= 3, "{sizes:?}");
    let (whole, merged) = (trials(&[&full]), trials(&parts));
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        merged.keys().collect::<Vec<_>>()
    );
    for (k, t) in &whole {
        assert!(common::same_json(t, &merged[k]), "{k}:\n{t}\n{}", merged[k]);
    }

    // report: the four shards read as one run give the unsharded run's numbers
    let (one, _) = report_overall(&[&full]);
    let (four, warnings) = report_overall(&parts);
    assert!(common::same_json(&one, &four), "{one}\n{four}");
    assert!(!warnings.contains("warning"), "{warnings}");

    // a directory given twice, and a copy of a shard, are counted once with a warning
    let copy = tmp.path().join("copy-of-shard-0");
    copy_dir(parts[0], &copy);
    let mut more = parts.clone();
    more.push(parts[1]);
    more.push(&copy);
    let (again, warnings) = report_overall(&more);
    assert!(common::same_json(&one, &again), "{one}\n{again}");
    assert!(warnings.contains("given twice"), "{warnings}");
    assert!(warnings.contains("counted once"), "{warnings}");

    // complete
    let (done, out) = check(&parts);
    assert!(done, "{out}");
    assert!(
        out.contains(&format!("4 of 4 shards, {ITEMS} items: {ITEMS} done")),
        "{out}"
    );

    // a run with other settings does not mix, and the field is named
    let other = tmp.path().join("other");
    start(&other, &["--shard", "0/4", "--interventions", "early"]);
    let o = faithscope(&[
        "report",
        parts[1].to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("differ in interventions"), "{}", text(&o));
    let (done, out) = check(&[parts[1], &other]);
    assert!(!done && out.contains("differ in interventions"), "{out}");
    let o = faithscope(&["report", parts[1].to_str().unwrap(), full.to_str().unwrap()]);
    assert!(text(&o).contains("shard count"), "{}", text(&o));

    // the inspector opens the shards as one run (every item's chain there) and refuses a mix
    let prepared = faithscope::tui::prepare(&faithscope::tui::Options {
        data: Some(common::repo().join("samples/synth-test")),
        run: parts.iter().map(|p| p.to_path_buf()).collect(),
        annotations: Some(tmp.path().join("a.jsonl")),
        ..faithscope::tui::Options::default()
    })
    .unwrap_or_else(|e| panic!("inspect --run with four shards: {e:#}"));
    let flipped_whole = whole
        .values()
        .filter(|t| t["is_consistent_with_baseline"] == Value::Bool(false))
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>();
    let flipped_shown = prepared
        .state
        .marks
        .iter()
        .filter(|(_, m)| m.flipped)
        .map(|(id, _)| id.clone())
        .collect::<std::collections::BTreeSet<_>>();
    assert!(!flipped_whole.is_empty());
    assert_eq!(flipped_whole, flipped_shown);
    let e = faithscope::tui::prepare(&faithscope::tui::Options {
        data: Some(common::repo().join("samples/synth-test")),
        run: vec![parts[1].to_path_buf(), other.clone()],
        annotations: Some(tmp.path().join("b.jsonl")),
        ..faithscope::tui::Options::default()
    })
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(e.contains("differ in interventions"), "{e}");

    // a deleted shard: named, its items missing, the report warns
    let k = (0..4).find(|&k| sizes[k] > 0).unwrap();
    let rest: Vec<&Path> = (0..4).filter(|&j| j != k).map(|j| parts[j]).collect();
    let (done, out) = check(&rest);
    assert!(!done, "{out}");
    assert!(out.contains(&format!("missing shards: {k}/4")), "{out}");
    assert!(out.contains(&format!("{} missing", sizes[k])), "{out}");
    let (_, warnings) = report_overall(&rest);
    assert!(
        warnings.contains(&format!("shards missing: {k}/4")),
        "{warnings}"
    );
    assert!(
        warnings.contains(&format!(
            "{} items of samples/synth-test are in no run directory",
            sizes[k]
        )),
        "{warnings}"
    );

    // a half-done shard (as a kill leaves it: no item finished, half its trials written) is
    // partial; resuming it completes the set with the same trials
    let half = parts[k];
    let lines = std::fs::read_to_string(half.join("trials.jsonl")).unwrap();
    let n = lines.lines().count();
    let cut: String = lines
        .lines()
        .take(n / 2)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(half.join("trials.jsonl"), cut).unwrap();
    std::fs::write(half.join("done.jsonl"), "").unwrap();
    let (done, out) = check(&parts);
    assert!(!done, "{out}");
    assert!(
        out.contains(&format!("0 errored, {} partial, 0 missing", sizes[k])),
        "{out}"
    );
    ok(
        faithscope(&["run", "--resume", half.to_str().unwrap(), "--quiet"]),
        "resume of the half-done shard",
    );
    let (done, out) = check(&parts);
    assert!(done, "{out}");
    let merged = trials(&parts);
    assert_eq!(whole.len(), merged.len());
    for (k, t) in &whole {
        assert!(common::same_json(t, &merged[k]), "{k}");
    }
}

#[test]
fn resuming_a_finished_run_runs_no_item_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    start(&dir, &["--limit", "3"]);
    let done = common::run_lines(&dir, "done.jsonl");
    assert_eq!(done.len(), 3, "{done:?}");
    let o = faithscope(&["run", "--resume", dir.to_str().unwrap()]);
    let out = ok(o, "resume");
    assert!(out.contains("0 items done now, 3 before"), "{out}");
    assert_eq!(common::run_lines(&dir, "done.jsonl").len(), 3);
}

#[test]
fn bad_shards_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["4/4", "1/0", "x/2", "2"] {
        let model = common::repo().join("samples/models/demo-faithful");
        let o = faithscope(&[
            "run",
            "--data",
            "samples/synth-test",
            "--model",
            model.to_str().unwrap(),
            "--shard",
            bad,
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "--shard {bad} accepted");
        assert!(text(&o).contains("K/N"), "{bad}: {}", text(&o));
    }
    let o = faithscope(&["run", "--check", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("manifest.json"), "{}", text(&o));
}
