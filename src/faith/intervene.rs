//! Interventions as small values: each turns a chain (its sentences) into modified chains, each
//! with its x (the share of the chain affected) and the paper's x field.
//!
//! Everything here is pure; text that needs a model (a mistaken sentence, a paraphrase) is passed
//! in by the sweep, which also runs the model on the results.

use serde::{Deserialize, Serialize};

pub use crate::faith::trial::InterventionKind as Kind;

/// Where filler replaces words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillerPosition {
    /// Words chosen at random (the sets are nested: p% is part of (p+5)%).
    Random,
    /// The first words.
    Start,
    /// The last words.
    End,
}

/// What replaces a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillerWord {
    /// `...`
    Dots,
    /// Lorem ipsum words.
    Lorem,
}

/// Whether each replaced word becomes one filler word or each run of them a single `...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillerLayout {
    /// One filler word per replaced word (word count preserved).
    Preserve,
    /// One filler word per run of replaced words.
    Collapse,
}

/// A filler variant: position, word and layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FillerSpec {
    /// Which words.
    pub position: FillerPosition,
    /// Replaced by what.
    pub word: FillerWord,
    /// Count-preserving or collapsed.
    pub layout: FillerLayout,
}

impl Default for FillerSpec {
    fn default() -> Self {
        FillerSpec {
            position: FillerPosition::Random,
            word: FillerWord::Dots,
            layout: FillerLayout::Preserve,
        }
    }
}

impl FillerSpec {
    /// Parses `random`, `start:dots`, `end:lorem:collapse` and the like (any order). Start and end
    /// with dots default to collapsed (the paper's single `...`); others preserve the count.
    pub fn parse(spec: &str) -> Result<FillerSpec, String> {
        let (mut position, mut word, mut layout) = (FillerPosition::Random, FillerWord::Dots, None);
        for part in spec.split(':').filter(|s| !s.is_empty()) {
            match part {
                "random" => position = FillerPosition::Random,
                "start" => position = FillerPosition::Start,
                "end" => position = FillerPosition::End,
                "dots" => word = FillerWord::Dots,
                "lorem" => word = FillerWord::Lorem,
                "preserve" => layout = Some(FillerLayout::Preserve),
                "collapse" => layout = Some(FillerLayout::Collapse),
                other => {
                    return Err(format!(
                        "unknown filler option '{other}' in '{spec}'; use random|start|end, dots|lorem, preserve|collapse"
                    ))
                }
            }
        }
        let layout = layout.unwrap_or(match (position, word) {
            (FillerPosition::Random, _) | (_, FillerWord::Lorem) => FillerLayout::Preserve,
            _ => FillerLayout::Collapse,
        });
        Ok(FillerSpec {
            position,
            word,
            layout,
        })
    }

    /// `random:dots:preserve`
    pub fn label(&self) -> String {
        let p = match self.position {
            FillerPosition::Random => "random",
            FillerPosition::Start => "start",
            FillerPosition::End => "end",
        };
        let w = match self.word {
            FillerWord::Dots => "dots",
            FillerWord::Lorem => "lorem",
        };
        let l = match self.layout {
            FillerLayout::Preserve => "preserve",
            FillerLayout::Collapse => "collapse",
        };
        format!("{p}:{w}:{l}")
    }
}

/// What the model is shown for a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Force the answer after this chain.
    Chain(String),
    /// Let the model continue this partial chain, sanitize the whole, then force the answer.
    Continue(String),
    /// The no-CoT prompt.
    NoCot,
}

/// One operation of a word diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffOp {
    /// Words in both.
    Keep(String),
    /// Words only in the original.
    Delete(String),
    /// Words only in the edit.
    Insert(String),
}

/// What was changed, recorded with the trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    /// 1-based sentence index of a mistake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentence: Option<usize>,
    /// The original text that was changed (sentence, or the paraphrased part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// The text that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<String>,
    /// Mistake type (number, negation, choice_swap, opposite, model, or an annotator's label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistake_kind: Option<String>,
    /// Where the mistake came from (model, rules, annotations:FILE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistake_source: Option<String>,
    /// Who wrote a paraphrase (`self`, `external-<model>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paraphrase_source: Option<String>,
    /// Who wrote it (annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotator: Option<String>,
    /// Filler variant label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler: Option<String>,
    /// Words in the chain (filler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words_total: Option<usize>,
    /// Words replaced (filler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words_replaced: Option<usize>,
    /// Length of the chain a filler-only chain matches, and its unit ("tokens" or "words").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_length: Option<usize>,
    /// Unit of `target_length`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_unit: Option<String>,
    /// Word diff of a manual edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<Vec<DiffOp>>,
}

/// A modified chain ready to be run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Its kind.
    pub kind: Kind,
    /// Unique within a chain, stable across runs ("early:3", "filler:random:dots:preserve:35").
    pub key: String,
    /// Share of the chain affected, in [0, 1] (none for baseline / no-CoT / manual).
    pub x: Option<f64>,
    /// Value of the paper's x field (k, i, or p).
    pub paper_x: Option<i64>,
    /// What the model sees.
    pub body: Body,
    /// What changed.
    pub detail: Detail,
}

fn ratio(k: usize, n: usize) -> f64 {
    if n == 0 {
        1.0
    } else {
        k as f64 / n as f64
    }
}

/// The reference trial: the answer after the full chain.
pub fn baseline(sentences: &[String]) -> Variant {
    Variant {
        kind: Kind::Baseline,
        key: "baseline".into(),
        x: Some(1.0),
        paper_x: None,
        body: Body::Chain(sentences.join(" ")),
        detail: Detail::default(),
    }
}

/// The no-CoT control.
pub fn no_cot() -> Variant {
    Variant {
        kind: Kind::NoCot,
        key: "no_cot".into(),
        x: None,
        paper_x: None,
        body: Body::NoCot,
        detail: Detail::default(),
    }
}

/// Early answering: the first k sentences for k = 0..=N, x = k/N (an empty chain has only k = 0,
/// with x = 1: all of it is shown).
pub fn early(sentences: &[String]) -> Vec<Variant> {
    let n = sentences.len();
    (0..=n)
        .map(|k| Variant {
            kind: Kind::EarlyAnswering,
            key: format!("early:{k}"),
            x: Some(ratio(k, n)),
            paper_x: Some(k as i64),
            body: Body::Chain(sentences[..k].join(" ")),
            detail: Detail::default(),
        })
        .collect()
}

/// Adding a mistake at sentence `i` (1-based): s1..s(i-1) then `edited`, to be continued by the
/// model; x = (i-1)/N.
pub fn mistake(sentences: &[String], i: usize, edited: &str, kind: &str, source: &str) -> Variant {
    let n = sentences.len();
    let i = i.clamp(1, n.max(1));
    let before = sentences[..i - 1].join(" ");
    let partial = if before.is_empty() {
        edited.trim().to_string()
    } else {
        format!("{before} {}", edited.trim())
    };
    Variant {
        kind: Kind::AddingMistakes,
        key: format!("mistake:{i}"),
        x: Some(ratio(i - 1, n)),
        paper_x: Some(i as i64),
        body: Body::Continue(partial),
        detail: Detail {
            sentence: Some(i),
            original: sentences.get(i - 1).cloned(),
            edited: Some(edited.trim().to_string()),
            mistake_kind: Some(kind.to_string()),
            mistake_source: Some(source.to_string()),
            ..Detail::default()
        },
    }
}

/// Paraphrasing the first k sentences (1 <= k <= N) into `paraphrased`, the rest unchanged;
/// x = k/N.
pub fn paraphrase(sentences: &[String], k: usize, paraphrased: &str) -> Variant {
    let n = sentences.len();
    let k = k.min(n);
    let rest = sentences[k..].join(" ");
    let chain = if rest.is_empty() {
        paraphrased.trim().to_string()
    } else {
        format!("{} {rest}", paraphrased.trim())
    };
    Variant {
        kind: Kind::Paraphrasing,
        key: format!("paraphrase:{k}"),
        x: Some(ratio(k, n)),
        paper_x: Some(k as i64),
        body: Body::Chain(chain),
        detail: Detail {
            original: Some(sentences[..k].join(" ")),
            edited: Some(paraphrased.trim().to_string()),
            ..Detail::default()
        },
    }
}

/// A manual edit of the chain, recorded with its word diff; `label` makes the key unique.
pub fn manual(original: &str, edited: &str, label: &str) -> Variant {
    Variant {
        kind: Kind::ManualEdit,
        key: format!("manual:{label}"),
        x: None,
        paper_x: None,
        body: Body::Chain(edited.to_string()),
        detail: Detail {
            diff: Some(word_diff(original, edited)),
            ..Detail::default()
        },
    }
}

/// Filler percentages: 0, 5, ..., 100.
pub const FILLER_PERCENTS: [u32; 21] = [
    0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100,
];

/// Lorem ipsum words filler draws from.
pub const LOREM: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
];

/// Byte spans of the whitespace-separated words of `text`.
pub fn word_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// The words of `text` grouped as the words of `like` are: as many words per group as the
/// sentence of `like` at that place has (the last group takes any rest). For showing a chain
/// whose words were replaced in place (filler) sentence by sentence, since runs of "..." would
/// split into sentences of their own.
pub fn regroup_words(text: &str, like: &[String]) -> Vec<String> {
    let words: Vec<&str> = word_spans(text).into_iter().map(|r| &text[r]).collect();
    let mut out = Vec::with_capacity(like.len());
    let mut at = 0;
    for (i, s) in like.iter().enumerate() {
        let n = if i + 1 == like.len() {
            words.len().saturating_sub(at)
        } else {
            word_spans(s).len().min(words.len().saturating_sub(at))
        };
        out.push(words[at..at + n].join(" "));
        at += n;
    }
    out
}

fn filler_word(word: FillerWord, seed: u64, index: usize) -> &'static str {
    match word {
        FillerWord::Dots => "...",
        FillerWord::Lorem => {
            LOREM[(Rng::new(derive_seed(seed, &["lorem", &index.to_string()])).next_u64()
                % LOREM.len() as u64) as usize]
        }
    }
}

/// The chain with the words at `replaced` (word indices) replaced as `spec` says; the whitespace
/// between kept words is kept as written.
pub fn replace_words(chain: &str, replaced: &[bool], spec: FillerSpec, seed: u64) -> String {
    let spans = word_spans(chain);
    let mut out = String::with_capacity(chain.len());
    let mut cursor = 0;
    let mut in_run = false;
    for (j, span) in spans.iter().enumerate() {
        let hit = replaced.get(j).copied().unwrap_or(false);
        if hit && in_run && spec.layout == FillerLayout::Collapse {
            cursor = span.end;
            continue;
        }
        out.push_str(&chain[cursor..span.start]);
        if hit {
            out.push_str(filler_word(spec.word, seed, j));
        } else {
            out.push_str(&chain[span.clone()]);
        }
        in_run = hit;
        cursor = span.end;
    }
    out.push_str(&chain[cursor..]);
    out
}

/// Filler: p% of the chain's words replaced, p = 0, 5, ..., 100; x = p/100. The number replaced
/// is floor(p/100 * words), as in the paper. `seed` fixes the random positions and lorem words.
pub fn filler(sentences: &[String], spec: FillerSpec, seed: u64) -> Vec<Variant> {
    let chain = sentences.join(" ");
    let n = word_spans(&chain).len();
    let mut order: Vec<usize> = (0..n).collect();
    if spec.position == FillerPosition::Random {
        let mut rng = Rng::new(derive_seed(seed, &["filler-order"]));
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    FILLER_PERCENTS
        .iter()
        .map(|&p| {
            let m = (p as usize * n) / 100;
            let mut replaced = vec![false; n];
            match spec.position {
                FillerPosition::Random => order[..m].iter().for_each(|&j| replaced[j] = true),
                FillerPosition::Start => replaced[..m].iter_mut().for_each(|r| *r = true),
                FillerPosition::End => replaced[n - m..].iter_mut().for_each(|r| *r = true),
            }
            Variant {
                kind: Kind::Filler,
                key: format!("filler:{}:{p}", spec.label()),
                x: Some(p as f64 / 100.0),
                paper_x: Some(p as i64),
                body: Body::Chain(replace_words(&chain, &replaced, spec, seed)),
                detail: Detail {
                    filler: Some(spec.label()),
                    words_total: Some(n),
                    words_replaced: Some(m),
                    ..Detail::default()
                },
            }
        })
        .collect()
}

/// A chain of nothing but filler as long as `chain`: in tokens when `count_tokens` can count
/// them (the backend's tokenizer), else in words.
pub fn filler_only(
    chain: &str,
    word: FillerWord,
    seed: u64,
    count_tokens: &dyn Fn(&str) -> Option<usize>,
) -> Variant {
    let build = |k: usize| -> String {
        (0..k)
            .map(|j| filler_word(word, seed, j))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let words = word_spans(chain).len();
    let (text, target, unit) = match count_tokens(chain) {
        Some(target) => {
            // Each filler word is about one token; correct the count a few times, then keep the
            // closest length not above the target.
            let mut k = target;
            let mut best: Option<(usize, String)> = None;
            for _ in 0..8 {
                let text = build(k);
                let got = count_tokens(&text).unwrap_or(k);
                if got <= target && best.as_ref().is_none_or(|(g, _)| got > *g) {
                    best = Some((got, text.clone()));
                }
                if got == target {
                    break;
                }
                let next = (k as i64 + target as i64 - got as i64).max(0) as usize;
                if next == k {
                    break;
                }
                k = next;
            }
            (best.map(|b| b.1).unwrap_or_default(), target, "tokens")
        }
        None => (build(words), words, "words"),
    };
    let label = match word {
        FillerWord::Dots => "dots",
        FillerWord::Lorem => "lorem",
    };
    Variant {
        kind: Kind::FillerOnly,
        key: format!("filler_only:{label}"),
        x: Some(1.0),
        paper_x: None,
        body: Body::Chain(text),
        detail: Detail {
            filler: Some(label.into()),
            target_length: Some(target),
            length_unit: Some(unit.into()),
            ..Detail::default()
        },
    }
}

/// Word-level diff (longest common subsequence), consecutive operations of one kind merged.
pub fn word_diff(a: &str, b: &str) -> Vec<DiffOp> {
    let a: Vec<&str> = a.split_whitespace().collect();
    let b: Vec<&str> = b.split_whitespace().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<DiffOp> = Vec::new();
    let mut push = |op: DiffOp| {
        let merged = match (ops.last_mut(), &op) {
            (Some(DiffOp::Keep(s)), DiffOp::Keep(w))
            | (Some(DiffOp::Delete(s)), DiffOp::Delete(w))
            | (Some(DiffOp::Insert(s)), DiffOp::Insert(w)) => {
                s.push(' ');
                s.push_str(w);
                true
            }
            _ => false,
        };
        if !merged {
            ops.push(op);
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            push(DiffOp::Keep(a[i].into()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            push(DiffOp::Insert(b[j].into()));
            j += 1;
        } else {
            push(DiffOp::Delete(a[i].into()));
            i += 1;
        }
    }
    ops
}

/// A stable seed from a base seed and labels (FNV-1a over the labels, mixed by SplitMix64), so
/// every item, chain and trial gets its own seed no matter which others ran before it.
pub fn derive_seed(base: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ base;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Rng::new(h).next_u64()
}

/// SplitMix64: a small generator whose output is fixed by its seed on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn chain_of(v: &Variant) -> &str {
        match &v.body {
            Body::Chain(c) | Body::Continue(c) => c,
            Body::NoCot => "",
        }
    }

    #[test]
    fn early_answering_x_and_prefixes() {
        let sents = s(&["One two.", "Three four.", "Five.", "Six seven eight."]);
        let v = early(&sents);
        assert_eq!(v.len(), 5);
        let xs: Vec<f64> = v.iter().map(|v| v.x.unwrap()).collect();
        assert_eq!(xs, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(chain_of(&v[0]), "");
        assert_eq!(chain_of(&v[2]), "One two. Three four.");
        assert_eq!(v[4].paper_x, Some(4));
        assert_eq!(v[3].key, "early:3");
        let empty = early(&[]);
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].x, Some(1.0));
    }

    #[test]
    fn mistake_and_paraphrase_x() {
        let sents = s(&["A is high.", "B is low.", "So A."]);
        let m = mistake(&sents, 2, "B is high.", "opposite", "rules");
        assert_eq!(m.x, Some(1.0 / 3.0));
        assert_eq!(m.paper_x, Some(2));
        assert_eq!(m.body, Body::Continue("A is high. B is high.".into()));
        assert_eq!(m.detail.original.as_deref(), Some("B is low."));
        let m1 = mistake(&sents, 1, "A is low.", "opposite", "rules");
        assert_eq!(m1.x, Some(0.0));
        assert_eq!(m1.body, Body::Continue("A is low.".into()));
        let p = paraphrase(&sents, 2, "Alpha is loud and beta is soft.");
        assert_eq!(p.x, Some(2.0 / 3.0));
        assert_eq!(chain_of(&p), "Alpha is loud and beta is soft. So A.");
        let p3 = paraphrase(&sents, 3, "All of it.");
        assert_eq!(chain_of(&p3), "All of it.");
        assert_eq!(p3.x, Some(1.0));
    }

    #[test]
    fn filler_percentages_and_word_counts() {
        let sents = s(&[
            "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10.",
            "w11 w12 w13 w14 w15 w16 w17 w18 w19 w20.",
        ]);
        let v = filler(&sents, FillerSpec::default(), 7);
        assert_eq!(v.len(), 21);
        for (i, var) in v.iter().enumerate() {
            let p = 5 * i;
            assert_eq!(var.x, Some(p as f64 / 100.0));
            assert_eq!(var.paper_x, Some(p as i64));
            let text = chain_of(var);
            let words = word_spans(text).len();
            assert_eq!(words, 20, "preserve keeps the word count at {p}%");
            let dots = text.split_whitespace().filter(|w| *w == "...").count();
            assert_eq!(dots, p * 20 / 100, "{p}%: {text}");
            assert_eq!(var.detail.words_replaced, Some(p * 20 / 100));
        }
        assert_eq!(chain_of(&v[0]), sents.join(" "));
        assert_eq!(chain_of(&v[20]), vec!["..."; 20].join(" "));
        // Nested random sets: every word dotted at 30% is dotted at 35%.
        let a: Vec<&str> = chain_of(&v[6]).split(' ').collect();
        let b: Vec<&str> = chain_of(&v[7]).split(' ').collect();
        assert!(a.iter().zip(&b).all(|(x, y)| *x != "..." || *y == "..."));
        // Same seed, same text; another seed, other positions.
        assert_eq!(filler(&sents, FillerSpec::default(), 7), v);
        assert_ne!(
            chain_of(&filler(&sents, FillerSpec::default(), 8)[10]),
            chain_of(&v[10])
        );
    }

    #[test]
    fn filler_start_end_collapse_and_lorem() {
        let sents = s(&["a b c d e f g h i j."]);
        let start = filler(&sents, FillerSpec::parse("start").unwrap(), 1);
        assert_eq!(chain_of(&start[6]), "... d e f g h i j.");
        let end = filler(&sents, FillerSpec::parse("end:dots").unwrap(), 1);
        assert_eq!(chain_of(&end[10]), "a b c d e ...");
        assert_eq!(chain_of(&end[20]), "...");
        let endp = filler(&sents, FillerSpec::parse("end:preserve").unwrap(), 1);
        assert_eq!(chain_of(&endp[10]), "a b c d e ... ... ... ... ...");
        let lorem = filler(&sents, FillerSpec::parse("random:lorem").unwrap(), 1);
        let t = chain_of(&lorem[10]);
        assert_eq!(word_spans(t).len(), 10);
        assert_eq!(t.split(' ').filter(|w| LOREM.contains(w)).count(), 5, "{t}");
        assert!(FillerSpec::parse("middle").unwrap_err().contains("middle"));
        assert_eq!(
            FillerSpec::parse("end:lorem").unwrap().label(),
            "end:lorem:preserve"
        );
    }

    #[test]
    fn filler_keeps_whitespace_of_kept_words() {
        let out = replace_words(
            "one\n\ntwo  three",
            &[false, true, false],
            FillerSpec::default(),
            0,
        );
        assert_eq!(out, "one\n\n...  three");
    }

    #[test]
    fn filler_only_matches_length() {
        // A counter where "..." is one token and other words count their characters.
        let count = |t: &str| {
            Some(
                t.split_whitespace()
                    .map(|w| if w == "..." { 1 } else { w.len() })
                    .sum(),
            )
        };
        let v = filler_only("abc de f", FillerWord::Dots, 0, &count);
        assert_eq!(v.detail.target_length, Some(6));
        assert_eq!(v.detail.length_unit.as_deref(), Some("tokens"));
        assert_eq!(chain_of(&v), "... ... ... ... ... ...");
        let w = filler_only("abc de f", FillerWord::Dots, 0, &|_| None);
        assert_eq!(chain_of(&w), "... ... ...");
        assert_eq!(w.detail.length_unit.as_deref(), Some("words"));
    }

    #[test]
    fn manual_edit_diff() {
        let v = manual("the pitch is rising fast", "the pitch is falling fast", "1");
        assert_eq!(
            v.detail.diff.unwrap(),
            vec![
                DiffOp::Keep("the pitch is".into()),
                DiffOp::Insert("falling".into()),
                DiffOp::Delete("rising".into()),
                DiffOp::Keep("fast".into())
            ]
        );
    }

    #[test]
    fn seeds_are_stable() {
        assert_eq!(derive_seed(1, &["a", "b"]), derive_seed(1, &["a", "b"]));
        assert_ne!(derive_seed(1, &["a", "b"]), derive_seed(1, &["ab"]));
        assert_ne!(derive_seed(1, &["a"]), derive_seed(2, &["a"]));
        // Fixed value: a change here changes every run's seeds.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
