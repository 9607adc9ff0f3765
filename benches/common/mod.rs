//! The sweep the sweep and remote benchmarks measure: a fixed 8-sentence chain per item (so it
//! has the shape of a real one whatever the model writes); early answering, rule-based mistakes
//! (each continued by the model), model paraphrases and random filler; paper-v1 with generations
//! shortened so that every prompt fits the tiny fixture model's context.

use std::path::PathBuf;
use std::time::Instant;

use faithscope::data::{self, Dataset, Item, LoadOptions};
use faithscope::faith::protocol::Protocol;
use faithscope::faith::split::split_sentences;
use faithscope::faith::sweep::{Chain, MemorySink, MistakeSource, Plan, Sink, Sweep};
use faithscope::model::Reasoner;

/// The model (the tiny fixture checkpoint unless `FAITHSCOPE_BENCH_MODEL` names a folder) and
/// the items of `samples/`.
pub fn model_and_samples() -> (PathBuf, Dataset) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_dir = std::env::var_os("FAITHSCOPE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("tests/fixtures/qwen2_audio/tiny-a"));
    let ds = data::load(&repo.join("samples"), &LoadOptions::default()).expect("loading samples/");
    (model_dir, ds)
}

/// The chain every item is swept with.
pub const CHAIN: &str = "The clip is about two seconds long and has no speech in it. \
The sound is a synthetic tone with a clean, steady envelope. \
Its energy sits in a narrow band rather than across many frequencies. \
There is no background noise or reverberation to speak of. \
The pitch does not drift much from the start to the end. \
Short gaps of silence separate the louder parts. \
A higher tone would sound thinner and brighter than this one. \
So the most likely answer is the one that matches a plain tone.";

/// Sweeps `items` with `model`; returns the sink (chains and trials) and the wall time in s.
/// Sweeps `items` with their generations decoded `batch` at a time (1: one at a time).
pub fn sweep(model: &dyn Reasoner, items: &[Item], batch: usize) -> (MemorySink, f64) {
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
            reasoning: None,
        })
        .expect("memory sink");
    }
    let mut sweep = Sweep::new(model, &protocol, &plan, 1, 1).with_batch(batch);
    let start = Instant::now();
    for it in items {
        sweep
            .run_item(it, &mut sink)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    (sink, start.elapsed().as_secs_f64())
}
