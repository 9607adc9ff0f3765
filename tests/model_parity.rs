//! Qwen2-Audio in candle against transformers: the tiny checkpoints and reference outputs under
//! tests/fixtures/qwen2_audio are written by tools/tiny_qwen2_audio.py, and so are the reference
//! outputs of the trained demo models in samples/models (`--demo`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor, D};
use faithscope::model::{KvCache, ModelError, Qwen2Audio, Qwen2AudioConfig};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/qwen2_audio")
}

/// (checkpoint, clip stem) pairs with reference outputs.
const CASES: &[(&str, &str)] = &[
    ("tiny-a", "dog49"),
    ("tiny-a", "crow9"),
    ("tiny-b", "dog49"),
    ("tiny-b", "cat62x3"),
    ("demo-faithful", "count-0000"),
    ("demo-faithful", "louder-0000"),
    ("demo-posthoc", "count-0000"),
];

/// A checkpoint's folder: the tiny ones in the fixtures, the demo models in samples/models.
fn checkpoint(ckpt: &str) -> PathBuf {
    if ckpt.starts_with("demo-") {
        common::repo().join("samples/models").join(ckpt)
    } else {
        fixtures().join(ckpt)
    }
}

struct Reference {
    meta: Value,
    tensors: HashMap<String, Tensor>,
}

impl Reference {
    fn load(ckpt: &str, stem: &str) -> Self {
        let base = fixtures().join("reference").join(ckpt).join(stem);
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap())
                .unwrap();
        let tensors =
            candle_core::safetensors::load(base.with_extension("safetensors"), &Device::Cpu)
                .unwrap();
        Self { meta, tensors }
    }

    fn t(&self, name: &str) -> &Tensor {
        &self.tensors[name]
    }

    fn ids(&self, section: &str, field: &str) -> Vec<u32> {
        self.meta[section][field]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    }

    fn valid_frames(&self) -> usize {
        let m = self
            .t("feature_attention_mask")
            .to_dtype(DType::I64)
            .unwrap();
        m.sum_all().unwrap().to_scalar::<i64>().unwrap() as usize
    }
}

fn load(ckpt: &str, dtype: DType) -> Qwen2Audio {
    Qwen2Audio::load(&checkpoint(ckpt), &Device::Cpu, dtype).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
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

fn audio(model: &Qwen2Audio, r: &Reference) -> Tensor {
    let mel = r.t("input_features").to_dtype(DType::F32).unwrap();
    model.encode_audio(&mel, r.valid_frames()).unwrap()
}

fn embeds(model: &Qwen2Audio, r: &Reference, section: &str) -> Tensor {
    let a = audio(model, r);
    model
        .splice_audio(&r.ids(section, "input_ids"), Some(&a))
        .unwrap()
}

fn argmax(logits: &Tensor) -> u32 {
    logits
        .argmax(D::Minus1)
        .unwrap()
        .to_scalar::<u32>()
        .unwrap()
}

#[test]
fn audio_tower_matches_reference() {
    for &(ckpt, stem) in CASES {
        let model = load(ckpt, DType::F32);
        let r = Reference::load(ckpt, stem);
        let n = r.meta["n_audio_tokens"].as_u64().unwrap() as usize;
        assert_eq!(
            Qwen2AudioConfig::audio_tokens_for_frames(r.valid_frames()),
            n
        );
        let got = audio(&model, &r);
        assert_eq!(got.dims(), &[n, model.config().text_config.hidden_size]);
        let d = max_abs(&got, r.t("audio_embeds"));
        eprintln!("{ckpt}/{stem}: audio max abs diff {d}");
        assert!(d <= TOL, "{ckpt}/{stem}: audio embeddings differ by {d}");
    }
}

#[test]
fn full_logits_match_reference() {
    for &(ckpt, stem) in CASES {
        let model = load(ckpt, DType::F32);
        let r = Reference::load(ckpt, stem);
        let e = embeds(&model, &r, "full");
        let mut cache = KvCache::new();
        let logits = model.forward_embeds(&e, &mut cache).unwrap();
        let t = r.ids("full", "input_ids").len();
        assert_eq!(logits.dims(), &[t, model.config().vocab_size()]);
        assert_eq!(cache.len(), t);
        let cols: Vec<u32> = r.ids("full", "logit_cols");
        let cols = Tensor::new(cols.as_slice(), &Device::Cpu).unwrap();
        let d = max_abs(
            &logits.index_select(&cols, 1).unwrap(),
            r.t("full_logits_cols"),
        );
        assert!(
            d <= TOL,
            "{ckpt}/{stem}: logits (all positions, sampled columns) differ by {d}"
        );
        let last = r.meta["full"]["last_positions"].as_u64().unwrap() as usize;
        let d = max_abs(
            &logits.narrow(0, t - last, last).unwrap(),
            r.t("full_logits_last"),
        );
        eprintln!("{ckpt}/{stem}: logits max abs diff {d} (last rows)");
        assert!(
            d <= TOL,
            "{ckpt}/{stem}: logits (last {last} positions) differ by {d}"
        );
    }
}

/// Minimal greedy loop over forward_embeds_last and the KV cache.
fn greedy(model: &Qwen2Audio, prompt: &Tensor, max_new: usize, eos: &[u32]) -> Vec<u32> {
    let mut cache = KvCache::new();
    let mut logits = model.forward_embeds_last(prompt, &mut cache).unwrap();
    let mut out = Vec::new();
    while out.len() < max_new {
        let tok = argmax(&logits);
        out.push(tok);
        if eos.contains(&tok) {
            break;
        }
        let e = model.embed_tokens(&[tok]).unwrap().unsqueeze(0).unwrap();
        logits = model.forward_embeds_last(&e, &mut cache).unwrap();
    }
    out
}

#[test]
fn greedy_tokens_match_reference() {
    for &(ckpt, stem) in CASES {
        let model = load(ckpt, DType::F32);
        let r = Reference::load(ckpt, stem);
        let e = embeds(&model, &r, "greedy");
        let max_new = r.meta["greedy"]["max_new_tokens"].as_u64().unwrap() as usize;
        let got = greedy(&model, &e, max_new, &r.ids("greedy", "eos_token_ids"));
        assert_eq!(
            got,
            r.ids("greedy", "tokens"),
            "{ckpt}/{stem}: greedy tokens differ"
        );
    }
}

#[test]
fn choice_logprobs_match_reference() {
    for &(ckpt, stem) in CASES {
        let model = load(ckpt, DType::F32);
        let r = Reference::load(ckpt, stem);
        let e = embeds(&model, &r, "choice");
        let logits = model.forward_embeds_last(&e, &mut KvCache::new()).unwrap();
        let lp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let d = max_abs(&lp, r.t("choice_logprobs"));
        eprintln!("{ckpt}/{stem}: choice log-softmax max abs diff {d}");
        assert!(d <= TOL, "{ckpt}/{stem}: log-softmax row differs by {d}");
        let want = r.meta["choice"]["logprobs"].as_array().unwrap();
        for (i, id) in r.ids("choice", "letter_ids").into_iter().enumerate() {
            let got = lp.i(id as usize).unwrap().to_scalar::<f32>().unwrap();
            let w = want[i].as_f64().unwrap() as f32;
            assert!(
                (got - w).abs() <= TOL,
                "{ckpt}/{stem}: letter {i}: {got} vs {w}"
            );
        }
    }
}

#[test]
fn prefix_reuse_equals_recomputing() {
    let model = load("tiny-a", DType::F32);
    let r = Reference::load("tiny-a", "dog49");
    let e = embeds(&model, &r, "full");
    let t = e.dim(1).unwrap();
    let scratch = model.forward_embeds(&e, &mut KvCache::new()).unwrap();
    let p = t - 40;

    // A prefix computed once, then the rest: same as from scratch.
    let mut prefix = KvCache::new();
    model
        .forward_embeds(&e.narrow(1, 0, p).unwrap(), &mut prefix)
        .unwrap();
    let mut c = prefix.clone();
    let rest = model
        .forward_embeds(&e.narrow(1, p, t - p).unwrap(), &mut c)
        .unwrap();
    let d = max_abs(&rest, &scratch.narrow(0, p, t - p).unwrap());
    assert!(d <= 1e-5, "prefix + rest differs from scratch by {d}");

    // Truncating the full cache to the prefix and recomputing the rest.
    let mut full = KvCache::new();
    model.forward_embeds(&e, &mut full).unwrap();
    full.truncate(p);
    assert_eq!(full.len(), p);
    let again = model
        .forward_embeds(&e.narrow(1, p, t - p).unwrap(), &mut full)
        .unwrap();
    let d = max_abs(&again, &scratch.narrow(0, p, t - p).unwrap());
    assert!(
        d <= 1e-5,
        "truncate + recompute differs from scratch by {d}"
    );

    // Two forks of one prefix with different continuations do not affect each other.
    let other_ids: Vec<u32> = (0..30u32).map(|i| (i * 7 + 3) % 400).collect();
    let other = model
        .embed_tokens(&other_ids)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut a = prefix.clone();
    let mut b = prefix.clone();
    let la = model.forward_embeds(&other, &mut a).unwrap();
    let lb = model
        .forward_embeds(&e.narrow(1, p, t - p).unwrap(), &mut b)
        .unwrap();
    let la2 = model.forward_embeds(&other, &mut prefix.clone()).unwrap();
    assert_eq!(prefix.len(), p, "forking changed the parent");
    assert_eq!((a.len(), b.len()), (p + 30, t));
    let d = max_abs(&lb, &scratch.narrow(0, p, t - p).unwrap());
    assert!(d <= 1e-5, "fork b was disturbed by fork a: {d}");
    let d = max_abs(&la, &la2);
    assert!(d <= 1e-5, "fork a was disturbed by fork b: {d}");
    // Truncating a fork and appending again leaves its sibling untouched.
    a.truncate(p + 10);
    model
        .forward_embeds(&e.narrow(1, p, 20).unwrap(), &mut a)
        .unwrap();
    let next = model.embed_tokens(&[5]).unwrap().unsqueeze(0).unwrap();
    let lb_next = model.forward_embeds_last(&next, &mut b.clone()).unwrap();
    let mut fresh = KvCache::new();
    model.forward_embeds(&e, &mut fresh).unwrap();
    let want = model.forward_embeds_last(&next, &mut fresh).unwrap();
    let d = max_abs(&lb_next, &want);
    assert!(d <= 1e-5, "sibling changed after truncate + append: {d}");

    // Truncating past the end is a no-op; truncating to 0 starts over.
    let mut again = b.clone();
    again.truncate(t + 100);
    assert_eq!(again.len(), t);
    again.truncate(0);
    assert!(again.is_empty());
    let restart = model.forward_embeds(&e, &mut again).unwrap();
    let d = max_abs(&restart, &scratch);
    assert!(d <= 1e-5, "restart after truncate(0) differs by {d}");

    // Decoding one token at a time equals the one-shot pass.
    let mut step = prefix.clone();
    for i in p..p + 5 {
        let l = model
            .forward_embeds_last(&e.narrow(1, i, 1).unwrap(), &mut step)
            .unwrap();
        let d = max_abs(&l, &scratch.i(i).unwrap());
        assert!(d <= 1e-5, "step {i} differs by {d}");
    }
}

#[test]
fn half_precision_agrees_with_f32() {
    for (dtype, tol) in [(DType::F16, 0.05f32), (DType::BF16, 0.3)] {
        for ckpt in ["tiny-a", "tiny-b"] {
            let r = Reference::load(ckpt, "dog49");
            let f32m = load(ckpt, DType::F32);
            let half = load(ckpt, dtype);
            assert_eq!(half.dtype(), dtype);
            let want = f32m
                .forward_embeds_last(&embeds(&f32m, &r, "choice"), &mut KvCache::new())
                .unwrap();
            let got = half
                .forward_embeds_last(&embeds(&half, &r, "choice"), &mut KvCache::new())
                .unwrap();
            assert_eq!(got.dtype(), DType::F32);
            let d = max_abs(&got, &want);
            eprintln!("{ckpt} {dtype:?}: max abs logit difference to f32 {d}");
            assert!(d <= tol, "{ckpt} {dtype:?}: logits differ from f32 by {d}");
        }
    }
}

/// Copies a checkpoint folder into a temp dir, letting `edit` change its tensors and config.
fn copy_with(
    ckpt: &str,
    edit: impl FnOnce(&mut HashMap<String, Tensor>, &mut Value),
) -> tempfile::TempDir {
    let src = fixtures().join(ckpt);
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut tensors, &mut config);
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

fn load_err(dir: &Path) -> String {
    match Qwen2Audio::load(dir, &Device::Cpu, DType::F32) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_tensor_names_tensor_and_file() {
    let name = "language_model.model.layers.1.mlp.up_proj.weight";
    let dir = copy_with("tiny-a", |t, _| {
        t.remove(name);
    });
    let m = load_err(dir.path());
    eprintln!("error: {m}");
    assert!(m.contains(name) && m.contains("model.safetensors"), "{m}");
}

#[test]
fn untied_checkpoint_without_head_names_head() {
    let dir = copy_with("tiny-b", |t, _| {
        t.remove("language_model.lm_head.weight");
    });
    let m = load_err(dir.path());
    eprintln!("error: {m}");
    assert!(m.contains("language_model.lm_head.weight"), "{m}");
}

#[test]
fn shape_mismatch_names_both_shapes() {
    let dir = copy_with("tiny-a", |_, c| {
        c["text_config"]["intermediate_size"] = 96.into();
    });
    let m = load_err(dir.path());
    eprintln!("error: {m}");
    assert!(m.contains("[128, 64]") && m.contains("[96, 64]"), "{m}");
}

#[test]
fn unsupported_model_type_says_what_is_supported() {
    let dir = copy_with("tiny-a", |_, c| {
        c["model_type"] = "llava".into();
    });
    let m = load_err(dir.path());
    eprintln!("error: {m}");
    assert!(m.contains("llava") && m.contains("qwen2_audio"), "{m}");
}

#[test]
fn missing_config_lists_found_files() {
    let dir = copy_with("tiny-a", |_, _| {});
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let m = load_err(dir.path());
    eprintln!("error: {m}");
    assert!(
        m.contains("config.json") && m.contains("model.safetensors"),
        "{m}"
    );
    let m = load_err(&dir.path().join("nope"));
    assert!(m.contains("nope"), "{m}");
}

#[test]
fn sharded_checkpoint_gives_same_logits() {
    let dir = copy_with("tiny-b", |_, _| {});
    let all =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let (mut s1, mut s2) = (HashMap::new(), HashMap::new());
    let mut map = serde_json::Map::new();
    for (name, t) in all {
        let shard = if name.starts_with("audio_tower") {
            "model-00001-of-00002.safetensors"
        } else {
            "model-00002-of-00002.safetensors"
        };
        map.insert(name.clone(), shard.into());
        if shard.starts_with("model-00001") {
            s1.insert(name, t);
        } else {
            s2.insert(name, t);
        }
    }
    candle_core::safetensors::save(&s1, dir.path().join("model-00001-of-00002.safetensors"))
        .unwrap();
    candle_core::safetensors::save(&s2, dir.path().join("model-00002-of-00002.safetensors"))
        .unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let sharded = Qwen2Audio::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
    let single = load("tiny-b", DType::F32);
    let r = Reference::load("tiny-b", "dog49");
    let a = sharded
        .forward_embeds_last(&embeds(&sharded, &r, "choice"), &mut KvCache::new())
        .unwrap();
    let b = single
        .forward_embeds_last(&embeds(&single, &r, "choice"), &mut KvCache::new())
        .unwrap();
    assert_eq!(max_abs(&a, &b), 0.0);

    // A shard listed in the index but absent is named.
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let m = load_err(dir.path());
    eprintln!("error: {m}");
    assert!(m.contains("model-00002-of-00002.safetensors"), "{m}");
}

#[test]
fn bad_inputs_are_errors() {
    let model = load("tiny-a", DType::F32);
    let r = Reference::load("tiny-a", "dog49");
    let a = audio(&model, &r);
    let mut ids = r.ids("greedy", "input_ids");
    let tok = model.config().audio_token_id();
    let pos = ids.iter().position(|&i| i == tok).unwrap();
    ids.remove(pos);
    let n = a.dim(0).unwrap();
    let m = model.splice_audio(&ids, Some(&a)).unwrap_err().to_string();
    assert!(
        m.contains(&format!("{}", n - 1)) && m.contains(&format!("{n}")),
        "{m}"
    );

    let short = Tensor::zeros((1, 80, 100), DType::F32, &Device::Cpu).unwrap();
    let m = model.encode_audio(&short, 50).unwrap_err().to_string();
    assert!(m.contains("[1, 80, 100]") && m.contains("400"), "{m}");
    let mel = r.t("input_features").to_dtype(DType::F32).unwrap();
    assert!(matches!(
        model.encode_audio(&mel, 0),
        Err(ModelError::Input(_))
    ));
    assert!(matches!(
        model.encode_audio(&mel, 401),
        Err(ModelError::Input(_))
    ));

    let m = model.embed_tokens(&[1, 99_999]).unwrap_err().to_string();
    assert!(m.contains("99999"), "{m}");

    let max = model.config().max_positions();
    let long = Tensor::zeros((1, max + 1, 64), DType::F32, &Device::Cpu).unwrap();
    let mut cache = KvCache::new();
    let m = model
        .forward_embeds(&long, &mut cache)
        .unwrap_err()
        .to_string();
    assert!(
        m.contains(&format!("{}", max + 1)) && m.contains(&format!("{max}")),
        "{m}"
    );
    assert!(cache.is_empty());
}

#[test]
fn stored_head_wins_over_tying() {
    // tiny-b with tie_word_embeddings = true still stores its own head: that head is used
    // (as transformers 5 loads it), so the logits stay the reference ones.
    let dir = copy_with("tiny-b", |_, c| {
        c["text_config"]["tie_word_embeddings"] = true.into();
    });
    let model = Qwen2Audio::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
    let r = Reference::load("tiny-b", "dog49");
    let logits = model
        .forward_embeds_last(&embeds(&model, &r, "choice"), &mut KvCache::new())
        .unwrap();
    let lp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
    let d = max_abs(&lp, r.t("choice_logprobs"));
    assert!(d <= TOL, "stored head not used: {d}");
}

/// A random model may sample `<|AUDIO|>` itself: the decode step embeds it as a token (as the
/// reference does during generation) instead of refusing an unmatched audio placeholder.
#[test]
fn generated_audio_token_is_embedded_as_a_token() {
    let model = load("tiny-b", DType::F32);
    let tok = model.config().audio_token_id();
    let mut cache = KvCache::new();
    let step = model
        .forward_ids_last(&[1, tok], &mut cache)
        .expect("decode step with <|AUDIO|>");
    let direct = model
        .forward_embeds_last(
            &model.embed_tokens(&[1, tok]).unwrap().unsqueeze(0).unwrap(),
            &mut KvCache::new(),
        )
        .unwrap();
    assert_eq!(cache.len(), 2);
    assert!(
        max_abs(&step, &direct) == 0.0,
        "decode step differs from embedding the ids directly"
    );
}
