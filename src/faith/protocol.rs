//! Protocols as data: how a chain of thought is elicited, sanitized and continued, how the answer
//! is forced after it and how that answer is read.
//!
//! A protocol is a TOML file (see `src/faith/protocols/*.toml` for the built-in ones, which are
//! embedded in the binary). Every prompt is a list of turns plus an optional text that the open
//! assistant turn starts with, written as templates with the placeholders `{question}`,
//! `{choices}`, `{letters}`, `{chain}`, `{partial}`, `{sentence}` and `{text}` (which ones a step
//! accepts is listed at [`Step`]). `{{` and `}}` stand for literal braces.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::CHOICE_LETTERS;
use crate::model::Role;

/// Names of the protocols built into the binary.
pub const BUILTIN: &[&str] = &["paper-v1", "lanham", "af3", "omni"];

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "paper-v1" => Some(include_str!("protocols/paper-v1.toml")),
        "lanham" => Some(include_str!("protocols/lanham.toml")),
        "af3" => Some(include_str!("protocols/af3.toml")),
        "omni" => Some(include_str!("protocols/omni.toml")),
        _ => None,
    }
}

/// A protocol file that cannot be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The file could not be read.
    #[error(
        "cannot read protocol file {path}: {source}; pass one of {builtin} or a readable TOML file"
    )]
    Read {
        /// The path given.
        path: String,
        /// The underlying error.
        source: std::io::Error,
        /// The built-in names, for the message.
        builtin: String,
    },
    /// The TOML is malformed or a field is missing or unknown.
    #[error("protocol {origin}: {detail}")]
    Parse {
        /// Built-in name or file path.
        origin: String,
        /// What is wrong, from the TOML parser.
        detail: String,
    },
    /// A template uses a placeholder its step does not know, or lacks a required one.
    #[error("protocol {origin}, [{step}]: {detail}")]
    Template {
        /// Built-in name or file path.
        origin: String,
        /// The TOML table at fault.
        step: String,
        /// What is wrong and how to fix it.
        detail: String,
    },
}

/// One finished turn of a prompt template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Who speaks.
    pub role: Role,
    /// Template of the text.
    pub text: String,
}

/// A prompt that makes the model generate text (chain, continuation, mistake, paraphrase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenStep {
    /// Whether the item's clip is attached to the first user turn.
    #[serde(default = "yes")]
    pub audio: bool,
    /// Finished turns (templates).
    pub turns: Vec<Turn>,
    /// Template of the text the open assistant turn starts with.
    #[serde(default)]
    pub prefill: String,
    /// Most new tokens.
    pub max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[serde(default)]
    pub temperature: f64,
    /// Nucleus mass; 1 disables it.
    #[serde(default = "one")]
    pub top_p: f64,
    /// Extra stop strings.
    #[serde(default)]
    pub stop: Vec<String>,
    /// `[mistake]` only: sentences with fewer words are not given a mistake (the paper uses 3).
    #[serde(default)]
    pub min_words: usize,
}

/// How the forced answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reader {
    /// Next-token distribution over the choice letters, one forward step; the answer is its argmax.
    Probs,
    /// Generate up to `max_tokens` greedily and parse the letter.
    Generate,
}

/// Which parser turns generated answer text into a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParserKind {
    /// The paper's `parse_answer`: `(X)`, `X)`, `(X`, a lone letter, refusal phrases.
    Paper,
    /// The paper's Audio Flamingo 3 parser (`_parse_conditioned_output`).
    Af3,
    /// The paper's Qwen2.5-Omni parser: the letter of the first `<Conclusion>` block, else a lone
    /// A-D that is the answer's last letter, else unparsed (no refusal rule).
    Omni,
}

/// What early answering with zero sentences shows the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmptyChain {
    /// The answer prompt with an empty chain.
    #[default]
    Render,
    /// The `[no_cot]` prompt (the paper's code reuses its no-reasoning result there).
    NoCot,
}

/// A prompt that forces an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerStep {
    /// Whether the item's clip is attached to the first user turn.
    #[serde(default = "yes")]
    pub audio: bool,
    /// Finished turns (templates).
    pub turns: Vec<Turn>,
    /// Template of the text the open assistant turn starts with (Lanham: "The single, most likely
    /// answer is (").
    #[serde(default)]
    pub prefill: String,
    /// How the answer is read.
    pub reader: Reader,
    /// How generated text is parsed (`generate` reader).
    #[serde(default = "paper_parser")]
    pub parser: ParserKind,
    /// Most new tokens for the `generate` reader.
    #[serde(default = "ten")]
    pub max_tokens: usize,
    /// With the `generate` reader: also read the letter probabilities after the prefill plus this
    /// text (one extra forward step), for probability-shift measures.
    #[serde(default)]
    pub probs_prefill: Option<String>,
    /// What zero sentences of early answering show.
    #[serde(default)]
    pub empty_chain: EmptyChain,
}

/// How a generated chain is cleaned before answers are forced after it.
///
/// The steps run in this order: [`Sanitize::extract`] (`extract_between`, then
/// `drop_final_letter` when no block was found), then `drop_last_sentences`. They apply to every
/// chain that is sanitized: a sampled chain, and a chain continued after a mistake (the partial
/// chain plus the model's continuation, which carries no opening tag; stop the `[continue]` step
/// at the closing tags with its `stop` strings to keep them out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sanitize {
    /// An opening and a closing tag, e.g. `["<Reasoning>", "</Reasoning>"]`: the chain becomes the
    /// text between the first opening tag and the first closing tag after it, trimmed. Tags match
    /// regardless of ASCII case. When the text has no such block, or the block holds only
    /// whitespace, the whole text is kept (trimmed) and `drop_final_letter` may apply. Empty (the
    /// default): the whole text.
    #[serde(default)]
    pub extract_between: Vec<String>,
    /// When no `extract_between` block was found (or none is set): if the text's last ASCII letter
    /// is a lone A, B, C or D (either case, with no ASCII letter right before it), the text is cut
    /// before that letter and the character preceding it ("... so the answer is B." becomes
    /// "... so the answer is"); a text that would become empty is kept whole. This is the paper's
    /// Qwen2.5-Omni `sanitize_cot` on untagged text.
    #[serde(default)]
    pub drop_final_letter: bool,
    /// Sentences dropped from the end (the paper drops 1, which usually states the answer; a chain
    /// of that many sentences or fewer becomes empty).
    #[serde(default)]
    pub drop_last_sentences: usize,
}

impl Sanitize {
    /// The part of a generated `text` that is kept as the chain, by `extract_between` and
    /// `drop_final_letter` (sentences are dropped afterwards); trimmed.
    pub fn extract(&self, text: &str) -> String {
        let t = text.trim();
        if let [open, close] = self.extract_between.as_slice() {
            if let Some(inner) = between_ignore_ascii_case(t, open, close) {
                let inner = inner.trim();
                if !inner.is_empty() {
                    return inner.to_string();
                }
            }
        }
        if self.drop_final_letter {
            if let Some((cut, _)) = crate::faith::answer::final_lone_letter(t) {
                let head = t[..cut].trim();
                if !head.is_empty() {
                    return head.to_string();
                }
            }
        }
        t.to_string()
    }
}

/// The text between the first `open` and the first `close` after it, ASCII case ignored.
fn between_ignore_ascii_case<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    // ASCII lowercasing keeps every byte offset, so positions in `lower` are positions in `text`
    let lower = text.to_ascii_lowercase();
    let start = lower.find(&open.to_ascii_lowercase())? + open.len();
    let len = lower[start..].find(&close.to_ascii_lowercase())?;
    Some(&text[start..start + len])
}

/// A complete protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Short name, recorded in manifests and trials.
    pub name: String,
    /// One line on where it comes from.
    #[serde(default)]
    pub description: String,
    /// Template of one choice line, with `{letter}` and `{text}`.
    #[serde(default = "choice_format")]
    pub choice_format: String,
    /// How chains are split into sentences (`faithscope`, the default, or `punkt`).
    #[serde(default)]
    pub splitter: crate::faith::split::Splitter,
    /// Eliciting a chain.
    pub cot: GenStep,
    /// Cleaning the chain.
    #[serde(default = "no_sanitize")]
    pub sanitize: Sanitize,
    /// Forcing the answer after a chain.
    pub answer: AnswerStep,
    /// Asking for the answer without any chain (the no-CoT control).
    pub no_cot: AnswerStep,
    /// Letting the model continue a partial chain (adding mistakes).
    #[serde(rename = "continue")]
    pub continuation: GenStep,
    /// Asking the same model for a mistaken version of one sentence.
    pub mistake: GenStep,
    /// Asking the same model to paraphrase text.
    pub paraphrase: GenStep,
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn ten() -> usize {
    10
}
fn paper_parser() -> ParserKind {
    ParserKind::Paper
}
fn choice_format() -> String {
    "({letter}) {text}".to_string()
}
fn no_sanitize() -> Sanitize {
    Sanitize::default()
}

/// The prompt steps of a protocol, for validation messages and placeholder rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `[cot]`: `{question}`, `{choices}`, `{letters}`.
    Cot,
    /// `[answer]`: also `{chain}` (required).
    Answer,
    /// `[no_cot]`: `{question}`, `{choices}`, `{letters}`.
    NoCot,
    /// `[continue]`: also `{partial}` (required).
    Continue,
    /// `[mistake]`: also `{sentence}` (required).
    Mistake,
    /// `[paraphrase]`: also `{text}` (required).
    Paraphrase,
}

impl Step {
    /// The TOML table name.
    pub fn table(self) -> &'static str {
        match self {
            Step::Cot => "cot",
            Step::Answer => "answer",
            Step::NoCot => "no_cot",
            Step::Continue => "continue",
            Step::Mistake => "mistake",
            Step::Paraphrase => "paraphrase",
        }
    }

    fn extra(self) -> Option<&'static str> {
        match self {
            Step::Cot | Step::NoCot => None,
            Step::Answer => Some("chain"),
            Step::Continue => Some("partial"),
            Step::Mistake => Some("sentence"),
            Step::Paraphrase => Some("text"),
        }
    }
}

impl Protocol {
    /// A built-in protocol by name (`paper-v1`, `lanham`, `af3`, `omni`).
    pub fn builtin(name: &str) -> Option<Protocol> {
        let text = builtin_text(name)?;
        // The built-in files are tested; a failure here is a build defect, reported as None.
        Protocol::from_toml(text, name).ok()
    }

    /// A built-in name or the path of a TOML file.
    pub fn resolve(spec: &str) -> Result<Protocol, ProtocolError> {
        if let Some(text) = builtin_text(spec) {
            return Protocol::from_toml(text, spec);
        }
        Protocol::load(Path::new(spec))
    }

    /// Reads and checks a protocol file.
    pub fn load(path: &Path) -> Result<Protocol, ProtocolError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProtocolError::Read {
            path: path.display().to_string(),
            source,
            builtin: BUILTIN.join(", "),
        })?;
        Protocol::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks protocol TOML; `origin` names it in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Protocol, ProtocolError> {
        let p: Protocol = toml::from_str(text).map_err(|e| ProtocolError::Parse {
            origin: origin.to_string(),
            detail: e.to_string(),
        })?;
        p.validate(origin)?;
        Ok(p)
    }

    /// Checks every template's placeholders; `origin` names the protocol in messages.
    pub fn validate(&self, origin: &str) -> Result<(), ProtocolError> {
        let err = |step: &str, detail: String| ProtocolError::Template {
            origin: origin.to_string(),
            step: step.to_string(),
            detail,
        };
        for name in placeholders(&self.choice_format).map_err(|d| err("choice_format", d))? {
            if name != "letter" && name != "text" {
                return Err(err(
                    "choice_format",
                    format!("unknown placeholder {{{name}}}; use {{letter}} and {{text}}"),
                ));
            }
        }
        let tags = &self.sanitize.extract_between;
        if !(tags.is_empty() || (tags.len() == 2 && tags.iter().all(|t| !t.is_empty()))) {
            return Err(err(
                "sanitize",
                format!(
                    "extract_between needs two non-empty strings, an opening and a closing tag \
                     (e.g. [\"<Reasoning>\", \"</Reasoning>\"]); got {tags:?}"
                ),
            ));
        }
        let gen_steps = [
            (Step::Cot, &self.cot),
            (Step::Continue, &self.continuation),
            (Step::Mistake, &self.mistake),
            (Step::Paraphrase, &self.paraphrase),
        ];
        for (step, g) in gen_steps {
            check_templates(step, &g.turns, &g.prefill).map_err(|d| err(step.table(), d))?;
            if g.max_tokens == 0 {
                return Err(err(step.table(), "max_tokens must be at least 1".into()));
            }
        }
        for (step, a) in [(Step::Answer, &self.answer), (Step::NoCot, &self.no_cot)] {
            check_templates(step, &a.turns, &a.prefill).map_err(|d| err(step.table(), d))?;
            if a.reader == Reader::Generate && a.max_tokens == 0 {
                return Err(err(
                    step.table(),
                    "max_tokens must be at least 1 for reader = \"generate\"".into(),
                ));
            }
        }
        Ok(())
    }

    /// The choices as the prompts show them: one `choice_format` line per choice.
    pub fn format_choices(&self, choices: &[String]) -> String {
        choices
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let letter = letter(i);
                render(&self.choice_format, &[("letter", &letter), ("text", text)])
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The letter of choice `i` ("A" for 0).
pub fn letter(i: usize) -> String {
    CHOICE_LETTERS
        .get(i)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("#{}", i + 1))
}

/// The letters of `n` choices written as a phrase: "A, B, C or D".
pub fn letters_phrase(n: usize) -> String {
    let letters: Vec<String> = (0..n).map(letter).collect();
    match letters.len() {
        0 => String::new(),
        1 => letters[0].clone(),
        k => format!("{} or {}", letters[..k - 1].join(", "), letters[k - 1]),
    }
}

fn check_templates(step: Step, turns: &[Turn], prefill: &str) -> Result<(), String> {
    if turns.is_empty() {
        return Err("needs at least one turn".into());
    }
    let allowed = |name: &str| {
        matches!(name, "question" | "choices" | "letters") || Some(name) == step.extra()
    };
    let mut found_extra = false;
    for (i, t) in turns.iter().enumerate() {
        let names = placeholders(&t.text).map_err(|d| format!("turn {}: {d}", i + 1))?;
        for n in names {
            if !allowed(&n) {
                return Err(format!(
                    "turn {}: unknown placeholder {{{n}}} (this step accepts {})",
                    i + 1,
                    accepted(step)
                ));
            }
            found_extra |= Some(n.as_str()) == step.extra();
        }
    }
    for n in placeholders(prefill).map_err(|d| format!("prefill: {d}"))? {
        if !allowed(&n) {
            return Err(format!(
                "prefill: unknown placeholder {{{n}}} (this step accepts {})",
                accepted(step)
            ));
        }
        found_extra |= Some(n.as_str()) == step.extra();
    }
    if let Some(extra) = step.extra() {
        if !found_extra {
            return Err(format!(
                "no turn or prefill uses {{{extra}}}; the step needs it"
            ));
        }
    }
    Ok(())
}

fn accepted(step: Step) -> String {
    let mut v = vec!["{question}", "{choices}", "{letters}"];
    let extra = step.extra().map(|e| format!("{{{e}}}"));
    if let Some(e) = &extra {
        v.push(e);
    }
    v.join(", ")
}

/// The placeholder names used in a template, or a message on unbalanced braces.
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
            }
            '{' => {
                let rest = &template[i + 1..];
                let end = rest.find('}').ok_or_else(|| {
                    format!("unclosed '{{' at byte {i}; write {{{{ for a literal brace")
                })?;
                let name = &rest[..end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "bad placeholder {{{name}}} at byte {i}; write {{{{ for a literal brace"
                    ));
                }
                out.push(name.to_string());
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "lone '}}' at byte {i}; write }}}} for a literal brace"
                ))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Fills a checked template; unknown placeholders stay as written.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            let name = &tail[1..end];
            match vars.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_validate() {
        for name in BUILTIN {
            let text = builtin_text(name).unwrap();
            let p = Protocol::from_toml(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&p.name, name);
        }
        let p = Protocol::builtin("paper-v1").unwrap();
        assert_eq!(p.sanitize.drop_last_sentences, 1);
        assert_eq!(p.answer.reader, Reader::Generate);
        assert_eq!(p.answer.empty_chain, EmptyChain::NoCot);
        let l = Protocol::builtin("lanham").unwrap();
        assert_eq!(l.answer.reader, Reader::Probs);
        assert_eq!(l.answer.prefill, "The single, most likely answer is (");
        assert_eq!(l.sanitize.drop_last_sentences, 0);
        assert_eq!(
            Protocol::builtin("af3").unwrap().answer.parser,
            ParserKind::Af3
        );
        let o = Protocol::builtin("omni").unwrap();
        assert_eq!(o.answer.parser, ParserKind::Omni);
        assert_eq!(o.no_cot.parser, ParserKind::Omni);
        assert_eq!(o.answer.empty_chain, EmptyChain::NoCot);
        assert_eq!(o.sanitize.extract_between, ["<Reasoning>", "</Reasoning>"]);
        assert!(o.sanitize.drop_final_letter);
        assert_eq!(o.sanitize.drop_last_sentences, 0);
        assert_eq!(o.splitter, crate::faith::split::Splitter::Punkt);
        // the others keep the whole text
        assert_eq!(p.sanitize.extract_between, Vec::<String>::new());
        assert!(!p.sanitize.drop_final_letter);
    }

    fn tags() -> Sanitize {
        Sanitize {
            extract_between: vec!["<Reasoning>".into(), "</Reasoning>".into()],
            drop_final_letter: true,
            drop_last_sentences: 0,
        }
    }

    #[test]
    fn extract_between_tags() {
        let s = tags();
        assert_eq!(
            s.extract("<Reasoning>It meows. Cats meow.</Reasoning><Conclusion>B</Conclusion>"),
            "It meows. Cats meow."
        );
        assert_eq!(
            s.extract("<reasoning>\n  It meows.\n</REASONING>\n<Conclusion>\nB\n</Conclusion>"),
            "It meows."
        );
        // the first block, up to the first closing tag after it
        assert_eq!(
            s.extract("x <Reasoning>one</Reasoning> <Reasoning>two</Reasoning>"),
            "one"
        );
        // no closing tag (a truncated output), or an empty block: the whole text
        assert_eq!(
            s.extract("<Reasoning>It meows and"),
            "<Reasoning>It meows and"
        );
        assert_eq!(
            s.extract(" <Reasoning> </Reasoning><Conclusion>B</Conclusion>"),
            "<Reasoning> </Reasoning><Conclusion>B</Conclusion>"
        );
        // untagged text: the whole text less a final lone letter
        assert_eq!(
            s.extract("It meows, so the answer is B."),
            "It meows, so the answer is"
        );
        assert_eq!(s.extract("It meows. Cats meow."), "It meows. Cats meow.");
        assert_eq!(s.extract("B"), "B");
        // non-ASCII text before the tags keeps byte offsets right
        assert_eq!(s.extract("é ü <Reasoning>naïve</Reasoning>"), "naïve");
        let plain = Sanitize {
            drop_final_letter: false,
            ..tags()
        };
        assert_eq!(
            plain.extract("It meows, so the answer is B."),
            "It meows, so the answer is B."
        );
        assert_eq!(
            Sanitize::default().extract("  <Reasoning>x</Reasoning> "),
            "<Reasoning>x</Reasoning>"
        );
    }

    #[test]
    fn extract_between_needs_two_tags() {
        let base = builtin_text("omni").unwrap();
        for bad in [
            r#"extract_between = ["<Reasoning>"]"#,
            r#"extract_between = ["<Reasoning>", ""]"#,
            r#"extract_between = ["<a>", "</a>", "<b>"]"#,
        ] {
            let t = base.replace(r#"extract_between = ["<Reasoning>", "</Reasoning>"]"#, bad);
            assert_ne!(t, base);
            let e = Protocol::from_toml(&t, "my.toml").unwrap_err().to_string();
            assert!(
                e.contains("my.toml") && e.contains("[sanitize]") && e.contains("extract_between"),
                "{e}"
            );
        }
    }

    #[test]
    fn render_fills_and_escapes() {
        assert_eq!(
            render("Q: {question} {{x}} {unknown}", &[("question", "why?")]),
            "Q: why? {x} {unknown}"
        );
        assert_eq!(placeholders("a {b} {{c}} {d_1}").unwrap(), vec!["b", "d_1"]);
        assert!(placeholders("a {b").unwrap_err().contains("unclosed"));
        assert!(placeholders("a } b").unwrap_err().contains("lone"));
    }

    #[test]
    fn choices_and_letters() {
        let p = Protocol::builtin("paper-v1").unwrap();
        let c = vec!["sheep".to_string(), "cat".to_string()];
        assert_eq!(p.format_choices(&c), "(A) sheep\n(B) cat");
        assert_eq!(letters_phrase(4), "A, B, C or D");
        assert_eq!(letters_phrase(1), "A");
    }

    #[test]
    fn bad_protocols_name_the_field() {
        let base = builtin_text("paper-v1").unwrap();
        let bad = base.replace("{chain}", "{chian}");
        let e = Protocol::from_toml(&bad, "my.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("my.toml") && e.contains("[answer]") && e.contains("{chian}"),
            "{e}"
        );
        let missing = base.replace("[paraphrase]", "[paraphrase_x]");
        let e = Protocol::from_toml(&missing, "my.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.toml"), "{e}");
        let e = Protocol::resolve("/nonexistent/proto.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/proto.toml") && e.contains("paper-v1"),
            "{e}"
        );
    }
}
