//! The model's tokenizer (tokenizer.json through the `tokenizers` crate), its special-token ids,
//! and UTF-8-safe incremental detokenization for streaming.

use std::path::{Path, PathBuf};

use super::ModelError;

/// The Qwen2 chat and audio special tokens every Qwen2-Audio tokenizer carries.
pub const IM_START: &str = "<|im_start|>";
/// Ends a chat turn; also an end-of-generation token.
pub const IM_END: &str = "<|im_end|>";
/// End of text; also an end-of-generation token.
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// Opens the audio span of a user turn.
pub const AUDIO_BOS: &str = "<|audio_bos|>";
/// Closes the audio span of a user turn.
pub const AUDIO_EOS: &str = "<|audio_eos|>";
/// The placeholder expanded to one position per audio frame.
pub const AUDIO_TOKEN: &str = "<|AUDIO|>";
/// Audio Flamingo 3's placeholder (its tokenizer has no `<|AUDIO|>` nor audio_bos / eos).
pub const SOUND_TOKEN: &str = "<sound>";

/// Ids of the special tokens the prompt and the generation loop need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<|im_start|>`.
    pub im_start: u32,
    /// `<|im_end|>`.
    pub im_end: u32,
    /// `<|endoftext|>`.
    pub end_of_text: u32,
    /// `<|audio_bos|>`, when the tokenizer has it.
    pub audio_bos: Option<u32>,
    /// `<|audio_eos|>`, when the tokenizer has it.
    pub audio_eos: Option<u32>,
    /// The audio placeholder: `<|AUDIO|>`, else Audio Flamingo 3's `<sound>`.
    pub audio: u32,
}

/// A loaded tokenizer.json with the special-token ids resolved.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialTokens,
    path: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("special", &self.special)
            .finish()
    }
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json`; a missing file is an error listing the files the folder holds.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(ModelError::Load(format!(
                "model folder {} has no tokenizer.json (found: {}); copy the tokenizer.json of the model into it",
                dir.display(),
                super::resolve::list_files(dir)
            )));
        }
        Self::from_file(&path)
    }

    /// Loads a tokenizer.json file.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            ModelError::Load(format!("cannot read tokenizer {}: {e}", path.display()))
        })?;
        let id = |tok: &str| {
            inner.token_to_id(tok).ok_or_else(|| {
                ModelError::Load(format!(
                    "tokenizer {} lacks the special token {tok}; the tokenizer.json of a Qwen2-Audio, \
                     Audio Flamingo 3 or Qwen2.5-Omni checkpoint is needed",
                    path.display()
                ))
            })
        };
        let special = SpecialTokens {
            im_start: id(IM_START)?,
            im_end: id(IM_END)?,
            end_of_text: id(END_OF_TEXT)?,
            audio_bos: inner.token_to_id(AUDIO_BOS),
            audio_eos: inner.token_to_id(AUDIO_EOS),
            audio: match inner.token_to_id(AUDIO_TOKEN) {
                Some(a) => a,
                None => id(SOUND_TOKEN).map_err(|_| {
                    ModelError::Load(format!(
                        "tokenizer {} has no audio placeholder ({AUDIO_TOKEN} or {SOUND_TOKEN}); \
                         the tokenizer.json of a Qwen2-Audio, Audio Flamingo 3 or Qwen2.5-Omni \
                         checkpoint is needed",
                        path.display()
                    ))
                })?,
            },
        };
        Ok(Self {
            inner,
            special,
            path: path.to_path_buf(),
        })
    }

    /// The special-token ids.
    pub fn special(&self) -> SpecialTokens {
        self.special
    }

    /// Tokens that end a generation (`<|im_end|>`, `<|endoftext|>`).
    pub fn end_tokens(&self) -> [u32; 2] {
        [self.special.im_end, self.special.end_of_text]
    }

    /// Size of the vocabulary including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The string of a token id, if the vocabulary has it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Id of a single token string, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes text as the reference tokenizer call does (special tokens written in the text are
    /// recognised as such).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.inner
            .encode_fast(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| {
                ModelError::Input(format!(
                    "cannot tokenize the prompt with {}: {e}",
                    self.path.display()
                ))
            })
    }

    /// Decodes ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner.decode(ids, true).map_err(|e| {
            ModelError::Compute(format!(
                "cannot decode token ids with {}: {e}",
                self.path.display()
            ))
        })
    }

    /// The bytes one token stands for: its byte-level piece mapped back to bytes (an added
    /// token's own text), for log-prob entries, which name tokens by their bytes.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let piece = self.inner.id_to_token(id)?;
        let byte_level = matches!(
            self.inner.get_decoder(),
            Some(tokenizers::DecoderWrapper::ByteLevel(_))
        );
        if byte_level {
            if let Some(bytes) = byte_level_bytes(&piece) {
                return Some(bytes);
            }
        }
        match self.inner.decode(&[id], false) {
            Ok(text) if !text.contains('\u{FFFD}') => Some(text.into_bytes()),
            _ => Some(piece.into_bytes()),
        }
    }

    /// The single token id of a choice letter such as `A`; an error when the letter takes
    /// several tokens (its probability could not be read in one step).
    pub fn letter_id(&self, letter: &str) -> Result<u32, ModelError> {
        let ids = self.encode(letter)?;
        match ids.as_slice() {
            [id] => Ok(*id),
            _ => Err(ModelError::Input(format!(
                "choice letter {letter:?} is {} tokens in {}, not one; use single-character letters such as A, B, C",
                ids.len(),
                self.path.display()
            ))),
        }
    }
}

/// GPT-2's byte-level alphabet read back: each char of a piece stands for one byte (printable
/// Latin-1 for itself, the rest shifted to U+0100 onwards); `None` when a char is not in it.
fn byte_level_bytes(piece: &str) -> Option<Vec<u8>> {
    let direct = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    piece
        .chars()
        .map(|c| {
            let c = c as u32;
            if direct(c) {
                return Some(c as u8);
            }
            // the n-th byte outside the direct ranges is written as U+0100 + n
            let n = c.checked_sub(0x100)?;
            (0u32..256)
                .filter(|&b| !direct(b))
                .nth(n as usize)
                .map(|b| b as u8)
        })
        .collect()
}

/// Incremental detokenizer: turns a growing list of token ids into text deltas that are always
/// complete UTF-8, holding back tokens that end inside a multi-byte character.
#[derive(Debug, Default, Clone)]
pub struct DecodeStream {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl DecodeStream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token; returns the text it completes, if any.
    pub fn step(&mut self, tok: &Tokenizer, id: u32) -> Result<Option<String>, ModelError> {
        self.ids.push(id);
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let full = tok.decode(&self.ids[self.prefix_offset..])?;
        if full.len() > prefix.len()
            && !full.ends_with('\u{FFFD}')
            && full.is_char_boundary(prefix.len())
            && full.starts_with(&prefix)
        {
            let delta = full[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            return Ok(Some(delta));
        }
        Ok(None)
    }

    /// Text of tokens still held back (an incomplete character at the end), emitted as is.
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<Option<String>, ModelError> {
        if self.read_offset == self.ids.len() {
            return Ok(None);
        }
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let full = tok.decode(&self.ids[self.prefix_offset..])?;
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        if full.len() > prefix.len()
            && full.is_char_boundary(prefix.len())
            && full.starts_with(&prefix)
        {
            Ok(Some(full[prefix.len()..].to_string()))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_level_pieces_read_back_as_bytes() {
        assert_eq!(super::byte_level_bytes("Ġthe").unwrap(), b" the");
        assert_eq!(super::byte_level_bytes("Ċ").unwrap(), b"\n");
        assert_eq!(
            super::byte_level_bytes("<|im_end|>").unwrap(),
            b"<|im_end|>"
        );
        // "é" is two bytes, written as two chars of the alphabet
        assert_eq!(super::byte_level_bytes("Ã©").unwrap(), "é".as_bytes());
        assert_eq!(super::byte_level_bytes("猫"), None);
    }
}
