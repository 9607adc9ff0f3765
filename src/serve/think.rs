//! `faithscope serve --think-tags`: text the model writes between `<think>` and `</think>` goes
//! to the reply's reasoning channel (`reasoning_content`), the rest to `content`, as vLLM's and
//! llama.cpp's reasoning parsers do for thinking models. A prefill that ends inside an open
//! `<think>` starts the generation in the reasoning channel. Tags split across streamed pieces
//! are held back until they are whole.

/// The opening tag.
pub const OPEN: &str = "<think>";
/// The closing tag.
pub const CLOSE: &str = "</think>";

/// Splits generated text piece by piece into (reasoning?, text) parts.
#[derive(Debug, Default)]
pub struct ThinkSplitter {
    inside: bool,
    held: String,
}

impl ThinkSplitter {
    /// A splitter for a generation that continues `prefill`.
    pub fn after(prefill: Option<&str>) -> ThinkSplitter {
        let p = prefill.unwrap_or("");
        let inside = match (p.rfind(OPEN), p.rfind(CLOSE)) {
            (Some(o), Some(c)) => o > c,
            (Some(_), None) => true,
            _ => false,
        };
        ThinkSplitter {
            inside,
            held: String::new(),
        }
    }

    /// The parts of `piece` that are complete: `(true, text)` for reasoning.
    pub fn push(&mut self, piece: &str) -> Vec<(bool, String)> {
        let mut s = std::mem::take(&mut self.held);
        s.push_str(piece);
        let mut out = Vec::new();
        loop {
            let tag = if self.inside { CLOSE } else { OPEN };
            if let Some(i) = s.find(tag) {
                if i > 0 {
                    out.push((self.inside, s[..i].to_string()));
                }
                s = s[i + tag.len()..].to_string();
                self.inside = !self.inside;
                continue;
            }
            // keep back an end that may be the start of the tag
            let keep = (1..tag.len())
                .rev()
                .find(|&k| {
                    s.len() >= k
                        && s.is_char_boundary(s.len() - k)
                        && tag.starts_with(&s[s.len() - k..])
                })
                .unwrap_or(0);
            let cut = s.len() - keep;
            if cut > 0 {
                out.push((self.inside, s[..cut].to_string()));
            }
            self.held = s[cut..].to_string();
            return out;
        }
    }

    /// What was held back, at the end of the generation.
    pub fn finish(&mut self) -> Vec<(bool, String)> {
        let rest = std::mem::take(&mut self.held);
        if rest.is_empty() {
            Vec::new()
        } else {
            vec![(self.inside, rest)]
        }
    }

    /// A whole text split at once: (reasoning, text).
    pub fn split_all(mut self, text: &str) -> (String, String) {
        let (mut r, mut t) = (String::new(), String::new());
        for (is_r, part) in self.push(text).into_iter().chain(self.finish()) {
            if is_r {
                r.push_str(&part);
            } else {
                t.push_str(&part);
            }
        }
        (r, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_across_pieces_are_found() {
        let mut s = ThinkSplitter::after(None);
        let mut parts = Vec::new();
        for p in ["Hi <th", "ink>let me", " see</thi", "nk> B."] {
            parts.extend(s.push(p));
        }
        parts.extend(s.finish());
        let r: String = parts.iter().filter(|p| p.0).map(|p| p.1.as_str()).collect();
        let t: String = parts
            .iter()
            .filter(|p| !p.0)
            .map(|p| p.1.as_str())
            .collect();
        assert_eq!((r.as_str(), t.as_str()), ("let me see", "Hi  B."));
        // a prefill that opened the block: reasoning first
        let (r, t) = ThinkSplitter::after(Some("Question? <think>")).split_all("hmm</think>A");
        assert_eq!((r.as_str(), t.as_str()), ("hmm", "A"));
        let (r, t) = ThinkSplitter::after(None).split_all("no tags < here");
        assert_eq!((r.as_str(), t.as_str()), ("", "no tags < here"));
    }
}
