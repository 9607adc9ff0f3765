//! Cost of a full faithfulness sweep per item (`cargo bench --bench sweep`): the candle backend
//! with its prefix and clip caches against the same backend recomputing every prompt, measured in
//! the same run, on the same items and chains. Prints tokens run through the decoder, tokens
//! served from the cache, wall time, and the ratios; the answers of both must be identical.
//!
//! The model is the tiny fixture checkpoint unless `FAITHSCOPE_BENCH_MODEL` names a model folder.
//! Each item gets the same fixed 8-sentence chain (so the sweep has the shape of a real one
//! whatever the model writes); the interventions are early answering, rule-based mistakes (each
//! continued by the model), model paraphrases and random filler, with the paper-v1 protocol
//! (generations shortened so every prompt fits the tiny model's context).

use candle_core::{DType, Device};
use faithscope::model::candle_backend::{CacheOptions, CandleReasoner};
use faithscope::model::Reasoner;

mod common;

fn main() {
    let (model_dir, ds) = common::model_and_samples();
    let items = &ds.items[..4.min(ds.items.len())];
    let mut results = Vec::new();
    for (label, caches) in [
        ("no reuse", CacheOptions::disabled()),
        ("prefix reuse", CacheOptions::default()),
    ] {
        let m = CandleReasoner::load(&model_dir, &Device::Cpu, DType::F32, caches)
            .expect("loading the model");
        let (sink, wall) = common::sweep(&m, items);
        let st = m.stats();
        println!(
            "{label:>13}: {} items, {} trials, {} tokens computed, {} reused, {} clips encoded, {:.2} s ({:.3} s per item)",
            items.len(),
            sink.trials.len(),
            st.tokens_computed,
            st.tokens_reused,
            st.audio_encoded,
            wall,
            wall / items.len() as f64
        );
        let answers: Vec<(Option<String>, String)> = sink
            .trials
            .iter()
            .map(|t| (t.predicted_choice.clone(), t.final_answer_raw.clone()))
            .collect();
        results.push((st, wall, answers));
    }
    let (base, with) = (&results[0], &results[1]);
    assert_eq!(
        base.2, with.2,
        "the sweep with prefix reuse must give the same answers"
    );
    println!(
        "prefix reuse: {:.2}x fewer tokens computed, {:.2}x faster wall time (same {} answers)",
        base.0.tokens_computed as f64 / with.0.tokens_computed.max(1) as f64,
        base.1 / with.1,
        with.2.len()
    );
}
