//! Chat prompts rendered from a checkpoint's own chat template (`chat_template.jinja`, else the
//! `chat_template` string of `tokenizer_config.json`) with minijinja, the way transformers'
//! `apply_chat_template` renders them: the clip as an audio part at the start of the first user
//! turn, a prefill as a final assistant message continued (`continue_final_message`: the text is
//! cut right after that message's content), else a generation prompt.
//!
//! tests/chat_templates.rs checks the texts against transformers' for the model folders here.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Conversation, ModelError, Role};

/// A checkpoint's chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    origin: PathBuf,
}

impl ChatTemplate {
    /// The template of a model folder: `chat_template.jinja`, else `tokenizer_config.json`'s
    /// `chat_template` (a string); `None` when the folder has neither.
    pub fn from_folder(dir: &Path) -> Result<Option<ChatTemplate>, ModelError> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let source = std::fs::read_to_string(&jinja)
                .map_err(|e| ModelError::Load(format!("cannot read {}: {e}", jinja.display())))?;
            return Ok(Some(ChatTemplate {
                source,
                origin: jinja,
            }));
        }
        let cfg = dir.join("tokenizer_config.json");
        let Ok(text) = std::fs::read_to_string(&cfg) else {
            return Ok(None);
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Load(format!("{} is not JSON: {e}", cfg.display())))?;
        Ok(v.get("chat_template")
            .and_then(Value::as_str)
            .map(|s| ChatTemplate {
                source: s.to_string(),
                origin: cfg,
            }))
    }

    /// Where the template came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The prompt text of `conv`, with the template's audio placeholder where the clip goes.
    pub fn render(&self, conv: &Conversation) -> Result<String, ModelError> {
        let err = |e: minijinja::Error| {
            ModelError::Input(format!(
                "the chat template {} failed: {e:#}",
                self.origin.display()
            ))
        };
        let mut env = minijinja::Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", &self.source).map_err(err)?;
        let mut messages = Vec::new();
        let mut audio = conv.audio.is_some();
        for m in &conv.messages {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let content = if m.role == Role::User && audio {
                audio = false;
                json!([{"type": "audio", "audio_url": "clip"}, {"type": "text", "text": m.text}])
            } else {
                Value::String(m.text.clone())
            };
            messages.push(json!({"role": role, "content": content}));
        }
        if audio {
            return Err(ModelError::Input(
                "the conversation has a clip but no user turn to attach it to; add a user message with the question".into(),
            ));
        }
        let prefill = conv.prefill.as_deref().filter(|p| !p.is_empty());
        if let Some(p) = prefill {
            messages.push(json!({"role": "assistant", "content": p}));
        }
        let tmpl = env.get_template("chat").map_err(err)?;
        let text = tmpl
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => prefill.is_none(),
                bos_token => "",
                eos_token => "",
            })
            .map_err(err)?;
        match prefill {
            None => Ok(text),
            // continue_final_message: cut right after the final message's content
            Some(p) => match text.rfind(p) {
                Some(at) => Ok(text[..at + p.len()].to_string()),
                None => match text.rfind(p.trim()) {
                    Some(at) => Ok(text[..at + p.trim().len()].to_string()),
                    None => Err(ModelError::Input(format!(
                        "the chat template {} does not render the prefilled assistant text, so it cannot be continued",
                        self.origin.display()
                    ))),
                },
            },
        }
    }
}
