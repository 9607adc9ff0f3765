//! Audio-language models in candle: loading a Hugging Face checkpoint, the audio tower, splicing
//! audio embeddings at the placeholder tokens, and the Qwen2 decoder over input embeddings with
//! a forkable KV cache.
//!
//! Mirrors transformers' `Qwen2AudioForConditionalGeneration`, `AudioFlamingo3ForConditionalGeneration`
//! (the same tower over several windows, a two-layer projector) and
//! `Qwen2_5OmniThinkerForConditionalGeneration` (a chunked tower, the Qwen2.5 decoder, whose
//! M-RoPE is plain RoPE for audio and text). Tensor names line up with the checkpoints
//! (`audio_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
//! `language_model.lm_head`; transformers 5's in-memory layout `model.audio_tower.*`,
//! `model.language_model.*`, `lm_head`; Omni's `audio_tower.*`, `model.*`, `lm_head`, under
//! `thinker.` in the full checkpoint).

mod decoder;
mod encoder;
mod ops;
mod weights;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use decoder::KvCache;
pub use ops::{Quant, Quantizer, QUANT_NAMES};
pub use weights::Checkpoint;

use super::config::{Arch, Qwen2AudioConfig};
use super::ModelError;
use decoder::TextModel;
use encoder::AudioTower;

/// A loaded audio-language model of any supported architecture.
pub type AudioLm = Qwen2Audio;

/// A loaded audio-language model (Qwen2-Audio, Audio Flamingo 3 or the Qwen2.5-Omni thinker;
/// the name is the first one's).
pub struct Qwen2Audio {
    config: Qwen2AudioConfig,
    audio: AudioTower,
    text: TextModel,
    device: Device,
    dtype: DType,
}

fn compute(what: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Compute(format!("{what}: {}", error_text(&e)))
}

/// The message of a candle error without the backtrace candle attaches when
/// `RUST_BACKTRACE` is set.
fn error_text(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => error_text(inner),
        E::Context { inner, context } => format!("{context}: {}", error_text(inner)),
        E::WithPath { inner, path } => format!("{}: {}", path.display(), error_text(inner)),
        other => other.to_string(),
    }
}

/// Tensor name prefixes of the audio tower, projector, language model and head in checkpoints
/// written before transformers 5 (and by `faithscope train-demo`)...
pub(crate) const LEGACY_PREFIXES: [&str; 4] = [
    "audio_tower",
    "multi_modal_projector",
    "language_model.model",
    "language_model.lm_head",
];
/// ... and in transformers 5's.
pub(crate) const MODERN_PREFIXES: [&str; 4] = [
    "model.audio_tower",
    "model.multi_modal_projector",
    "model.language_model",
    "lm_head",
];
/// A tensor only a transformers 5 checkpoint has.
pub(crate) const MODERN_MARKER: &str = "model.language_model.embed_tokens.weight";

/// Tensor prefixes of a Qwen2.5-Omni thinker saved on its own (no separate projector)...
pub(crate) const OMNI_PREFIXES: [&str; 4] = ["audio_tower", "audio_tower", "model", "lm_head"];
/// ... and inside the full Qwen2.5-Omni checkpoint.
pub(crate) const OMNI_FULL_PREFIXES: [&str; 4] = [
    "thinker.audio_tower",
    "thinker.audio_tower",
    "thinker.model",
    "thinker.lm_head",
];

/// The tensor prefixes of a checkpoint of `config`'s architecture.
pub(crate) fn prefixes_for(config: &Qwen2AudioConfig, ckpt: &Checkpoint) -> [&'static str; 4] {
    match config.arch() {
        Arch::Qwen25Omni if config.nested_thinker => OMNI_FULL_PREFIXES,
        Arch::Qwen25Omni => OMNI_PREFIXES,
        _ if ckpt.contains(MODERN_MARKER) => MODERN_PREFIXES,
        _ => LEGACY_PREFIXES,
    }
}

/// The transformers 5 name of a tensor with a legacy name (unchanged if no prefix matches).
pub(crate) fn modern_name(legacy: &str) -> String {
    LEGACY_PREFIXES
        .iter()
        .zip(MODERN_PREFIXES)
        .find_map(|(old, new)| {
            let rest = legacy.strip_prefix(old)?.strip_prefix('.')?;
            Some(format!("{new}.{rest}"))
        })
        .unwrap_or_else(|| legacy.to_string())
}

impl Qwen2Audio {
    /// Loads config.json and the (single or sharded) safetensors of a model folder,
    /// memory-mapped, converting the weights to `dtype` (f32, f16 or bf16) on `device`.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self, ModelError> {
        if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
            return Err(ModelError::Load(format!(
                "unsupported dtype {dtype:?}; use f32, f16 or bf16"
            )));
        }
        if !dir.is_dir() {
            return Err(ModelError::Load(format!(
                "model folder {} does not exist or is not a folder",
                dir.display()
            )));
        }
        let config = Qwen2AudioConfig::from_dir(dir)?;
        let ckpt = Checkpoint::open(dir)?;
        Self::load_from(
            config,
            ckpt,
            None,
            Quantizer::new(Quant::None),
            device,
            dtype,
            dir,
        )
    }

    /// Builds the model of `config` from an opened checkpoint, with a LoRA adapter merged at
    /// load when given, its linear weights quantised by `q` (activations are then f32: `dtype`
    /// must be f32).
    pub fn load_from(
        config: Qwen2AudioConfig,
        ckpt: Checkpoint,
        adapter: Option<super::adapter::Adapter>,
        q: Quantizer,
        device: &Device,
        dtype: DType,
        dir: &Path,
    ) -> Result<Self, ModelError> {
        let quant = q.kind();
        if quant != Quant::None && dtype != DType::F32 {
            return Err(ModelError::Load(format!(
                "--quant {} computes in f32; drop --dtype {dtype:?} (the weights are read \
                 tensor by tensor whatever their dtype)",
                quant.name()
            )));
        }
        let prefixes = prefixes_for(&config, &ckpt);
        let label = config.arch().label();
        let fail = |e: candle_core::Error| {
            ModelError::Load(format!(
                "loading {label} from {}: {}",
                dir.display(),
                error_text(&e)
            ))
        };
        let m = match adapter {
            None => {
                Self::build(config, ckpt.var_builder(dtype, device), prefixes, &q).map_err(fail)?
            }
            Some(a) => {
                let (vb, used) = a.wrap(ckpt, dtype, device);
                let m = Self::build(config, vb, prefixes, &q).map_err(fail)?;
                used.check()?;
                m
            }
        };
        if let Some(note) = q.fallback_note() {
            crate::warn::warn(&note);
        }
        if let Some(c) = q.cache() {
            if let Err(e) = c.finish() {
                crate::warn::warn(&format!("the quantised weights are not cached: {e}"));
            }
        }
        Ok(m)
    }

    /// Builds the model from any `VarBuilder` under the checkpoint's (legacy) tensor names,
    /// e.g. a `VarMap`-backed one whose variables are then trainable. Missing variables are
    /// created by the builder's backend; a tied config reuses the embedding as the LM head.
    pub fn from_var_builder(config: Qwen2AudioConfig, vb: VarBuilder) -> Result<Self, ModelError> {
        Self::build(
            config,
            vb,
            [
                "audio_tower",
                "multi_modal_projector",
                "language_model.model",
                "language_model.lm_head",
            ],
            &ops::Quantizer::new(Quant::None),
        )
        .map_err(|e| ModelError::Load(format!("building Qwen2-Audio: {}", error_text(&e))))
    }

    fn build(
        config: Qwen2AudioConfig,
        vb: VarBuilder,
        [tower, proj, lm, head]: [&str; 4],
        q: &ops::Quantizer,
    ) -> candle_core::Result<Self> {
        let tied = config.tied_embeddings();
        let audio = AudioTower::load(
            config.arch(),
            &config.audio_config,
            config.text_config.hidden_size,
            config.projector_bias.unwrap_or(true),
            vb.pp(tower),
            vb.pp(proj),
            q,
        )?;
        let text = TextModel::load(&config.text_config, tied, vb.pp(lm), vb.pp(head), q)?;
        Ok(Self {
            config,
            audio,
            text,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The checkpoint's configuration (vocab size, context, audio token id ...).
    pub fn config(&self) -> &Qwen2AudioConfig {
        &self.config
    }

    /// Device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Dtype of the weights and activations (logits are always returned in f32).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs the audio tower and projector on one window of log-mel features
    /// `mel` [1, n_mels, 2 * max_source_positions] (any float dtype, any device) whose first
    /// `valid_frames` frames are real audio, and returns the embeddings of the valid audio
    /// tokens only, [n_audio_tokens, hidden] in the model dtype (n from
    /// [`Qwen2AudioConfig::audio_tokens_for_frames`]).
    pub fn encode_audio(&self, mel: &Tensor, valid_frames: usize) -> Result<Tensor, ModelError> {
        let a = &self.config.audio_config;
        let want = self.config.window_frames();
        let dims = mel.dims();
        if dims.len() != 3 || dims[0] != 1 || dims[1] != a.num_mel_bins || dims[2] != want {
            return Err(ModelError::Input(format!(
                "audio features have shape {dims:?}, the model expects [1, {}, {want}] (one padded \
                 window of {} mel bins); compute them with the checkpoint's preprocessor settings",
                a.num_mel_bins, a.num_mel_bins
            )));
        }
        if valid_frames == 0 || valid_frames > want {
            return Err(ModelError::Input(format!(
                "valid_frames is {valid_frames}; it must be between 1 and the window of {want} frames"
            )));
        }
        let n = Qwen2AudioConfig::audio_tokens_for_frames(valid_frames);
        if n == 0 {
            return Err(ModelError::Input(format!(
                "{valid_frames} valid mel frames give no audio token; the clip is too short"
            )));
        }
        let f = compute("audio encoder");
        let mel = mel
            .to_device(&self.device)
            .map_err(&f)?
            .to_dtype(self.dtype)
            .map_err(&f)?;
        let conv_len = (valid_frames - 1) / 2 + 1;
        let out = self.audio.forward(&mel, &[conv_len]).map_err(&f)?;
        out.squeeze(0).map_err(&f)?.narrow(0, 0, n).map_err(&f)
    }

    /// The audio tokens of a clip's features, as the architecture's reference computes them:
    /// `mel` [w, n_mels, frames] holds `w` feature windows whose first `valid_frames[i]` frames
    /// are real audio. Qwen2-Audio and Audio Flamingo 3 encode each window (padded to the
    /// encoder's window) on its own and concatenate the windows' tokens; the Omni thinker
    /// takes one window of any length, cuts its valid frames into chunks of `2 * n_window` and
    /// pools across them. Returns [n_audio_tokens, hidden] in the model dtype, n the sum of
    /// [`Qwen2AudioConfig::audio_tokens_for_frames`] over the windows.
    pub fn encode_clip(&self, mel: &Tensor, valid_frames: &[usize]) -> Result<Tensor, ModelError> {
        let a = &self.config.audio_config;
        let dims = mel.dims().to_vec();
        let arch = self.config.arch();
        let frames_ok = match arch {
            Arch::Qwen25Omni => dims.len() == 3 && dims[0] == 1,
            _ => dims.len() == 3 && dims[2] == self.config.window_frames(),
        };
        if !frames_ok || dims[1] != a.num_mel_bins || dims[0] != valid_frames.len() {
            return Err(ModelError::Input(format!(
                "audio features have shape {dims:?} for {} window(s); {} expects [windows, {}, {}] \
                 with one valid-frame count per window; compute them with the checkpoint's \
                 preprocessor settings",
                valid_frames.len(),
                arch.label(),
                a.num_mel_bins,
                match arch {
                    Arch::Qwen25Omni => "frames".to_string(),
                    _ => self.config.window_frames().to_string(),
                }
            )));
        }
        if let Some(v) = valid_frames.iter().find(|&&v| v == 0 || v > dims[2]) {
            return Err(ModelError::Input(format!(
                "a window has {v} valid frames; it must be between 1 and its {} frames",
                dims[2]
            )));
        }
        let n: usize = valid_frames
            .iter()
            .map(|&v| Qwen2AudioConfig::audio_tokens_for_frames(v))
            .sum();
        if n == 0 {
            return Err(ModelError::Input(
                "the clip gives no audio token; it is too short".into(),
            ));
        }
        let f = compute("audio encoder");
        let mel = mel
            .to_device(&self.device)
            .map_err(&f)?
            .to_dtype(self.dtype)
            .map_err(&f)?;
        let out = match arch {
            Arch::Qwen25Omni => {
                let chunk = 2 * a.n_window.unwrap_or(50);
                let valid = valid_frames[0];
                let count = valid.div_ceil(chunk);
                let lens: Vec<usize> = (0..count).map(|i| chunk.min(valid - i * chunk)).collect();
                let m = mel.get(0).and_then(|m| m.narrow(1, 0, valid)).map_err(&f)?;
                let m = if count * chunk > valid {
                    let pad = Tensor::zeros(
                        (a.num_mel_bins, count * chunk - valid),
                        m.dtype(),
                        m.device(),
                    )
                    .map_err(&f)?;
                    Tensor::cat(&[&m, &pad], 1).map_err(&f)?
                } else {
                    m
                };
                let chunks = m
                    .reshape((a.num_mel_bins, count, chunk))
                    .and_then(|m| m.transpose(0, 1))
                    .and_then(|m| m.contiguous())
                    .map_err(&f)?;
                self.audio.forward_chunks(&chunks, &lens).map_err(&f)?
            }
            _ => {
                let conv: Vec<usize> = valid_frames.iter().map(|v| (v - 1) / 2 + 1).collect();
                self.audio.forward_windows(&mel, &conv).map_err(&f)?
            }
        };
        let got = out.dim(0).map_err(&f)?;
        if got != n {
            return Err(ModelError::Compute(format!(
                "the audio encoder gave {got} tokens for {valid_frames:?} valid frames, expected {n}"
            )));
        }
        Ok(out)
    }

    /// Token embeddings [ids.len(), hidden] in the model dtype.
    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Tensor, ModelError> {
        let vocab = self.config.vocab_size();
        if let Some((i, id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= vocab) {
            return Err(ModelError::Input(format!(
                "token id {id} at position {i} is outside the vocabulary of {vocab}"
            )));
        }
        let f = compute("token embedding");
        let t = Tensor::new(ids, &self.device).map_err(&f)?;
        self.text.embed(&t).map_err(&f)
    }

    /// Input embeddings [1, ids.len(), hidden] for `ids` whose `<|AUDIO|>` placeholders are
    /// replaced, in order, by the rows of `audio` [n, hidden] (like the reference masked
    /// scatter). The number of placeholders must equal n (0 when `audio` is `None`).
    pub fn splice_audio(&self, ids: &[u32], audio: Option<&Tensor>) -> Result<Tensor, ModelError> {
        let tok = self.config.audio_token_id();
        let placeholders = ids.iter().filter(|&&id| id == tok).count();
        let f = compute("splicing audio embeddings");
        let n_audio = match audio {
            Some(a) => {
                let d = a.dims();
                if d.len() != 2 || d[1] != self.config.text_config.hidden_size {
                    return Err(ModelError::Input(format!(
                        "audio embeddings have shape {d:?}, expected [n, {}]",
                        self.config.text_config.hidden_size
                    )));
                }
                d[0]
            }
            None => 0,
        };
        if placeholders != n_audio {
            return Err(ModelError::Input(format!(
                "the prompt has {placeholders} <|AUDIO|> placeholder tokens (id {tok}) but the \
                 audio gives {n_audio} embeddings; expand the placeholder to one token per audio \
                 embedding"
            )));
        }
        let text = self.embed_tokens(ids)?;
        let Some(audio) = audio.filter(|_| n_audio > 0) else {
            return text.unsqueeze(0).map_err(&f);
        };
        let audio = audio
            .to_device(&self.device)
            .map_err(&f)?
            .to_dtype(self.dtype)
            .map_err(&f)?;
        let table = Tensor::cat(&[&text, &audio], 0).map_err(&f)?;
        let t = ids.len() as u32;
        let mut k = 0u32;
        let index: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                if id == tok {
                    k += 1;
                    t + k - 1
                } else {
                    i as u32
                }
            })
            .collect();
        let index = Tensor::new(index, &self.device).map_err(&f)?;
        table
            .index_select(&index, 0)
            .map_err(&f)?
            .unsqueeze(0)
            .map_err(&f)
    }

    fn check_step(&self, embeds: &Tensor, cache: &KvCache) -> Result<usize, ModelError> {
        let h = self.config.text_config.hidden_size;
        let d = embeds.dims();
        if d.len() != 3 || d[0] != 1 || d[2] != h || d[1] == 0 {
            return Err(ModelError::Input(format!(
                "input embeddings have shape {d:?}, expected [1, t > 0, {h}]"
            )));
        }
        let total = cache.len() + d[1];
        let max = self.config.max_positions();
        if total > max {
            return Err(ModelError::Input(format!(
                "prompt too long: {} cached + {} new = {total} tokens exceed the model's context of \
                 {max} tokens; shorten the prompt or the chain",
                cache.len(),
                d[1]
            )));
        }
        Ok(d[1])
    }

    /// Runs `embeds` [1, t, hidden] after the positions already in `cache`, appends them to
    /// the cache and returns f32 logits [t, vocab]. On error the cache is left unchanged.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor, ModelError> {
        self.decode(embeds, cache, false)
    }

    /// Like [`forward_embeds`](Self::forward_embeds) but computes the LM head for the last
    /// position only: f32 logits [vocab].
    pub fn forward_embeds_last(
        &self,
        embeds: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor, ModelError> {
        let f = compute("decoder forward");
        self.decode(embeds, cache, true)?.squeeze(0).map_err(f)
    }

    /// The decoder over `embeds` after the cached positions: f32 logits of every position, or
    /// of the last one only (`[1, vocab]`).
    fn decode(
        &self,
        embeds: &Tensor,
        cache: &mut KvCache,
        last_only: bool,
    ) -> Result<Tensor, ModelError> {
        self.check_step(embeds, cache)?;
        let f = compute("decoder forward");
        let embeds = embeds
            .to_device(&self.device)
            .map_err(&f)?
            .to_dtype(self.dtype)
            .map_err(&f)?;
        let h = self.text.hidden(&embeds, cache, last_only).map_err(&f)?;
        self.text.logits(&h).map_err(&f)
    }

    /// Embeds `ids` as plain tokens and runs [`forward_embeds_last`](Self::forward_embeds_last):
    /// the decode step. A generated `<|AUDIO|>` id is embedded as a token, as the reference does
    /// during generation (only prompts splice audio frames).
    pub fn forward_ids_last(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor, ModelError> {
        let e = self
            .embed_tokens(ids)?
            .unsqueeze(0)
            .map_err(compute("token embedding"))?;
        self.forward_embeds_last(&e, cache)
    }

    /// One decode step of several sequences at once: `ids[i]` is the next input token of the
    /// sequence whose state is `caches[i]` (of any lengths). Returns f32 logits [b, vocab], row
    /// `i` as [`forward_ids_last`](Self::forward_ids_last) gives it for that sequence alone;
    /// every cache grows by one. On error no cache changes.
    pub fn forward_ids_batch(
        &self,
        ids: &[u32],
        caches: &mut [KvCache],
    ) -> Result<Tensor, ModelError> {
        if ids.len() != caches.len() || ids.is_empty() {
            return Err(ModelError::Input(format!(
                "a batched decode step needs one token per sequence: {} tokens, {} sequences",
                ids.len(),
                caches.len()
            )));
        }
        let max = self.config.max_positions();
        if let Some(c) = caches.iter().find(|c| c.len() + 1 > max) {
            return Err(ModelError::Input(format!(
                "a sequence of {} cached tokens has no room left in the model's context of {max} \
                 tokens",
                c.len()
            )));
        }
        let f = compute("decoder forward (batch)");
        let e = self.embed_tokens(ids)?.unsqueeze(1).map_err(&f)?;
        self.text.step_batch(&e, caches).map_err(f)
    }

    /// Batched audio tower for training: `mel` [b, n_mels, window] in the model dtype whose
    /// item `i` has `valid_frames[i]` real frames; returns all [b, window / 4, hidden]
    /// embeddings (the first `audio_tokens_for_frames(valid_frames[i])` rows of item `i` are
    /// its audio tokens).
    pub fn encode_audio_batch(
        &self,
        mel: &Tensor,
        valid_frames: &[usize],
    ) -> Result<Tensor, ModelError> {
        let a = &self.config.audio_config;
        let want = self.config.window_frames();
        let dims = mel.dims();
        if dims.len() != 3
            || dims[0] != valid_frames.len()
            || dims[1] != a.num_mel_bins
            || dims[2] != want
        {
            return Err(ModelError::Input(format!(
                "audio features have shape {dims:?}, expected [{}, {}, {want}]",
                valid_frames.len(),
                a.num_mel_bins
            )));
        }
        if let Some(v) = valid_frames.iter().find(|&&v| v == 0 || v > want) {
            return Err(ModelError::Input(format!(
                "valid_frames {v} outside 1..={want}"
            )));
        }
        let conv: Vec<usize> = valid_frames.iter().map(|v| (v - 1) / 2 + 1).collect();
        self.audio
            .forward(mel, &conv)
            .map_err(compute("audio encoder (batch)"))
    }

    /// Token embeddings of a [b, t] u32 tensor: [b, t, hidden].
    pub fn embed_ids(&self, ids: &Tensor) -> Result<Tensor, ModelError> {
        self.text.embed(ids).map_err(compute("token embedding"))
    }

    /// Batched decoder pass without cache for training: `embeds` [b, t, hidden] (right-padded;
    /// causal attention keeps padding from reaching earlier positions), `rows` a u32 tensor of
    /// flat indices `i * t + p` whose next-token logits are wanted. Returns f32 logits
    /// [rows.len(), vocab]; the LM head runs on those rows only.
    pub fn forward_rows(&self, embeds: &Tensor, rows: &Tensor) -> Result<Tensor, ModelError> {
        let f = compute("decoder forward (batch)");
        let (b, t, h) = embeds.dims3().map_err(&f)?;
        let mut cache = KvCache::new();
        let hidden = self.text.hidden(embeds, &mut cache, false).map_err(&f)?;
        let flat = hidden.reshape((b * t, h)).map_err(&f)?;
        let picked = flat.index_select(rows, 0).map_err(&f)?;
        self.text.logits(&picked).map_err(&f)
    }
}
