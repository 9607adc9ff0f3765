//! `--quant`: the linear weights quantised at load, checked against the f32 model on the demo
//! models (their own protocol's prompts on the synthetic test clips) and on the tiny
//! Qwen2-Audio, AF3 and Omni checkpoints: letter probabilities, argmax and greedy tokens.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device};
use faithscope::model::candle_backend::{CandleReasoner, LoadOptions};
use faithscope::model::{Conversation, GenParams, Message, Quant, Reasoner, Role};
use serde_json::Value;

const LETTERS: [&str; 6] = ["A", "B", "C", "D", "E", "F"];

fn load(dir: &std::path::Path, quant: Quant) -> CandleReasoner {
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

/// The synthetic test items: (clip, question with lettered choices, number of choices).
fn items() -> Vec<(PathBuf, String, usize)> {
    let root = common::repo().join("samples/synth-test");
    std::fs::read_to_string(root.join("items.jsonl"))
        .unwrap()
        .lines()
        .take(16)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let choices = v["choices"].as_array().unwrap();
            let mut q = v["question"].as_str().unwrap().to_string();
            for (i, c) in choices.iter().enumerate() {
                q.push_str(&format!("\n({}) {}", LETTERS[i], c.as_str().unwrap()));
            }
            (root.join(v["audio"].as_str().unwrap()), q, choices.len())
        })
        .collect()
}

fn ask(clip: &std::path::Path, q: &str, prefill: Option<&str>) -> Conversation {
    Conversation {
        audio: Some(clip.to_path_buf()),
        messages: vec![Message {
            role: Role::User,
            text: q.to_string(),
        }],
        prefill: prefill.map(str::to_string),
    }
}

/// Max abs difference of letter probabilities and the share of prompts with the same argmax.
fn compare(a: &CandleReasoner, b: &CandleReasoner) -> (f32, f64) {
    let mut worst = 0f32;
    let mut same = 0;
    let items = items();
    for (clip, q, n) in &items {
        let letters: Vec<String> = LETTERS[..*n].iter().map(|s| s.to_string()).collect();
        let conv = ask(clip, q, Some("Let's think step by step: the answer is ("));
        let pa = a.choice_probs(&conv, &letters).unwrap();
        let pb = b.choice_probs(&conv, &letters).unwrap();
        for (x, y) in pa.probs.iter().zip(&pb.probs) {
            worst = worst.max((x - y).abs());
        }
        same += usize::from(pa.argmax() == pb.argmax());
    }
    (worst, same as f64 / items.len() as f64)
}

fn greedy(m: &CandleReasoner, clip: &std::path::Path, q: &str) -> Vec<u32> {
    let params = GenParams {
        max_tokens: 20,
        temperature: 0.0,
        ..GenParams::default()
    };
    m.generate(&ask(clip, q, None), &params, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap()
    .tokens
}

#[test]
fn q8_0_keeps_the_demo_models_answers_and_greedy_text() {
    for name in ["demo-faithful", "demo-posthoc"] {
        let dir = common::repo().join("samples/models").join(name);
        let f32_model = load(&dir, Quant::None);
        let q8 = load(&dir, Quant::Q8_0);
        let (worst, same) = compare(&f32_model, &q8);
        eprintln!(
            "{name} q8_0: letter probabilities max abs diff {worst:.5}, same argmax {:.0}%",
            same * 100.0
        );
        assert!(
            worst <= 0.01,
            "{name}: q8_0 letter probabilities differ by {worst}"
        );
        assert_eq!(same, 1.0, "{name}: q8_0 changed an answer");
        for (clip, q, _) in items().iter().take(4) {
            assert_eq!(
                greedy(&f32_model, clip, q),
                greedy(&q8, clip, q),
                "{name}: q8_0 greedy tokens"
            );
        }
    }
}

#[test]
fn every_quant_type_stays_close_on_the_demo_models() {
    let dir = common::repo().join("samples/models/demo-faithful");
    let f32_model = load(&dir, Quant::None);
    for (quant, tol) in [
        (Quant::Q6k, 0.02f32),
        (Quant::Q5k, 0.03),
        (Quant::Q4k, 0.05),
    ] {
        let m = load(&dir, quant);
        let (worst, same) = compare(&f32_model, &m);
        eprintln!(
            "demo-faithful {}: letter probabilities max abs diff {worst:.5}, same argmax {:.0}%",
            quant.name(),
            same * 100.0
        );
        assert!(
            worst <= tol,
            "{}: letter probabilities differ by {worst}",
            quant.name()
        );
        assert!(
            same >= 0.95,
            "{}: only {:.0}% same argmax",
            quant.name(),
            same * 100.0
        );
    }
}

#[test]
fn quantised_tiny_checkpoints_of_every_architecture_agree() {
    let repo = common::repo();
    for dir in [
        repo.join("tests/fixtures/qwen2_audio/tiny-a"),
        repo.join("tests/fixtures/af3_omni/af3-tiny"),
        repo.join("tests/fixtures/af3_omni/omni-thinker-tiny"),
    ] {
        let f32_model = load(&dir, Quant::None);
        let q8 = load(&dir, Quant::Q8_0);
        let (worst, same) = compare(&f32_model, &q8);
        eprintln!(
            "{}: q8_0 max abs diff {worst:.5}, same argmax {:.0}%",
            dir.display(),
            same * 100.0
        );
        // random weights scaled up for lively logits: sharper than trained models, so the
        // bound is the q4k one; the quality bar is the demo models above
        assert!(worst <= 0.05, "{}: {worst}", dir.display());
        assert!(same >= 0.95, "{}", dir.display());
    }
}

#[test]
fn widths_the_k_quants_do_not_divide_fall_back_and_say_so() {
    // the demo models are 128 / 160 / 480 wide: k-quants need multiples of 256, so q4k uses
    // q8_0 blocks there (and q4k blocks for the 256-wide encoder fc2)
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    {
        let _g =
            faithscope::warn::install(Arc::new(move |m: &str| s.lock().unwrap().push(m.into())));
        load(
            &common::repo().join("samples/models/demo-faithful"),
            Quant::Q4k,
        );
    }
    let w = seen.lock().unwrap().clone();
    assert!(
        w.iter()
            .any(|m| m.contains("--quant q4k") && m.contains("wide) as Q8_0")),
        "{w:?}"
    );
    assert!(Quant::parse("q3")
        .unwrap_err()
        .contains("q8_0, q6k, q5k, q4k"));
    assert_eq!(Quant::parse("Q8_0"), Ok(Quant::Q8_0));
}

#[test]
fn too_little_memory_picks_a_quantisation_or_says_how_much_is_needed() {
    use faithscope::model::candle_backend::{plan_quant, resident_bytes, weight_bytes};
    // Qwen2-Audio-7B's decoder at its real shapes (no weights needed for the estimate)
    let mut shapes = vec![
        (
            "language_model.model.embed_tokens.weight".to_string(),
            vec![156_032, 4096],
        ),
        (
            "language_model.lm_head.weight".to_string(),
            vec![156_032, 4096],
        ),
    ];
    for l in 0..32 {
        for (n, s) in [
            ("self_attn.q_proj", [4096, 4096]),
            ("self_attn.k_proj", [4096, 4096]),
            ("self_attn.v_proj", [4096, 4096]),
            ("self_attn.o_proj", [4096, 4096]),
            ("mlp.gate_proj", [11_008, 4096]),
            ("mlp.up_proj", [11_008, 4096]),
            ("mlp.down_proj", [4096, 11_008]),
        ] {
            shapes.push((
                format!("language_model.model.layers.{l}.{n}.weight"),
                s.to_vec(),
            ));
        }
    }
    shapes.push((
        "audio_tower.layers.0.fc1.weight".to_string(),
        vec![5120, 1280],
    ));
    let f32_bytes = weight_bytes(&shapes, Quant::None, DType::F32);
    let q8 = weight_bytes(&shapes, Quant::Q8_0, DType::F32);
    assert!((30e9..32e9).contains(&(f32_bytes as f64)), "{f32_bytes}");
    assert!(q8 < f32_bytes / 3, "{q8}");
    // once run, the decoder's weights of the types candle repacks on this CPU count twice (the
    // audio tower's never: its products use the compact blocks)
    let tower_q8 = (5120.0 * 1280.0 * 34.0 / 32.0) as u64;
    for q in [Quant::Q8_0, Quant::Q6k, Quant::Q5k, Quant::Q4k] {
        let (w, r) = (
            weight_bytes(&shapes, q, DType::F32),
            resident_bytes(&shapes, q, DType::F32),
        );
        let embed = 156_032 * 4096 * 2;
        let tower = if q == Quant::Q8_0 {
            tower_q8
        } else {
            (5120.0 * 1280.0 * q.bytes_per_weight(4.0)) as u64
        };
        let expect = if q.repacked(4096, 4096) {
            2 * (w - embed - tower) + embed + tower
        } else {
            w
        };
        assert!(r.abs_diff(expect) < 1_000, "{q:?}: {r} vs {expect}");
    }
    assert_eq!(resident_bytes(&shapes, Quant::None, DType::F32), f32_bytes);
    let gb = |x: f64| Some((x * 1e9) as u64);
    let need = |q: Quant| Some(resident_bytes(&shapes, q, DType::F32) / 4 * 5);
    // plenty: as asked
    assert_eq!(
        plan_quant(&shapes, Quant::None, DType::F32, gb(64.0)).unwrap(),
        Quant::None
    );
    // room for q8_0 once resident: q8_0 picked instead of f32
    assert_eq!(
        plan_quant(&shapes, Quant::None, DType::F32, need(Quant::Q8_0)).unwrap(),
        Quant::Q8_0
    );
    // a byte less: q4k
    assert_eq!(
        plan_quant(
            &shapes,
            Quant::None,
            DType::F32,
            need(Quant::Q8_0).map(|n| n - 1)
        )
        .unwrap(),
        Quant::Q4k
    );
    // q8_0 asked with room for its compact blocks but not for the repacked copy: refused
    if Quant::Q8_0.repacked(4096, 4096) {
        let e = plan_quant(&shapes, Quant::Q8_0, DType::F32, Some(q8 / 4 * 5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MISTRALRS_FORCE_AVX2=1"), "{e}");
    }
    // 2 GB free: an error with the estimates, before loading
    let e = plan_quant(&shapes, Quant::Q8_0, DType::F32, gb(2.0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not enough memory") && e.contains("q4k: about"),
        "{e}"
    );
}

/// Warnings said while `f` runs.
fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let out = {
        let _g =
            faithscope::warn::install(Arc::new(move |m: &str| s.lock().unwrap().push(m.into())));
        f()
    };
    let w = seen.lock().unwrap().clone();
    (out, w)
}

fn load_cached(dir: &std::path::Path, cache: &std::path::Path) -> (CandleReasoner, Vec<String>) {
    warnings_of(|| {
        CandleReasoner::load_with(
            dir,
            &Device::Cpu,
            DType::F32,
            &LoadOptions {
                quant: Quant::Q8_0,
                quant_cache: Some(cache.to_path_buf()),
                ..LoadOptions::default()
            },
        )
        .unwrap()
    })
}

fn first_probs(m: &CandleReasoner) -> Vec<f32> {
    let (clip, q, n) = items().remove(0);
    let letters: Vec<String> = LETTERS[..n].iter().map(|s| s.to_string()).collect();
    m.choice_probs(&ask(&clip, &q, Some("The answer is (")), &letters)
        .unwrap()
        .logprobs
}

#[test]
fn quantised_weights_are_cached_and_a_bad_or_stale_cache_is_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let model = tempfile::tempdir().unwrap();
    let src = common::repo().join("samples/models/demo-faithful");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), model.path().join(e.file_name())).unwrap();
        }
    }
    let files = |d: &std::path::Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let quantising = |w: &[String]| {
        w.iter()
            .any(|m| m.contains("quantising the linear weights to q8_0"))
    };

    let (m, w) = load_cached(model.path(), cache.path());
    assert!(quantising(&w), "{w:?}");
    let want = first_probs(&m);
    let written = files(cache.path());
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].extension().is_some_and(|x| x == "gguf"));

    // read back: nothing quantised, the same numbers
    let (m, w) = load_cached(model.path(), cache.path());
    assert!(!quantising(&w), "{w:?}");
    assert_eq!(first_probs(&m), want);

    // cut short: said, rebuilt, the same numbers
    let bytes = std::fs::read(&written[0]).unwrap();
    std::fs::write(&written[0], &bytes[..bytes.len() / 2]).unwrap();
    let (m, w) = load_cached(model.path(), cache.path());
    assert!(
        w.iter()
            .any(|m| m.contains("unusable") && m.contains("rebuilding")),
        "{w:?}"
    );
    assert!(quantising(&w));
    assert_eq!(first_probs(&m), want);
    assert_eq!(std::fs::read(&written[0]).unwrap().len(), bytes.len());

    // not GGUF at all
    std::fs::write(&written[0], b"garbage").unwrap();
    let (_, w) = load_cached(model.path(), cache.path());
    assert!(w.iter().any(|m| m.contains("not a GGUF file")), "{w:?}");

    // the checkpoint changed: a new key, never the old blocks
    let st = model.path().join("model.safetensors");
    let f = std::fs::File::options().write(true).open(&st).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let (_, w) = load_cached(model.path(), cache.path());
    assert!(quantising(&w), "{w:?}");
    assert_eq!(files(cache.path()).len(), 2);
}
