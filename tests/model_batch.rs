//! Batched decoding: several sequences of different lengths decoded one token each per forward
//! step give what decoding each alone gives — the logits of every step (within 1e-5) at f32 and
//! q8_0, and the greedy tokens and text of whole generations — on the demo models and the tiny
//! Qwen2-Audio, AF3 and Omni checkpoints.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use faithscope::model::candle_backend::{CandleReasoner, LoadOptions};
use faithscope::model::config::Qwen2AudioConfig;
use faithscope::model::qwen2_audio::{Checkpoint, KvCache, Quant, Quantizer, Qwen2Audio};
use faithscope::model::{Conversation, GenParams, Message, Reasoner, Role};

fn model(dir: &Path, quant: Quant) -> Qwen2Audio {
    Qwen2Audio::load_from(
        Qwen2AudioConfig::from_dir(dir).unwrap(),
        Checkpoint::open(dir).unwrap(),
        None,
        Quantizer::new(quant),
        &Device::Cpu,
        DType::F32,
        dir,
    )
    .unwrap()
}

fn dirs() -> Vec<PathBuf> {
    let repo = common::repo();
    vec![
        repo.join("samples/models/demo-faithful"),
        repo.join("samples/models/demo-posthoc"),
        repo.join("tests/fixtures/qwen2_audio/tiny-a"),
        repo.join("tests/fixtures/af3_omni/af3-tiny"),
        repo.join("tests/fixtures/af3_omni/omni-thinker-tiny"),
    ]
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Token ids below the vocabulary's size, deterministic per seed.
fn ids(seed: u32, n: usize, vocab: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 40_503) >> 7) % vocab as u32)
        .collect()
}

#[test]
fn a_batched_step_gives_each_sequence_its_own_logits_at_f32_and_q8_0() {
    for dir in dirs() {
        for quant in [Quant::None, Quant::Q8_0] {
            let m = model(&dir, quant);
            let vocab = m.config().vocab_size().min(2000);
            // four sequences of different lengths (a shared prefix for two of them)
            let prompts = [
                ids(1, 9, vocab),
                ids(2, 23, vocab),
                ids(1, 9, vocab),
                ids(3, 4, vocab),
            ];
            let mut alone = Vec::new();
            let mut together = Vec::new();
            let mut next = Vec::new();
            for (k, p) in prompts.iter().enumerate() {
                let mut c = KvCache::new();
                m.forward_ids_last(p, &mut c).unwrap();
                together.push(c.clone());
                alone.push(c);
                next.push(ids(10 + k as u32, 1, vocab)[0]);
            }
            let mut worst = 0f32;
            for step in 0..6u32 {
                let batched = m.forward_ids_batch(&next, &mut together).unwrap();
                assert_eq!(batched.dims(), &[prompts.len(), m.config().vocab_size()]);
                for (row, cache) in alone.iter_mut().enumerate() {
                    let one = m
                        .forward_ids_last(&[next[row]], cache)
                        .unwrap()
                        .flatten_all()
                        .unwrap();
                    worst = worst.max(max_abs_diff(&one, &batched.get(row).unwrap()));
                    assert_eq!(cache.len(), together[row].len());
                }
                next = (0..prompts.len() as u32)
                    .map(|k| ids(100 + step * 7 + k, 1, vocab)[0])
                    .collect();
            }
            eprintln!(
                "{} {}: worst logit diff {worst:e}",
                dir.display(),
                quant.name()
            );
            assert!(
                worst <= 1e-5,
                "{} at {}: batched logits differ by {worst}",
                dir.display(),
                quant.name()
            );
        }
    }
}

#[test]
fn a_batched_step_past_the_context_fails_without_touching_the_caches() {
    let m = model(
        &common::repo().join("samples/models/demo-faithful"),
        Quant::None,
    );
    let mut caches = vec![KvCache::new(), KvCache::new()];
    let err = m
        .forward_ids_batch(&[1], &mut caches)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 tokens, 2 sequences"), "{err}");
    let max = m.config().max_positions();
    let mut full = KvCache::new();
    m.forward_ids_last(&ids(5, max, 100), &mut full).unwrap();
    let mut caches = vec![KvCache::new(), full];
    let err = m
        .forward_ids_batch(&[1, 2], &mut caches)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no room left"), "{err}");
    assert_eq!((caches[0].len(), caches[1].len()), (0, max));
}

fn reasoner(dir: &Path, quant: Quant) -> CandleReasoner {
    CandleReasoner::load_with(
        dir,
        &Device::Cpu,
        DType::F32,
        &LoadOptions {
            quant,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

/// Conversations on different clips and of different lengths, some continuing a prefill.
fn conversations() -> Vec<Conversation> {
    let root = common::repo().join("samples/synth-test");
    let items: Vec<serde_json::Value> = std::fs::read_to_string(root.join("items.jsonl"))
        .unwrap()
        .lines()
        .take(5)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    items
        .iter()
        .enumerate()
        .map(|(i, v)| Conversation {
            audio: Some(root.join(v["audio"].as_str().unwrap())),
            messages: vec![Message {
                role: Role::User,
                text: format!(
                    "{} {}",
                    v["question"].as_str().unwrap(),
                    "Think it through. ".repeat(i)
                ),
            }],
            prefill: (i % 2 == 1).then(|| "Let's think step by step:".to_string()),
        })
        .collect()
}

#[test]
fn generate_batch_gives_the_generations_of_one_at_a_time() {
    let convs = conversations();
    for dir in dirs() {
        for quant in [Quant::None, Quant::Q8_0] {
            let m = reasoner(&dir, quant);
            // different lengths: a sequence that ends early leaves the batch while others run
            let requests: Vec<(Conversation, GenParams)> = convs
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let params = GenParams {
                        max_tokens: 8 + 6 * i,
                        temperature: 0.0,
                        ..GenParams::default()
                    };
                    (c.clone(), params)
                })
                .collect();
            let batched = m.generate_batch(&requests);
            assert_eq!(batched.len(), requests.len());
            let fresh = reasoner(&dir, quant);
            for ((c, p), b) in requests.iter().zip(batched) {
                let b = b.unwrap();
                let one = fresh
                    .generate(c, p, &mut |_| ControlFlow::Continue(()))
                    .unwrap();
                assert_eq!(b.tokens, one.tokens, "{} {}", dir.display(), quant.name());
                assert_eq!(b.text, one.text);
                assert_eq!(b.stop, one.stop);
                assert!(!b.tokens.is_empty());
            }
        }
    }
}

#[test]
fn one_bad_request_in_a_batch_fails_alone() {
    let m = reasoner(
        &common::repo().join("samples/models/demo-faithful"),
        Quant::None,
    );
    let mut convs = conversations();
    convs.truncate(3);
    convs[1].audio = Some(PathBuf::from("/nonexistent/clip.wav"));
    let params = GenParams {
        max_tokens: 10,
        temperature: 0.0,
        ..GenParams::default()
    };
    let requests: Vec<_> = convs.iter().map(|c| (c.clone(), params.clone())).collect();
    let out = m.generate_batch(&requests);
    let err = out[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("/nonexistent/clip.wav"), "{err}");
    for i in [0, 2] {
        let one = m
            .generate(&convs[i], &params, &mut |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(out[i].as_ref().unwrap().tokens, one.tokens);
    }
}
