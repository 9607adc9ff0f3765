//! Chat prompts rendered from a checkpoint's own chat template (`chat_template.jinja`, else the
//! `chat_template` string of `tokenizer_config.json`) with minijinja, the way transformers'
//! `apply_chat_template` renders them: the clip as an audio part of the first user turn (before
//! the text, or after it for Qwen2.5-Omni), a prefill as a final assistant message continued (`continue_final_message`: the text is
//! cut right after that message's content), else a generation prompt.
//!
//! tests/chat_templates.rs checks the texts against transformers' for the model folders here.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::config::Arch;
use super::{Conversation, ModelError, Role};

/// The chat template of the published nvidia/audio-flamingo-3-hf processor: `<sound>` first,
/// then the turn's text.
pub const AF3_TEMPLATE: &str = "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}{% for m in messages if m['content'] is not none %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}{% else %}{% set audio = namespace(found=False) %}{% set text_buf = namespace(v='') %}{% for c in m['content'] %}{% if c.get('type') == 'audio' or 'audio' in c %}{% set audio.found = True %}{% elif c.get('type') == 'text' or 'text' in c %}{% set text_buf.v = text_buf.v + c['text'] %}{% endif %}{% endfor %}{% if audio.found %}{{ '<sound>' }}{% endif %}{{ text_buf.v }}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// The chat template of the published Qwen/Qwen2.5-Omni-7B processor.
pub const OMNI_TEMPLATE: &str = "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}{% set audio_count.value = audio_count.value + 1 %}{% if add_audio_id %}Audio {{ audio_count.value }}: {% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A checkpoint's chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    origin: PathBuf,
    audio_last: bool,
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
                audio_last: false,
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
                audio_last: false,
            }))
    }

    /// The published template of an architecture, for folders that carry none.
    pub fn builtin(arch: Arch) -> ChatTemplate {
        let source = match arch {
            Arch::Qwen2Audio => crate::train::tokenizer::CHAT_TEMPLATE,
            Arch::AudioFlamingo3 => AF3_TEMPLATE,
            Arch::Qwen25Omni => OMNI_TEMPLATE,
        };
        ChatTemplate {
            source: source.to_string(),
            origin: PathBuf::from(format!("(built-in {} template)", arch.label())),
            audio_last: false,
        }
        .for_arch(arch)
    }

    /// Where `arch`'s prompts put the clip in the user turn's content: after the text for
    /// Qwen2.5-Omni (as the paper's code gives it), before it otherwise (Audio Flamingo 3's
    /// template puts `<sound>` first whatever the order).
    pub fn for_arch(mut self, arch: Arch) -> ChatTemplate {
        self.audio_last = arch == Arch::Qwen25Omni;
        self
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
        // Python's str / dict methods (`c.get('type')`, `.strip()`) as transformers' Jinja has them.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
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
                let clip = json!({"type": "audio", "audio_url": "clip"});
                let text = json!({"type": "text", "text": m.text});
                if self.audio_last {
                    json!([text, clip])
                } else {
                    json!([clip, text])
                }
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
