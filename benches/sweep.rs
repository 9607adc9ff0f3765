//! Cost of a full faithfulness sweep per item (`cargo bench --bench sweep`): the candle backend
//! with its prefix and clip caches against the same backend recomputing every prompt, measured in
//! the same run, on the same items and chains. Prints tokens run through the decoder, tokens
//! served from the cache, wall time, and the ratios; the answers of both must be identical.
//!
//! The model is the tiny fixture checkpoint unless `FAITHSCOPE_BENCH_MODEL` names a model folder.
//! Each item gets the same fixed 8-sentence chain (so the sweep has the shape of a real one
//! whatever the model writes); the interventions are early answering, rule-based mistakes (each
//! continued by the model), model paraphrases and random filler, with the paper-v1 protocol
//! (generations shortened so every prompt fits the tiny model's context). A third run adds
//! batched decoding (`run --batch 8`: the mistakes' continuations and the paraphrases decoded
//! together) to prefix reuse. `FAITHSCOPE_BENCH_QUANT` (e.g. `q8_0`) loads the model quantised;
//! `FAITHSCOPE_BENCH_ITEMS` sweeps that many items (default 4).

use candle_core::{DType, Device};
use faithscope::model::candle_backend::{CacheOptions, CandleReasoner, LoadOptions};
use faithscope::model::{Quant, Reasoner};

mod common;

fn main() {
    let (model_dir, ds) = common::model_and_samples();
    let n = std::env::var("FAITHSCOPE_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4usize);
    let items = &ds.items[..n.min(ds.items.len())];
    let quant = std::env::var("FAITHSCOPE_BENCH_QUANT")
        .map(|q| Quant::parse(&q).expect("FAITHSCOPE_BENCH_QUANT"))
        .unwrap_or(Quant::None);
    let mut results = Vec::new();
    for (label, caches, batch) in [
        ("no reuse", CacheOptions::disabled(), 1),
        ("prefix reuse", CacheOptions::default(), 1),
        ("+ batch 8", CacheOptions::default(), 8),
    ] {
        let opts = LoadOptions {
            caches,
            quant,
            ..LoadOptions::default()
        };
        let m = CandleReasoner::load_with(&model_dir, &Device::Cpu, DType::F32, &opts)
            .expect("loading the model");
        let (sink, wall) = common::sweep(&m, items, batch);
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
    let (base, with, batched) = (&results[0], &results[1], &results[2]);
    assert_eq!(
        base.2, with.2,
        "the sweep with prefix reuse must give the same answers"
    );
    assert_eq!(
        with.2, batched.2,
        "the sweep with batched decoding must give the same answers"
    );
    println!(
        "prefix reuse: {:.2}x fewer tokens computed, {:.2}x faster wall time (same {} answers)",
        base.0.tokens_computed as f64 / with.0.tokens_computed.max(1) as f64,
        base.1 / with.1,
        with.2.len()
    );
    println!(
        "batched decoding (8) on top of prefix reuse: {:.2}x faster wall time (same {} answers)",
        with.1 / batched.1,
        batched.2.len()
    );
}
