//! Chat prompts rendered exactly as the reference Qwen2-Audio processor and chat template render
//! them, and the expansion of `<|AUDIO|>` to one position per audio frame.

use std::ops::Range;

use super::tokenizer::{
    Tokenizer, AUDIO_BOS, AUDIO_EOS, AUDIO_TOKEN, IM_END, IM_START, SOUND_TOKEN,
};
use super::{Conversation, ModelError, Role};

/// The system turn the reference template adds when a conversation has none.
pub const DEFAULT_SYSTEM: &str = "You are a helpful assistant.";

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Renders a conversation as the reference chat template does, with one `<|AUDIO|>` placeholder
/// in the first user turn when the conversation has a clip, and an open assistant turn
/// (`<|im_start|>assistant\n` + prefill) at the end.
pub fn render(conv: &Conversation) -> Result<String, ModelError> {
    let mut out = String::new();
    let mut audio_placed = conv.audio.is_none();
    for (i, msg) in conv.messages.iter().enumerate() {
        if i == 0 && msg.role != Role::System {
            out.push_str(&format!("{IM_START}system\n{DEFAULT_SYSTEM}{IM_END}\n"));
        }
        out.push_str(IM_START);
        out.push_str(role_name(msg.role));
        out.push('\n');
        if msg.role == Role::User && !audio_placed {
            out.push_str(&format!("Audio 1: {AUDIO_BOS}{AUDIO_TOKEN}{AUDIO_EOS}\n"));
            audio_placed = true;
        }
        out.push_str(&msg.text);
        out.push_str(IM_END);
        out.push('\n');
    }
    if !audio_placed {
        return Err(ModelError::Input(
            "the conversation has a clip but no user turn to attach it to; add a user message with the question".into(),
        ));
    }
    out.push_str(IM_START);
    out.push_str("assistant\n");
    if let Some(prefill) = &conv.prefill {
        out.push_str(prefill);
    }
    Ok(out)
}

/// A rendered and tokenized prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The template's text with a single `<|AUDIO|>` placeholder.
    pub text: String,
    /// Token ids with the placeholder expanded to `audio_range.len()` audio positions.
    pub ids: Vec<u32>,
    /// Positions of the audio frames in `ids`, if the prompt has a clip.
    pub audio_range: Option<Range<usize>>,
}

impl Prompt {
    /// The text as the reference processor feeds it to the tokenizer (placeholder repeated once
    /// per audio position).
    pub fn expanded_text(&self) -> String {
        let placeholder = if self.text.contains(AUDIO_TOKEN) {
            AUDIO_TOKEN
        } else {
            SOUND_TOKEN
        };
        match &self.audio_range {
            Some(r) => self
                .text
                .replacen(placeholder, &placeholder.repeat(r.len()), 1),
            None => self.text.clone(),
        }
    }
}

/// Renders and tokenizes a conversation, expanding the audio placeholder to `n_audio` positions
/// (ignored without a clip).
pub fn build(conv: &Conversation, tok: &Tokenizer, n_audio: usize) -> Result<Prompt, ModelError> {
    let text = render(conv)?;
    tokenize(
        text,
        conv.audio.is_some(),
        tok,
        tok.special().audio,
        n_audio,
    )
}

/// Tokenizes a rendered prompt `text` (one `audio_id` placeholder when `has_audio`), expanding
/// the placeholder to `n_audio` positions.
pub fn tokenize(
    text: String,
    has_audio: bool,
    tok: &Tokenizer,
    audio_id: u32,
    n_audio: usize,
) -> Result<Prompt, ModelError> {
    let raw = tok.encode(&text)?;
    let placeholders = raw.iter().filter(|&&id| id == audio_id).count();
    let expected = usize::from(has_audio);
    if placeholders != expected {
        let name = tok
            .id_to_token(audio_id)
            .unwrap_or_else(|| AUDIO_TOKEN.into());
        return Err(ModelError::Input(format!(
            "the prompt holds {placeholders} {name} tokens but {expected} clip(s); remove {name} from the question or chain text"
        )));
    }
    let mut ids = Vec::with_capacity(raw.len() + n_audio);
    let mut audio_range = None;
    for id in raw {
        if id == audio_id {
            audio_range = Some(ids.len()..ids.len() + n_audio);
            ids.extend(std::iter::repeat_n(audio_id, n_audio));
        } else {
            ids.push(id);
        }
    }
    Ok(Prompt {
        text,
        ids,
        audio_range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Message;

    #[test]
    fn renders_reference_layout() {
        let conv = Conversation {
            audio: Some("a.wav".into()),
            messages: vec![Message {
                role: Role::User,
                text: "What is it?".into(),
            }],
            prefill: Some("Let me think.".into()),
        };
        assert_eq!(
            render(&conv).unwrap(),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhat is it?<|im_end|>\n<|im_start|>assistant\nLet me think."
        );
    }

    #[test]
    fn given_system_turn_replaces_default() {
        let conv = Conversation {
            audio: None,
            messages: vec![
                Message {
                    role: Role::System,
                    text: "Be brief.".into(),
                },
                Message {
                    role: Role::User,
                    text: "Hi".into(),
                },
            ],
            prefill: None,
        };
        assert_eq!(
            render(&conv).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn clip_without_user_turn_is_an_error() {
        let conv = Conversation {
            audio: Some("a.wav".into()),
            messages: vec![],
            prefill: None,
        };
        assert!(render(&conv).is_err());
    }
}
