//! The same faithfulness sweep in process and through `faithscope serve` on loopback
//! (`cargo bench --bench remote`), measured in one run on the same items and chains: wall time of
//! each and their ratio, and the HTTP requests and request bytes per trial. The answers and
//! probabilities of both must agree (to 1e-5).
//!
//! The model is the tiny fixture checkpoint unless `FAITHSCOPE_BENCH_MODEL` names a model folder;
//! the sweep is the one of `benches/sweep.rs` (a fixed 8-sentence chain per item; early answering,
//! rule-based mistakes continued by the model, paraphrases and random filler; paper-v1 with short
//! generations).
//!
//! Then continuous batching in `serve`: the same 16 concurrent greedy chat requests (different
//! prompts, up to 48 tokens each) against `serve --batch 1` and `serve --batch 8`: tokens/s of
//! all replies and the ratio; the replies must be identical.
//!
//! Last, a whole `faithscope run` through `serve --batch 8` (demo-faithful, 32 synthetic items;
//! early answering, fact mistakes, paraphrases) at `--concurrency 1` and `--concurrency 8`: wall
//! time of each and the ratio; the trials (answers and probabilities) must be the same.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use faithscope::model::remote::{RemoteOptions, RemoteReasoner};
use faithscope::model::resolve::{open_model, ModelSpec};

mod common;

/// Starts `faithscope serve` on a free port; returns the child and its URL.
fn serve(model: &Path, extra: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args([
            "serve",
            "--model",
            &model.display().to_string(),
            "--port",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting faithscope serve");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("faithscope serve ended before listening")
            .expect("reading its output");
        if let Some((_, url)) = line.split_once(" on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn main() {
    // `cargo bench --bench remote -- concurrency`: the whole-run comparison alone.
    if std::env::args().any(|a| a == "concurrency") {
        return concurrent_sweep();
    }
    let (model_dir, ds) = common::model_and_samples();
    let items = &ds.items[..4.min(ds.items.len())];

    let local = open_model(&ModelSpec {
        model: model_dir.display().to_string(),
        ..ModelSpec::default()
    })
    .expect("loading the model");
    let (want, local_s) = common::sweep(local.as_ref(), items, 1);
    let want = want.trials;
    let local_stats = local.stats();
    drop(local);

    let (mut child, url) = serve(&model_dir, &[]);
    let remote = RemoteReasoner::connect(RemoteOptions::new(&url)).expect("connecting");
    let (got, remote_s) = common::sweep(&remote, items, 1);
    let got = got.trials;
    let traffic = remote.traffic();
    let server: serde_json::Value = reqwest::blocking::get(format!("{url}/stats"))
        .and_then(|r| r.json())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(want.len(), got.len(), "trials in process vs through serve");
    for (a, b) in want.iter().zip(&got) {
        assert_eq!(a.predicted_choice, b.predicted_choice, "{}", a.id);
        for (p, q) in a.choice_probs.iter().zip(&b.choice_probs) {
            assert!(
                (p - q).abs() <= 1e-5,
                "{} {:?} {}: {:?} vs {:?}\n{:?}\n{:?}",
                a.id,
                a.intervention,
                faithscope::faith::sweep::trial_key(a).unwrap_or_default(),
                a.choice_probs,
                b.choice_probs,
                a.extra.get("continuation"),
                b.extra.get("continuation")
            );
        }
    }
    let n = got.len() as f64;
    println!(
        "   in process: {} items, {} trials, {local_s:.2} s",
        items.len(),
        want.len()
    );
    println!(
        "through serve: {} items, {} trials, {remote_s:.2} s, {} requests ({:.2} per trial), {:.1} KiB sent per trial",
        items.len(),
        got.len(),
        traffic.requests,
        traffic.requests as f64 / n,
        traffic.bytes_sent as f64 / n / 1024.0
    );
    println!(
        "tokens computed / reused: in process {} / {}, in the server {} / {}",
        local_stats.tokens_computed,
        local_stats.tokens_reused,
        server["model"]["tokens_computed"],
        server["model"]["tokens_reused"]
    );
    println!(
        "through serve / in process: {:.2}x wall time (same {} answers, probabilities within 1e-5)",
        remote_s / local_s,
        got.len()
    );

    concurrent(&model_dir);
    concurrent_sweep();
}

/// A trial by item and trial key: the answer and the probabilities.
type Trial = (String, String, serde_json::Value, serde_json::Value);

/// One run's trials by item and trial key.
fn trials(dir: &Path) -> Vec<Trial> {
    let text = std::fs::read_to_string(dir.join("trials.jsonl")).expect("trials.jsonl");
    let mut v: Vec<_> = text
        .lines()
        .map(|l| {
            let t: serde_json::Value = serde_json::from_str(l).expect("a trial");
            (
                t["id"].to_string(),
                t["trial_key"].to_string(),
                t["predicted_choice"].clone(),
                t["choice_probs"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

fn concurrent_sweep() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = repo.join("samples/models/demo-faithful");
    let (mut child, url) = serve(&model, &["--batch", "8", "--queue", "64"]);
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let mut runs = Vec::new();
    for c in [1usize, 8] {
        let out = tmp.path().join(format!("c{c}"));
        let t0 = std::time::Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_faithscope"))
            .current_dir(repo)
            .args(["run", "--data", "samples/synth-test", "--model", &url])
            .args([
                "--protocol",
                "lanham",
                "--interventions",
                "early,mistakes,paraphrase",
            ])
            .args([
                "--mistake-source",
                "facts",
                "--limit",
                "32",
                "--seed",
                "0",
                "--quiet",
            ])
            .args(["--concurrency", &c.to_string(), "--out"])
            .arg(&out)
            .status()
            .expect("running faithscope run");
        assert!(status.success(), "faithscope run --concurrency {c} failed");
        runs.push((c, t0.elapsed().as_secs_f64(), trials(&out)));
    }
    let _ = child.kill();
    let _ = child.wait();
    let (_, one_s, one) = &runs[0];
    let (_, many_s, many) = &runs[1];
    // The same trials; a batched server's floating point depends on what shares a batch, so
    // answers may differ where two choices are close, and sampled text (paraphrases) may too.
    let keys = |v: &[Trial]| {
        v.iter()
            .map(|t| (t.0.clone(), t.1.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(one), keys(many), "trial keys at --concurrency 1 vs 8");
    let same = one.iter().zip(many).filter(|(a, b)| a.2 == b.2).count();
    let max_diff = one
        .iter()
        .zip(many)
        .filter(|(a, b)| a.2 == b.2)
        .flat_map(|(a, b)| {
            let (pa, pb) = (
                a.3.as_array().cloned().unwrap_or_default(),
                b.3.as_array().cloned().unwrap_or_default(),
            );
            pa.into_iter()
                .zip(pb)
                .map(|(x, y)| (x.as_f64().unwrap_or(0.0) - y.as_f64().unwrap_or(0.0)).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max);
    println!(
        "\nfaithscope run through serve --batch 8, 32 items, {} trials: --concurrency 1 {one_s:.2} s, --concurrency 8 {many_s:.2} s: {:.2}x; the same answer in {same} of {} trials (probabilities of those within {max_diff:.1e})",
        one.len(),
        one_s / many_s,
        one.len()
    );
}

/// 16 concurrent greedy requests against `serve --batch B`: the replies and the seconds taken.
fn concurrent_run(model: &Path, batch: usize) -> (Vec<(String, u64)>, f64, serde_json::Value) {
    let (mut child, url) = serve(model, &["--batch", &batch.to_string(), "--queue", "64"]);
    let bodies: Vec<serde_json::Value> = (0..16)
        .map(|i| {
            serde_json::json!({
                "messages": [{"role": "user", "content": format!(
                    "Question {i}: how many beeps are there in clip number {}?", 7 * i + 3)}],
                "max_tokens": 48,
                "temperature": 0,
            })
        })
        .collect();
    let t0 = std::time::Instant::now();
    let replies: Vec<(String, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = bodies
            .iter()
            .map(|b| {
                let url = format!("{url}/chat/completions");
                s.spawn(move || {
                    let v: serde_json::Value = reqwest::blocking::Client::new()
                        .post(url)
                        .json(b)
                        .send()
                        .and_then(|r| r.json())
                        .expect("a chat reply");
                    (
                        v["choices"][0]["message"]["content"]
                            .as_str()
                            .unwrap_or_else(|| panic!("no content in {v}"))
                            .to_string(),
                        v["usage"]["completion_tokens"].as_u64().unwrap(),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t0.elapsed().as_secs_f64();
    let stats: serde_json::Value = reqwest::blocking::get(format!("{url}/stats"))
        .and_then(|r| r.json())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    (replies, secs, stats)
}

fn concurrent(model: &Path) {
    let (one, one_s, _) = concurrent_run(model, 1);
    let (many, many_s, stats) = concurrent_run(model, 8);
    assert_eq!(one, many, "replies at --batch 1 vs --batch 8");
    let tokens: u64 = one.iter().map(|(_, n)| n).sum();
    let b = &stats["batch"];
    println!(
        "\nserve, 16 concurrent greedy requests ({tokens} tokens): --batch 1 {:.1} tok/s, --batch 8 {:.1} tok/s (mean batch {:.1}, largest {}): {:.2}x, identical replies",
        tokens as f64 / one_s,
        tokens as f64 / many_s,
        b["rows"].as_f64().unwrap_or(0.0) / b["steps"].as_f64().unwrap_or(1.0),
        b["largest"],
        one_s / many_s
    );
}
