//! The remote backend against a real server on loopback (`faithscope serve` of the demo models,
//! through the real binary): a run through the server gives the trials of the same run in
//! process, the capability probe, streaming and cancel through the library client, the named
//! faults (nothing listening, a refused key, an unknown served model), and a server killed
//! mid-run: the run records errors, and `--resume` against the restarted server completes with
//! exactly the trials of an uninterrupted run.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{run_lines, same_json, Served};
use faithscope::model::remote::{RemoteOptions, RemoteReasoner};
use faithscope::model::{Conversation, GenParams, Message, Reasoner, Role};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faithscope"))
}

fn demo(name: &str) -> PathBuf {
    common::repo().join("samples/models").join(name)
}

/// `faithscope run` of the demo model's own protocol over the first items of the synthetic split.
fn run_args(model: &str, items: usize, out: &Path) -> Vec<String> {
    [
        "run",
        "--data",
        "samples/synth-test",
        "--model",
        model,
        "--protocol",
        "lanham",
        "--interventions",
        "early,mistakes",
        "--mistake-source",
        "facts",
        "--limit",
        &items.to_string(),
        "--seed",
        "3",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Lines of a run directory's trials.jsonl so far.
fn written(dir: &Path) -> usize {
    std::fs::read(dir.join("trials.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Starts `faithscope run` and returns once it has written `trials` trials into `dir`.
fn start_until(args: &[String], dir: &Path, trials: usize) -> std::process::Child {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(common::repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while written(dir) < trials {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child
}

fn run(args: &[String]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(common::repo())
        .output()
        .unwrap()
}

/// A run's trials in one order (a resumed run appends its retried items at the end, a
/// concurrent run writes items as they finish).
fn sorted(dir: &Path) -> Vec<serde_json::Value> {
    let mut v = run_lines(dir, "trials.jsonl");
    let key = |t: &serde_json::Value| {
        format!(
            "{}|{}|{}|{:.6}|{}",
            t["id"],
            t["chain_id"],
            t["intervention"],
            t["x"].as_f64().unwrap_or(-1.0),
            t["mistake_position"]
        )
    };
    v.sort_by_key(key);
    v
}

/// The trials of two runs, in one order.
fn assert_same_trials(a: &Path, b: &Path) {
    let (x, y) = (sorted(a), sorted(b));
    assert!(!x.is_empty());
    assert_eq!(x.len(), y.len(), "trials in process vs through the server");
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert!(
            same_json(p, q),
            "trial {}: in process\n{p}\nthrough the server\n{q}",
            i + 1
        );
    }
}

#[test]
fn a_run_through_serve_gives_the_trials_of_the_run_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let model = demo("demo-faithful");
    let local = tmp.path().join("local");
    let out = run(&run_args(&model.display().to_string(), 3, &local));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = Served::start(&model, 0, &[]);
    let remote = tmp.path().join("remote");
    let out = run(&run_args(&served.url, 3, &remote));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run_lines(&remote, "errors.jsonl").is_empty());
    assert_same_trials(&local, &remote);
    // The manifest names the server, never a key.
    let manifest = std::fs::read_to_string(remote.join("manifest.json")).unwrap();
    assert!(manifest.contains(&served.url), "{manifest}");
}

fn question() -> Conversation {
    Conversation {
        audio: Some(common::repo().join("samples/synth-test/audio/synth-test-count-0000.flac")),
        messages: vec![Message {
            role: Role::User,
            text: "Question: How many beeps do you hear?\n\nChoices:\n(A) one\n(B) two\n(C) three\n(D) four\n(E) five\n(F) six".into(),
        }],
        prefill: Some("Let's think step by step:".into()),
    }
}

#[test]
fn the_client_probes_streams_cancels_and_reads_exact_letter_probabilities() {
    let model = demo("demo-faithful");
    let served = Served::start(&model, 0, &[]);
    let r = RemoteReasoner::connect(RemoteOptions::new(&served.url)).unwrap();
    let caps = r.capabilities().clone();
    assert_eq!(caps.models, vec!["demo-faithful".to_string()]);
    assert!(caps.prefill && caps.logprobs && caps.letter_ids, "{caps:?}");
    assert!(caps.tokenize.is_some(), "{caps:?}");

    // In process, the same conversation.
    let local = faithscope::model::resolve::open_model(&faithscope::model::resolve::ModelSpec {
        model: model.display().to_string(),
        ..Default::default()
    })
    .unwrap();
    let params = GenParams {
        max_tokens: 60,
        ..GenParams::default()
    };
    let want = local
        .generate(&question(), &params, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let mut pieces = Vec::new();
    let got = r
        .generate(&question(), &params, &mut |d| {
            pieces.push(d.to_string());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(got.text, want.text);
    assert!(pieces.len() > 1, "one delta only: {pieces:?}");
    assert_eq!(pieces.concat(), got.text);
    assert_eq!(got.stop, want.stop);

    // Letters after the chain and an answer cue: exact through logprob_token_ids.
    let mut cue = question();
    cue.prefill = Some(format!(
        "Let's think step by step:{} So the answer is (",
        want.text
    ));
    let letters: Vec<String> = ["A", "B", "C", "D", "E", "F"].map(String::from).to_vec();
    let a = local.choice_probs(&cue, &letters).unwrap();
    let b = r.choice_probs(&cue, &letters).unwrap();
    for (x, y) in a.probs.iter().zip(&b.probs) {
        assert!((x - y).abs() <= 1e-5, "{:?} vs {:?}", a.probs, b.probs);
    }
    for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
        assert!(
            (x - y).abs() <= 1e-4,
            "{:?} vs {:?}",
            a.logprobs,
            b.logprobs
        );
    }

    // Cancel after the first piece: the generation stops there.
    let mut n = 0;
    let cut = r
        .generate(&question(), &params, &mut |_| {
            n += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(cut.stop, faithscope::model::StopReason::Cancelled);
    // The server is free for the next request at once.
    let again = r
        .generate(&question(), &params, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(again.text, want.text);
    // Two clips requests sent the clip; the client encoded it once.
    assert!(r.traffic().requests >= 5);
}

#[test]
fn faults_are_named_with_the_url_and_what_to_do() {
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let e = RemoteReasoner::connect(RemoteOptions::new(&url))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&url) && e.contains("cannot connect"), "{e}");

    // A server with a key: a wrong key is refused by name, and the key is never shown.
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, "s3cret-key-123\n").unwrap();
    let served = Served::start(
        &demo("demo-faithful"),
        0,
        &["--api-key-file", &key_file.display().to_string()],
    );
    let mut opts = RemoteOptions::new(&served.url);
    opts.api_key = Some("wrong-key-456".into());
    let e = RemoteReasoner::connect(opts).err().unwrap().to_string();
    assert!(e.contains("401") && e.contains("API key"), "{e}");
    assert!(!e.contains("wrong-key-456") && !e.contains("s3cret"), "{e}");
    let mut opts = RemoteOptions::new(&served.url);
    opts.api_key = Some("s3cret-key-123".into());
    assert!(RemoteReasoner::connect(opts.clone()).is_ok());
    // An unknown served model: the served ones are listed.
    opts.served_model = Some("qwen-7b".into());
    let e = RemoteReasoner::connect(opts).err().unwrap().to_string();
    assert!(e.contains("qwen-7b") && e.contains("demo-faithful"), "{e}");
    // Through the CLI: a run records nothing it was not asked for and says what failed.
    let out = Command::new(bin())
        .args(["generate", "--model", &url, "--audio"])
        .arg(common::repo().join("samples/synth-test/audio/synth-test-count-0000.flac"))
        .args(["--question", "q", "--choice", "a", "--choice", "b"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot connect"),
        "{err}"
    );
    assert!(err.matches("Connection refused").count() <= 1, "{err}");
}

#[test]
fn a_server_killed_mid_run_then_resume_against_its_restart_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = demo("demo-faithful");
    let items = 6;
    let full = tmp.path().join("full");
    let out = run(&run_args(&model.display().to_string(), items, &full));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut served = Served::start(&model, 0, &[]);
    let port = served.port();
    let cut = tmp.path().join("cut");
    let mut child = start_until(&run_args(&served.url, items, &cut), &cut, 3);
    served.kill();
    let status = child.wait().unwrap();
    // The run went on without its server: the rest of the items are errors, named as such.
    let errors = run_lines(&cut, "errors.jsonl");
    assert!(!errors.is_empty(), "no errors recorded ({status:?})");
    let total = run_lines(&full, "trials.jsonl").len();
    assert!(
        written(&cut) < total,
        "all trials were written before the kill"
    );
    let first = errors[0].to_string();
    assert!(first.contains("127.0.0.1"), "{first}");

    // The server again, on the same port; resume and retry the failed items.
    let _again = Served::start(&model, port, &[]);
    let out = run(&[
        "run".into(),
        "--resume".into(),
        cut.display().to_string(),
        "--retry-errors".into(),
        "--quiet".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_trials(&full, &cut);
}

#[test]
fn without_log_probs_the_answers_are_read_from_generated_text() {
    let tmp = tempfile::tempdir().unwrap();
    let model = demo("demo-faithful");
    let local = tmp.path().join("local");
    let out = run(&run_args(&model.display().to_string(), 2, &local));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A server that refuses log-probs, as hosted APIs do.
    let served = Served::start(&model, 0, &["--no-logprobs"]);
    let r = RemoteReasoner::connect(RemoteOptions::new(&served.url)).unwrap();
    assert!(
        !r.capabilities().logprobs && r.capabilities().prefill,
        "{:?}",
        r.capabilities()
    );
    let remote = tmp.path().join("remote");
    let out = run(&run_args(&served.url, 2, &remote));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run_lines(&remote, "errors.jsonl").is_empty());
    let (a, b) = (sorted(&local), sorted(&remote));
    assert_eq!(a.len(), b.len());
    // Greedy text after the answer cue starts with the most likely letter: the same answers,
    // without probabilities.
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["predicted_choice"], y["predicted_choice"], "{x}\n{y}");
        assert!(y.get("choice_probs").is_none(), "{y}");
    }
}

#[test]
fn thinking_comes_on_its_own_channel_and_is_kept_apart() {
    let model = demo("demo-faithful");
    let served = Served::start(&model, 0, &["--think-tags"]);
    let r = RemoteReasoner::connect(RemoteOptions::new(&served.url)).unwrap();
    let local = faithscope::model::resolve::open_model(&faithscope::model::resolve::ModelSpec {
        model: model.display().to_string(),
        ..Default::default()
    })
    .unwrap();
    // A prefill that opens a thinking block: what the model writes next is thinking until it
    // closes the block (the demo model never does, so all of it is).
    let mut conv = question();
    conv.prefill = Some("<think>".into());
    let params = GenParams {
        max_tokens: 40,
        ..GenParams::default()
    };
    let whole = local
        .generate(&conv, &params, &mut |_| ControlFlow::Continue(()))
        .unwrap()
        .text;
    let (want_thinking, want_text) = match whole.split_once("</think>") {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (whole.clone(), String::new()),
    };
    assert!(!want_thinking.trim().is_empty(), "{whole:?}");
    let mut shown = String::new();
    let g = r
        .generate(&conv, &params, &mut |d| {
            shown.push_str(d);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(g.reasoning, want_thinking);
    assert_eq!(g.text, want_text);
    assert_eq!(shown, want_text, "thinking reached the answer text");
}

#[test]
fn concurrent_runs_give_the_sequential_trials_and_a_killed_one_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let model = demo("demo-faithful");
    let items = 8;
    let local = tmp.path().join("local");
    let out = run(&run_args(&model.display().to_string(), items, &local));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = Served::start(&model, 0, &["--batch", "8"]);
    let with = |n: usize, out: &Path| {
        let mut a = run_args(&served.url, items, out);
        a.extend(["--concurrency".to_string(), n.to_string()]);
        a
    };
    for n in [1, 4, 16] {
        let dir = tmp.path().join(format!("c{n}"));
        let out = run(&with(n, &dir));
        assert!(
            out.status.success(),
            "--concurrency {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(run_lines(&dir, "errors.jsonl").is_empty());
        assert_eq!(
            run_lines(&dir, "done.jsonl").len(),
            items,
            "--concurrency {n}"
        );
        assert_same_trials(&local, &dir);
    }
    // a chain's generations sent at once (--batch against a server): the same trials
    let dir = tmp.path().join("b4");
    let mut a = with(2, &dir);
    a.extend(["--batch".to_string(), "4".to_string()]);
    let out = run(&a);
    assert!(
        out.status.success(),
        "--batch 4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_trials(&local, &dir);
    // the server saw several requests at once
    let stats: serde_json::Value = reqwest::blocking::get(format!("{}/stats", served.url))
        .unwrap()
        .json()
        .unwrap();
    assert!(stats["batch"]["largest"].as_u64().unwrap() >= 2, "{stats}");

    // SIGKILL of a run at concurrency 8 part-way, then --resume: exactly the same trials
    let cut = tmp.path().join("cut");
    let mut child = start_until(&with(8, &cut), &cut, 12);
    child.kill().unwrap();
    child.wait().unwrap();
    let total = run_lines(&local, "trials.jsonl").len();
    assert!(written(&cut) < total, "killed after all {total} trials");
    let out = run(&[
        "run".into(),
        "--resume".into(),
        cut.display().to_string(),
        "--concurrency".into(),
        "8".into(),
        "--quiet".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_trials(&local, &cut);
}

/// Requests the server has accepted so far (`/v1/stats`).
fn accepted(served: &Served) -> u64 {
    let stats: serde_json::Value = reqwest::blocking::get(format!("{}/stats", served.url))
        .unwrap()
        .json()
        .unwrap();
    stats["requests"]["accepted"].as_u64().unwrap()
}

/// A run's perturbation records, sorted.
fn perturbations(file: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut v: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v.sort_by_key(|p| {
        format!(
            "{}|{}|{}|{}",
            p["id"], p["chain_id"], p["kind"], p["sentence"]
        )
    });
    v
}

#[test]
fn an_external_llm_writes_each_perturbation_once_and_a_resumed_run_never_asks_again() {
    let tmp = tempfile::tempdir().unwrap();
    // the writer: another demo model behind `faithscope serve`; the model under test runs in
    // process
    let served = Served::start(&demo("demo-posthoc"), 0, &["--batch", "8"]);
    let llm = format!("llm:{}", served.url);
    let model = demo("demo-faithful").display().to_string();
    let args = |out: &Path, mistakes: &str, paraphrases: &str| -> Vec<String> {
        let mut a = run_args(&model, 2, out);
        let at = |a: &[String], flag: &str| a.iter().position(|x| x == flag).unwrap() + 1;
        let i = at(&a, "--interventions");
        a[i] = "mistakes,paraphrase".into();
        let i = at(&a, "--mistake-source");
        a[i] = mistakes.into();
        a.extend(["--paraphrase-source".into(), paraphrases.into()]);
        a
    };
    let first = tmp.path().join("first");
    let out = run(&args(&first, &llm, &llm));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = accepted(&served);

    // every perturbation once, by the external model, and each usable one used by its trial
    let file = first.join("perturbations.jsonl");
    let recs = perturbations(&file);
    assert!(!recs.is_empty());
    let mut keys: Vec<String> = recs
        .iter()
        .map(|p| {
            format!(
                "{}|{}|{}|{}",
                p["id"], p["chain_id"], p["kind"], p["sentence"]
            )
        })
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), recs.len(), "a perturbation written twice");
    assert!(
        recs.iter().all(|p| p["source"] == "external-demo-posthoc"),
        "{recs:?}"
    );
    let trials = sorted(&first);
    let perturbed: Vec<&serde_json::Value> = trials
        .iter()
        .filter(|t| t["perturbation_source"].is_string())
        .collect();
    let usable = recs.iter().filter(|p| p["perturbed"].is_string()).count();
    assert!(usable > 0, "the writer gave nothing usable: {recs:?}");
    assert_eq!(perturbed.len(), usable);
    for t in &perturbed {
        assert_eq!(t["perturbation_source"], "external-demo-posthoc");
        let key = t["trial_key"].as_str().unwrap();
        let (kind, n) = key.split_once(':').unwrap();
        let rec = recs
            .iter()
            .find(|p| {
                p["id"] == t["id"] && p["kind"] == kind && p["sentence"].as_u64() == n.parse().ok()
            })
            .unwrap_or_else(|| panic!("no perturbation for {key} of {}", t["id"]));
        assert_eq!(t["detail"]["edited"], rec["perturbed"], "{key}");
    }

    // drop the perturbed trials and resume: they come back the same, from the stored
    // perturbations, without one request to the writer
    let before = std::fs::read(&file).unwrap();
    let kept: Vec<String> = std::fs::read_to_string(first.join("trials.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| {
            let t: serde_json::Value = serde_json::from_str(l).unwrap();
            t["perturbation_source"].is_null()
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(kept.len() < trials.len());
    std::fs::write(first.join("trials.jsonl"), kept.concat()).unwrap();
    std::fs::remove_file(first.join("done.jsonl")).unwrap();
    let out = run(&[
        "run".into(),
        "--resume".into(),
        first.display().to_string(),
        "--quiet".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        accepted(&served),
        asked,
        "the resumed run asked the writer again"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let again = sorted(&first);
    assert_eq!(again.len(), trials.len());
    assert!(trials.iter().zip(&again).all(|(a, b)| same_json(a, b)));

    // `perturb` writes the same perturbations for the run's chains; a run reading the file gets
    // the same trials and asks nobody
    let pfile = tmp.path().join("perturbations.jsonl");
    let out = run(&[
        "perturb".into(),
        "--chains".into(),
        first.display().to_string(),
        "--source".into(),
        llm.clone(),
        "--out".into(),
        pfile.display().to_string(),
        "--quiet".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(perturbations(&pfile), recs);
    let asked = accepted(&served);
    let from_file = tmp.path().join("from-file");
    let p = pfile.display().to_string();
    let out = run(&args(&from_file, &p, &p));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(accepted(&served), asked);
    assert_eq!(sorted(&from_file).len(), trials.len());
    assert!(trials
        .iter()
        .zip(&sorted(&from_file))
        .all(|(a, b)| same_json(a, b)));
    // perturb again, naming the served model: nothing new to ask, not even a connection
    let out = run(&[
        "perturb".into(),
        "--chains".into(),
        first.display().to_string(),
        "--source".into(),
        format!("{llm}#demo-posthoc"),
        "--out".into(),
        pfile.display().to_string(),
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0 perturbations"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(accepted(&served), asked);
}
