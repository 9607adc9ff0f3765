//! Reasoning chains for generated items: the faithful chain of an item's facts, and chains with
//! exactly one altered fact whose answer follows the altered fact.
//!
//! Sentences are plain: each starts with a capital letter and ends with a period, with no
//! abbreviations or decimals, so the project's sentence splitter gives them back one by one.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use super::{number_word, Direction, Facts, Hop, Item, Kind, Level, Order, Sound, SynthError};

/// `text` with its first letter in upper case.
fn capitalize(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `n beeps` with the right number.
fn beeps(n: u32) -> String {
    format!(
        "{} {}",
        number_word(n),
        if n == 1 { "beep" } else { "beeps" }
    )
}

/// The sentence every chain opens with.
pub const OPENING: &str = "Let me listen to the clip carefully.";

/// Sentences saying what is heard: a description that does not decide the answer, what the
/// listener sets out to do, then the deciding observation (see [`deciding_sentence`]).
fn observe(sound: &Sound) -> Vec<String> {
    match sound {
        Sound::Beeps { count, .. } => vec![
            "I hear short beeps with silences between them.".into(),
            "Let me count them one by one.".into(),
            format!("I count {}.", beeps(*count)),
        ],
        Sound::Tone { freq_hz, .. } => vec![
            "I hear one steady tone.".into(),
            "Let me estimate its pitch.".into(),
            format!("Its pitch is about {freq_hz} Hz."),
        ],
        Sound::Chirp {
            start_hz, end_hz, ..
        } => vec![
            "I hear one tone that glides in pitch.".into(),
            "Let me follow its pitch from start to end.".into(),
            format!("It starts near {start_hz} Hz and ends near {end_hz} Hz."),
        ],
        Sound::TwoTones { louder, .. } => {
            let (a, b) = match louder {
                Order::First => ("loud", "soft"),
                Order::Second => ("soft", "loud"),
            };
            vec![
                "I hear two tones, one after the other.".into(),
                "Let me compare how loud they are.".into(),
                format!("The first tone is {a} and the second tone is {b}."),
            ]
        }
        Sound::Kind { kind } => match kind {
            Kind::Tone => vec![
                KIND_INTENT.into(),
                "I hear a sound with one clear pitch.".into(),
                "The pitch stays the same from start to end.".into(),
            ],
            Kind::Noise => vec![
                KIND_INTENT.into(),
                "I hear a hiss with no clear pitch.".into(),
                "Its energy is spread over all frequencies.".into(),
            ],
            Kind::Chirp => vec![
                KIND_INTENT.into(),
                "I hear a sound with one clear pitch.".into(),
                "The pitch glides from one height to another.".into(),
            ],
        },
    }
}

const KIND_INTENT: &str = "Let me work out what kind of sound this is.";

/// Index of the first sentence of a chain for `sound` that decides the answer: the opening and
/// the description before it leave every choice open.
pub fn deciding_sentence(sound: &Sound) -> usize {
    match sound {
        Sound::Kind { kind: Kind::Noise } => 2,
        _ => 3,
    }
}

/// The sentence drawing the listening conclusion.
fn conclude(sound: &Sound) -> String {
    match sound {
        Sound::Beeps { count, .. } => format!("There are {} in total.", beeps(*count)),
        Sound::Tone { level, .. } => match level {
            Level::Low => "That is below 400 Hz, so the pitch is low.".into(),
            Level::Medium => "That is between 400 and 1500 Hz, so the pitch is medium.".into(),
            Level::High => "That is above 1500 Hz, so the pitch is high.".into(),
        },
        Sound::Chirp { direction, .. } => match direction {
            Direction::Rising => "The pitch goes up, so it is rising.".into(),
            Direction::Falling => "The pitch goes down, so it is falling.".into(),
        },
        Sound::TwoTones { louder, .. } => match louder {
            Order::First => "The first tone is the louder one.".into(),
            Order::Second => "The second tone is the louder one.".into(),
        },
        Sound::Kind { kind } => match kind {
            Kind::Tone => "The sound is a steady tone.".into(),
            Kind::Noise => "The sound is noise.".into(),
            Kind::Chirp => "The sound is a chirp.".into(),
        },
    }
}

/// The sentence of the second hop, linking the listening fact to `answer`.
fn hop_sentence(hop: Hop, sound: &Sound, answer: &str) -> String {
    let thing = capitalize(answer);
    match (hop, sound) {
        (Hop::Legs, Sound::Beeps { count, .. }) => {
            format!("{thing} has {} legs.", number_word(*count))
        }
        (Hop::Wheels, Sound::Beeps { count, .. }) => {
            let n = number_word(*count);
            let noun = if *count == 1 { "wheel" } else { "wheels" };
            format!("{thing} has {n} {noun}.")
        }
        (Hop::Likeness, Sound::Tone { level, .. }) => {
            let level = match level {
                Level::Low => "low",
                Level::Medium => "medium",
                Level::High => "high",
            };
            format!("A {level} pitch is most like {answer}.")
        }
        (Hop::Motion, Sound::Chirp { direction, .. }) => {
            let how = match direction {
                Direction::Rising => "rising",
                Direction::Falling => "falling",
            };
            format!("A {how} pitch moves like {answer}.")
        }
        (_, _) => format!("A sound like this most likely comes from {answer}."),
    }
}

/// The reasoning chain of `facts` for an item with these `choices`: 6 or 7 sentences (the
/// opening, the observations, the conclusion, the second hop if any, and the answer letter:
/// "So the answer is (B)."). The answer is decided from sentence [`deciding_sentence`] on.
pub fn write_chain(facts: &Facts, choices: &[String]) -> Result<Vec<String>, SynthError> {
    let answer = facts.answer_text().ok_or_else(|| {
        SynthError::Chain(format!("the facts {:?} have no answer text", facts.sound))
    })?;
    let index = facts.answer_index(choices).ok_or_else(|| {
        SynthError::Chain(format!(
            "the answer `{answer}` is not among the choices {choices:?}"
        ))
    })?;
    let mut chain = vec![OPENING.to_string()];
    chain.extend(observe(&facts.sound));
    chain.push(conclude(&facts.sound));
    if let Some(hop) = facts.hop {
        chain.push(hop_sentence(hop, &facts.sound, answer));
    }
    chain.push(format!("So the answer is ({}).", Item::letter(index)));
    Ok(chain)
}

/// The faithful chain of a generated item, from its `meta.facts` and choices.
pub fn chain_for_item(item: &Item) -> Result<Vec<String>, SynthError> {
    let facts = Facts::of_item(item)?;
    write_chain(&facts, &item.choices).map_err(|e| SynthError::Facts {
        item: item.id.clone(),
        detail: e.to_string(),
    })
}

/// A chain with one altered fact: the deciding fact (count, level, direction, louder tone or
/// kind) is changed to another value whose answer is among `choices` (a wrong count, the
/// opposite direction, another level), and the chain reasons from it to the answer that follows.
/// Returns the altered facts and the chain; an error when no other value has a choice.
pub fn alter_chain(
    facts: &Facts,
    choices: &[String],
    rng: &mut StdRng,
) -> Result<(Facts, Vec<String>), SynthError> {
    let current = facts.sound.value();
    let candidates: Vec<_> = facts
        .variant()
        .options()
        .into_iter()
        .filter(|(v, text)| *v != current && choices.iter().any(|c| c == text))
        .map(|(v, _)| v)
        .collect();
    let value = *candidates.choose(rng).ok_or_else(|| {
        SynthError::Chain(format!("no other choice to alter {:?} to", facts.sound))
    })?;
    let sound = facts
        .sound
        .with_value(value, rng)
        .ok_or_else(|| SynthError::Chain(format!("cannot set {:?} to {value:?}", facts.sound)))?;
    let altered = Facts {
        sound,
        ..facts.clone()
    };
    let chain = write_chain(&altered, choices)?;
    Ok((altered, chain))
}

/// The mistake the adding-mistakes intervention inserts at sentence `i` (1-based) of a chain
/// for a synthetic item: the same sentence of the item's chain with one altered fact
/// ([`alter_chain`], drawn from `seed`). `None` when the item has no facts, when the chain's
/// sentence is not the item's own chain's sentence (the model reasoned differently there), or
/// when the alteration leaves that sentence unchanged (the opening and the description).
pub fn fact_mistake(item: &Item, sentences: &[String], i: usize, seed: u64) -> Option<String> {
    use rand::SeedableRng;
    let facts = Facts::of_item(item).ok()?;
    let own = write_chain(&facts, &item.choices).ok()?;
    let k = i.checked_sub(1)?;
    if sentences.get(k) != own.get(k) {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (_, altered) = alter_chain(&facts, &item.choices, &mut rng).ok()?;
    altered.get(k).filter(|s| *s != &own[k]).cloned()
}
