//! train-demo: the training loop on a tiny config (loss falls, gradients reach every parameter,
//! saved checkpoints load with the inference loader, resume is bit-identical) and the
//! faithfulness data mix.

use candle_core::{DType, Device};
use faithscope::model::tokenizer::{Tokenizer, IM_END};
use faithscope::model::{KvCache, Qwen2Audio};
use faithscope::synth;
use faithscope::train::{named_vars, ChainKind, DemoSize, TrainOptions, Trainer, GUESS};

fn tiny(faithfulness: f64) -> TrainOptions {
    let mut o = TrainOptions::new(faithfulness);
    o.size = DemoSize::tiny();
    o.train_items = 24;
    o.dev_per_task = 1;
    o.batch = 4;
    o.steps = 40;
    o.warmup = 1;
    o.lr = 3e-3;
    o
}

fn weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    named_vars(&t.varmap)
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect()
}

#[test]
fn loss_falls_on_a_fixed_batch() {
    let mut t = Trainer::new(tiny(1.0), &Device::Cpu).unwrap();
    let pairs = t.examples_for_step(0).unwrap();
    let first = t.step_on(&pairs).unwrap().loss;
    let mut last = first;
    for _ in 0..19 {
        last = t.step_on(&pairs).unwrap().loss;
    }
    assert!(first.is_finite() && last.is_finite());
    assert!(last < 0.8 * first, "loss {first} -> {last}");
}

#[test]
fn every_parameter_receives_a_gradient() {
    let t = Trainer::new(tiny(0.5), &Device::Cpu).unwrap();
    let pairs = t.examples_for_step(0).unwrap();
    let (loss, _, _) = t.loss(&pairs).unwrap();
    let grads = loss.backward().unwrap();
    let vars = named_vars(&t.varmap);
    assert!(vars.len() > 20);
    for (name, v) in vars {
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let s = g
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(s > 0.0 && s.is_finite(), "{name}: gradient magnitude {s}");
    }
}

#[test]
fn saved_model_loads_with_the_same_logits() {
    let mut t = Trainer::new(tiny(1.0), &Device::Cpu).unwrap();
    t.train_step().unwrap();
    let dir = tempfile::tempdir().unwrap();
    t.save_model(dir.path()).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "generation_config.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let loaded = Qwen2Audio::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
    let mem = t.inference_model().unwrap();
    let tok = Tokenizer::load(dir.path()).unwrap();
    assert_eq!(prompt_logits(&loaded, &tok), prompt_logits(&mem, &tok));
    // The audio path too: the same item through both.
    let ti = &t.dev[0];
    let (s1, f1) = t.run_item(&loaded, ti).unwrap();
    let (s2, f2) = t.run_item(&mem, ti).unwrap();
    assert_eq!((s1, f1), (s2, f2));
    let cfg = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(cfg.contains("\"tie_word_embeddings\": true"));
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let mut a = Trainer::new(tiny(1.0), &Device::Cpu).unwrap();
    for _ in 0..4 {
        a.train_step().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut b = Trainer::new(tiny(1.0), &Device::Cpu).unwrap();
    for _ in 0..2 {
        b.train_step().unwrap();
    }
    b.save_checkpoint(dir.path()).unwrap();
    drop(b);
    let mut c = Trainer::new(tiny(1.0), &Device::Cpu).unwrap();
    c.load_checkpoint(dir.path()).unwrap();
    assert_eq!(c.step, 2);
    for _ in 0..2 {
        c.train_step().unwrap();
    }
    let (wa, wc) = (weights(&a), weights(&c));
    assert_eq!(wa.len(), wc.len());
    for ((na, va), (nc, vc)) in wa.iter().zip(&wc) {
        assert_eq!(na, nc);
        assert!(
            va.iter().zip(vc).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{na} differs after resume"
        );
    }
    // A checkpoint of other options is refused.
    let mut other = tiny(0.0);
    other.seed = 9;
    let mut d = Trainer::new(other, &Device::Cpu).unwrap();
    let err = d.load_checkpoint(dir.path()).unwrap_err().to_string();
    assert!(err.contains("other options"), "{err}");
}

#[test]
fn faithfulness_mix_sets_whose_answer_is_trained() {
    for f in [1.0, 0.0] {
        let mut o = tiny(f);
        o.batch = 50;
        let t = Trainer::new(o, &Device::Cpu).unwrap();
        let mut kinds = [0usize; 3];
        let mut n = 0;
        for step in 0..8 {
            for (k, e) in t.examples_for_step(step).unwrap() {
                n += 1;
                let item = &t.items[k];
                assert_eq!(Some(e.gold), item.item.gold);
                match e.kind {
                    ChainKind::Faithful => {
                        kinds[0] += 1;
                        assert_eq!(e.answer, e.gold);
                        assert_eq!(e.chain_answer, Some(e.gold));
                        assert!(!e.chain_targets.is_empty());
                    }
                    ChainKind::Altered => {
                        kinds[1] += 1;
                        let ca = e.chain_answer.expect("an altered chain states its fact");
                        assert_ne!(ca, e.gold);
                        // The continuation after the first altered sentence is a target,
                        // ending with the end of turn just before the answer prompt.
                        assert!(!e.chain_targets.is_empty());
                        let last = e.ids[e.chain_targets.end - 1];
                        assert_eq!(Some(last), t.tok.token_to_id(IM_END));
                        let text = t.tok.decode(&e.ids[e.chain_targets.clone()]).unwrap();
                        assert!(!text.contains(synth::OPENING), "{text}");
                        let want = if f == 1.0 { ca } else { e.gold };
                        assert_eq!(e.answer, want);
                    }
                    ChainKind::Truncated => {
                        kinds[2] += 1;
                        assert!(e.chain_targets.is_empty());
                        if f == 0.0 {
                            assert_eq!(e.answer, e.gold);
                        } else {
                            assert_eq!(e.answer, e.chain_answer.unwrap_or(GUESS));
                        }
                        if e.sentences == 0 {
                            assert_eq!(e.chain_answer, None);
                        }
                    }
                }
                assert_eq!(e.follows_chain, f == 1.0);
            }
        }
        let share = |c: usize| c as f64 / n as f64;
        assert!(
            (share(kinds[0]) - 0.5).abs() < 0.08,
            "faithful share {kinds:?}"
        );
        assert!(
            (share(kinds[1]) - 0.25).abs() < 0.07,
            "altered share {kinds:?}"
        );
        assert!(
            (share(kinds[2]) - 0.25).abs() < 0.07,
            "truncated share {kinds:?}"
        );
    }
}

#[test]
fn oversampled_tasks_fill_their_share_of_the_batches() {
    let mut o = tiny(0.5);
    o.train_items = 60;
    o.batch = 1;
    o.oversample.insert("count".into(), 3);
    let t = Trainer::new(o, &Device::Cpu).unwrap();
    let is_count = |k: usize| t.items[k].facts.task.name() == "count";
    let counting = (0..t.items.len()).filter(|&k| is_count(k)).count();
    assert!(counting >= 5, "{counting} counting items");
    // One epoch shows every item once and each counting item three times.
    let epoch = t.items.len() + 2 * counting;
    let mut seen = std::collections::HashMap::new();
    for step in 0..epoch {
        for (k, _) in t.examples_for_step(step).unwrap() {
            *seen.entry(k).or_insert(0usize) += 1;
        }
    }
    assert_eq!(seen.len(), t.items.len(), "every item appears");
    for (k, n) in seen {
        assert_eq!(n, if is_count(k) { 3 } else { 1 }, "item {k}");
    }
}

/// Last-position logits of a fixed prompt.
fn prompt_logits(m: &Qwen2Audio, tok: &Tokenizer) -> Vec<f32> {
    let ids = tok
        .encode("<|im_start|>user\nHow many beeps do you hear?<|im_end|>")
        .unwrap();
    m.forward_ids_last(&ids, &mut KvCache::new())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

#[test]
fn fine_tune_starts_from_the_init_folder() {
    // train-demo's own names: a saved run, then a fresh run with --init and another seed.
    let mut a = Trainer::new(tiny(1.0), &Device::Cpu).unwrap();
    a.train_step().unwrap();
    let dir = tempfile::tempdir().unwrap();
    a.save_model(dir.path()).unwrap();
    let mut o = tiny(0.0);
    o.seed = 99;
    o.init = Some(dir.path().to_path_buf());
    let b = Trainer::new(o, &Device::Cpu).unwrap();
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(a.tok.vocab_size(), b.tok.vocab_size());

    // transformers 5's names (the shipped models, written by tools/train_demo.py).
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/models/demo-posthoc");
    let mut o = TrainOptions::new(0.0);
    o.train_items = 12;
    o.dev_per_task = 1;
    o.init = Some(shipped.clone());
    let t = Trainer::new(o, &Device::Cpu).unwrap();
    let loaded = Qwen2Audio::load(&shipped, &Device::Cpu, DType::F32).unwrap();
    let tok = Tokenizer::load(&shipped).unwrap();
    assert_eq!(
        prompt_logits(&t.inference_model().unwrap(), &tok),
        prompt_logits(&loaded, &tok)
    );

    // A folder of another size is refused, naming the tensor.
    let mut o = tiny(0.0);
    o.init = Some(shipped);
    let err = Trainer::new(o, &Device::Cpu).err().unwrap().to_string();
    assert!(
        err.contains("another size") && err.contains("model.safetensors"),
        "{err}"
    );
}
