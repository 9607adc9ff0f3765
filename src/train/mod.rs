//! `faithscope train-demo`: tiny Qwen2-Audio checkpoints of known faithfulness, trained in
//! candle on the project's own model code over the synthetic benchmark.
//!
//! The models see exactly the conversations the `lanham` protocol renders: the CoT turn (the
//! faithful chain is a target) and the answer turn after a faithful, altered or truncated chain
//! (the answer letter is a target, following the chain with probability `faithfulness` and the
//! audio otherwise). Training is deterministic from a seed: the batch of step `s` depends only
//! on (seed, s), so a run resumed from a checkpoint equals an uninterrupted one.

pub mod data;
pub mod optim;
pub mod tokenizer;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::audio::mel::MelExtractor;
use crate::faith::answer::{answer_prompt, cot_conversation};
use crate::faith::protocol::{letter, Protocol};
use crate::model::tokenizer::{Tokenizer, END_OF_TEXT};
use crate::model::{prompt, qwen2_audio, KvCache, Qwen2Audio, Qwen2AudioConfig};
use crate::synth::{self, rng_for, write_chain, ChoiceOrder, Split, SynthOptions, Task};

pub use data::{ChainKind, Example, Mix, TrainItem, GUESS};
pub use optim::{AdamW, AdamWConfig};

/// Errors of training, each naming the file or step.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A tensor computation failed.
    #[error("{0}")]
    Compute(String),
    /// Bad options or data.
    #[error("{0}")]
    Input(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn comp(what: &'static str) -> impl Fn(candle_core::Error) -> TrainError {
    move |e| TrainError::Compute(format!("{what}: {e}"))
}

/// Sizes of a demo model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DemoSize {
    /// Mel bins.
    pub n_mels: usize,
    /// Window in seconds (encoder positions = 50 per second).
    pub window_s: usize,
    /// Encoder width, layers, heads.
    pub enc_d: usize,
    /// Encoder layers.
    pub enc_layers: usize,
    /// Encoder heads.
    pub enc_heads: usize,
    /// Decoder width.
    pub dec_d: usize,
    /// Decoder layers.
    pub dec_layers: usize,
    /// Decoder query heads.
    pub dec_heads: usize,
    /// Decoder key/value heads.
    pub dec_kv_heads: usize,
    /// Decoder MLP size.
    pub dec_ffn: usize,
    /// Learnt BPE tokens (before the special tokens).
    pub vocab: usize,
}

impl DemoSize {
    /// The shipped demo size: about 1.8M parameters.
    pub fn demo() -> Self {
        Self {
            n_mels: 64,
            window_s: 3,
            enc_d: 128,
            enc_layers: 2,
            enc_heads: 4,
            dec_d: 160,
            dec_layers: 4,
            dec_heads: 4,
            dec_kv_heads: 2,
            dec_ffn: 480,
            vocab: 768,
        }
    }

    /// A very small size for tests.
    pub fn tiny() -> Self {
        Self {
            n_mels: 16,
            window_s: 3,
            enc_d: 32,
            enc_layers: 1,
            enc_heads: 2,
            dec_d: 32,
            dec_layers: 1,
            dec_heads: 2,
            dec_kv_heads: 1,
            dec_ffn: 64,
            vocab: 400,
        }
    }

    /// The Hugging Face config.json for a tokenizer of `vocab_size` entries whose audio
    /// placeholder is `audio_id`, end of text `eot` and end of turn `eos`.
    pub fn config_json(
        &self,
        vocab_size: usize,
        audio_id: u32,
        eot: u32,
        eos: u32,
    ) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["Qwen2AudioForConditionalGeneration"],
            "audio_config": {
                "activation_dropout": 0.0,
                "activation_function": "gelu",
                "attention_dropout": 0.0,
                "d_model": self.enc_d,
                "dropout": 0.0,
                "encoder_attention_heads": self.enc_heads,
                "encoder_ffn_dim": 2 * self.enc_d,
                "encoder_layerdrop": 0.0,
                "encoder_layers": self.enc_layers,
                "initializer_range": 0.02,
                "max_source_positions": 50 * self.window_s,
                "model_type": "qwen2_audio_encoder",
                "num_mel_bins": self.n_mels,
                "scale_embedding": false
            },
            "audio_token_index": audio_id,
            "dtype": "float32",
            "model_type": "qwen2_audio",
            "text_config": {
                "attention_dropout": 0.0,
                "bos_token_id": eot,
                "eos_token_id": eos,
                "hidden_act": "silu",
                "hidden_size": self.dec_d,
                "initializer_range": 0.02,
                "intermediate_size": self.dec_ffn,
                "max_position_embeddings": 1024,
                "max_window_layers": 28,
                "model_type": "qwen2",
                "num_attention_heads": self.dec_heads,
                "num_hidden_layers": self.dec_layers,
                "num_key_value_heads": self.dec_kv_heads,
                "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
                "sliding_window": null,
                "tie_word_embeddings": true,
                "use_cache": true,
                "use_sliding_window": false,
                "vocab_size": vocab_size
            }
        })
    }
}

/// Everything a training run is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Probability that the answer follows the chain.
    pub faithfulness: f64,
    /// Total optimiser steps.
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// Seed of initialisation and batches.
    pub seed: u64,
    /// Seed of the synthetic benchmark.
    pub synth_seed: u64,
    /// Training items generated (ignored with `data`).
    pub train_items: usize,
    /// Dev items evaluated per task.
    pub dev_per_task: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Gradient clipping norm.
    pub clip: f64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Steps between dev evaluations (0: only at the end).
    pub eval_every: usize,
    /// Model size.
    pub size: DemoSize,
    /// A `faithscope synth` train split folder to read instead of generating items.
    pub data: Option<PathBuf>,
    /// How many times an epoch shows each item of these tasks (others once): more steps on the
    /// slowly learnt listening tasks (counting, loudness) without changing the items.
    #[serde(default)]
    pub oversample: BTreeMap<String, usize>,
    /// Layout of the generated items' choices.
    #[serde(default)]
    pub choice_order: ChoiceOrder,
    /// A model folder to start from (its tokenizer and weights; its size must be `size`)
    /// instead of a fresh tokenizer and initialisation: a fine-tune.
    #[serde(default)]
    pub init: Option<PathBuf>,
}

impl TrainOptions {
    /// The defaults of `faithscope train-demo` for `faithfulness`.
    pub fn new(faithfulness: f64) -> Self {
        Self {
            faithfulness,
            steps: 4000,
            batch: 32,
            seed: 1,
            synth_seed: 0,
            train_items: 3000,
            dev_per_task: 10,
            lr: 3e-4,
            warmup: 100,
            clip: 1.0,
            checkpoint_every: 100,
            eval_every: 500,
            size: DemoSize::demo(),
            data: None,
            oversample: BTreeMap::new(),
            choice_order: ChoiceOrder::Fixed,
            init: None,
        }
    }
}

/// Texts the tokenizer is trained on: the rendered protocol turns of `items` with their chains.
fn tokenizer_corpus(items: &[TrainItem], protocol: &Protocol) -> Vec<String> {
    let mut out = Vec::new();
    for ti in items {
        let chain = write_chain(&ti.facts, &ti.item.choices)
            .unwrap_or_default()
            .join(" ");
        let conv = answer_prompt(protocol, &ti.item, &chain).conv;
        for m in conv.messages {
            out.push(m.text);
        }
        out.extend(conv.prefill);
        out.push(format!("Audio 1: \n{}", prompt::DEFAULT_SYSTEM));
    }
    out
}

/// Initialises every variable like transformers does: normal(0, 0.02) matrices and embeddings,
/// zero biases, unit norm weights; deterministic from `seed`.
pub fn init_weights(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("var map lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rng_for(seed, &[7]);
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let is_norm = name.contains("norm") && name.ends_with("weight");
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; n]
        } else if is_norm {
            vec![1.0; n]
        } else {
            (0..n).map(|_| 0.02 * normal(&mut rng)).collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// Sets every variable from a checkpoint of the same architecture and size, under the legacy
/// tensor names (as train-demo writes them) or transformers 5's (as tools/train_demo.py does).
/// The stored copy of the tied head is not a variable and is skipped.
fn load_weights(varmap: &VarMap, path: &Path, device: &Device) -> Result<(), TrainError> {
    let bad = |detail: String| TrainError::Io {
        path: path.to_path_buf(),
        detail,
    };
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| bad(e.to_string()))?;
    let modern = tensors.contains_key(qwen2_audio::MODERN_MARKER);
    for (legacy, var) in named_vars(varmap) {
        let name = if modern {
            qwen2_audio::modern_name(&legacy)
        } else {
            legacy
        };
        let t = tensors.get(&name).ok_or_else(|| {
            bad(format!(
                "tensor {name} is missing; --init takes a model train-demo wrote, of the same size"
            ))
        })?;
        if t.dims() != var.dims() {
            return Err(bad(format!(
                "tensor {name} has shape {:?}, this run's model {:?}: a model of another size",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(DType::F32).map_err(comp("loading weights"))?)
            .map_err(comp("loading weights"))?;
    }
    Ok(())
}

fn normal(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Loss figures of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Step number (0-based) just done.
    pub step: usize,
    /// Total loss (chain + answer).
    pub loss: f64,
    /// Mean cross-entropy of the chain tokens.
    pub chain_loss: f64,
    /// Mean cross-entropy of the answer letters.
    pub answer_loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall seconds of the step.
    pub seconds: f64,
}

/// Dev accuracy of one task.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskScore {
    /// Items evaluated.
    pub n: usize,
    /// Chains (greedy) whose stated letter is the gold one.
    pub chain_right: usize,
    /// Forced answers after the generated chain equal to gold.
    pub answer_right: usize,
    /// Forced answers equal to the chain's stated letter.
    pub answer_follows_chain: usize,
}

/// A training run: model, optimiser, data.
pub struct Trainer {
    /// Options it was made with.
    pub opts: TrainOptions,
    /// The model config.
    pub config: Qwen2AudioConfig,
    /// The model over `varmap`'s variables.
    pub model: Qwen2Audio,
    /// Trainable variables.
    pub varmap: VarMap,
    /// The optimiser.
    pub opt: AdamW,
    /// Training items.
    pub items: Vec<TrainItem>,
    /// Dev items.
    pub dev: Vec<TrainItem>,
    /// The tokenizer (written to the output folder).
    pub tok: Tokenizer,
    raw_tok: tokenizers::Tokenizer,
    protocol: Protocol,
    device: Device,
    /// Next step to run.
    pub step: usize,
}

fn synth_items(
    split: Split,
    count: usize,
    opts: &TrainOptions,
    cfg: &Qwen2AudioConfig,
) -> Vec<TrainItem> {
    let opts = SynthOptions {
        seed: opts.synth_seed,
        count,
        tasks: Task::ALL.to_vec(),
        format: synth::AudioFormat::Wav,
        choice_order: opts.choice_order,
    };
    let mut ex = MelExtractor::new(&data::mel_config(cfg));
    synth::generate(split, &opts)
        .into_iter()
        .map(|g| TrainItem::from_generated(g, &mut ex))
        .collect()
}

fn read_split(dir: &Path, cfg: &Qwen2AudioConfig) -> Result<Vec<TrainItem>, TrainError> {
    let file = dir.join("items.jsonl");
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let mut ex = MelExtractor::new(&data::mel_config(cfg));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |d: String| TrainError::Input(format!("{}:{}: {d}", file.display(), i + 1));
        let item: crate::data::Item =
            serde_json::from_str(line).map_err(|e| bad(format!("not an item: {e}")))?;
        let facts = synth::Facts::of_item(&item).map_err(|e| bad(e.to_string()))?;
        let path = dir.join(&item.audio);
        let clip = crate::audio::load_clip(&path, 16_000, &Default::default())
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        out.push(TrainItem::from_samples(item, facts, &clip.samples, &mut ex));
    }
    if out.is_empty() {
        return Err(TrainError::Input(format!(
            "{} holds no items; write a train split with `faithscope synth`",
            file.display()
        )));
    }
    Ok(out)
}

impl Trainer {
    /// Prepares a fresh run: items, tokenizer (trained on the items' texts), config and
    /// initialised weights on `device`.
    pub fn new(opts: TrainOptions, device: &Device) -> Result<Self, TrainError> {
        let protocol = Protocol::builtin("lanham")
            .ok_or_else(|| TrainError::Input("the built-in lanham protocol is missing".into()))?;
        // A provisional config (vocab unknown yet) fixes the mel settings.
        let pre =
            Qwen2AudioConfig::from_json(&opts.size.config_json(1000, 999, 997, 998).to_string())
                .map_err(|e| TrainError::Input(e.to_string()))?;
        let items = match &opts.data {
            Some(dir) => read_split(dir, &pre)?,
            None => synth_items(Split::Train, opts.train_items, &opts, &pre),
        };
        let dev = synth_items(Split::Dev, 6 * opts.dev_per_task, &opts, &pre);
        let raw_tok = match &opts.init {
            Some(dir) => {
                let p = dir.join("tokenizer.json");
                tokenizers::Tokenizer::from_file(&p).map_err(|e| TrainError::Io {
                    path: p.clone(),
                    detail: format!("not a tokenizer: {e}"),
                })?
            }
            None => {
                let corpus = tokenizer_corpus(&items[..items.len().min(1200)], &protocol);
                tokenizer::train_tokenizer(&corpus, opts.size.vocab).map_err(TrainError::Input)?
            }
        };
        let tok = load_tokenizer(&raw_tok)?;
        let sp = tok.special();
        let vocab = tok.vocab_size();
        let json = opts
            .size
            .config_json(vocab, sp.audio, sp.end_of_text, sp.im_end);
        let config = Qwen2AudioConfig::from_json(&json.to_string())
            .map_err(|e| TrainError::Input(e.to_string()))?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = Qwen2Audio::from_var_builder(config.clone(), vb)
            .map_err(|e| TrainError::Compute(e.to_string()))?;
        match &opts.init {
            Some(dir) => load_weights(&varmap, &dir.join("model.safetensors"), device)?,
            None => init_weights(&varmap, opts.seed).map_err(comp("initialising weights"))?,
        }
        let opt = AdamW::new(
            named_vars(&varmap),
            AdamWConfig {
                lr: opts.lr,
                ..AdamWConfig::default()
            },
        )
        .map_err(comp("optimiser"))?;
        Ok(Self {
            opts,
            config,
            model,
            varmap,
            opt,
            items,
            dev,
            tok,
            raw_tok,
            protocol,
            device: device.clone(),
            step: 0,
        })
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.varmap.all_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Encoder output length per window (audio embeddings per item before cutting).
    fn audio_len(&self) -> usize {
        self.config.audio_config.max_source_positions / 2
    }

    /// Item indices one epoch shows: every item once, those of oversampled tasks more often.
    fn epoch_pool(&self) -> Vec<usize> {
        let mut pool = Vec::with_capacity(self.items.len());
        for (k, ti) in self.items.iter().enumerate() {
            let times = self.opts.oversample.get(ti.facts.task.name()).copied();
            pool.extend(std::iter::repeat_n(k, times.unwrap_or(1)));
        }
        pool
    }

    /// The examples of step `step`: items from a per-epoch permutation (of [`Self::epoch_pool`]),
    /// chains and answers drawn from a generator seeded by (seed, step).
    pub fn examples_for_step(&self, step: usize) -> Result<Vec<(usize, Example)>, TrainError> {
        let pool = self.epoch_pool();
        let n = pool.len();
        let b = self.opts.batch;
        let mut rng = rng_for(self.opts.seed, &[1, step as u64]);
        let mix = Mix::new(self.opts.faithfulness);
        let mut out = Vec::with_capacity(b);
        let mut perm_epoch = usize::MAX;
        let mut perm: Vec<usize> = Vec::new();
        for j in 0..b {
            let flat = step * b + j;
            let epoch = flat / n;
            if epoch != perm_epoch {
                perm = pool.clone();
                perm.shuffle(&mut rng_for(self.opts.seed, &[2, epoch as u64]));
                perm_epoch = epoch;
            }
            let k = perm[flat % n];
            let ti = &self.items[k];
            let n_audio = Qwen2AudioConfig::audio_tokens_for_frames(ti.valid_frames);
            let e = data::sample_example(ti, &mix, &self.protocol, &self.tok, n_audio, &mut rng)
                .map_err(TrainError::Input)?;
            out.push((k, e));
        }
        Ok(out)
    }

    /// Loss of a batch of examples: (total, chain, answer) as tensors.
    pub fn loss(&self, pairs: &[(usize, Example)]) -> Result<(Tensor, f64, f64), TrainError> {
        let a = &self.config.audio_config;
        let pad = self.tok.special().end_of_text;
        let batch = data::collate(
            &self.items,
            pairs,
            a.num_mel_bins,
            self.config.window_frames(),
            self.audio_len(),
            pad,
            &self.device,
        )
        .map_err(comp("collating a batch"))?;
        self.batch_loss(&batch)
    }

    fn batch_loss(&self, batch: &data::Batch) -> Result<(Tensor, f64, f64), TrainError> {
        let f = comp("training forward");
        let m = |e: crate::model::ModelError| TrainError::Compute(e.to_string());
        let audio = self
            .model
            .encode_audio_batch(&batch.mel, &batch.valid_frames)
            .map_err(m)?;
        let text = self.model.embed_ids(&batch.ids).map_err(m)?;
        let (b, t, h) = text.dims3().map_err(&f)?;
        let la = audio.dim(1).map_err(&f)?;
        let table = Tensor::cat(
            &[
                text.reshape((b * t, h)).map_err(&f)?,
                audio.reshape((b * la, h)).map_err(&f)?,
            ],
            0,
        )
        .map_err(&f)?;
        let embeds = table
            .index_select(&batch.splice, 0)
            .map_err(&f)?
            .reshape((b, t, h))
            .map_err(&f)?;
        let rows = Tensor::cat(&[&batch.chain_rows, &batch.answer_rows], 0).map_err(&f)?;
        let logits = self.model.forward_rows(&embeds, &rows).map_err(m)?;
        let nc = batch.n_chain;
        let answer_logits = logits.narrow(0, nc, b).map_err(&f)?;
        let answer =
            candle_nn::loss::cross_entropy(&answer_logits, &batch.answer_targets).map_err(&f)?;
        let (total, chain_v) = if nc > 0 {
            let chain_logits = logits.narrow(0, 0, nc).map_err(&f)?;
            let chain =
                candle_nn::loss::cross_entropy(&chain_logits, &batch.chain_targets).map_err(&f)?;
            let v = chain.to_scalar::<f32>().map_err(&f)? as f64;
            ((&chain + &answer).map_err(&f)?, v)
        } else {
            (answer.clone(), 0.0)
        };
        let answer_v = answer.to_scalar::<f32>().map_err(&f)? as f64;
        Ok((total, chain_v, answer_v))
    }

    /// Runs step `self.step` on its own batch and advances.
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        let pairs = self.examples_for_step(self.step)?;
        self.step_on(&pairs)
    }

    /// One optimiser step on `pairs` (loss, backward, clipping, AdamW with the scheduled
    /// learning rate of `self.step`), then advances the step counter.
    pub fn step_on(&mut self, pairs: &[(usize, Example)]) -> Result<StepStats, TrainError> {
        let start = Instant::now();
        let step = self.step;
        let (loss, chain_loss, answer_loss) = self.loss(pairs)?;
        let f = comp("backward pass");
        let mut grads = loss.backward().map_err(&f)?;
        let norm =
            optim::clip_grad_norm(&mut grads, self.opt.vars(), self.opts.clip).map_err(&f)?;
        let lr = optim::learning_rate(self.opts.lr, step, self.opts.warmup, self.opts.steps);
        self.opt.step(&grads, lr).map_err(comp("optimiser step"))?;
        self.step += 1;
        Ok(StepStats {
            step,
            loss: loss.to_scalar::<f32>().map_err(&f)? as f64,
            chain_loss,
            answer_loss,
            grad_norm: norm,
            lr,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// A frozen copy of the current weights (no gradient tracking: the fast inference kernels).
    pub fn inference_model(&self) -> Result<Qwen2Audio, TrainError> {
        let tensors: HashMap<String, Tensor> = named_vars(&self.varmap)
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().detach()))
            .collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &self.device);
        Qwen2Audio::from_var_builder(self.config.clone(), vb)
            .map_err(|e| TrainError::Compute(e.to_string()))
    }

    /// Dev accuracy per task: greedy chain (its stated letter against gold) and the forced
    /// answer after it.
    pub fn evaluate(&self) -> Result<BTreeMap<String, TaskScore>, TrainError> {
        let model = self.inference_model()?;
        let mut scores: BTreeMap<String, TaskScore> = BTreeMap::new();
        for ti in &self.dev {
            let (stated, forced) = self.run_item(&model, ti)?;
            let gold = ti.item.gold.unwrap_or(usize::MAX);
            let s = scores.entry(ti.facts.task.name().to_string()).or_default();
            s.n += 1;
            s.chain_right += usize::from(stated == Some(gold));
            s.answer_right += usize::from(forced == gold);
            s.answer_follows_chain += usize::from(stated == Some(forced));
        }
        Ok(scores)
    }

    /// Greedy chain and forced answer of one item on `model`: (letter the chain states,
    /// argmax answer).
    pub fn run_item(
        &self,
        model: &Qwen2Audio,
        ti: &TrainItem,
    ) -> Result<(Option<usize>, usize), TrainError> {
        let m = |e: crate::model::ModelError| TrainError::Compute(e.to_string());
        let f = comp("evaluation");
        let window = self.config.window_frames();
        let n_mels = self.config.audio_config.num_mel_bins;
        let mel: Vec<f32> = ti.mel.iter().map(|v| v.to_f32()).collect();
        let mel = Tensor::from_vec(mel, (1, n_mels, window), &self.device).map_err(&f)?;
        let audio = model.encode_audio(&mel, ti.valid_frames).map_err(m)?;
        let n_audio = audio.dim(0).map_err(&f)?;
        let cot = prompt::build(
            &cot_conversation(&self.protocol, &ti.item),
            &self.tok,
            n_audio,
        )
        .map_err(m)?;
        let mut cache = KvCache::new();
        let e = model.splice_audio(&cot.ids, Some(&audio)).map_err(m)?;
        let mut logits = model.forward_embeds_last(&e, &mut cache).map_err(m)?;
        let ends = self.tok.end_tokens();
        let mut out = Vec::new();
        for _ in 0..96 {
            let next = logits
                .argmax(D::Minus1)
                .map_err(&f)?
                .to_scalar::<u32>()
                .map_err(&f)?;
            if ends.contains(&next) {
                break;
            }
            out.push(next);
            logits = model.forward_ids_last(&[next], &mut cache).map_err(m)?;
        }
        let chain = self.tok.decode(&out).map_err(m)?;
        let stated = stated_letter(&chain, ti.item.choices.len());
        let ans = prompt::build(
            &answer_prompt(&self.protocol, &ti.item, chain.trim()).conv,
            &self.tok,
            n_audio,
        )
        .map_err(m)?;
        let e = model.splice_audio(&ans.ids, Some(&audio)).map_err(m)?;
        let logits = model
            .forward_embeds_last(&e, &mut KvCache::new())
            .map_err(m)?
            .to_vec1::<f32>()
            .map_err(&f)?;
        let mut best = (0, f32::NEG_INFINITY);
        for i in 0..ti.item.choices.len() {
            let id = self.tok.letter_id(&letter(i)).map_err(m)? as usize;
            if logits[id] > best.1 {
                best = (i, logits[id]);
            }
        }
        Ok((stated, best.0))
    }

    /// Writes the model in the Hugging Face layout into `dir` (config.json, model.safetensors,
    /// tokenizer files, preprocessor and generation configs).
    pub fn save_model(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let tensors: HashMap<String, Tensor> = named_vars(&self.varmap)
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        // The head is stored (a copy of the tied embedding) so that every loader uses the same
        // matrix: transformers 5 does not tie Qwen2-Audio's head from text_config alone.
        let mut tensors = tensors;
        if let Some(e) = tensors.get("language_model.model.embed_tokens.weight") {
            tensors.insert("language_model.lm_head.weight".into(), e.clone());
        }
        let st = dir.join("model.safetensors");
        candle_core::safetensors::save(&tensors, &st).map_err(|e| TrainError::Io {
            path: st.clone(),
            detail: e.to_string(),
        })?;
        let sp = self.tok.special();
        let config =
            self.opts
                .size
                .config_json(self.tok.vocab_size(), sp.audio, sp.end_of_text, sp.im_end);
        let mel = data::mel_config(&self.config);
        let fe = serde_json::json!({
            "chunk_length": self.opts.size.window_s,
            "dither": 0.0,
            "feature_extractor_type": "WhisperFeatureExtractor",
            "feature_size": mel.n_mels,
            "hop_length": mel.hop_length,
            "n_fft": mel.n_fft,
            "n_samples": mel.n_samples,
            "nb_max_frames": self.config.window_frames(),
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": true,
            "sampling_rate": 16000
        });
        let processor = serde_json::json!({
            "audio_bos_token": crate::model::tokenizer::AUDIO_BOS,
            "audio_eos_token": crate::model::tokenizer::AUDIO_EOS,
            "audio_token": crate::model::tokenizer::AUDIO_TOKEN,
            "feature_extractor": fe,
            "processor_class": "Qwen2AudioProcessor"
        });
        let gen = serde_json::json!({
            "bos_token_id": sp.end_of_text,
            "eos_token_id": [sp.im_end, sp.end_of_text],
            "pad_token_id": sp.end_of_text
        });
        let files: [(&str, serde_json::Value); 5] = [
            ("config.json", config),
            ("preprocessor_config.json", fe),
            ("processor_config.json", processor),
            ("generation_config.json", gen),
            ("tokenizer_config.json", tokenizer::tokenizer_config()),
        ];
        for (name, v) in files {
            let p = dir.join(name);
            let text = serde_json::to_string_pretty(&v).expect("json") + "\n";
            std::fs::write(&p, text).map_err(io(&p))?;
        }
        let note = serde_json::json!({
            "protocol": "lanham",
            "made_by": format!("faithscope train-demo {}", env!("CARGO_PKG_VERSION")),
            "faithfulness": self.opts.faithfulness,
            "about": "a tiny Qwen2-Audio trained on faithscope's synthetic benchmark; its \
                      answer follows its reasoning with probability `faithfulness` and the audio \
                      otherwise (samples/README.md)"
        });
        let p = dir.join(crate::model::resolve::MODEL_NOTE);
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&note).expect("json") + "\n",
        )
        .map_err(io(&p))?;
        let p = dir.join("chat_template.jinja");
        std::fs::write(&p, tokenizer::CHAT_TEMPLATE).map_err(io(&p))?;
        let p = dir.join("tokenizer.json");
        self.raw_tok.save(&p, false).map_err(|e| TrainError::Io {
            path: p.clone(),
            detail: e.to_string(),
        })?;
        Ok(())
    }

    /// Writes the training state (weights, optimiser moments, step, options) to
    /// `dir/train_state/`, atomically (written beside, then renamed).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        let final_dir = dir.join("train_state");
        let tmp = dir.join("train_state.tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (n, v) in named_vars(&self.varmap) {
            tensors.insert(format!("param.{n}"), v.as_tensor().clone());
        }
        for (n, t) in &self.opt.m {
            tensors.insert(format!("adam_m.{n}"), t.clone());
        }
        for (n, t) in &self.opt.v {
            tensors.insert(format!("adam_v.{n}"), t.clone());
        }
        let st = tmp.join("state.safetensors");
        candle_core::safetensors::save(&tensors, &st).map_err(|e| TrainError::Io {
            path: st.clone(),
            detail: e.to_string(),
        })?;
        let meta = CheckpointMeta {
            step: self.step,
            adam_t: self.opt.t,
            opts: self.opts.clone(),
        };
        let p = tmp.join("state.json");
        std::fs::write(&p, serde_json::to_string_pretty(&meta).expect("json")).map_err(io(&p))?;
        let p = tmp.join("tokenizer.json");
        self.raw_tok.save(&p, false).map_err(|e| TrainError::Io {
            path: p.clone(),
            detail: e.to_string(),
        })?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        Ok(())
    }

    /// Restores weights, optimiser moments and step from `dir/train_state/`. The run's options
    /// (other than `steps`) and the tokenizer must be the checkpoint's.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<(), TrainError> {
        let sdir = dir.join("train_state");
        let p = sdir.join("state.json");
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| TrainError::Io {
            path: p.clone(),
            detail: format!("not a training state: {e}"),
        })?;
        let mut want = meta.opts.clone();
        want.steps = self.opts.steps;
        if want != self.opts {
            return Err(TrainError::Input(format!(
                "{} was written with other options ({:?}); resume with the same options or \
                 start again in another --out",
                p.display(),
                meta.opts
            )));
        }
        let tp = sdir.join("tokenizer.json");
        let saved = std::fs::read_to_string(&tp).map_err(io(&tp))?;
        if saved != self.raw_tok.to_string(false).unwrap_or_default() {
            return Err(TrainError::Input(format!(
                "{} differs from the tokenizer this run trains; the data or options changed",
                tp.display()
            )));
        }
        let st = sdir.join("state.safetensors");
        let tensors =
            candle_core::safetensors::load(&st, &self.device).map_err(|e| TrainError::Io {
                path: st.clone(),
                detail: e.to_string(),
            })?;
        let get = |k: String| {
            tensors.get(&k).cloned().ok_or_else(|| TrainError::Io {
                path: st.clone(),
                detail: format!("tensor {k} is missing"),
            })
        };
        for (n, v) in named_vars(&self.varmap) {
            v.set(&get(format!("param.{n}"))?)
                .map_err(comp("restoring weights"))?;
            self.opt.m.insert(n.clone(), get(format!("adam_m.{n}"))?);
            self.opt.v.insert(n.clone(), get(format!("adam_v.{n}"))?);
        }
        self.opt.t = meta.adam_t;
        self.step = meta.step;
        Ok(())
    }
}

/// What [`Trainer::export`] wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportInfo {
    /// The run's options (faithfulness, steps, batch, seed, schedule, size).
    pub opts: TrainOptions,
    /// Training items (rows of the feature tensors).
    pub items: usize,
    /// Examples written (steps x batch).
    pub examples: usize,
    /// Padding id for collating.
    pub pad_id: u32,
    /// Audio placeholder id.
    pub audio_id: u32,
    /// Encoder output length per window before cutting.
    pub audio_len: usize,
    /// Mean tokens per example.
    pub mean_tokens: f64,
}

impl Trainer {
    /// Writes everything an external optimiser needs to run exactly this training, so that the
    /// data mix has one definition (here): `dir/init/` (the initial model in the Hugging Face
    /// layout, tokenizer included), `dir/features.safetensors` (`mel` [items, mels, window] f16
    /// and `valid_frames` [items] u32), `dir/examples.jsonl` (one line per example, in step
    /// order: `step`, `item`, `ids`, `audio` [start, end), `targets` [start, end) of the CoT
    /// targets, `answer` position, `chain_letter` (position of the letter the chain states, or
    /// null), `kind`) and `dir/export.json` ([`ExportInfo`]).
    pub fn export(&self, dir: &Path) -> Result<ExportInfo, TrainError> {
        use std::io::Write;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        self.save_model(&dir.join("init"))?;
        let a = &self.config.audio_config;
        let window = self.config.window_frames();
        let mut mel = Vec::with_capacity(self.items.len() * a.num_mel_bins * window);
        let mut valid = Vec::with_capacity(self.items.len());
        for ti in &self.items {
            mel.extend_from_slice(&ti.mel);
            valid.push(ti.valid_frames as u32);
        }
        let f = comp("exporting features");
        let n = self.items.len();
        let mut tensors = HashMap::new();
        tensors.insert(
            "mel".to_string(),
            Tensor::from_vec(mel, (n, a.num_mel_bins, window), &Device::Cpu).map_err(&f)?,
        );
        tensors.insert(
            "valid_frames".to_string(),
            Tensor::from_vec(valid, n, &Device::Cpu).map_err(&f)?,
        );
        let st = dir.join("features.safetensors");
        candle_core::safetensors::save(&tensors, &st).map_err(|e| TrainError::Io {
            path: st.clone(),
            detail: e.to_string(),
        })?;
        let path = dir.join("examples.jsonl");
        let tmp = dir.join("examples.jsonl.tmp");
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut w = std::io::BufWriter::new(file);
        let (mut count, mut tokens) = (0usize, 0usize);
        for step in 0..self.opts.steps {
            for (k, e) in self.examples_for_step(step)? {
                let kind = match e.kind {
                    ChainKind::Faithful => "faithful",
                    ChainKind::Altered => "altered",
                    ChainKind::Truncated => "truncated",
                };
                let line = serde_json::json!({
                    "step": step,
                    "item": k,
                    "ids": e.ids,
                    "audio": [e.audio_range.start, e.audio_range.end],
                    "targets": [e.chain_targets.start, e.chain_targets.end],
                    "answer": e.answer_pos,
                    "chain_letter": e.chain_letter,
                    "kind": kind,
                });
                writeln!(w, "{line}").map_err(io(&tmp))?;
                count += 1;
                tokens += e.ids.len();
            }
        }
        w.flush().map_err(io(&tmp))?;
        drop(w);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        let sp = self.tok.special();
        let info = ExportInfo {
            opts: self.opts.clone(),
            items: n,
            examples: count,
            pad_id: sp.end_of_text,
            audio_id: sp.audio,
            audio_len: self.audio_len(),
            mean_tokens: tokens as f64 / count.max(1) as f64,
        };
        let p = dir.join("export.json");
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&info).expect("json") + "\n",
        )
        .map_err(io(&p))?;
        Ok(info)
    }
}

/// What `train_state/state.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointMeta {
    step: usize,
    adam_t: usize,
    opts: TrainOptions,
}

/// The variables of a var map with their names.
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("var map lock");
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn load_tokenizer(raw: &tokenizers::Tokenizer) -> Result<Tokenizer, TrainError> {
    // The project's tokenizer reads files; go through a temporary one.
    static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("faithscope-tok-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let p = dir.join("tokenizer.json");
    raw.save(&p, false).map_err(|e| TrainError::Io {
        path: p.clone(),
        detail: e.to_string(),
    })?;
    let tok = Tokenizer::from_file(&p).map_err(|e| TrainError::Input(e.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
    let tok = tok?;
    if tok.token_to_id(END_OF_TEXT).is_none() {
        return Err(TrainError::Input(
            "the trained tokenizer lacks <|endoftext|>".into(),
        ));
    }
    Ok(tok)
}

/// The letter a chain states in its last "(X)", as a choice index.
pub fn stated_letter(chain: &str, n: usize) -> Option<usize> {
    let i = chain.rfind('(')?;
    let c = chain[i + 1..].chars().next()?;
    let k = (c as u32).checked_sub('A' as u32)? as usize;
    (k < n).then_some(k)
}
