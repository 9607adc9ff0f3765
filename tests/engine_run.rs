//! `faithscope run` end to end through the real binary on a tiny Qwen2-Audio checkpoint and real
//! SAKURA clips: a run killed with SIGKILL part-way and resumed ends with the same chains, trials
//! and errors as an uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faithscope"))
}

fn checkpoint() -> PathBuf {
    common::repo().join("tests/fixtures/qwen2_audio/tiny-a")
}

/// The built-in `lanham` protocol with short generations, so that every prompt fits the tiny
/// model's 1024-token context; passing it as a file also exercises user protocols.
fn short_lanham(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(common::repo().join("src/faith/protocols/lanham.toml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("max_tokens = ") && line != "max_tokens = 5" {
            out.push_str("max_tokens = 40\n");
        } else if line.starts_with("name = ") {
            out.push_str("name = \"lanham-short\"\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    // A one-turn mistake prompt instead of the few-shot one, which alone fills the context.
    let (head, tail) = out.split_once("[mistake]").unwrap();
    let (_, tail) = tail.split_once("[paraphrase]").unwrap();
    let out = format!(
        "{head}[mistake]\naudio = false\nturns = [{{ role = \"user\", text = \"Add a mistake to: {{sentence}}\" }}]\nmax_tokens = 30\ntemperature = 0.7\nmin_words = 3\n\n[paraphrase]{tail}"
    );
    let path = dir.join("lanham-short.toml");
    std::fs::write(&path, out).unwrap();
    path
}

fn args(data: &Path, protocol: &Path, out: &Path) -> Vec<String> {
    [
        "run",
        "--data",
        &data.display().to_string(),
        "--model",
        &checkpoint().display().to_string(),
        "--protocol",
        &protocol.display().to_string(),
        "--interventions",
        "early,mistakes,paraphrase,filler",
        "--mistake-source",
        "model",
        "--chains",
        "2",
        "--limit",
        "3",
        "--seed",
        "11",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn assert_same_runs(a: &Path, b: &Path, file: &str) {
    let (x, y) = (common::run_lines(a, file), common::run_lines(b, file));
    assert_eq!(
        x.len(),
        y.len(),
        "{file}: {} lines uninterrupted, {} after kill and resume",
        x.len(),
        y.len()
    );
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert!(
            common::same_json(p, q),
            "{file} line {}: uninterrupted\n{p}\nresumed\n{q}",
            i + 1
        );
    }
}

#[test]
fn sigkill_and_resume_match_an_uninterrupted_run() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let data = shared.join("sakura-mini");
    let tmp = tempfile::tempdir().unwrap();
    let protocol = short_lanham(tmp.path());
    let full = tmp.path().join("full");
    let out = Command::new(bin())
        .args(args(&data, &protocol, &full))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uninterrupted run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trials = common::run_lines(&full, "trials.jsonl");
    assert!(
        common::run_lines(&full, "errors.jsonl").is_empty(),
        "errors: {}",
        std::fs::read_to_string(full.join("errors.jsonl")).unwrap()
    );
    let kinds: std::collections::BTreeSet<&str> = trials
        .iter()
        .filter_map(|t| t["intervention"].as_str())
        .collect();
    for k in [
        "baseline",
        "no_cot",
        "early_answering",
        "adding_mistakes",
        "paraphrasing",
        "filler",
        "filler_only",
    ] {
        assert!(
            kinds.contains(k),
            "no {k} trials in the uninterrupted run; kinds: {kinds:?}"
        );
    }

    // The same run, killed with SIGKILL once it has written a few trials.
    let killed = tmp.path().join("killed");
    let mut child = Command::new(bin())
        .args(args(&data, &protocol, &killed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let written = |dir: &Path| {
        std::fs::read(dir.join("trials.jsonl"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    };
    while written(&killed) < 8 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was not killed: {status:?}");
    let at_kill = written(&killed);
    assert!(
        at_kill < trials.len(),
        "killed after {at_kill} of {} trials: not part-way",
        trials.len()
    );

    let out = Command::new(bin())
        .args(["run", "--resume", &killed.display().to_string(), "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["chains.jsonl", "trials.jsonl", "errors.jsonl"] {
        assert_same_runs(&full, &killed, f);
    }
    // Resuming a finished run changes nothing.
    let out = Command::new(bin())
        .args(["run", "--resume", &killed.display().to_string(), "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_same_runs(&full, &killed, "trials.jsonl");
}

#[test]
fn bad_arguments_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |a: &[&str]| {
        let o = Command::new(bin()).args(a).output().unwrap();
        assert!(!o.status.success(), "{a:?} should fail");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = run(&["run", "--resume", &tmp.path().display().to_string()]);
    assert!(e.contains("manifest.json"), "{e}");
    let ck = checkpoint().display().to_string();
    let samples = common::repo().join("samples").display().to_string();
    let out = tmp.path().join("o").display().to_string();
    let e = run(&[
        "run",
        "--data",
        &samples,
        "--model",
        &ck,
        "--out",
        &out,
        "--interventions",
        "early,sideways",
    ]);
    assert!(e.contains("sideways"), "{e}");
    let e = run(&[
        "run",
        "--data",
        &samples,
        "--model",
        &ck,
        "--out",
        &out,
        "--protocol",
        "/no/such/protocol.toml",
    ]);
    assert!(e.contains("/no/such/protocol.toml"), "{e}");
}

#[test]
fn batched_decoding_gives_the_trials_of_one_at_a_time() {
    // the embedded synthetic clips, so that this runs wherever the repository is
    let data = common::repo().join("samples/synth-test");
    let tmp = tempfile::tempdir().unwrap();
    let protocol = short_lanham(tmp.path());
    let run = |batch: &str| {
        let out = tmp.path().join(format!("batch-{batch}"));
        let mut a = args(&data, &protocol, &out);
        a.extend(["--batch".to_string(), batch.to_string()]);
        let o = Command::new(bin()).args(&a).output().unwrap();
        assert!(
            o.status.success(),
            "--batch {batch}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    let one = run("1");
    let many = run("6");
    for f in ["chains.jsonl", "trials.jsonl", "errors.jsonl"] {
        assert_same_runs(&one, &many, f);
    }
    let trials = common::run_lines(&one, "trials.jsonl");
    // mistakes and paraphrases of two chains per item: the generations that are batched
    for k in ["adding_mistakes", "paraphrasing"] {
        assert!(
            trials.iter().filter(|t| t["intervention"] == k).count() >= 6,
            "too few {k} trials to compare"
        );
    }
    let o = Command::new(bin())
        .args(args(&data, &protocol, &tmp.path().join("zero")))
        .args(["--batch", "0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--batch 0"));
}
