//! Audio Flamingo 3 (with its thinking adapter merged) and the Qwen2.5-Omni thinker in candle
//! against transformers and peft: the tiny checkpoints and reference outputs under
//! tests/fixtures/af3_omni are written by tools/tiny_af3_omni.py.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, IndexOp, Tensor, D};
use faithscope::model::adapter::{resolve_adapter, Adapter};
use faithscope::model::candle_backend::{CacheOptions, CandleReasoner, Featurizer, LoadOptions};
use faithscope::model::config::Arch;
use faithscope::model::qwen2_audio::Checkpoint;
use faithscope::model::{
    Conversation, KvCache, Message, ModelError, Qwen2Audio, Qwen2AudioConfig, Reasoner, Role,
};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/af3_omni")
}

const CLIPS: &[&str] = &["dog49", "crow9", "cat62"];

/// A model under test: its folder, the adapter merged into it, and whose reference outputs it
/// must reproduce.
struct Case {
    folder: &'static str,
    adapter: Option<&'static str>,
    reference: &'static str,
}

const CASES: &[Case] = &[
    Case {
        folder: "af3-tiny",
        adapter: None,
        reference: "af3-tiny",
    },
    Case {
        folder: "af3-tiny",
        adapter: Some("think"),
        reference: "af3-tiny-think",
    },
    Case {
        folder: "af3-tiny",
        adapter: Some("think-rslora"),
        reference: "af3-tiny-think-rslora",
    },
    Case {
        folder: "omni-thinker-tiny",
        adapter: None,
        reference: "omni-thinker-tiny",
    },
    Case {
        folder: "omni-full-tiny",
        adapter: None,
        reference: "omni-thinker-tiny",
    },
];

struct Reference {
    meta: Value,
    tensors: HashMap<String, Tensor>,
}

impl Reference {
    fn load(name: &str, stem: &str) -> Self {
        let base = fixtures().join("reference").join(name).join(stem);
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

    fn window_valid(&self) -> Vec<usize> {
        self.meta["window_valid_frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    }
}

fn load(case: &Case) -> Qwen2Audio {
    let dir = fixtures().join(case.folder);
    let config = Qwen2AudioConfig::from_dir(&dir).unwrap();
    let ckpt = Checkpoint::open(&dir).unwrap();
    let adapter = case
        .adapter
        .map(|a| Adapter::open(&resolve_adapter(&dir, a).unwrap()).unwrap());
    Qwen2Audio::load_from(
        config,
        ckpt,
        adapter,
        faithscope::model::qwen2_audio::Quantizer::new(faithscope::model::Quant::None),
        &Device::Cpu,
        DType::F32,
        &dir,
    )
    .unwrap()
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
    model.encode_clip(&mel, &r.window_valid()).unwrap()
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

fn label(case: &Case, stem: &str) -> String {
    format!(
        "{}{}/{stem}",
        case.folder,
        case.adapter.map(|a| format!("+{a}")).unwrap_or_default()
    )
}

#[test]
fn the_clips_cover_several_windows_and_chunks() {
    // AF3's tiny window is 4 s: crow9 (5 s) takes two windows, cat62 (12 s) three; Omni's chunks
    // are 50 frames, so every clip spans several chunks and a tail.
    let af3 = |stem| Reference::load("af3-tiny", stem).window_valid();
    assert_eq!(af3("dog49"), vec![277]);
    assert_eq!(af3("crow9"), vec![400, 100]);
    assert_eq!(af3("cat62"), vec![400, 400, 400]);
    let omni = |stem| Reference::load("omni-thinker-tiny", stem).window_valid();
    assert_eq!(omni("dog49"), vec![277]);
    // cat62 is 12 s, cut to the 10-s feature window
    assert_eq!(omni("cat62"), vec![1000]);
}

#[test]
fn audio_tokens_match_reference() {
    for case in CASES {
        let model = load(case);
        for stem in CLIPS {
            let r = Reference::load(case.reference, stem);
            let n = r.meta["n_audio_tokens"].as_u64().unwrap() as usize;
            let per_window: usize = r
                .window_valid()
                .iter()
                .map(|&v| Qwen2AudioConfig::audio_tokens_for_frames(v))
                .sum();
            assert_eq!(per_window, n, "{}", label(case, stem));
            let got = audio(&model, &r);
            assert_eq!(got.dims(), &[n, model.config().text_config.hidden_size]);
            let d = max_abs(&got, r.t("audio_embeds"));
            eprintln!("{}: audio max abs diff {d}", label(case, stem));
            assert!(
                d <= TOL,
                "{}: audio embeddings differ by {d}",
                label(case, stem)
            );
        }
    }
}

#[test]
fn full_logits_match_reference() {
    for case in CASES {
        let model = load(case);
        for stem in CLIPS {
            let r = Reference::load(case.reference, stem);
            let e = embeds(&model, &r, "full");
            let logits = model.forward_embeds(&e, &mut KvCache::new()).unwrap();
            let t = r.ids("full", "input_ids").len();
            let cols = Tensor::new(r.ids("full", "logit_cols").as_slice(), &Device::Cpu).unwrap();
            let d = max_abs(
                &logits.index_select(&cols, 1).unwrap(),
                r.t("full_logits_cols"),
            );
            assert!(
                d <= TOL,
                "{}: logits (all positions) differ by {d}",
                label(case, stem)
            );
            let last = r.meta["full"]["last_positions"].as_u64().unwrap() as usize;
            let d = max_abs(
                &logits.narrow(0, t - last, last).unwrap(),
                r.t("full_logits_last"),
            );
            eprintln!("{}: logits max abs diff {d}", label(case, stem));
            assert!(
                d <= TOL,
                "{}: logits (last rows) differ by {d}",
                label(case, stem)
            );
        }
    }
}

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
        logits = model.forward_ids_last(&[tok], &mut cache).unwrap();
    }
    out
}

#[test]
fn greedy_tokens_and_letter_logprobs_match_reference() {
    for case in CASES {
        let model = load(case);
        for stem in CLIPS {
            let r = Reference::load(case.reference, stem);
            let e = embeds(&model, &r, "greedy");
            let max_new = r.meta["greedy"]["max_new_tokens"].as_u64().unwrap() as usize;
            let got = greedy(&model, &e, max_new, &r.ids("greedy", "eos_token_ids"));
            assert_eq!(
                got,
                r.ids("greedy", "tokens"),
                "{}: greedy tokens",
                label(case, stem)
            );

            let e = embeds(&model, &r, "choice");
            let logits = model.forward_embeds_last(&e, &mut KvCache::new()).unwrap();
            let lp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
            let d = max_abs(&lp, r.t("choice_logprobs"));
            assert!(
                d <= TOL,
                "{}: log-softmax differs by {d}",
                label(case, stem)
            );
            let want = r.meta["choice"]["logprobs"].as_array().unwrap();
            for (i, id) in r.ids("choice", "letter_ids").into_iter().enumerate() {
                let got = lp.i(id as usize).unwrap().to_scalar::<f32>().unwrap();
                let w = want[i].as_f64().unwrap() as f32;
                assert!(
                    (got - w).abs() <= TOL,
                    "{}: letter {i}: {got} vs {w}",
                    label(case, stem)
                );
            }
        }
    }
}

#[test]
fn prefix_reuse_equals_recomputing() {
    for case in CASES {
        let model = load(case);
        let r = Reference::load(case.reference, "crow9");
        let e = embeds(&model, &r, "full");
        let t = e.dim(1).unwrap();
        let scratch = model.forward_embeds(&e, &mut KvCache::new()).unwrap();
        let p = t - 30;
        let mut prefix = KvCache::new();
        model
            .forward_embeds(&e.narrow(1, 0, p).unwrap(), &mut prefix)
            .unwrap();
        let mut fork = prefix.clone();
        let rest = model
            .forward_embeds(&e.narrow(1, p, t - p).unwrap(), &mut fork)
            .unwrap();
        let d = max_abs(&rest, &scratch.narrow(0, p, t - p).unwrap());
        assert!(d <= 1e-5, "{}: prefix + rest differs by {d}", case.folder);
        fork.truncate(p + 5);
        let again = model
            .forward_embeds_last(&e.narrow(1, p + 5, 1).unwrap(), &mut fork)
            .unwrap();
        let d = max_abs(&again, &scratch.i(p + 5).unwrap());
        assert!(d <= 1e-5, "{}: truncate + step differs by {d}", case.folder);
    }
}

fn clip(stem: &str) -> Option<PathBuf> {
    let p = common::shared_data()?
        .join("sakura-mini/data/Animal/audio")
        .join(format!("{stem}.wav"));
    p.is_file().then_some(p)
}

fn question(audio: Option<PathBuf>, text: &str, prefill: Option<&str>) -> Conversation {
    Conversation {
        audio,
        messages: vec![Message {
            role: Role::User,
            text: text.into(),
        }],
        prefill: prefill.map(str::to_string),
    }
}

/// The backend end to end: the clip decoded and featurized by faithscope, the prompt rendered
/// from the folder's chat template, the adapter merged, through the `Reasoner` seam.
#[test]
fn the_backend_renders_featurizes_and_answers_as_the_reference() {
    let Some(_) = clip("dog49") else {
        eprintln!("NOTE: shared data not found; set FAITHSCOPE_SHARED_DATA to run this test");
        return;
    };
    for case in CASES {
        let m = CandleReasoner::load_with(
            &fixtures().join(case.folder),
            &Device::Cpu,
            DType::F32,
            &LoadOptions {
                adapter: case.adapter.map(str::to_string),
                ..LoadOptions::default()
            },
        )
        .unwrap();
        if let Some(a) = case.adapter {
            assert_eq!(m.name(), format!("{}+{a}", case.folder));
        }
        for stem in CLIPS {
            let r = Reference::load(case.reference, stem);
            let q = r.meta["question"].as_str().unwrap();
            let conv = question(clip(stem), q, None);
            let p = m.render_prompt(&conv).unwrap();
            assert_eq!(
                p.text,
                r.meta["greedy"]["text"].as_str().unwrap(),
                "{}",
                label(case, stem)
            );
            assert_eq!(
                p.ids,
                r.ids("greedy", "input_ids"),
                "{}: prompt ids",
                label(case, stem)
            );
            let cue = r.meta["choice"]["prefill"].as_str().unwrap();
            let probs = m
                .choice_probs(
                    &question(clip(stem), q, Some(cue)),
                    &["A".into(), "B".into(), "C".into(), "D".into()],
                )
                .unwrap();
            let want = r.meta["choice"]["logprobs"].as_array().unwrap();
            for (i, w) in want.iter().enumerate() {
                // features computed here in f32; the reference ran on f16-rounded ones
                let d = (probs.logprobs[i] - w.as_f64().unwrap() as f32).abs();
                assert!(
                    d <= 2e-3,
                    "{}: letter {i} log-prob differs by {d}",
                    label(case, stem)
                );
            }
        }
    }
}

#[test]
fn features_are_cut_into_the_reference_windows() {
    let Some(path) = clip("cat62") else {
        eprintln!("NOTE: shared data not found; set FAITHSCOPE_SHARED_DATA to run this test");
        return;
    };
    let samples = faithscope::audio::load_clip(&path, 16_000, &Default::default())
        .unwrap()
        .samples;
    for (folder, arch) in [
        ("af3-tiny", Arch::AudioFlamingo3),
        ("omni-thinker-tiny", Arch::Qwen25Omni),
    ] {
        let f = Featurizer::for_model(&fixtures().join(folder), arch).unwrap();
        let r = Reference::load(folder, "cat62");
        let samples = &samples[..samples.len().min((f.max_seconds() * 16_000.0) as usize)];
        let got = f.features(samples);
        assert_eq!(got.valid, r.window_valid(), "{folder}");
        let t = Tensor::from_vec(
            got.data,
            (got.windows, got.n_mels, got.frames),
            &Device::Cpu,
        )
        .unwrap();
        let d = max_abs(&t, r.t("input_features"));
        assert!(
            d <= 2e-3,
            "{folder}: features differ by {d} (f16 rounding is < 1e-3)"
        );
    }
}

/// Warnings said while `f` runs.
fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let out = {
        let _guard = faithscope::warn::install(Arc::new(move |m: &str| {
            s.lock().unwrap().push(m.to_string())
        }));
        f()
    };
    let w = seen.lock().unwrap().clone();
    (out, w)
}

#[test]
fn af3_reads_twenty_windows_of_thirty_seconds_and_cuts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // the published AF3 feature settings: 30-s windows, up to 600 s
    std::fs::write(
        dir.path().join("preprocessor_config.json"),
        r#"{"feature_size": 128, "chunk_length": 30, "n_samples": 480000, "nb_max_frames": 3000,
            "hop_length": 160, "n_fft": 400, "sampling_rate": 16000, "padding_value": 0.0}"#,
    )
    .unwrap();
    let f = Featurizer::for_model(dir.path(), Arch::AudioFlamingo3).unwrap();
    assert_eq!(f.max_seconds(), 600.0);
    let twenty_minutes = vec![0.01f32; 16_000 * 1200];
    let got = f.features(&twenty_minutes);
    assert_eq!(got.windows, 20);
    assert!(got.valid.iter().all(|&v| v == 3000));
    // a partial last window: 65 s = two full windows and 5 s (500 frames)
    let got = f.features(&twenty_minutes[..16_000 * 65]);
    assert_eq!(got.valid, vec![3000, 3000, 500]);
}

#[test]
fn a_clip_past_the_af3_limit_is_cut_with_a_warning_naming_it() {
    let Some(path) = clip("cat62") else {
        eprintln!("NOTE: shared data not found; set FAITHSCOPE_SHARED_DATA to run this test");
        return;
    };
    // af3-tiny with max_audio_len 8: cat62 (12 s) is cut to two 4-s windows
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("af3-tiny"), dir.path());
    let pc = dir.path().join("processor_config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&pc).unwrap()).unwrap();
    v["max_audio_len"] = 8.into();
    std::fs::write(&pc, v.to_string()).unwrap();
    let m = CandleReasoner::load(
        dir.path(),
        &Device::Cpu,
        DType::F32,
        CacheOptions::default(),
    )
    .unwrap();
    assert_eq!(m.audio_window_seconds(), Some(8.0));
    let (p, warned) = warnings_of(|| {
        m.render_prompt(&question(Some(path.clone()), "Which animal?", None))
            .unwrap()
    });
    assert_eq!(
        p.audio_range.unwrap().len(),
        200,
        "two windows of 100 tokens"
    );
    assert!(
        warned
            .iter()
            .any(|w| w.contains("8.0 s") && w.contains("cat62")),
        "no warning naming the limit: {warned:?}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn load_err(dir: &Path, adapter: Option<&str>) -> String {
    let opts = LoadOptions {
        adapter: adapter.map(str::to_string),
        ..LoadOptions::default()
    };
    match CandleReasoner::load_with(dir, &Device::Cpu, DType::F32, &opts) {
        Ok(_) => panic!("loading {} with {adapter:?} succeeded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_adapters_are_named() {
    let af3 = fixtures().join("af3-tiny");
    // a missing adapter folder: named, with what the model folder holds
    let e = load_err(&af3, Some("thinking"));
    assert!(e.contains("thinking") && e.contains("think-rslora"), "{e}");

    // an adapter folder without its tensors
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&af3.join("think"), dir.path());
    std::fs::remove_file(dir.path().join("adapter_model.safetensors")).unwrap();
    let e = load_err(&af3, Some(dir.path().to_str().unwrap()));
    assert!(e.contains("adapter_model.safetensors is missing"), "{e}");

    // lora_A without lora_B
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&af3.join("think"), dir.path());
    let st = dir.path().join("adapter_model.safetensors");
    let mut t = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    let gone = "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_B.weight";
    assert!(t.remove(gone).is_some());
    candle_core::safetensors::save(&t, &st).unwrap();
    let e = load_err(&af3, Some(dir.path().to_str().unwrap()));
    assert!(
        e.contains("model.language_model.layers.0.self_attn.q_proj.weight")
            && e.contains("lora_A but not lora_B"),
        "{e}"
    );

    // base shapes that differ: both shapes named
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&af3.join("think"), dir.path());
    let mut t = candle_core::safetensors::load(st_of(&af3), &Device::Cpu).unwrap();
    let a = "base_model.model.model.language_model.layers.1.mlp.down_proj.lora_A.weight";
    t.insert(
        a.into(),
        Tensor::zeros((4, 96), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&t, dir.path().join("adapter_model.safetensors")).unwrap();
    let e = load_err(&af3, Some(dir.path().to_str().unwrap()));
    assert!(
        e.contains("[64, 96] in the adapter") && e.contains("[64, 128] in the model"),
        "{e}"
    );

    // an adapter of another model: the weights it adapts are named
    let e = load_err(
        &fixtures().join("omni-thinker-tiny"),
        Some(af3.join("think").to_str().unwrap()),
    );
    assert!(
        e.contains("not in the model") && e.contains("language_model.layers"),
        "{e}"
    );
}

fn st_of(af3: &Path) -> PathBuf {
    af3.join("think/adapter_model.safetensors")
}

#[test]
fn non_lora_tensors_that_match_nothing_are_reported() {
    let (m, warned) = warnings_of(|| {
        CandleReasoner::load_with(
            &fixtures().join("af3-tiny"),
            &Device::Cpu,
            DType::F32,
            &LoadOptions {
                adapter: Some("think".into()),
                ..LoadOptions::default()
            },
        )
        .unwrap()
    });
    assert_eq!(m.name(), "af3-tiny+think");
    assert!(
        warned.iter().any(|w| w.contains("1 of the 2 tensors")
            && w.contains("model.sound_mm_projector.layers.9.weight")),
        "{warned:?}"
    );
}

#[test]
fn omni_loads_the_thinker_only_and_refuses_images() {
    let (m, warned) = warnings_of(|| {
        CandleReasoner::load(
            &fixtures().join("omni-full-tiny"),
            &Device::Cpu,
            DType::F32,
            CacheOptions::default(),
        )
        .unwrap()
    });
    assert!(
        // 3 talker / token2wav tensors and the 22 of the tiny vision tower
        warned.iter().any(|w| w.contains("thinker is loaded")
            && w.contains(" 25 tensors of the talker, token2wav")),
        "{warned:?}"
    );
    let e = m
        .render_prompt(&question(None, "Describe <|IMAGE|> please", None))
        .unwrap_err();
    assert!(matches!(e, ModelError::Input(_)), "{e}");
    assert!(
        e.to_string().contains("<|IMAGE|>") && e.to_string().contains("audio and text only"),
        "{e}"
    );
}

#[test]
fn model_types_pick_the_architecture_and_protocol() {
    for (folder, arch, protocol) in [
        ("af3-tiny", Arch::AudioFlamingo3, "af3"),
        ("omni-thinker-tiny", Arch::Qwen25Omni, "omni"),
        ("omni-full-tiny", Arch::Qwen25Omni, "omni"),
    ] {
        let dir = fixtures().join(folder);
        assert_eq!(Qwen2AudioConfig::from_dir(&dir).unwrap().arch(), arch);
        assert_eq!(
            faithscope::model::resolve::model_protocol(dir.to_str().unwrap()).as_deref(),
            Some(protocol)
        );
    }
    let e = Qwen2AudioConfig::from_json(r#"{"model_type":"llava"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("audioflamingo3") && e.contains("qwen2_5_omni"),
        "{e}"
    );
}
