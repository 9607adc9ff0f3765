//! `config.json` of an audio-language checkpoint (Qwen2-Audio, Audio Flamingo 3, the
//! Qwen2.5-Omni thinker), with the reference defaults for omitted fields.
//!
//! Mirrors transformers' `Qwen2AudioConfig`, `AudioFlamingo3Config` and
//! `Qwen2_5OmniThinkerConfig` (nested `audio_config` / `text_config`; a full Qwen2.5-Omni config
//! nests them in `thinker_config`); fields a checkpoint leaves out take the values transformers
//! would use (`Qwen2AudioEncoderConfig` as built by `Qwen2AudioConfig`, and `Qwen2Config`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The `model_type` values this backend runs.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &[
    "qwen2_audio",
    "audioflamingo3",
    "qwen2_5_omni",
    "qwen2_5_omni_thinker",
];

/// The architectures this backend runs, chosen from `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `Qwen2AudioForConditionalGeneration`: one 30-s window, a linear projector.
    Qwen2Audio,
    /// `AudioFlamingo3ForConditionalGeneration`: the same encoder over up to 20 windows of 30 s,
    /// a two-layer GELU projector, the `<sound>` placeholder.
    AudioFlamingo3,
    /// The Qwen2.5-Omni thinker: a chunked audio encoder, the Qwen2.5 decoder.
    Qwen25Omni,
}

impl Arch {
    /// The architecture of a `model_type`.
    pub fn from_model_type(t: &str) -> Option<Arch> {
        match t {
            "qwen2_audio" => Some(Arch::Qwen2Audio),
            "audioflamingo3" => Some(Arch::AudioFlamingo3),
            "qwen2_5_omni" | "qwen2_5_omni_thinker" => Some(Arch::Qwen25Omni),
            _ => None,
        }
    }

    /// A name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Arch::Qwen2Audio => "Qwen2-Audio",
            Arch::AudioFlamingo3 => "Audio Flamingo 3",
            Arch::Qwen25Omni => "Qwen2.5-Omni thinker",
        }
    }

    /// The protocol the paper uses with this architecture.
    pub fn default_protocol(self) -> &'static str {
        match self {
            Arch::Qwen2Audio => "paper-v1",
            Arch::AudioFlamingo3 => "af3",
            Arch::Qwen25Omni => "omni",
        }
    }
}

/// The Whisper-style audio encoder (`audio_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioEncoderConfig {
    /// Mel bins of the input features (`feature_size` of the feature extractor).
    #[serde(default = "d_mels")]
    pub num_mel_bins: usize,
    /// Number of encoder layers (`num_hidden_layers` in Audio Flamingo 3's config).
    #[serde(default = "d_enc_layers", alias = "num_hidden_layers")]
    pub encoder_layers: usize,
    /// Attention heads per encoder layer.
    #[serde(default = "d_enc_heads", alias = "num_attention_heads")]
    pub encoder_attention_heads: usize,
    /// Inner size of the encoder MLP.
    #[serde(default = "d_enc_ffn", alias = "intermediate_size")]
    pub encoder_ffn_dim: usize,
    /// Encoder width.
    #[serde(default = "d_d_model", alias = "hidden_size")]
    pub d_model: usize,
    /// Qwen2.5-Omni: half the chunk length in mel frames (chunks of `2 * n_window` frames are
    /// encoded on their own).
    #[serde(default)]
    pub n_window: Option<usize>,
    /// Qwen2.5-Omni: width of the encoder's output projection (the decoder's hidden size).
    #[serde(default)]
    pub output_dim: Option<usize>,
    /// Activation of the convolutions and MLP (only `gelu` is supported).
    #[serde(default = "d_gelu")]
    pub activation_function: String,
    /// Encoder positions after the stride-2 convolution: the window is twice this many mel frames.
    #[serde(default = "d_source_pos")]
    pub max_source_positions: usize,
    /// Multiply the convolution output by sqrt(d_model) (the reference never applies it; kept
    /// for completeness and rejected when true).
    #[serde(default)]
    pub scale_embedding: bool,
}

/// The Qwen2 language model (`text_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// Rows of the embedding and the LM head.
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    /// Decoder width.
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    /// Inner size of the SwiGLU MLP.
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    /// Number of decoder layers.
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    /// Query heads.
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); defaults to `num_attention_heads`.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head size; defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// MLP activation (only `silu` is supported).
    #[serde(default = "d_silu")]
    pub hidden_act: String,
    /// Longest context the model was trained for.
    #[serde(default = "d_max_pos")]
    pub max_position_embeddings: usize,
    /// Epsilon of the RMS norms.
    #[serde(default = "d_rms_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base as older checkpoints write it (top level of `text_config`).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// RoPE settings as transformers 5 writes them (`{rope_type, rope_theta}`).
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Older spelling of non-default RoPE settings; only `null` is supported.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Tie the LM head to the token embedding, when set here.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Sliding-window attention (not used by Qwen2-Audio; rejected when true).
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Beginning-of-sequence token, when the checkpoint names one.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End token(s), when the checkpoint names them.
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// Always `qwen2` for this backend.
    #[serde(default = "d_qwen2")]
    pub model_type: String,
}

/// RoPE settings (`rope_parameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    /// Only `default` is supported.
    #[serde(default = "d_rope_type")]
    pub rope_type: String,
    /// Base wavelength.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Qwen2.5-Omni's M-RoPE sections; with audio and text only the three position rows are
    /// equal and M-RoPE is plain RoPE.
    #[serde(default)]
    pub mrope_section: Option<Vec<usize>>,
}

/// One token id or several (`eos_token_id` may be either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// The whole `config.json` of a `Qwen2AudioForConditionalGeneration` checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qwen2AudioConfig {
    /// Must be one of [`SUPPORTED_MODEL_TYPES`].
    #[serde(default)]
    pub model_type: Option<String>,
    /// The audio encoder.
    #[serde(default = "d_audio_config")]
    pub audio_config: AudioEncoderConfig,
    /// The language model.
    #[serde(default = "d_text_config")]
    pub text_config: TextConfig,
    /// Id of the `<|AUDIO|>` placeholder token.
    #[serde(default = "d_audio_token", alias = "audio_token_id")]
    pub audio_token_index: u32,
    /// Tie the LM head to the token embedding, when set at the top level.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Dtype the weights were saved in, as transformers 5 writes it (e.g. "bfloat16").
    #[serde(default)]
    pub dtype: Option<String>,
    /// The same, as older files write it.
    #[serde(default)]
    pub torch_dtype: Option<String>,
    /// Audio Flamingo 3: activation between the projector's two layers.
    #[serde(default)]
    pub projector_hidden_act: Option<String>,
    /// Audio Flamingo 3: whether the projector's layers have biases (default true).
    #[serde(default)]
    pub projector_bias: Option<bool>,
    /// Qwen2.5-Omni: the image placeholder, refused in prompts.
    #[serde(default, alias = "image_token_id")]
    pub image_token_index: Option<u32>,
    /// Qwen2.5-Omni: the video placeholder, refused in prompts.
    #[serde(default, alias = "video_token_id")]
    pub video_token_index: Option<u32>,
    /// True when this came from the `thinker_config` of a full Qwen2.5-Omni config (tensors
    /// then carry a `thinker.` prefix).
    #[serde(skip)]
    pub nested_thinker: bool,
}

fn d_mels() -> usize {
    128
}
fn d_enc_layers() -> usize {
    32
}
fn d_enc_heads() -> usize {
    20
}
fn d_enc_ffn() -> usize {
    5120
}
fn d_d_model() -> usize {
    1280
}
fn d_gelu() -> String {
    "gelu".into()
}
fn d_source_pos() -> usize {
    1500
}
fn d_vocab() -> usize {
    151_936
}
fn d_hidden() -> usize {
    4096
}
fn d_inter() -> usize {
    22_016
}
fn d_layers() -> usize {
    32
}
fn d_heads() -> usize {
    32
}
fn d_silu() -> String {
    "silu".into()
}
fn d_max_pos() -> usize {
    32_768
}
fn d_rms_eps() -> f64 {
    1e-6
}
fn d_qwen2() -> String {
    "qwen2".into()
}
fn d_rope_type() -> String {
    "default".into()
}
fn d_audio_token() -> u32 {
    151_646
}
fn d_audio_config() -> AudioEncoderConfig {
    serde_json::from_str("{}").expect("all audio_config fields have defaults")
}
fn d_text_config() -> TextConfig {
    serde_json::from_str("{}").expect("all text_config fields have defaults")
}

/// Default RoPE base of Qwen2 when a checkpoint gives none.
pub const DEFAULT_ROPE_THETA: f64 = 10_000.0;

impl TextConfig {
    /// Key/value heads after defaults.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head size after defaults.
    pub fn head_size(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// RoPE base: `rope_parameters.rope_theta`, else top-level `rope_theta`, else 10000.
    pub fn rope_base(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(DEFAULT_ROPE_THETA)
    }
}

impl Qwen2AudioConfig {
    /// Reads and checks `config.json` in a model folder.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("config.json");
        if !path.is_file() {
            let found = list_dir(dir);
            return Err(ModelError::Load(format!(
                "model folder {} has no config.json (found: {found}); pass a Hugging Face model folder \
                 holding config.json, *.safetensors and tokenizer.json",
                dir.display()
            )));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ModelError::Load(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| match e {
            ModelError::Load(m) => ModelError::Load(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses and checks the text of a `config.json`. A full Qwen2.5-Omni config gives its
    /// `thinker_config` (the talker and token2wav are not used).
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let invalid = |e: serde_json::Error| {
            ModelError::Load(format!(
                "invalid model config (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
        let nested = v.get("model_type").and_then(|t| t.as_str()) == Some("qwen2_5_omni");
        let cfg = if nested {
            let Some(thinker) = v.get("thinker_config").filter(|t| t.is_object()) else {
                return Err(ModelError::Load(
                    "a qwen2_5_omni config without a thinker_config object; the folder needs the \
                     published config.json of Qwen2.5-Omni"
                        .into(),
                ));
            };
            let mut c: Self = serde_json::from_value(thinker.clone())
                .map_err(|e| ModelError::Load(format!("invalid thinker_config: {e}")))?;
            c.model_type = Some("qwen2_5_omni".into());
            c.nested_thinker = true;
            c
        } else {
            serde_json::from_value(v)
                .map_err(|e| ModelError::Load(format!("invalid model config: {e}")))?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The architecture (validated configs always have one).
    pub fn arch(&self) -> Arch {
        self.model_type
            .as_deref()
            .and_then(Arch::from_model_type)
            .unwrap_or(Arch::Qwen2Audio)
    }

    /// Checks that this backend can run the configuration; messages say what is supported.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Load(m));
        match self.model_type.as_deref() {
            Some(t) if SUPPORTED_MODEL_TYPES.contains(&t) => {}
            Some(t) => {
                return bad(format!(
                "unsupported model_type \"{t}\"; supported: {} (Qwen2-Audio, Audio Flamingo 3 and \
                     Qwen2.5-Omni checkpoints such as Qwen/Qwen2-Audio-7B-Instruct, \
                     nvidia/audio-flamingo-3-hf, Qwen/Qwen2.5-Omni-7B)",
                SUPPORTED_MODEL_TYPES.join(", ")
            ))
            }
            None => {
                return bad(format!(
                    "config has no model_type; supported: {}",
                    SUPPORTED_MODEL_TYPES.join(", ")
                ))
            }
        }
        let a = &self.audio_config;
        let t = &self.text_config;
        if !matches!(t.model_type.as_str(), "qwen2" | "qwen2_5_omni_text") {
            return bad(format!(
                "unsupported text_config.model_type \"{}\"; supported: qwen2, qwen2_5_omni_text",
                t.model_type
            ));
        }
        let arch = self.arch();
        if arch == Arch::Qwen25Omni {
            match (a.n_window, a.output_dim) {
                (Some(w), Some(o)) if w > 0 && o == t.hidden_size => {}
                (Some(_), Some(o)) if o != t.hidden_size => {
                    return bad(format!(
                        "audio_config.output_dim {o} differs from text_config.hidden_size {}",
                        t.hidden_size
                    ))
                }
                _ => {
                    return bad(
                        "a Qwen2.5-Omni audio_config needs n_window > 0 and output_dim".into(),
                    )
                }
            }
        }
        if arch == Arch::AudioFlamingo3 {
            if let Some(act) = self
                .projector_hidden_act
                .as_deref()
                .filter(|a| *a != "gelu")
            {
                return bad(format!(
                    "unsupported projector_hidden_act \"{act}\"; supported: gelu"
                ));
            }
        }
        if a.activation_function != "gelu" {
            return bad(format!(
                "unsupported audio_config.activation_function \"{}\"; supported: gelu",
                a.activation_function
            ));
        }
        if a.scale_embedding {
            return bad("audio_config.scale_embedding = true is not supported".into());
        }
        if t.hidden_act != "silu" {
            return bad(format!(
                "unsupported text_config.hidden_act \"{}\"; supported: silu",
                t.hidden_act
            ));
        }
        if t.use_sliding_window {
            return bad("text_config.use_sliding_window = true is not supported".into());
        }
        if let Some(p) = &t.rope_parameters {
            if p.rope_type != "default" {
                return bad(format!(
                    "unsupported rope_parameters.rope_type \"{}\"; supported: default",
                    p.rope_type
                ));
            }
        }
        if let Some(v) = t.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            // Qwen2.5-Omni writes M-RoPE here: plain RoPE for audio and text.
            let kind = v
                .get("rope_type")
                .or_else(|| v.get("type"))
                .and_then(|k| k.as_str());
            let mrope = v.get("mrope_section").is_some();
            if !(mrope && matches!(kind, None | Some("default") | Some("mrope"))) {
                return bad(
                    "text_config.rope_scaling is set; only plain RoPE (or Qwen2.5-Omni's M-RoPE) \
                     is supported"
                        .into(),
                );
            }
        }
        let zero = [
            ("audio_config.d_model", a.d_model),
            (
                "audio_config.encoder_attention_heads",
                a.encoder_attention_heads,
            ),
            ("audio_config.max_source_positions", a.max_source_positions),
            ("audio_config.num_mel_bins", a.num_mel_bins),
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            ("text_config.num_key_value_heads", t.kv_heads()),
            ("text_config.vocab_size", t.vocab_size),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} is 0; it must be positive"));
        }
        if a.d_model % a.encoder_attention_heads != 0 {
            return bad(format!(
                "audio_config.d_model {} is not divisible by encoder_attention_heads {}",
                a.d_model, a.encoder_attention_heads
            ));
        }
        if t.num_attention_heads % t.kv_heads() != 0 {
            return bad(format!(
                "text_config.num_attention_heads {} is not a multiple of num_key_value_heads {}",
                t.num_attention_heads,
                t.kv_heads()
            ));
        }
        if t.head_size() % 2 != 0 {
            return bad(format!(
                "text_config head size {} is odd; RoPE needs an even head size",
                t.head_size()
            ));
        }
        if self.audio_token_index as usize >= t.vocab_size {
            return bad(format!(
                "audio_token_index {} is outside the vocabulary (vocab_size {})",
                self.audio_token_index, t.vocab_size
            ));
        }
        Ok(())
    }

    /// Whether the LM head shares the token embedding (text_config wins over the top level;
    /// the reference default is untied). The loader uses the embedding as the head only when
    /// this is true and the checkpoint stores no head.
    pub fn tied_embeddings(&self) -> bool {
        self.text_config
            .tie_word_embeddings
            .or(self.tie_word_embeddings)
            .unwrap_or(false)
    }

    /// Vocabulary size (rows of the logits).
    pub fn vocab_size(&self) -> usize {
        self.text_config.vocab_size
    }

    /// Longest context in tokens.
    pub fn max_positions(&self) -> usize {
        self.text_config.max_position_embeddings
    }

    /// Id of the `<|AUDIO|>` placeholder.
    pub fn audio_token_id(&self) -> u32 {
        self.audio_token_index
    }

    /// Mel frames of one encoder window (`2 * max_source_positions`, 3000 for 30 s).
    pub fn window_frames(&self) -> usize {
        2 * self.audio_config.max_source_positions
    }

    /// Number of audio tokens for `valid_frames` mel frames (the reference
    /// `_get_feat_extract_output_lengths`: 25 per second).
    pub fn audio_tokens_for_frames(valid_frames: usize) -> usize {
        if valid_frames == 0 {
            return 0;
        }
        let after_conv = (valid_frames - 1) / 2 + 1;
        if after_conv < 2 {
            return 0; // python: (1 - 2) // 2 + 1 == 0
        }
        (after_conv - 2) / 2 + 1
    }

    /// Dtype the checkpoint was saved in ("bfloat16", "float16", "float32"), when it says;
    /// a hint for choosing the compute dtype.
    pub fn saved_dtype(&self) -> Option<&str> {
        self.dtype.as_deref().or(self.torch_dtype.as_deref())
    }

    /// End-of-sequence ids named by the text config (may be empty).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.text_config
            .eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default()
    }
}

/// The file names in a folder, for error messages.
pub(crate) fn list_dir(dir: &Path) -> String {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            if names.is_empty() {
                "nothing".into()
            } else {
                names.join(", ")
            }
        }
        Err(e) => format!("folder unreadable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_reference() {
        let c = Qwen2AudioConfig::from_json(r#"{"model_type":"qwen2_audio"}"#).unwrap();
        assert_eq!(c.audio_config.d_model, 1280);
        assert_eq!(c.audio_config.max_source_positions, 1500);
        assert_eq!(c.text_config.vocab_size, 151_936);
        assert_eq!(c.text_config.kv_heads(), 32);
        assert_eq!(c.text_config.rope_base(), 10_000.0);
        assert_eq!(c.audio_token_index, 151_646);
        assert!(!c.tied_embeddings());
        assert_eq!(c.window_frames(), 3000);
        assert_eq!(c.saved_dtype(), None);
    }

    #[test]
    fn published_config_parses() {
        // config.json of Qwen/Qwen2-Audio-7B-Instruct (fields as published).
        let text = r#"{
          "architectures": ["Qwen2AudioForConditionalGeneration"],
          "audio_config": {"model_type": "qwen2_audio_encoder", "d_model": 1280,
            "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "encoder_layers": 32,
            "num_mel_bins": 128, "max_source_positions": 1500, "scale_embedding": false,
            "activation_function": "gelu"},
          "audio_token_index": 151646,
          "model_type": "qwen2_audio",
          "text_config": {"bos_token_id": 151643, "eos_token_id": 151645,
            "intermediate_size": 11008, "max_position_embeddings": 8192,
            "model_type": "qwen2", "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16",
            "use_mrope": false, "vocab_size": 156032},
          "torch_dtype": "bfloat16",
          "transformers_version": "4.45.0.dev0"
        }"#;
        let c = Qwen2AudioConfig::from_json(text).unwrap();
        assert_eq!(c.text_config.hidden_size, 4096);
        assert_eq!(c.text_config.kv_heads(), 32);
        assert_eq!(c.text_config.head_size(), 128);
        assert_eq!(c.vocab_size(), 156_032);
        assert_eq!(c.max_positions(), 8192);
        assert_eq!(c.eos_token_ids(), vec![151_645]);
        assert_eq!(c.saved_dtype(), Some("bfloat16"));
        assert!(!c.tied_embeddings());
    }

    #[test]
    fn rope_theta_both_spellings() {
        let old = r#"{"model_type":"qwen2_audio","text_config":{"rope_theta":500.0}}"#;
        let new = r#"{"model_type":"qwen2_audio","text_config":{"rope_parameters":{"rope_type":"default","rope_theta":700.0}}}"#;
        assert_eq!(
            Qwen2AudioConfig::from_json(old)
                .unwrap()
                .text_config
                .rope_base(),
            500.0
        );
        assert_eq!(
            Qwen2AudioConfig::from_json(new)
                .unwrap()
                .text_config
                .rope_base(),
            700.0
        );
    }

    #[test]
    fn unsupported_model_type_names_supported() {
        let e = Qwen2AudioConfig::from_json(r#"{"model_type":"llava"}"#).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("llava") && m.contains("qwen2_audio"), "{m}");
    }

    #[test]
    fn audio_token_count_is_25_per_second() {
        assert_eq!(Qwen2AudioConfig::audio_tokens_for_frames(3000), 750);
        assert_eq!(Qwen2AudioConfig::audio_tokens_for_frames(100), 25);
        assert_eq!(Qwen2AudioConfig::audio_tokens_for_frames(1), 0);
        assert_eq!(Qwen2AudioConfig::audio_tokens_for_frames(3), 1);
        assert_eq!(Qwen2AudioConfig::audio_tokens_for_frames(0), 0);
    }
}
