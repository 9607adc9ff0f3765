//! The OpenAI-compatible chat wire format, as far as faithscope speaks it: the request and
//! response bodies of `/v1/chat/completions` (plain and streamed), `/v1/models` and `/tokenize`,
//! the error body, and the mapping between a [`Conversation`] and chat messages. Shared by the
//! remote client ([`super::remote`]) and `faithscope serve` ([`crate::serve`]), so that a
//! conversation sent by one is read back by the other as the same prompt.
//!
//! Audio goes in the first user turn as `[text "Audio 1: ", input_audio, text "\n" + question]`:
//! llama.cpp's server renders exactly faithscope's (and the reference template's) prompt from it,
//! and the reader below turns it back into the bare question. The system turn is always sent, so
//! servers that add none by themselves see the reference default.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prompt::DEFAULT_SYSTEM;
use super::{Conversation, Message, Role};

/// The text before the clip in the first user turn.
pub const AUDIO_LEAD: &str = "Audio 1: ";

/// `POST /v1/chat/completions`. Unknown fields are refused (a misspelt option must not be
/// ignored silently).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// Served model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Server-sent events, one chunk per piece of text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Stream options: `{"include_usage": true}` adds a last chunk with the token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<Value>,
    /// Most new tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// The newer name of `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<usize>,
    /// 0 is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Sampler seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop strings: one or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Return log-probabilities of the generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// How many alternatives per position (with `logprobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<usize>,
    /// These token ids' log-probabilities as well, exactly (vLLM's extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprob_token_ids: Option<Vec<u32>>,
    /// Continue the trailing assistant message instead of opening a new turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_final_message: Option<bool>,
    /// Open a new assistant turn after the messages (false with `continue_final_message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_generation_prompt: Option<bool>,
}

/// One or several stop strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    /// The strings.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text, or a list of parts.
    pub content: Content,
}

/// A message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Part {
    Text { text: String },
    InputAudio { input_audio: InputAudio },
}

/// A clip inline: base64 data and its container format (`wav`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputAudio {
    pub data: String,
    pub format: String,
}

/// A non-streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The one choice of a completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: usize,
    pub message: ReplyMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
}

/// The assistant's reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyMessage {
    /// `assistant`; empty in the text chunks of a stream (then not sent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    /// Reasoning text, kept apart from the answer (vLLM: `reasoning`, llama.cpp:
    /// `reasoning_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

/// Log-probabilities of the generated tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceLogprobs {
    #[serde(default)]
    pub content: Vec<TokenLogprob>,
}

/// One generated token with its log-probability and the alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    /// The token id (llama.cpp and faithscope serve send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

/// One alternative at a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
}

/// Token counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    /// vLLM (with `--enable-prompt-tokens-details`), OpenAI: how many prompt tokens came from
    /// the prefix cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// The parts of the prompt's token count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Served from the prefix cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<usize>,
}

/// One server-sent event of a streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// The usage chunk (`stream_options.include_usage`) has it, with no choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The choice of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: ReplyMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelCard>,
}

/// One served model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub owned_by: String,
    /// Context length, when the server says (vLLM, faithscope serve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<usize>,
    /// Seconds of audio the model takes in (faithscope serve): the client cuts clips to it
    /// itself, so that the samples are the ones the model would decode in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_window_seconds: Option<f64>,
}

/// `POST /tokenize`: vLLM takes `prompt`, llama.cpp `content`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special_tokens: Option<bool>,
}

/// The ids of a tokenized text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenizeResponse {
    pub tokens: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<usize>,
}

/// OpenAI's error body: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: Option<Value>,
}

/// The chat messages of `conv`: its system turn (the reference default when it has none), its
/// turns with the clip (`audio_b64`, a WAV) in the first user turn, and its prefill as a trailing
/// assistant message. Returns the messages and whether the last one is to be continued.
pub fn messages_of(conv: &Conversation, audio_b64: Option<&str>) -> (Vec<ChatMessage>, bool) {
    let role = |r: Role| match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let mut out = Vec::new();
    if conv.messages.first().is_none_or(|m| m.role != Role::System) {
        out.push(ChatMessage {
            role: "system".into(),
            content: Content::Text(DEFAULT_SYSTEM.into()),
        });
    }
    let mut audio = audio_b64;
    for m in &conv.messages {
        let content = match (m.role, audio) {
            (Role::User, Some(data)) => {
                audio = None;
                Content::Parts(vec![
                    Part::Text {
                        text: AUDIO_LEAD.into(),
                    },
                    Part::InputAudio {
                        input_audio: InputAudio {
                            data: data.to_string(),
                            format: "wav".into(),
                        },
                    },
                    Part::Text {
                        text: format!("\n{}", m.text),
                    },
                ])
            }
            _ => Content::Text(m.text.clone()),
        };
        out.push(ChatMessage {
            role: role(m.role).into(),
            content,
        });
    }
    let cont = conv.prefill.is_some();
    if let Some(p) = &conv.prefill {
        out.push(ChatMessage {
            role: "assistant".into(),
            content: Content::Text(p.clone()),
        });
    }
    (out, cont)
}

/// The messages of a request read back as a conversation (its audio left unset) and the clip's
/// base64 data, if any. `continue_last` takes a trailing assistant message as the prefill.
/// Errors name the message and what is wrong.
pub fn conversation_of(
    messages: &[ChatMessage],
    continue_last: bool,
) -> Result<(Conversation, Option<InputAudio>), String> {
    let mut conv = Conversation::default();
    let mut audio: Option<InputAudio> = None;
    let n = messages.len();
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(format!(
                    "messages[{i}].role: unknown role \"{other}\" (use system, user or assistant)"
                ))
            }
        };
        let text = match &m.content {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => {
                let mut text = String::new();
                let mut after_audio = false;
                for part in parts {
                    match part {
                        Part::Text { text: t } => {
                            if after_audio && text.is_empty() {
                                // "\n" + question after the clip: the newline is the template's
                                text.push_str(t.strip_prefix('\n').unwrap_or(t));
                            } else {
                                text.push_str(t);
                            }
                        }
                        Part::InputAudio { input_audio } => {
                            if role != Role::User {
                                return Err(format!(
                                    "messages[{i}]: audio is accepted in user messages only"
                                ));
                            }
                            if audio.is_some() {
                                return Err(format!(
                                    "messages[{i}]: a second clip; one clip per conversation is supported"
                                ));
                            }
                            // "Audio 1: " before the clip is the template's own lead
                            if text == AUDIO_LEAD || text.trim().is_empty() {
                                text.clear();
                            }
                            audio = Some(input_audio.clone());
                            after_audio = true;
                        }
                    }
                }
                text
            }
        };
        if continue_last && i + 1 == n {
            if role != Role::Assistant {
                return Err(format!(
                    "continue_final_message needs a trailing assistant message; messages[{i}] is {}",
                    m.role
                ));
            }
            conv.prefill = Some(text);
        } else {
            conv.messages.push(Message { role, text });
        }
    }
    if !conv.messages.iter().any(|m| m.role == Role::User) {
        return Err("messages: no user message".into());
    }
    Ok((conv, audio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_survives_the_wire() {
        let conv = Conversation {
            audio: Some("clip.wav".into()),
            messages: vec![Message {
                role: Role::User,
                text: "Which animal?\n(A) cat\n(B) dog".into(),
            }],
            prefill: Some("Let me think. The answer is (".into()),
        };
        let (msgs, cont) = messages_of(&conv, Some("UklGRg=="));
        assert!(cont);
        assert_eq!(msgs[0].role, "system");
        let json = serde_json::to_string(&msgs).unwrap();
        assert!(
            json.contains(
                r#"{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}}"#
            ),
            "{json}"
        );
        let back: Vec<ChatMessage> = serde_json::from_str(&json).unwrap();
        let (got, audio) = conversation_of(&back, true).unwrap();
        assert_eq!(audio.unwrap().data, "UklGRg==");
        // the explicit default system turn renders as the implicit one
        assert_eq!(got.messages[0].text, DEFAULT_SYSTEM);
        assert_eq!(&got.messages[1..], &conv.messages[..]);
        assert_eq!(got.prefill, conv.prefill);
        let mut expected = conv.clone();
        expected.messages.insert(
            0,
            Message {
                role: Role::System,
                text: DEFAULT_SYSTEM.into(),
            },
        );
        let with_audio = Conversation {
            audio: conv.audio.clone(),
            ..got
        };
        assert_eq!(
            super::super::prompt::render(&with_audio).unwrap(),
            super::super::prompt::render(&conv).unwrap()
        );
    }

    #[test]
    fn bad_requests_are_named() {
        let req: Result<ChatRequest, _> =
            serde_json::from_str(r#"{"messages": [], "temprature": 0}"#);
        assert!(req.unwrap_err().to_string().contains("temprature"));
        let msgs: Vec<ChatMessage> =
            serde_json::from_str(r#"[{"role": "robot", "content": "hi"}]"#).unwrap();
        assert!(conversation_of(&msgs, false).unwrap_err().contains("robot"));
        let msgs: Vec<ChatMessage> =
            serde_json::from_str(r#"[{"role": "user", "content": "hi"}]"#).unwrap();
        assert!(conversation_of(&msgs, true)
            .unwrap_err()
            .contains("trailing assistant"));
    }
}
