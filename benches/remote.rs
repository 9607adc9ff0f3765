//! The same faithfulness sweep in process and through `faithscope serve` on loopback
//! (`cargo bench --bench remote`), measured in one run on the same items and chains: wall time of
//! each and their ratio, and the HTTP requests and request bytes per trial. The answers and
//! probabilities of both must agree (to 1e-5).
//!
//! The model is the tiny fixture checkpoint unless `FAITHSCOPE_BENCH_MODEL` names a model folder;
//! the sweep is the one of `benches/sweep.rs` (a fixed 8-sentence chain per item; early answering,
//! rule-based mistakes continued by the model, paraphrases and random filler; paper-v1 with short
//! generations).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use faithscope::data::{self, Item, LoadOptions};
use faithscope::faith::protocol::Protocol;
use faithscope::faith::split::split_sentences;
use faithscope::faith::sweep::{Chain, MemorySink, MistakeSource, Plan, Sink, Sweep};
use faithscope::faith::trial::Trial;
use faithscope::model::remote::{RemoteOptions, RemoteReasoner};
use faithscope::model::resolve::{open_model, ModelSpec};
use faithscope::model::Reasoner;

const CHAIN: &str = "The clip is about two seconds long and has no speech in it. \
The sound is a synthetic tone with a clean, steady envelope. \
Its energy sits in a narrow band rather than across many frequencies. \
There is no background noise or reverberation to speak of. \
The pitch does not drift much from the start to the end. \
Short gaps of silence separate the louder parts. \
A higher tone would sound thinner and brighter than this one. \
So the most likely answer is the one that matches a plain tone.";

/// Runs the sweep over `items` with `model`; returns the trials and the wall time.
fn sweep(model: &dyn Reasoner, items: &[Item]) -> (Vec<Trial>, f64) {
    let mut protocol = Protocol::builtin("paper-v1").expect("paper-v1");
    protocol.continuation.max_tokens = 32;
    protocol.paraphrase.max_tokens = 48;
    let mut plan = Plan::parse("early,mistakes,paraphrase,filler").expect("plan");
    plan.mistake_source = MistakeSource::Rules;
    let sentences = split_sentences(CHAIN);
    let mut sink = MemorySink::default();
    for it in items {
        sink.put_chain(&Chain {
            id: it.id.clone(),
            chain_id: 0,
            seed: 0,
            generated_cot: CHAIN.into(),
            sanitized_cot: CHAIN.into(),
            sentences: sentences.clone(),
            generate_ms: 0.0,
        })
        .expect("memory sink");
    }
    let mut sweep = Sweep::new(model, &protocol, &plan, 1, 1);
    let start = Instant::now();
    for it in items {
        sweep
            .run_item(it, &mut sink)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    (sink.trials, start.elapsed().as_secs_f64())
}

/// Starts `faithscope serve` on a free port; returns the child and its URL.
fn serve(model: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args([
            "serve",
            "--model",
            &model.display().to_string(),
            "--port",
            "0",
        ])
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
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_dir = std::env::var_os("FAITHSCOPE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("tests/fixtures/qwen2_audio/tiny-a"));
    let ds = data::load(&repo.join("samples"), &LoadOptions::default()).expect("loading samples/");
    let items = &ds.items[..4.min(ds.items.len())];

    let local = open_model(&ModelSpec {
        model: model_dir.display().to_string(),
        ..ModelSpec::default()
    })
    .expect("loading the model");
    let (want, local_s) = sweep(local.as_ref(), items);
    drop(local);

    let (mut child, url) = serve(&model_dir);
    let remote = RemoteReasoner::connect(RemoteOptions::new(&url)).expect("connecting");
    let (got, remote_s) = sweep(&remote, items);
    let traffic = remote.traffic();
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
        "through serve / in process: {:.2}x wall time (same {} answers, probabilities within 1e-5)",
        remote_s / local_s,
        got.len()
    );
}
