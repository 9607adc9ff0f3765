//! Sentence splitting of reasoning chains.
//!
//! The paper splits chains with NLTK punkt (English model). The `punkt` crate needs nightly Rust,
//! so this is our own rule-based splitter that follows punkt's decisions on model-written
//! reasoning and deliberately departs from it where punkt is wrong for our texts:
//!
//! - A sentence ends after `.`, `?`, `!` or an ellipsis (plus any closing quotes or brackets)
//!   when whitespace and then a new token follow, or at a paragraph break (blank line) or a line
//!   that starts a bullet or numbered list item; a Markdown heading line is a sentence of its own.
//! - No break inside numbers or units ("0.4 s", "3.5 kHz"): a period must be followed by
//!   whitespace to end a sentence.
//! - No break after known abbreviations ("e.g.", "i.e.", "Dr.", "vs.", "approx.", the abbreviations
//!   of punkt's English model); titles ("Dr.", "Mr.") never end a sentence, other abbreviations
//!   do when the next word is a capitalised frequent sentence starter ("etc. The ..."). Units
//!   ("s", "ms", "kHz", "dB") are words: "It lasts 200 ms. Then ..." ends a sentence.
//! - No break when the next word starts with a lowercase letter (quoted speech such as
//!   `"Is it?" she asked`, or a mid-sentence "e.g. the"); punkt does break there.
//! - A list number at the start of a sentence or line ("1. First ...") is not a sentence.
//! - A single-letter initial followed by another initial ("J. R. Smith") does not break.
//!
//! Agreement with punkt on the paper's real chains is measured by `tests/faith_split.rs` against
//! the expected splits written by `tools/punkt_splits.py`.

use std::ops::Range;

/// Abbreviations (lowercase, without the final period) after which a period does not end a
/// sentence. Punkt's English model (its `abbrev_types`) plus ones common in reasoning text.
#[rustfmt::skip]
const ABBREVIATIONS: &[&str] = &[
    // ours
    "e.g", "i.e", "eg", "ie", "vs", "approx", "etc", "cf", "al", "fig", "figs", "eq", "vol", "ca",
    "dept", "resp", "viz", "ref", "mt",
    "mr", "mrs", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp", "bros",
    // punkt english abbrev_types, less its single letters (initials, handled apart) and its
    // units ("mg", "ft"): a sentence may end with a unit, "lasts 200 ms. Then ..."
    "ct", "m.j", "a.c", "n.h", "p.a.m", "pa", "p.m", "u.k", "dec", "u.s.a", "lt", "g.k", "adm",
    "h.m", "ga", "tenn", "yr", "sen", "n.c", "j.j", "d.h", "s.g", "s.p.a", "a.t", "feb", "jan",
    "s.a.y", "n.y", "col", "g.f", "c.o.m.b", "va", "r.k", "e.f", "chg", "r.i", "a.g", "minn",
    "a.h", "n.j", "l.f", "f.j", "gen", "i.m.s", "s.a", "aug", "j.p", "okla", "m.d.c", "oct", "vt",
    "r.a", "j.c", "ariz", "w.w", "b.v", "ore", "w.r", "e.h", "cie", "n.v", "a.d", "r.j", "ok",
    "e.m", "w.c", "ill", "nov", "u.s", "conn", "u.s.s.r", "f.g", "ph.d", "calif", "messrs",
    "h.f", "wash", "tues", "sw", "u.n", "wis", "sep", "d.c", "ave", "e.l", "s.s", "reps", "r.t",
    "h.c", "wed", "a.s", "fla", "r.h", "c.v", "m.b.a", "rep", "a.a", "c.i.t", "l.a", "b.f", "j.b",
    "d.w", "j.k", "ala", "w.va", "sept", "mich", "n.m", "j.r", "l.p", "s.c", "colo", "fri", "a.m",
    "g.d", "kan", "maj", "ky", "a.m.e", "n.d", "t.j", "cos", "nev",
];

/// Abbreviations that precede a name and never end a sentence.
#[rustfmt::skip]
const TITLES: &[&str] = &[
    "dr", "mr", "mrs", "prof", "st", "messrs", "gen", "col", "maj", "lt", "sen", "rep",
    "adm", "e.g", "i.e", "eg", "ie", "vs", "cf", "approx", "viz", "fig", "eq",
];

/// Punkt's English frequent sentence starters: after an ordinary abbreviation, a capitalised
/// one of these starts a new sentence.
#[rustfmt::skip]
const SENT_STARTERS: &[&str] = &[
    "most", "he", "since", "so", "both", "these", "it", "nevertheless", "this", "indeed",
    "however", "instead", "under", "similarly", "some", "though", "while", "when", "in", "despite",
    "although", "nonetheless", "thus", "there", "if", "the", "nor", "separately", "moreover",
    "but", "they", "yet", "many", "according", "sales", "among", "meanwhile", "even", "i",
    // ours: common openings of reasoning sentences
    "therefore", "hence", "a", "an", "based", "given", "considering", "finally", "so,",
];

/// Characters that may close a sentence after its final punctuation.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '}' | '\u{201d}' | '\u{2019}' | '*' | '_'
    )
}

/// Byte spans of the sentences of `text`, trimmed of surrounding whitespace, in order.
/// Joining the spans' texts with single spaces gives back the text up to whitespace.
pub fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = skip_ws(text, 0);
    let mut i = start;
    while i < text.len() {
        let c = char_at(text, i);
        // Line-based breaks: blank line, or a new line that starts a list item.
        if c == '\n' {
            let next = skip_ws(text, i);
            let blank = text[i..next].matches('\n').count() >= 2;
            let line_start = text[..i].rfind('\n').map_or(0, |p| p + 1);
            let heading = text[line_start..i].trim_start().starts_with('#');
            let block = blank || heading || starts_block(&text[next..]);
            if next < text.len() && next > start && block {
                push_span(text, &mut spans, start, i);
                start = next;
                i = next;
                // A list marker is part of its item; do not let "1." end the item below.
                i = skip_list_marker(text, i);
                continue;
            }
            i += 1;
            continue;
        }
        if matches!(c, '.' | '?' | '!' | '\u{2026}') {
            // Extend over the whole run of terminal punctuation and closers.
            let mut end = i;
            while end < text.len() {
                let d = char_at(text, end);
                if matches!(d, '.' | '?' | '!' | '\u{2026}') || is_closer(d) {
                    end += d.len_utf8();
                } else {
                    break;
                }
            }
            let next = skip_ws(text, end);
            let has_space = next > end;
            if next >= text.len() {
                // End of text: the rest is one sentence.
                break;
            }
            if has_space && is_break(text, start, i, end, next) {
                push_span(text, &mut spans, start, end);
                start = next;
                i = skip_list_marker(text, next);
                continue;
            }
            i = end.max(i + 1);
            continue;
        }
        i += c.len_utf8();
    }
    push_span(text, &mut spans, start, text.len());
    spans
}

/// The sentences of `text` as owned strings (see [`sentence_spans`]).
pub fn split_sentences(text: &str) -> Vec<String> {
    Splitter::Faithscope.split(text)
}

/// Which sentence splitter a protocol uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Splitter {
    /// [`sentence_spans`]: Markdown emphasis closing a sentence (`... cat.**`) stays with it.
    #[default]
    Faithscope,
    /// NLTK punkt's behaviour as the paper's code saw it: a run of `*` or `_` after a sentence's
    /// final punctuation is not part of that sentence; at the end of the chain it is a "sentence"
    /// of its own (so dropping the last sentence drops only `**`), elsewhere it opens the next.
    Punkt,
}

impl Splitter {
    /// Byte spans of the sentences of `text`.
    pub fn spans(self, text: &str) -> Vec<Range<usize>> {
        let spans = sentence_spans(text);
        match self {
            Splitter::Faithscope => spans,
            Splitter::Punkt => punkt_markup(text, spans),
        }
    }

    /// The sentences of `text` as owned strings.
    pub fn split(self, text: &str) -> Vec<String> {
        self.spans(text)
            .into_iter()
            .map(|r| text[r].to_string())
            .collect()
    }
}

/// Moves a trailing run of `*` / `_` after final punctuation out of its sentence, as punkt does.
fn punkt_markup(text: &str, spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let n = spans.len();
    let mut out = Vec::with_capacity(n + 1);
    let mut carry: Option<usize> = None;
    for (k, r) in spans.into_iter().enumerate() {
        let start = carry.take().unwrap_or(r.start);
        let s = &text[start..r.end];
        let kept = s.trim_end_matches(['*', '_']);
        let punct = kept.ends_with(['.', '?', '!', '\u{2026}']);
        if kept.len() < s.len() && punct && !kept.trim().is_empty() {
            let cut = start + kept.len();
            out.push(start..cut);
            if k + 1 == n {
                out.push(cut..r.end);
            } else {
                carry = Some(cut);
            }
        } else {
            out.push(start..r.end);
        }
    }
    out
}

/// Joins sentences back into a chain with single spaces, as the paper does.
pub fn join_sentences<S: AsRef<str>>(sentences: &[S]) -> String {
    sentences
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decides whether the punctuation run `text[punct..end]` (the sentence began at `start`, the
/// next token begins at `next`) ends a sentence.
fn is_break(text: &str, start: usize, punct: usize, end: usize, next: usize) -> bool {
    let next_word = word_at(text, next);
    let first = next_word.chars().next().unwrap_or(' ');
    if first.is_lowercase() {
        return false;
    }
    let run = &text[punct..end];
    let period_final = run.starts_with('.') && !run.starts_with("..") && !run.contains(['?', '!']);
    if !period_final {
        return true;
    }
    // The token before the period, from the last whitespace.
    let tok_start = text[..punct]
        .rfind(char::is_whitespace)
        .map(|p| p + 1)
        .unwrap_or(0)
        .max(start);
    let token = text[tok_start..punct].trim_start_matches(['(', '"', '\'', '[', '\u{201c}']);
    let lower = token.to_lowercase();
    if TITLES.contains(&lower.as_str()) {
        return false;
    }
    if ABBREVIATIONS.contains(&lower.as_str()) {
        let next_lower = next_word
            .trim_end_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        return first.is_uppercase() && SENT_STARTERS.contains(&next_lower.as_str());
    }
    // A list number at the start of the sentence: "1. First step".
    if tok_start == start && !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    // Initials: "J. R. Smith".
    let is_initial = token.chars().count() == 1 && token.chars().all(char::is_alphabetic);
    if is_initial {
        let nw = next_word.trim_end_matches([',', ';', ':']);
        let next_is_initial =
            nw.chars().count() == 2 && nw.ends_with('.') && nw.starts_with(char::is_alphabetic);
        // "J. R. Smith": the initial follows another initial.
        let before = text[start..tok_start].trim_end();
        let prev = before.rsplit(char::is_whitespace).next().unwrap_or("");
        let prev_is_initial = prev.chars().count() == 2
            && prev.ends_with('.')
            && prev.starts_with(char::is_uppercase);
        if next_is_initial || prev_is_initial {
            return false;
        }
    }
    true
}

/// Whether `rest` (the start of a line) begins a bullet or numbered list item or a heading.
fn starts_block(rest: &str) -> bool {
    rest.starts_with('#') || list_marker_len(rest).is_some()
}

/// Length in bytes of a list marker ("- ", "* ", "• ", "1. ", "2) ", "a) ") at the start of `rest`.
fn list_marker_len(rest: &str) -> Option<usize> {
    let mut chars = rest.char_indices();
    let (_, c) = chars.next()?;
    if matches!(c, '-' | '*' | '\u{2022}' | '+') {
        let after = rest[c.len_utf8()..].chars().next()?;
        return (after == ' ').then_some(c.len_utf8() + 1);
    }
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && digits <= 3 {
        let tail = &rest[digits..];
        if tail.starts_with(". ") || tail.starts_with(") ") {
            return Some(digits + 2);
        }
    }
    None
}

/// Position after a list marker at `i`, or `i` when there is none.
fn skip_list_marker(text: &str, i: usize) -> usize {
    match list_marker_len(&text[i..]) {
        Some(n) => i + n,
        None => i,
    }
}

/// The character at byte offset `i` (which must be a char boundary).
fn char_at(text: &str, i: usize) -> char {
    text[i..].chars().next().unwrap_or(' ')
}

/// First non-whitespace byte offset at or after `i`.
fn skip_ws(text: &str, i: usize) -> usize {
    text[i..]
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map(|(p, _)| i + p)
        .unwrap_or(text.len())
}

/// The whitespace-delimited word starting at `i`, without leading quotes or brackets.
fn word_at(text: &str, i: usize) -> &str {
    let rest = &text[i..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].trim_start_matches(['(', '"', '\'', '[', '\u{201c}', '\u{2018}', '*', '_'])
}

/// Pushes the trimmed span `start..end` when it is not empty.
fn push_span(text: &str, spans: &mut Vec<Range<usize>>, start: usize, end: usize) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trimmed = s.trim();
    if !trimmed.is_empty() {
        spans.push(start + lead..start + lead + trimmed.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(t: &str) -> Vec<String> {
        split_sentences(t)
    }

    #[test]
    fn punkt_mode_splits_closing_emphasis_like_punkt() {
        let t = "I hear a cat. So the answer is: **(D) cat.**";
        assert_eq!(
            Splitter::Faithscope.split(t),
            ["I hear a cat.", "So the answer is: **(D) cat.**"]
        );
        assert_eq!(
            Splitter::Punkt.split(t),
            ["I hear a cat.", "So the answer is: **(D) cat.", "**"]
        );
        // Mid-chain, the run opens the next sentence.
        assert_eq!(
            Splitter::Punkt.split("**Step one.** I hear it. Done."),
            ["**Step one.", "** I hear it.", "Done."]
        );
        // Emphasis not after final punctuation is kept.
        assert_eq!(
            Splitter::Punkt.split("It is **a cat**"),
            ["It is **a cat**"]
        );
    }

    #[test]
    fn plain_sentences() {
        assert_eq!(
            split("It barks. It is a dog!  Is it? Yes."),
            vec!["It barks.", "It is a dog!", "Is it?", "Yes."]
        );
    }

    #[test]
    fn numbers_units_and_abbreviations_do_not_split() {
        assert_eq!(
            split("The gap is 0.4 s long. The tone is 3.5 kHz vs. 4 kHz, approx. 2 dB louder."),
            vec![
                "The gap is 0.4 s long.",
                "The tone is 3.5 kHz vs. 4 kHz, approx. 2 dB louder."
            ]
        );
        assert_eq!(
            split("Birds, e.g. crows, caw. Dr. Smith agrees, i.e. It is a crow."),
            vec![
                "Birds, e.g. crows, caw.",
                "Dr. Smith agrees, i.e. It is a crow."
            ]
        );
        assert_eq!(
            split("Dogs, cats, etc. The answer is B."),
            vec!["Dogs, cats, etc.", "The answer is B."]
        );
    }

    #[test]
    fn quotes_lists_and_ellipses() {
        assert_eq!(
            split("\"Is it a cat?\" she asked. \"No.\" Then it barked."),
            vec!["\"Is it a cat?\" she asked.", "\"No.\"", "Then it barked."]
        );
        assert_eq!(
            split("1. First, listen. 2. Then decide."),
            vec!["1. First, listen.", "2. Then decide."]
        );
        assert_eq!(
            split("It fades... and stops... Then silence."),
            vec!["It fades... and stops...", "Then silence."]
        );
        assert_eq!(
            split("## Plan\nListen first.\nThen count.\n1. one\n2. two"),
            vec![
                "## Plan",
                "Listen first.",
                "Then count.",
                "1. one",
                "2. two"
            ]
        );
        assert_eq!(
            split("Steps:\n- listen to the clip\n- count the beeps\n\nSo the answer is (C)."),
            vec![
                "Steps:",
                "- listen to the clip",
                "- count the beeps",
                "So the answer is (C)."
            ]
        );
    }

    #[test]
    fn spans_are_trimmed_byte_ranges() {
        let t = "  Ça marche. Très bien.  ";
        let spans = sentence_spans(t);
        assert_eq!(spans.len(), 2);
        assert_eq!(&t[spans[0].clone()], "Ça marche.");
        assert_eq!(&t[spans[1].clone()], "Très bien.");
        assert!(sentence_spans("   ").is_empty());
        assert_eq!(join_sentences(&split(t)), "Ça marche. Très bien.");
    }

    #[test]
    fn units_end_sentences() {
        assert_eq!(
            split("It lasts 200 ms. Then it stops at 3 s. Overall it is 4 dB. So B."),
            vec![
                "It lasts 200 ms.",
                "Then it stops at 3 s.",
                "Overall it is 4 dB.",
                "So B."
            ]
        );
    }

    #[test]
    fn initials_and_answer_letters() {
        assert_eq!(
            split("J. R. Smith wrote it. The answer is B. Cats meow."),
            vec!["J. R. Smith wrote it.", "The answer is B.", "Cats meow."]
        );
    }
}
