//! Models: the backend-neutral [`Reasoner`] seam and the candle Qwen2-Audio backend.
//!
//! Calls are stateless from the caller's side (a conversation in, text or choice probabilities
//! out); a backend may keep a prefix cache so that calls sharing a prefix (audio + question +
//! chain so far) reuse its KV state instead of recomputing it.

pub mod adapter;
pub mod candle_backend;
pub mod chat_template;
pub mod config;
pub mod openai;
pub mod prefix_cache;
pub mod prompt;
pub mod quant_cache;
pub mod qwen2_audio;
pub mod remote;
pub mod resolve;
pub mod sampling;
pub mod tokenizer;

pub use config::Qwen2AudioConfig;
pub use qwen2_audio::{KvCache, Quant, Qwen2Audio, QUANT_NAMES};

use std::ops::ControlFlow;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One finished turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub text: String,
}

/// A prompt: an optional clip attached to the first user turn, the turns, and an optional open
/// assistant turn pre-filled with text (a chain of thought so far, or an answer cue).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conversation {
    /// Clip shown to the model in the first user turn (`Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>`).
    pub audio: Option<PathBuf>,
    /// Finished turns; a backend adds its default system turn when none is given.
    pub messages: Vec<Message>,
    /// Text the open assistant turn starts with; `None` opens an empty assistant turn.
    pub prefill: Option<String>,
}

/// Decoding settings for [`Reasoner::generate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenParams {
    /// Most new tokens to produce.
    pub max_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling mass; 1.0 disables it.
    pub top_p: f64,
    /// Seed of the sampler (ignored when greedy).
    pub seed: u64,
    /// Extra stop strings besides the model's end tokens.
    pub stop: Vec<String>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndToken,
    StopString,
    MaxTokens,
    Cancelled,
}

/// The result of a generation call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Generated text (without the prefill).
    pub text: String,
    /// Generated token ids.
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// What a server sent on its reasoning channel (thinking: `reasoning_content` or
    /// `reasoning`), kept apart from `text`; empty for models in process.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
}

/// Next-token distribution restricted to the choice letters, renormalised over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceProbs {
    /// The letters asked for, in order ("A", "B", ...).
    pub letters: Vec<String>,
    /// Probabilities over `letters`, summing to 1.
    pub probs: Vec<f32>,
    /// Log-probabilities of each letter under the full vocabulary distribution.
    pub logprobs: Vec<f32>,
    /// Letters the backend could not read (not among a server's top alternatives): their
    /// probability is 0 here, so the others' are upper bounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// The error of a [`Reasoner::choice_probs`] call without letters.
pub fn check_letters(letters: &[String]) -> Result<(), ModelError> {
    if letters.is_empty() {
        return Err(ModelError::Input(
            "choice_probs needs at least one choice letter".into(),
        ));
    }
    Ok(())
}

impl ChoiceProbs {
    /// The letters' probabilities renormalised over them from their full-vocabulary
    /// log-probabilities (a letter at minus infinity gets 0).
    pub fn from_logprobs(letters: Vec<String>, logprobs: Vec<f32>) -> ChoiceProbs {
        let max = logprobs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = logprobs.iter().map(|&l| ((l - max) as f64).exp()).collect();
        let sum: f64 = exps.iter().sum();
        let probs = exps.iter().map(|&e| (e / sum) as f32).collect();
        ChoiceProbs {
            letters,
            probs,
            logprobs,
            missing: Vec::new(),
        }
    }

    /// Index of the most likely letter.
    pub fn argmax(&self) -> Option<usize> {
        self.probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    }
}

/// Work counters, for benchmarks and the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Positions run through the decoder.
    pub tokens_computed: u64,
    /// Positions served from a cached prefix instead.
    pub tokens_reused: u64,
    /// Clips encoded by the audio tower.
    pub audio_encoded: u64,
    /// Tokens generated (sampled).
    pub tokens_generated: u64,
    /// Prompt tokens of all requests (prefills).
    pub prompt_tokens: u64,
    /// Of those, the ones served from a cached prefix, where the backend knows (a server tells
    /// it in `usage.prompt_tokens_details.cached_tokens`).
    pub prompt_tokens_cached: Option<u64>,
}

impl ModelStats {
    /// The share of prompt tokens served from a cached prefix, where known.
    pub fn cached_share(&self) -> Option<f64> {
        let cached = self.prompt_tokens_cached?;
        (self.prompt_tokens > 0).then(|| cached as f64 / self.prompt_tokens as f64)
    }
}

/// Errors of any backend; messages name the file, tensor or lengths involved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Load(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Compute(String),
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
}

/// The seam between faithfulness logic / UI and any model backend.
pub trait Reasoner: Send + Sync {
    /// A short name for manifests and the UI (model folder or id).
    fn name(&self) -> &str;

    /// Continues the conversation's open assistant turn. `on_delta` receives each new piece of
    /// text as soon as it is complete UTF-8; returning `ControlFlow::Break(())` cancels.
    fn generate(
        &self,
        conv: &Conversation,
        params: &GenParams,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError>;

    /// Several generations without streaming, in order, each as [`Reasoner::generate`] gives
    /// it alone (greedy tokens identical). A backend that can decode several sequences per step
    /// (the candle one) does so; the default runs them one after another. One request's error
    /// does not stop the others.
    fn generate_batch(
        &self,
        requests: &[(Conversation, GenParams)],
    ) -> Vec<Result<Generation, ModelError>> {
        requests
            .iter()
            .map(|(c, p)| self.generate(c, p, &mut |_| ControlFlow::Continue(())))
            .collect()
    }

    /// The next-token distribution after the conversation (whose open assistant turn ends with
    /// an answer cue such as `The answer is (`), restricted to `letters`, in one forward step.
    fn choice_probs(
        &self,
        conv: &Conversation,
        letters: &[String],
    ) -> Result<ChoiceProbs, ModelError>;

    /// What the user should know about where the model runs (a server's address and what it
    /// was found to do); `None` for a model in process.
    fn describe(&self) -> Option<String> {
        None
    }

    /// Whether [`Reasoner::choice_probs`] can be read at all; `false` for servers that return
    /// no log-probabilities (hosted APIs), whose answers are then read from generated text.
    fn has_logprobs(&self) -> bool {
        true
    }

    /// Number of tokens `text` takes in this model's vocabulary, when the backend can say (used
    /// to build filler chains of the same token length); `None` makes callers count words.
    fn count_tokens(&self, _text: &str) -> Option<usize> {
        None
    }

    /// Seconds of audio the model takes in; longer clips are cut to it (with a warning). `None`
    /// when the backend does not say.
    fn audio_window_seconds(&self) -> Option<f64> {
        None
    }

    /// Work counters since the backend was created.
    fn stats(&self) -> ModelStats {
        ModelStats::default()
    }
}
