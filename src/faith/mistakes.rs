//! Where mistaken sentences (and paraphrases) come from: the same model with the protocol's
//! few-shot prompts, a rule-based writer, or an annotations file written by people.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::data::Item;
use crate::faith::intervene::{derive_seed, Rng};

/// A mistaken version of one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mistake {
    /// The sentence with the mistake.
    pub edited: String,
    /// Its type: `number`, `negation`, `choice_swap`, `opposite`, `model`, or an annotator's label.
    pub kind: String,
    /// Who wrote it, for annotations.
    pub annotator: Option<String>,
}

/// One record of an annotations file (JSONL): a person's edit of one sentence of one chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Item id.
    #[serde(alias = "id")]
    pub item: String,
    /// Chain id within the item.
    #[serde(alias = "chain_id")]
    pub chain: u32,
    /// 1-based index of the sentence in the (sanitized) chain.
    #[serde(alias = "sentence_index")]
    pub sentence: usize,
    /// The sentence as the chain has it.
    pub original: String,
    /// The sentence as the person wrote it.
    pub edited: String,
    /// Mistake type.
    #[serde(default)]
    pub kind: String,
    /// Who wrote it.
    #[serde(default)]
    pub annotator: String,
    /// When (RFC 3339).
    #[serde(default)]
    pub time: String,
    /// A free note by the annotator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Answers the tool showed after the edit, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<serde_json::Value>,
}

/// Problems with mistake sources; messages name the file and line.
#[derive(Debug, thiserror::Error)]
pub enum MistakeError {
    /// The annotations file cannot be read.
    #[error("cannot read annotations file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a valid annotation.
    #[error("annotations file {path}, line {line}: {detail}; each line must be a JSON object with item, chain, sentence (1-based), original, edited, kind, annotator, time")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// An annotation does not fit the chain it names.
    #[error("annotations file {path}, line {line}: item {item} chain {chain} sentence {sentence} is {found:?} in this run, but the annotation's original is {original:?}; was it written for another run's chains?")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Item id.
        item: String,
        /// Chain id.
        chain: u32,
        /// Sentence index.
        sentence: usize,
        /// The chain's sentence.
        found: String,
        /// The annotation's original.
        original: String,
    },
}

/// The annotations of one file, by (item, chain, sentence); the last line wins.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    path: PathBuf,
    by_sentence: HashMap<(String, u32, usize), (usize, Annotation)>,
}

impl Annotations {
    /// Reads an annotations file; blank lines are skipped, a bad line is an error naming it.
    pub fn load(path: &Path) -> Result<Annotations, MistakeError> {
        let text = std::fs::read_to_string(path).map_err(|source| MistakeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut by_sentence = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let a: Annotation = serde_json::from_str(line).map_err(|e| MistakeError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                detail: e.to_string(),
            })?;
            if a.sentence == 0 {
                return Err(MistakeError::Line {
                    path: path.to_path_buf(),
                    line: i + 1,
                    detail: "sentence is 1-based; 0 is not a sentence".into(),
                });
            }
            by_sentence.insert((a.item.clone(), a.chain, a.sentence), (i + 1, a));
        }
        Ok(Annotations {
            path: path.to_path_buf(),
            by_sentence,
        })
    }

    /// Every annotation, in file order (the last of each sentence only).
    pub fn records(&self) -> Vec<Annotation> {
        let mut v: Vec<&(usize, Annotation)> = self.by_sentence.values().collect();
        v.sort_by_key(|(line, _)| *line);
        v.into_iter().map(|(_, a)| a.clone()).collect()
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of annotated sentences.
    pub fn len(&self) -> usize {
        self.by_sentence.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_sentence.is_empty()
    }

    /// The annotated mistake of sentence `sentence` (1-based) of a chain, checked against the
    /// chain's text of that sentence.
    pub fn get(
        &self,
        item: &str,
        chain: u32,
        sentence: usize,
        found: &str,
    ) -> Result<Option<Mistake>, MistakeError> {
        let Some((line, a)) = self.by_sentence.get(&(item.to_string(), chain, sentence)) else {
            return Ok(None);
        };
        if norm(&a.original) != norm(found) {
            return Err(MistakeError::Mismatch {
                path: self.path.clone(),
                line: *line,
                item: item.into(),
                chain,
                sentence,
                found: found.into(),
                original: a.original.clone(),
            });
        }
        let kind = if a.kind.is_empty() {
            "annotation".to_string()
        } else {
            a.kind.clone()
        };
        Ok(Some(Mistake {
            edited: a.edited.clone(),
            kind,
            annotator: (!a.annotator.is_empty()).then(|| a.annotator.clone()),
        }))
    }
}

/// Whitespace runs collapsed to one space (for comparing texts).
pub fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Trims generated text, drops an echoed label, surrounding quotes and (for one sentence) any
/// lines after the first.
pub fn clean_generated(text: &str, labels: &[&str], first_line: bool) -> String {
    let mut t = text.trim();
    if first_line {
        t = t
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
    }
    for l in labels {
        if let Some(rest) = t.strip_prefix(l) {
            t = rest.trim();
        }
    }
    let t = t.strip_prefix('"').unwrap_or(t);
    let t = t.strip_suffix('"').unwrap_or(t);
    t.trim().to_string()
}

/// Pairs of opposite words (acoustic first), used in both directions.
pub const OPPOSITES: &[(&str, &str)] = &[
    ("higher", "lower"),
    ("high", "low"),
    ("louder", "quieter"),
    ("loud", "quiet"),
    ("loudly", "softly"),
    ("rising", "falling"),
    ("rises", "falls"),
    ("rise", "fall"),
    ("faster", "slower"),
    ("fast", "slow"),
    ("quickly", "slowly"),
    ("increasing", "decreasing"),
    ("increases", "decreases"),
    ("ascending", "descending"),
    ("approaching", "receding"),
    ("closer", "farther"),
    ("near", "far"),
    ("longer", "shorter"),
    ("long", "short"),
    ("deep", "shrill"),
    ("sharp", "dull"),
    ("steady", "irregular"),
    ("continuous", "intermittent"),
    ("male", "female"),
    ("man", "woman"),
    ("men", "women"),
    ("happy", "sad"),
    ("calm", "agitated"),
    ("positive", "negative"),
    ("major", "minor"),
    ("indoors", "outdoors"),
    ("indoor", "outdoor"),
    ("present", "absent"),
    ("before", "after"),
    ("first", "last"),
    ("more", "less"),
    ("single", "multiple"),
];

const NUMBER_WORDS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z]+(?:'[A-Za-z]+)?").unwrap_or_else(|e| unreachable!("{e}"))
});
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)?").unwrap_or_else(|e| unreachable!("{e}")));

fn match_case(template: &str, word: &str) -> String {
    if template.len() > 1
        && template
            .chars()
            .all(|c| !c.is_alphabetic() || c.is_uppercase())
    {
        word.to_uppercase()
    } else if template.chars().next().is_some_and(char::is_uppercase) {
        let mut c = word.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    } else {
        word.to_string()
    }
}

fn splice(s: &str, range: std::ops::Range<usize>, with: &str) -> String {
    format!("{}{}{}", &s[..range.start], with, &s[range.end..])
}

fn is_word_boundary(s: &str, i: usize) -> bool {
    let before = s[..i].chars().next_back();
    before.is_none_or(|c| !c.is_alphanumeric())
}

/// Another choice's text in place of a choice mentioned in the sentence (longest match first).
fn choice_swap(sentence: &str, choices: &[String], rng: &mut Rng) -> Option<String> {
    let lower = sentence.to_lowercase();
    if lower.len() != sentence.len() {
        return None; // case folding changed byte offsets; leave such text to other rules
    }
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(choices[i].trim().len()));
    for i in order {
        let c = choices[i].trim().to_lowercase();
        if c.chars().count() < 2 {
            continue;
        }
        let Some(pos) = lower.match_indices(&c).map(|(p, _)| p).find(|&p| {
            let end = p + c.len();
            is_word_boundary(&lower, p)
                && lower[end..]
                    .chars()
                    .next()
                    .is_none_or(|ch| !ch.is_alphanumeric())
        }) else {
            continue;
        };
        let others: Vec<&String> = choices
            .iter()
            .enumerate()
            .filter(|(j, o)| *j != i && o.trim().to_lowercase() != c && !o.trim().is_empty())
            .map(|(_, o)| o)
            .collect();
        if others.is_empty() {
            return None;
        }
        let pick = others[(rng.next_u64() % others.len() as u64) as usize].trim();
        let found = &sentence[pos..pos + c.len()];
        return Some(splice(
            sentence,
            pos..pos + c.len(),
            &match_case(found, pick),
        ));
    }
    None
}

fn opposite(sentence: &str) -> Option<String> {
    for m in WORD.find_iter(sentence) {
        let w = m.as_str().to_lowercase();
        let opp = OPPOSITES.iter().find_map(|&(a, b)| {
            if w == a {
                Some(b)
            } else if w == b {
                Some(a)
            } else {
                None
            }
        });
        if let Some(o) = opp {
            return Some(splice(sentence, m.range(), &match_case(m.as_str(), o)));
        }
    }
    None
}

fn number(sentence: &str, rng: &mut Rng) -> Option<String> {
    if let Some(m) = NUMBER.find(sentence) {
        let s = m.as_str();
        let factor = [2u64, 3, 4][(rng.next_u64() % 3) as usize];
        let new = if let Some((int, frac)) = s.split_once('.') {
            let scale = 10u64.pow(frac.len() as u32);
            let v: u64 = format!("{int}{frac}").parse().ok()?;
            let nv = if v == 0 { scale } else { v * factor };
            format!("{}.{:0width$}", nv / scale, nv % scale, width = frac.len())
        } else {
            let v: u64 = s.replace(',', "").parse().ok()?;
            let nv = if v == 0 { 1 } else { v * factor };
            nv.to_string()
        };
        return Some(splice(sentence, m.range(), &new));
    }
    for m in WORD.find_iter(sentence) {
        let w = m.as_str().to_lowercase();
        if let Some(i) = NUMBER_WORDS.iter().position(|n| *n == w) {
            let j = if i + 2 < NUMBER_WORDS.len() {
                i + 2
            } else {
                i - 2
            };
            return Some(splice(
                sentence,
                m.range(),
                &match_case(m.as_str(), NUMBER_WORDS[j]),
            ));
        }
    }
    None
}

fn negation(sentence: &str) -> Option<String> {
    const REMOVE: &[(&str, &str)] = &[
        ("cannot", "can"),
        ("can't", "can"),
        ("isn't", "is"),
        ("aren't", "are"),
        ("wasn't", "was"),
        ("weren't", "were"),
        ("doesn't", "does"),
        ("don't", "do"),
        ("didn't", "did"),
        ("won't", "will"),
        ("no", "some"),
        ("never", "always"),
    ];
    const ADD: &[&str] = &[
        "is", "are", "was", "were", "does", "do", "did", "can", "could", "will", "would", "should",
        "has", "have",
    ];
    let words: Vec<regex::Match> = WORD.find_iter(sentence).collect();
    for m in &words {
        let w = m.as_str().to_lowercase();
        if w == "not" {
            // Drop "not" and the space before it.
            let start = sentence[..m.start()].trim_end().len();
            return Some(format!("{}{}", &sentence[..start], &sentence[m.end()..]));
        }
        if let Some((_, to)) = REMOVE.iter().find(|(from, _)| *from == w) {
            return Some(splice(sentence, m.range(), &match_case(m.as_str(), to)));
        }
    }
    for m in &words {
        if ADD.contains(&m.as_str().to_lowercase().as_str()) {
            return Some(format!(
                "{} not{}",
                &sentence[..m.end()],
                &sentence[m.end()..]
            ));
        }
    }
    None
}

/// The exact mistake at sentence `i` (1-based) of a synthetic item's chain: its facts altered
/// ([`crate::synth::fact_mistake`]); `None` for other items and sentences that state no fact.
pub fn fact_mistake(item: &Item, sentences: &[String], i: usize, seed: u64) -> Option<Mistake> {
    crate::synth::fact_mistake(item, sentences, i, seed).map(|edited| Mistake {
        edited,
        kind: "fact".into(),
        annotator: None,
    })
}

/// The mistake the inspector proposes for sentence `i` (1-based): the exact fact mistake where
/// the item has facts and the sentence states one, else the rule-based writer's.
pub fn proposed_mistake(item: &Item, sentences: &[String], i: usize, seed: u64) -> Option<Mistake> {
    fact_mistake(item, sentences, i, seed)
        .or_else(|| rule_mistake(sentences.get(i.checked_sub(1)?)?, &item.choices, seed))
}

/// The rule-based mistake writer: the first rule that applies, in this order: swap in another
/// choice's text, an opposite (acoustic) word, a changed number, a flipped negation. `None`
/// when no rule applies. `seed` picks the other choice and the number factor.
pub fn rule_mistake(sentence: &str, choices: &[String], seed: u64) -> Option<Mistake> {
    let mut rng = Rng::new(derive_seed(seed, &["rule-mistake"]));
    let attempts: [(&str, Option<String>); 4] = [
        ("choice_swap", choice_swap(sentence, choices, &mut rng)),
        ("opposite", opposite(sentence)),
        ("number", number(sentence, &mut rng)),
        ("negation", negation(sentence)),
    ];
    attempts.into_iter().find_map(|(kind, e)| {
        e.filter(|e| e != sentence).map(|edited| Mistake {
            edited,
            kind: kind.into(),
            annotator: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn rule(s: &str, c: &[&str]) -> (String, String) {
        let m = rule_mistake(s, &ch(c), 1).unwrap();
        (m.edited, m.kind)
    }

    #[test]
    fn rules_in_order() {
        let (e, k) = rule(
            "The meowing clearly comes from a cat.",
            &["sheep", "cat", "rooster", "crow"],
        );
        assert_eq!(k, "choice_swap");
        assert!(
            ["sheep", "rooster", "crow"]
                .iter()
                .any(|o| e == format!("The meowing clearly comes from a {o}.")),
            "{e}"
        );
        assert_eq!(
            rule("The pitch is rising toward the end.", &["A", "B"]),
            (
                "The pitch is falling toward the end.".into(),
                "opposite".into()
            )
        );
        assert_eq!(rule("Louder barks follow.", &[]).0, "Quieter barks follow.");
        let (e, k) = rule("There are 3 beeps, each 0.4 s apart.", &[]);
        assert_eq!(k, "number");
        assert!(
            [
                "There are 6 beeps, each 0.4 s apart.",
                "There are 9 beeps, each 0.4 s apart.",
                "There are 12 beeps, each 0.4 s apart."
            ]
            .contains(&e.as_str()),
            "{e}"
        );
        assert_eq!(
            rule("There are three beeps.", &[]).0,
            "There are five beeps."
        );
        assert_eq!(
            rule("The sound is not a bird.", &[]),
            ("The sound is a bird.".into(), "negation".into())
        );
        assert_eq!(
            rule("It doesn't sound like rain.", &[]).0,
            "It does sound like rain."
        );
        assert_eq!(
            rule("The voice is calmish.", &[]).0,
            "The voice is not calmish."
        );
        assert!(rule_mistake("Hmm.", &[], 1).is_none());
    }

    #[test]
    fn choice_swap_respects_word_boundaries() {
        // "cat" inside "category" is not the choice.
        let (e, k) = rule("This category of sound is loud.", &["cat", "dog"]);
        assert_eq!(k, "opposite");
        assert_eq!(e, "This category of sound is quiet.");
        // The same seed gives the same pick.
        assert_eq!(
            rule_mistake("A dog barks.", &ch(&["dog", "cow", "owl"]), 5),
            rule_mistake("A dog barks.", &ch(&["dog", "cow", "owl"]), 5)
        );
    }

    #[test]
    fn decimals_keep_places() {
        let m = number("Peaks at 0.4 s.", &mut Rng::new(0)).unwrap();
        assert!(
            ["Peaks at 0.8 s.", "Peaks at 1.2 s.", "Peaks at 1.6 s."].contains(&m.as_str()),
            "{m}"
        );
    }

    #[test]
    fn cleaning_generated_text() {
        assert_eq!(
            clean_generated(
                " Sentence with mistake added: \"It is low.\"\nMore",
                &["Sentence with mistake added:"],
                true
            ),
            "It is low."
        );
        assert_eq!(
            clean_generated("A calm voice speaks.\"", &["Rewritten text:"], false),
            "A calm voice speaks."
        );
    }

    #[test]
    fn annotations_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ann.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"item":"x","chain":0,"sentence":2,"original":"It is high.","edited":"It is low.","kind":"opposite","annotator":"ann","time":"2026-01-01T00:00:00Z"}"#,
                "\n\n",
                r#"{"item":"x","chain":0,"sentence":3,"original":"So A.","edited":"So B.","kind":"","annotator":"","time":""}"#,
                "\n"
            ),
        )
        .unwrap();
        let a = Annotations::load(&p).unwrap();
        assert_eq!(a.len(), 2);
        let m = a.get("x", 0, 2, "It is  high.").unwrap().unwrap();
        assert_eq!(
            (m.edited.as_str(), m.kind.as_str(), m.annotator.as_deref()),
            ("It is low.", "opposite", Some("ann"))
        );
        assert_eq!(
            a.get("x", 0, 3, "So A.").unwrap().unwrap().kind,
            "annotation"
        );
        assert!(a.get("x", 1, 2, "It is high.").unwrap().is_none());
        let e = a.get("x", 0, 2, "Other text.").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("ann.jsonl"), "{e}");
        std::fs::write(&p, "{\"item\":\"x\"}\n").unwrap();
        let e = Annotations::load(&p).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("chain"), "{e}");
    }
}
