//! The candle backend behind [`Reasoner`] for every architecture here (Qwen2-Audio, Audio
//! Flamingo 3, the Qwen2.5-Omni thinker): prompts from the checkpoint's own chat template,
//! stateless calls, automatic reuse of the longest cached prefix, per-clip audio-embedding
//! cache, streaming, stop handling, and choice-letter probabilities in one forward step.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use super::adapter::{resolve_adapter, Adapter};
use super::chat_template::ChatTemplate;
use super::config::{Arch, Qwen2AudioConfig};
use super::prefix_cache::{ClipCache, ClipKey, PrefixCache, PrefixState};
use super::prompt::{self, Prompt};
use super::quant_cache::QuantCache;
use super::qwen2_audio::Checkpoint;
use super::qwen2_audio::{KvCache, Quant, Quantizer, Qwen2Audio};
use super::sampling::{log_softmax, Flow, Sampler, TextEmitter};
use super::tokenizer::{DecodeStream, Tokenizer};
use super::{
    ChoiceProbs, Conversation, GenParams, Generation, ModelError, ModelStats, Reasoner, StopReason,
};
use crate::audio::{self, DecodeOptions, MelConfig};

/// Sizes of the backend's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// Most prefix states kept (0 disables prefix reuse).
    pub prefix_entries: usize,
    /// Most bytes of keys and values kept over all prefix states (bounds memory; converted to
    /// positions from the model's shape and dtype).
    pub prefix_bytes: usize,
    /// Most clips whose audio embeddings are kept (0 disables the clip cache).
    pub clips: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            prefix_entries: 32,
            prefix_bytes: 4 << 30,
            clips: 16,
        }
    }
}

/// How a model folder is loaded beyond device and dtype.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Cache sizes.
    pub caches: CacheOptions,
    /// A LoRA adapter merged at load: a subfolder of the model (`think`) or a path.
    pub adapter: Option<String>,
    /// Quantisation of the linear weights.
    pub quant: Quant,
    /// Where quantised weights are cached between loads (`None`: not cached); the command line
    /// gives [`quant_cache::default_dir`](super::quant_cache::default_dir).
    pub quant_cache: Option<PathBuf>,
}

impl CacheOptions {
    /// No caching at all: every call recomputes everything (the baseline for benchmarks).
    pub fn disabled() -> Self {
        Self {
            prefix_entries: 0,
            prefix_bytes: 0,
            clips: 0,
        }
    }
}

impl PrefixState for KvCache {
    fn positions(&self) -> usize {
        self.len()
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

/// A clip's projected audio frames, `[n, hidden]`.
#[derive(Clone)]
struct AudioEmbeds {
    frames: Tensor,
}

/// A conversation made ready for the decoder.
struct Prepared {
    prompt: Prompt,
    clip: Option<ClipKey>,
    audio: Option<AudioEmbeds>,
}

/// How a clip becomes feature windows, per architecture (the reference processors).
#[derive(Debug, Clone)]
pub struct Featurizer {
    arch: Arch,
    mel: MelConfig,
    /// Longest audio used, in seconds (Audio Flamingo 3: `max_audio_len`; others: the window).
    max_seconds: f64,
}

/// A clip's log-mel feature windows.
pub struct ClipFeatures {
    /// `[windows, n_mels, frames]`, window-major.
    pub data: Vec<f32>,
    /// Number of windows.
    pub windows: usize,
    /// Mel bins.
    pub n_mels: usize,
    /// Frames per window.
    pub frames: usize,
    /// Real-audio frames of each window.
    pub valid: Vec<usize>,
}

impl Featurizer {
    /// The featurizer of a model folder: preprocessor_config.json (Whisper settings) and, for
    /// Audio Flamingo 3, processor_config.json's `max_audio_len` (600 s unless it says).
    pub fn for_model(dir: &Path, arch: Arch) -> Result<Self, ModelError> {
        let mel = read_mel_config(dir)?;
        let window = mel.n_samples as f64 / mel.sampling_rate.max(1) as f64;
        let max_seconds = match arch {
            Arch::AudioFlamingo3 => read_processor_number(dir, "max_audio_len")?.unwrap_or(600.0),
            _ => window,
        };
        Ok(Self {
            arch,
            mel,
            max_seconds,
        })
    }

    /// The Whisper settings.
    pub fn mel(&self) -> &MelConfig {
        &self.mel
    }

    /// Longest audio the model is shown, in seconds.
    pub fn max_seconds(&self) -> f64 {
        self.max_seconds
    }

    /// Features of 16-kHz samples (already cut to [`max_seconds`](Self::max_seconds)): one
    /// padded window for Qwen2-Audio and Omni (the rest cut, as the reference extractor
    /// truncates), consecutive windows each featurized on its own for Audio Flamingo 3.
    pub fn features(&self, samples: &[f32]) -> ClipFeatures {
        let ws = self.mel.n_samples.max(1);
        let pieces: Vec<&[f32]> = match self.arch {
            Arch::AudioFlamingo3 => {
                let most =
                    ((self.max_seconds * self.mel.sampling_rate as f64) as usize / ws).max(1);
                let n = samples.len().div_ceil(ws).clamp(1, most);
                (0..n)
                    .map(|i| {
                        &samples[(i * ws).min(samples.len())..((i + 1) * ws).min(samples.len())]
                    })
                    .collect()
            }
            _ => vec![&samples[..samples.len().min(ws)]],
        };
        let mut ex = audio::MelExtractor::new(&self.mel);
        let mut out = ClipFeatures {
            data: Vec::new(),
            windows: pieces.len(),
            n_mels: self.mel.n_mels,
            frames: 0,
            valid: Vec::new(),
        };
        for p in pieces {
            let f = ex.compute(p);
            out.frames = f.n_frames;
            out.valid.push(f.valid_frames);
            out.data.extend_from_slice(&f.data);
        }
        out
    }
}

/// A model in candle, with prefix and clip caches.
pub struct CandleReasoner {
    name: String,
    model: Qwen2Audio,
    tok: Tokenizer,
    template: ChatTemplate,
    featurizer: Featurizer,
    mel: MelConfig,
    device: Device,
    dtype: DType,
    prefixes: Mutex<PrefixCache<Option<ClipKey>, KvCache>>,
    clips: Mutex<ClipCache<AudioEmbeds>>,
    stats: Mutex<ModelStats>,
}

fn compute_err(what: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Compute(format!("{what}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CandleReasoner {
    /// Loads a Hugging Face model folder (config.json, safetensors, tokenizer.json,
    /// preprocessor_config.json) onto a device in the given dtype.
    pub fn load(
        dir: &Path,
        device: &Device,
        dtype: DType,
        caches: CacheOptions,
    ) -> Result<Self, ModelError> {
        Self::load_with(
            dir,
            device,
            dtype,
            &LoadOptions {
                caches,
                ..LoadOptions::default()
            },
        )
    }

    /// Like [`load`](Self::load), merging the LoRA adapter `opts.adapter` names (a subfolder of
    /// the model such as `think`, or a path) at load and quantising as `opts.quant` says.
    pub fn load_with(
        dir: &Path,
        device: &Device,
        dtype: DType,
        opts: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let caches = opts.caches;
        super::resolve::check_model_dir(dir)?;
        let tok = Tokenizer::load(dir)?;
        let config = Qwen2AudioConfig::from_dir(dir)?;
        let arch = config.arch();
        let featurizer = Featurizer::for_model(dir, arch)?;
        let mel = featurizer.mel().clone();
        let template = match ChatTemplate::from_folder(dir)? {
            Some(t) => t.for_arch(arch),
            None => ChatTemplate::builtin(arch),
        };
        let ckpt = Checkpoint::open(dir)?;
        let quant = if device.is_cpu() {
            plan_quant(&ckpt.shapes(), opts.quant, dtype, available_memory())?
        } else {
            opts.quant
        };
        if arch == Arch::Qwen25Omni {
            let skipped = ckpt
                .names()
                .filter(|n| {
                    let n = n.strip_prefix("thinker.").unwrap_or(n);
                    !n.starts_with("audio_tower.")
                        && !n.starts_with("model.")
                        && !n.starts_with("lm_head.")
                })
                .count();
            if skipped > 0 {
                crate::warn::warn(&format!(
                    "{}: the Qwen2.5-Omni thinker is loaded; {skipped} tensors of the talker, \
                     token2wav and vision tower are not used (faithscope reads audio and writes \
                     text)",
                    dir.display()
                ));
            }
        }
        let adapter = opts
            .adapter
            .as_deref()
            .map(|a| resolve_adapter(dir, a).and_then(|d| Adapter::open(&d)))
            .transpose()?;
        let adapter_name = adapter.as_ref().map(Adapter::name);
        let mut q = Quantizer::new(quant);
        if let (Some(cache_dir), true) = (&opts.quant_cache, quant != Quant::None) {
            let mut files: Vec<PathBuf> = ckpt.files().to_vec();
            files.push(dir.join("config.json"));
            if let Some(a) = &adapter {
                files.extend(super::adapter::files_of(a.dir()));
            }
            let stem = name_of(dir)
                + &adapter_name
                    .as_deref()
                    .map(|a| format!("+{a}"))
                    .unwrap_or_default();
            let cache = QuantCache::open(cache_dir, &stem, &files, quant);
            if !cache.is_hit() {
                crate::warn::warn(&format!(
                    "quantising the linear weights to {} (first load of this checkpoint; the \
                     blocks are kept in {} for the next ones)",
                    quant.name(),
                    cache.path().display()
                ));
            }
            q = q.with_cache(cache);
        }
        let model = Qwen2Audio::load_from(config, ckpt, adapter, q, device, dtype, dir)?;
        let t = &model.config().text_config;
        let per_position =
            (t.num_hidden_layers * 2 * t.kv_heads() * t.head_size() * dtype.size_in_bytes()).max(1);
        let prefix_positions = caches.prefix_bytes / per_position;
        let mut name = name_of(dir);
        if let Some(a) = adapter_name {
            name = format!("{name}+{a}");
        }
        Ok(Self {
            name,
            model,
            tok,
            template,
            featurizer,
            mel,
            device: device.clone(),
            dtype,
            prefixes: Mutex::new(PrefixCache::new(caches.prefix_entries, prefix_positions)),
            clips: Mutex::new(ClipCache::new(caches.clips)),
            stats: Mutex::new(ModelStats::default()),
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tok
    }

    /// The compute device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The weights' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Longest prompt plus generation the model accepts, in tokens.
    pub fn max_context(&self) -> usize {
        self.model.config().max_positions()
    }

    /// Renders and tokenizes a conversation as the model sees it (encoding its clip, or taking
    /// it from the clip cache, to know the audio length).
    pub fn render_prompt(&self, conv: &Conversation) -> Result<Prompt, ModelError> {
        Ok(self.prepare(conv)?.prompt)
    }

    /// The log-softmax over the whole vocabulary of the next token after the conversation, in
    /// one forward step over its uncached suffix (the prefix is kept for later calls).
    pub fn next_token_logprobs(&self, conv: &Conversation) -> Result<Vec<f32>, ModelError> {
        let p = self.prepare(conv)?;
        let (logits, cache) = self.prefill(&p)?;
        let row: Vec<f32> = logits.to_vec1().map_err(compute_err("reading logits"))?;
        self.remember(&p.clip, p.prompt.ids.clone(), cache);
        Ok(log_softmax(&row))
    }

    /// Drops all cached prefixes and clips.
    pub fn clear_caches(&self) {
        lock(&self.prefixes).clear();
        lock(&self.clips).clear();
    }

    fn prepare(&self, conv: &Conversation) -> Result<Prepared, ModelError> {
        let (clip, audio) = match &conv.audio {
            None => (None, None),
            Some(path) => {
                let (key, emb) = self.audio_embeds(path)?;
                (Some(key), Some(emb))
            }
        };
        let n_audio = audio.as_ref().map_or(0, |a| a.frames.dim(0).unwrap_or(0));
        let text = self.template.render(conv)?;
        let audio_id = self.model.config().audio_token_id();
        let prompt = prompt::tokenize(text, conv.audio.is_some(), &self.tok, audio_id, n_audio)?;
        let cfg = self.model.config();
        for (what, id) in [
            ("image", cfg.image_token_index),
            ("video", cfg.video_token_index),
        ] {
            if let Some(id) = id.filter(|id| prompt.ids.contains(id)) {
                return Err(ModelError::Input(format!(
                    "the prompt holds the {what} placeholder {} (id {id}); faithscope runs {} on \
                     audio and text only: remove it from the question or chain",
                    self.tok.id_to_token(id).unwrap_or_default(),
                    cfg.arch().label()
                )));
            }
        }
        let max = self.max_context();
        if prompt.ids.len() > max {
            return Err(ModelError::Input(format!(
                "the prompt is {} tokens, longer than the model's context of {max} tokens; shorten the chain or question",
                prompt.ids.len()
            )));
        }
        Ok(Prepared {
            prompt,
            clip,
            audio,
        })
    }

    fn audio_embeds(&self, path: &Path) -> Result<(ClipKey, AudioEmbeds), ModelError> {
        let key = ClipKey::of(path).map_err(|e| {
            ModelError::Input(format!("cannot read audio file {}: {e}", path.display()))
        })?;
        if let Some(hit) = lock(&self.clips).get(&key) {
            return Ok((key, hit));
        }
        // longer clips are cut with a warning naming the limit, as the reference processors do
        let max_s = self.featurizer.max_seconds();
        let opts = DecodeOptions::with_max_seconds(max_s);
        let mut clip = audio::load_clip(path, self.mel.sampling_rate, &opts)?;
        clip.samples
            .truncate((max_s * self.mel.sampling_rate as f64).round() as usize);
        let feats = self.featurizer.features(&clip.samples);
        let mel = Tensor::from_vec(
            feats.data,
            (feats.windows, feats.n_mels, feats.frames),
            &self.device,
        )
        .map_err(compute_err("uploading mel features"))?;
        let frames = self
            .model
            .encode_clip(&mel, &feats.valid)
            .map_err(|e| match e {
                ModelError::Input(m) => ModelError::Input(format!("{}: {m}", path.display())),
                other => other,
            })?;
        lock(&self.stats).audio_encoded += 1;
        let emb = AudioEmbeds { frames };
        lock(&self.clips).insert(key.clone(), emb.clone());
        Ok((key, emb))
    }

    /// Input embeddings `[1, n - start, hidden]` of `ids[start..]`, with the clip's frames at
    /// the audio positions.
    fn suffix_embeds(&self, p: &Prepared, start: usize) -> Result<Tensor, ModelError> {
        let err = compute_err("splicing audio frames");
        let end = p.prompt.ids.len();
        let emb = self.model.embed_tokens(&p.prompt.ids[start..])?;
        let spliced = match (&p.prompt.audio_range, &p.audio) {
            (Some(range), Some(audio)) if range.start.max(start) < range.end.min(end) => {
                let lo = range.start.max(start);
                let hi = range.end.min(end);
                let frames = audio
                    .frames
                    .narrow(0, lo - range.start, hi - lo)
                    .and_then(|f| f.to_dtype(emb.dtype()))
                    .map_err(&err)?;
                let mut parts = Vec::with_capacity(3);
                if lo > start {
                    parts.push(emb.narrow(0, 0, lo - start).map_err(&err)?);
                }
                parts.push(frames);
                if end > hi {
                    parts.push(emb.narrow(0, hi - start, end - hi).map_err(&err)?);
                }
                Tensor::cat(&parts, 0).map_err(&err)?
            }
            _ => emb,
        };
        spliced.unsqueeze(0).map_err(err)
    }

    /// Runs the uncached suffix of the prompt: returns the last position's logits (f32, 1-D) and
    /// the decoder state covering the whole prompt.
    fn prefill(&self, p: &Prepared) -> Result<(Tensor, KvCache), ModelError> {
        let n = p.prompt.ids.len();
        if n == 0 {
            return Err(ModelError::Input("the prompt is empty".into()));
        }
        let hit = lock(&self.prefixes).lookup(&p.clip, &p.prompt.ids, n - 1);
        let (mut cache, reused) = match hit {
            Some(h) => (h.state, h.reused),
            None => (KvCache::new(), 0),
        };
        let embeds = self.suffix_embeds(p, reused)?;
        let logits = self.model.forward_embeds_last(&embeds, &mut cache)?;
        {
            let mut s = lock(&self.stats);
            s.tokens_computed += (n - reused) as u64;
            s.tokens_reused += reused as u64;
            s.prompt_tokens += n as u64;
            s.prompt_tokens_cached = Some(s.prompt_tokens_cached.unwrap_or(0) + reused as u64);
        }
        Ok((logits, cache))
    }

    fn remember(&self, clip: &Option<ClipKey>, ids: Vec<u32>, cache: KvCache) {
        lock(&self.prefixes).insert(clip.clone(), ids, cache);
    }
}

/// Where a sequence's text streams to, piece by piece; `Break` stops it (cancelled).
pub type OnDelta<'a> = Box<dyn FnMut(&str) -> ControlFlow<()> + 'a>;

/// One sequence being decoded: its prompt, sampler, text so far and decoder state.
struct Job<'a> {
    p: Prepared,
    max_tokens: usize,
    on_delta: OnDelta<'a>,
    sampler: Sampler,
    emitter: TextEmitter,
    stream: DecodeStream,
    cache: KvCache,
    /// Next-token logits (f32, 1-D).
    logits: Tensor,
    /// Every id the cache holds.
    fed: Vec<u32>,
    tokens: Vec<u32>,
    /// Why it ended; `None` while it runs.
    stop: Option<StopReason>,
}

impl Job<'_> {
    /// Samples the next token from the current logits and streams its text; returns the token
    /// to feed next, or `None` once the sequence has ended.
    fn advance(
        &mut self,
        tok: &Tokenizer,
        ends: &[u32],
        max_ctx: usize,
    ) -> Result<Option<u32>, ModelError> {
        if self.tokens.len() >= self.max_tokens {
            self.stop = Some(StopReason::MaxTokens);
            return Ok(None);
        }
        let next = self.sampler.sample(&self.logits)?;
        self.tokens.push(next);
        if ends.contains(&next) {
            self.stop = Some(StopReason::EndToken);
            return Ok(None);
        }
        let flow = match self.stream.step(tok, next)? {
            Some(delta) => self.emitter.push(&delta, &mut *self.on_delta),
            None => Flow::Continue,
        };
        self.stop = match flow {
            Flow::StopString => Some(StopReason::StopString),
            Flow::Cancelled => Some(StopReason::Cancelled),
            Flow::Continue if self.tokens.len() >= self.max_tokens || self.fed.len() >= max_ctx => {
                Some(StopReason::MaxTokens)
            }
            Flow::Continue => None,
        };
        Ok(self.stop.is_none().then_some(next))
    }

    /// The text's end (the undecoded bytes, a held-back stop-string prefix) and the result.
    fn finish(
        mut self,
        tok: &Tokenizer,
    ) -> Result<(Generation, Prepared, Vec<u32>, KvCache), ModelError> {
        let mut stop = self.stop.unwrap_or(StopReason::MaxTokens);
        if matches!(stop, StopReason::EndToken | StopReason::MaxTokens) {
            if let Some(rest) = self.stream.flush(tok)? {
                if self.emitter.push(&rest, &mut *self.on_delta) == Flow::StopString {
                    stop = StopReason::StopString;
                }
            }
            self.emitter.finish(&mut *self.on_delta);
        }
        let gen = Generation {
            text: self.emitter.text().to_string(),
            tokens: self.tokens,
            stop,
            reasoning: String::new(),
        };
        Ok((gen, self.p, self.fed, self.cache))
    }
}

/// Sequences decoded together (continuous batching): a sequence joins between steps
/// ([`DecodeBatch::join`] prefills it from the longest cached prefix), every
/// [`DecodeBatch::step`] feeds one token of each running sequence through the decoder at once
/// ([`Qwen2Audio::forward_ids_batch`]), and a sequence that ends leaves with its result. Each
/// result is what decoding it alone gives (greedy tokens identical); one sequence's error does
/// not stop the others. Results carry the caller's key.
pub struct DecodeBatch<'m, 'a, K> {
    model: &'m CandleReasoner,
    ends: Vec<u32>,
    running: Vec<(K, Job<'a>)>,
    ended: Vec<(K, Result<Generation, ModelError>)>,
}

impl<'m, 'a, K> DecodeBatch<'m, 'a, K> {
    /// An empty batch on `model`.
    pub fn new(model: &'m CandleReasoner) -> Self {
        Self {
            model,
            ends: model.tok.end_tokens().to_vec(),
            running: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Sequences running.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Nothing runs and no result waits.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty() && self.ended.is_empty()
    }

    /// Prefills `conv` and adds it to the batch; its text streams to `on_delta` as it is
    /// decoded, and its result (or the error of its prompt) comes back from a later `step`.
    pub fn join(&mut self, key: K, conv: &Conversation, params: &GenParams, on_delta: OnDelta<'a>) {
        let m = self.model;
        let job = (|| {
            let sampler = Sampler::new(params)?;
            let p = m.prepare(conv)?;
            let (logits, cache) = m.prefill(&p)?;
            // the prompt's state serves later prompts that share its prefix (one at a time,
            // the previous generation's state would)
            m.remember(&p.clip, p.prompt.ids.clone(), cache.clone());
            Ok(Job {
                fed: p.prompt.ids.clone(),
                p,
                max_tokens: params.max_tokens,
                on_delta,
                sampler,
                emitter: TextEmitter::new(&params.stop),
                stream: DecodeStream::new(),
                cache,
                logits,
                tokens: Vec::new(),
                stop: None,
            })
        })();
        match job {
            Ok(j) => self.running.push((key, j)),
            Err(e) => self.ended.push((key, Err(e))),
        }
    }

    /// One step: each running sequence takes its next token (and streams its text); those that
    /// end leave, the rest are fed through the decoder together. Returns the sequences that
    /// ended since the last step, with their results.
    pub fn step(&mut self) -> Vec<(K, Result<Generation, ModelError>)> {
        let m = self.model;
        let max_ctx = m.max_context();
        let mut stepping = Vec::with_capacity(self.running.len());
        let mut ids = Vec::with_capacity(self.running.len());
        for (key, mut job) in std::mem::take(&mut self.running) {
            match job.advance(&m.tok, &self.ends, max_ctx) {
                Ok(Some(next)) => {
                    stepping.push((key, job));
                    ids.push(next);
                }
                Ok(None) => {
                    let result = job.finish(&m.tok).map(|(gen, p, fed, cache)| {
                        m.remember(&p.clip, fed, cache);
                        lock(&m.stats).tokens_generated += gen.tokens.len() as u64;
                        gen
                    });
                    self.ended.push((key, result));
                }
                Err(e) => self.ended.push((key, Err(e))),
            }
        }
        if !stepping.is_empty() {
            let mut caches: Vec<KvCache> = stepping
                .iter_mut()
                .map(|(_, j)| std::mem::take(&mut j.cache))
                .collect();
            match m.model.forward_ids_batch(&ids, &mut caches) {
                Ok(logits) => {
                    lock(&m.stats).tokens_computed += stepping.len() as u64;
                    for (row, ((key, mut job), cache)) in
                        stepping.into_iter().zip(caches).enumerate()
                    {
                        job.cache = cache;
                        match logits.get(row) {
                            Ok(l) => {
                                job.logits = l;
                                job.fed.push(ids[row]);
                                self.running.push((key, job));
                            }
                            Err(e) => self
                                .ended
                                .push((key, Err(compute_err("batched decode step")(e)))),
                        }
                    }
                }
                Err(e) => {
                    // the step failed for all of them: the first keeps the error itself
                    let text = e.to_string();
                    let mut first = Some(e);
                    for (key, _) in stepping {
                        let e = first
                            .take()
                            .unwrap_or_else(|| ModelError::Compute(text.clone()));
                        self.ended.push((key, Err(e)));
                    }
                }
            }
        }
        std::mem::take(&mut self.ended)
    }
}

impl CandleReasoner {
    /// Decodes several conversations together in one [`DecodeBatch`]; the results in the
    /// requests' order.
    fn generate_many<'a>(
        &self,
        requests: Vec<(&Conversation, &GenParams, OnDelta<'a>)>,
    ) -> Vec<Result<Generation, ModelError>> {
        let n = requests.len();
        let mut batch = DecodeBatch::new(self);
        for (i, (conv, params, on_delta)) in requests.into_iter().enumerate() {
            batch.join(i, conv, params, on_delta);
        }
        let mut out: Vec<Option<Result<Generation, ModelError>>> = (0..n).map(|_| None).collect();
        while !batch.is_empty() {
            for (i, r) in batch.step() {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(ModelError::Compute("no generation came back".into())))
            })
            .collect()
    }
}

/// A model folder's name.
fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Bytes the weights of `shapes` take once loaded with `quant` in `dtype`: the linear layers'
/// weights at the quantised size, everything else (embeddings, norms, biases, convolutions) in
/// `dtype`; the Omni talker, token2wav and vision tensors are not loaded.
pub fn weight_bytes(shapes: &[(String, Vec<usize>)], quant: Quant, dtype: DType) -> u64 {
    sized(shapes, quant, dtype, false)
}

/// Bytes the weights take once the model has decoded: [`weight_bytes`] plus the repacked copy
/// candle keeps of the decoder's quantised weights on CPUs where its fast kernels use one
/// ([`Quant::repacked`]; the audio tower's products have many rows and use the compact blocks
/// dequantised, so it has none).
pub fn resident_bytes(shapes: &[(String, Vec<usize>)], quant: Quant, dtype: DType) -> u64 {
    sized(shapes, quant, dtype, true)
}

fn sized(shapes: &[(String, Vec<usize>)], quant: Quant, dtype: DType, repack: bool) -> u64 {
    let dense = dtype.size_in_bytes() as f64;
    let bytes: f64 = shapes
        .iter()
        .filter(|(n, _)| {
            !["talker.", "token2wav.", "visual."]
                .iter()
                .any(|p| n.contains(p))
        })
        .map(|(n, s)| {
            let elems = s.iter().product::<usize>() as f64;
            let linear = s.len() == 2
                && n.ends_with(".weight")
                && !n.contains("embed")
                && !n.contains("multi_modal_projector");
            let other = if n.contains("embed_tokens") && quant != Quant::None {
                2.0 // kept in f16 with quantised weights
            } else {
                dense
            };
            if !linear {
                return elems * other;
            }
            let copies = if repack && !n.contains("audio_tower") && quant.repacked(s[0], s[1]) {
                2.0
            } else {
                1.0
            };
            elems * quant.bytes_per_weight(dense) * copies
        })
        .sum();
    bytes as u64
}

/// Memory the system can give without swapping (`MemAvailable`), when it says.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// The quantisation to load with on a CPU with `available` bytes free: `asked` when its weights
/// fit once resident ([`resident_bytes`], with a fifth to spare for activations and caches); without quantisation asked for and
/// too little memory, the first of q8_0 and q4k that fits, said as a warning; else an error with
/// the estimates, before anything is loaded.
pub fn plan_quant(
    shapes: &[(String, Vec<usize>)],
    asked: Quant,
    dtype: DType,
    available: Option<u64>,
) -> Result<Quant, ModelError> {
    let Some(avail) = available else {
        return Ok(asked);
    };
    let need = |q: Quant| resident_bytes(shapes, q, dtype) / 4 * 5;
    if need(asked) <= avail {
        return Ok(asked);
    }
    if asked == Quant::None {
        for q in [Quant::Q8_0, Quant::Q4k] {
            if need(q) <= avail {
                crate::warn::warn(&format!(
                    "the model needs about {} in {dtype:?} but {} are free: loading with --quant {} \
                     (about {}) instead; pass --quant to choose",
                    gb(need(Quant::None)),
                    gb(avail),
                    q.name(),
                    gb(need(q))
                ));
                return Ok(q);
            }
        }
    }
    Err(ModelError::Load(format!(
        "not enough memory: the model needs about {} with --quant {} and {} are free (q8_0: about \
         {}, q4k: about {}); free memory, pick a smaller --quant, or run it on a server \
         (--model http://...); with q8_0, MISTRALRS_FORCE_AVX2=1 keeps the weights compact \
         (no repacked copy, slower decoding)",
        gb(need(asked)),
        asked.name(),
        gb(avail),
        gb(need(Quant::Q8_0)),
        gb(need(Quant::Q4k))
    )))
}

/// A number in processor_config.json (`None` when the file or the field is absent).
fn read_processor_number(dir: &Path, field: &str) -> Result<Option<f64>, ModelError> {
    let path = dir.join("processor_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::Load(format!("{} is not valid JSON: {e}", path.display())))?;
    match v.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x.as_f64().filter(|n| *n > 0.0).map(Some).ok_or_else(|| {
            ModelError::Load(format!(
                "{}: \"{field}\" is {x}; it must be a positive number of seconds",
                path.display()
            ))
        }),
    }
}

/// Reads preprocessor_config.json (feature settings); a missing file means Whisper's defaults.
pub fn read_mel_config(dir: &Path) -> Result<MelConfig, ModelError> {
    let path: PathBuf = dir.join("preprocessor_config.json");
    if !path.is_file() {
        return Ok(MelConfig::default());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ModelError::Load(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        ModelError::Load(format!(
            "{} is not a valid preprocessor config: {e}",
            path.display()
        ))
    })
}

impl Reasoner for CandleReasoner {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(
        &self,
        conv: &Conversation,
        params: &GenParams,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        let mut out = self.generate_many(vec![(conv, params, Box::new(on_delta))]);
        out.pop()
            .unwrap_or_else(|| Err(ModelError::Compute("no generation came back".into())))
    }

    fn generate_batch(
        &self,
        requests: &[(Conversation, GenParams)],
    ) -> Vec<Result<Generation, ModelError>> {
        let quiet = || -> OnDelta<'static> { Box::new(|_: &str| ControlFlow::Continue(())) };
        self.generate_many(requests.iter().map(|(c, p)| (c, p, quiet())).collect())
    }

    fn choice_probs(
        &self,
        conv: &Conversation,
        letters: &[String],
    ) -> Result<ChoiceProbs, ModelError> {
        super::check_letters(letters)?;
        let ids: Vec<u32> = letters
            .iter()
            .map(|l| self.tok.letter_id(l))
            .collect::<Result<_, _>>()?;
        let lsm = self.next_token_logprobs(conv)?;
        let logprobs: Vec<f32> = ids
            .iter()
            .map(|&i| lsm.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY))
            .collect();
        Ok(ChoiceProbs::from_logprobs(letters.to_vec(), logprobs))
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.tok.encode(text).ok().map(|ids| ids.len())
    }

    fn audio_window_seconds(&self) -> Option<f64> {
        Some(self.featurizer.max_seconds())
    }

    fn stats(&self) -> ModelStats {
        *lock(&self.stats)
    }
}
