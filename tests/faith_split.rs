//! Our sentence splitter against NLTK punkt's splits of the paper's real chains
//! (tests/fixtures/faith/punkt_splits.jsonl, written by tools/punkt_splits.py).
//!
//! Two comparisons, each of which must reach 95% of the chains, with every disagreement printed:
//! - the `punkt` splitter (paper-v1's) against punkt's splits as they are;
//! - the default splitter against punkt's splits with one punkt behaviour normalised: punkt
//!   treats `*` as a non-word character after a period, so a chain ending in a bold answer,
//!   `... is: **(D) cat.**`, gets a last "sentence" `**`; such a fragment (no letter or digit) is
//!   attached to the sentence before it, which is what the default splitter does.

mod common;

use std::collections::HashMap;

use faithscope::faith::split::{split_sentences, Splitter};
use serde_json::Value;

/// Share of chains the default splitter must split as punkt does (after normalising).
const MIN_AGREEMENT: f64 = 0.95;
/// Share of chains the `punkt` splitter must split exactly as punkt does.
const MIN_RAW_AGREEMENT: f64 = 0.95;

/// Attaches fragments without any letter or digit (punkt's `**` after `cat.`) to the sentence
/// before them.
fn normalise(punkt: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in punkt {
        match out.last_mut() {
            Some(prev) if !s.chars().any(char::is_alphanumeric) => prev.push_str(&s),
            _ => out.push(s),
        }
    }
    out
}

#[test]
fn agrees_with_punkt_on_real_chains() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let fixture = common::repo().join("tests/fixtures/faith/punkt_splits.jsonl");
    let expected = std::fs::read_to_string(&fixture).expect("read the punkt fixture");
    let mut texts: HashMap<String, Vec<Value>> = HashMap::new();
    let (mut total, mut agree, mut raw_agree) = (0usize, 0usize, 0usize);
    let mut disagreements = Vec::new();
    let mut raw_disagreements = Vec::new();
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let rec: Value = serde_json::from_str(line).unwrap();
        if rec.get("_meta").is_some() {
            continue;
        }
        let file = rec["file"].as_str().unwrap().to_string();
        let rows = texts.entry(file.clone()).or_insert_with(|| {
            let path = data.join("paper-results").join(&file);
            let body = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            body.lines()
                .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
                .collect()
        });
        let row = &rows[rec["line"].as_u64().unwrap() as usize - 1];
        assert_eq!(
            row["id"], rec["id"],
            "{file}: fixture is stale, rerun tools/punkt_splits.py"
        );
        let text = row["generated_cot"].as_str().unwrap();
        let punkt: Vec<String> = rec["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let (a, b) = (
                    s[0].as_u64().unwrap() as usize,
                    s[1].as_u64().unwrap() as usize,
                );
                text[a..b].to_string()
            })
            .collect();
        let ours = split_sentences(text);
        let ours_punkt = Splitter::Punkt.split(text);
        total += 1;
        if ours_punkt == punkt {
            raw_agree += 1;
        } else {
            raw_disagreements.push(format!(
                "{} chain {}:\n  punkt: {:?}\n  ours:  {:?}",
                rec["id"], rec["chain_id"], punkt, ours_punkt
            ));
        }
        let punkt = normalise(punkt);
        if ours == punkt {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{} chain {}:\n  punkt: {:?}\n  ours:  {:?}",
                rec["id"], rec["chain_id"], punkt, ours
            ));
        }
    }
    let share = agree as f64 / total as f64;
    let raw_share = raw_agree as f64 / total as f64;
    println!(
        "punkt splitter, agreement with punkt: {raw_agree}/{total} chains ({:.1}%)",
        100.0 * raw_share
    );
    for d in &raw_disagreements {
        println!("punkt splitter: {d}");
    }
    println!(
        "default splitter, agreement with punkt normalised: {agree}/{total} chains ({:.1}%)",
        100.0 * share
    );
    for d in &disagreements {
        println!("{d}");
    }
    assert!(
        total >= 1000,
        "expected the 1000 chains of the fixture, found {total}"
    );
    assert!(
        raw_share >= MIN_RAW_AGREEMENT,
        "the punkt splitter agrees on {:.1}%, below {:.0}%",
        100.0 * raw_share,
        100.0 * MIN_RAW_AGREEMENT
    );
    assert!(
        share >= MIN_AGREEMENT,
        "agreement {:.1}% is below {:.0}%",
        100.0 * share,
        100.0 * MIN_AGREEMENT
    );
}
