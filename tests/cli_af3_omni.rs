//! `run` and `report` through the binary with the Audio Flamingo 3 (thinking adapter merged) and
//! Qwen2.5-Omni folders: the architecture picks the protocol, the manifest names the adapter,
//! `--resume` keeps it, and the report reads the run back.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn faithscope(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running faithscope")
}

fn ok(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed:\n{err}");
    err
}

fn manifest(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_run_of_each_model_uses_its_protocol_and_reads_back() {
    let repo = common::repo();
    let data = repo.join("samples/synth-test");
    let tmp = tempfile::tempdir().unwrap();
    for (folder, adapter, protocol, name) in [
        ("af3-tiny", Some("think"), "af3", "af3-tiny+think"),
        ("omni-full-tiny", None, "omni", "omni-full-tiny"),
    ] {
        let model = repo.join("tests/fixtures/af3_omni").join(folder);
        let run = tmp.path().join(folder);
        let mut args = vec![
            "run",
            "--data",
            data.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--limit",
            "1",
            "--interventions",
            "early",
        ];
        if let Some(a) = adapter {
            args.extend(["--adapter", a]);
        }
        let err = ok(&faithscope(&args, tmp.path()), folder);
        let m = manifest(&run);
        assert_eq!(m["protocol"]["name"], protocol, "{folder}: {err}");
        assert_eq!(m["model_name"], name);
        assert_eq!(m["adapter"].as_str(), adapter);
        let trials = common::run_lines(&run, "trials.jsonl");
        assert!(
            trials
                .iter()
                .any(|t| t["intervention"] == "early_answering"),
            "{folder}: no early-answering trial"
        );
        // resuming a finished run reopens the same model (adapter included) and adds nothing
        let before = trials.len();
        ok(
            &faithscope(&["run", "--resume", run.to_str().unwrap()], tmp.path()),
            "resume",
        );
        assert_eq!(common::run_lines(&run, "trials.jsonl").len(), before);
        let out = faithscope(&["report", run.to_str().unwrap(), "--json"], tmp.path());
        ok(&out, "report");
        let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            rep["overall"]["trials"].as_u64(),
            Some(before as u64),
            "{folder}: {rep}"
        );
        assert_eq!(rep["sources"][0]["manifest"]["adapter"].as_str(), adapter);
        assert!(trials
            .iter()
            .all(|t| t["model"] == name && t["prompt_protocol"] == protocol));
    }
}
