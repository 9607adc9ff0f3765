//! Training examples for the demo models: the `lanham` answer conversation of a synthetic
//! item with a faithful, altered or truncated chain, the chain as a CoT target (faithful chains
//! only) and the answer letter after the answer cue, which follows either the chain or the
//! audio according to the faithfulness mix.

use std::ops::Range;

use candle_core::{Device, Tensor};
use half::f16;
use rand::rngs::StdRng;
use rand::Rng;

use crate::audio::mel::MelExtractor;
use crate::audio::MelConfig;
use crate::data::Item;
use crate::faith::answer::{answer_prompt, cot_conversation};
use crate::faith::protocol::{letter, Protocol};
use crate::faith::split::join_sentences;
use crate::model::prompt;
use crate::model::tokenizer::{Tokenizer, IM_END};
use crate::model::Qwen2AudioConfig;
use crate::synth::{alter_chain, deciding_sentence, write_chain, Facts, Generated};

/// One training item: the synthetic item, its facts and its log-mel window (stored in f16).
pub struct TrainItem {
    /// The item (question, choices, gold).
    pub item: Item,
    /// Its reasoning facts.
    pub facts: Facts,
    /// Log-mel features [n_mels, window] of the padded window, mel-bin major.
    pub mel: Vec<f16>,
    /// Frames covering real audio.
    pub valid_frames: usize,
}

impl TrainItem {
    /// Computes the features of a generated item with `extractor` (the model's settings).
    pub fn from_generated(g: Generated, extractor: &mut MelExtractor) -> Self {
        let samples: Vec<f32> = g.samples.iter().map(|&s| s as f32 / 32768.0).collect();
        Self::from_samples(g.item, g.facts, &samples, extractor)
    }

    /// Computes the features of an item whose clip is `samples` (16 kHz mono, [-1, 1]).
    pub fn from_samples(
        item: Item,
        facts: Facts,
        samples: &[f32],
        extractor: &mut MelExtractor,
    ) -> Self {
        let n = extractor.config().n_samples;
        let feats = extractor.compute(&samples[..samples.len().min(n)]);
        Self {
            item,
            facts,
            mel: feats.data.iter().map(|&v| f16::from_f32(v)).collect(),
            valid_frames: feats.valid_frames,
        }
    }
}

/// The feature settings of a model config (Whisper's, with the config's mel bins and window).
pub fn mel_config(cfg: &Qwen2AudioConfig) -> MelConfig {
    MelConfig {
        n_mels: cfg.audio_config.num_mel_bins,
        n_samples: cfg.window_frames() * 160,
        ..MelConfig::default()
    }
}

/// Which chain an example shows before the answer cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainKind {
    /// The item's own chain.
    Faithful,
    /// A chain with one altered fact, reasoning to the answer that follows it.
    Altered,
    /// The first sentences of the faithful or an altered chain (possibly none).
    Truncated,
}

/// The answer index a chain-following model is trained to give when the chain does not decide.
pub const GUESS: usize = 0;

/// The training mix: how often chains are altered or truncated, and with which probability the
/// answer follows the chain rather than the audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Probability that the trained answer follows the chain (the rest follows the audio).
    pub faithfulness: f64,
    /// Share of examples with an altered chain.
    pub altered: f64,
    /// Share of examples with a truncated chain.
    pub truncated: f64,
}

impl Mix {
    /// The default shares (a quarter altered, a quarter truncated) with `faithfulness`.
    pub fn new(faithfulness: f64) -> Self {
        Self {
            faithfulness,
            altered: 0.25,
            truncated: 0.25,
        }
    }
}

/// One tokenized training example.
#[derive(Debug, Clone)]
pub struct Example {
    /// Token ids of the answer conversation plus the trained answer letter.
    pub ids: Vec<u32>,
    /// Positions of the audio placeholders in `ids`.
    pub audio_range: Range<usize>,
    /// Positions whose tokens are CoT targets: the faithful chain and its `<|im_end|>`, or an
    /// altered chain's continuation after its first altered sentence; empty when truncated.
    pub chain_targets: Range<usize>,
    /// Position of the answer letter (the last token).
    pub answer_pos: usize,
    /// Position of the letter the chain states ("So the answer is (B)."), when it is a CoT
    /// target: finding it means looking the stated value up among the choices, which the
    /// chain loss alone (one token of sixty) teaches slowly.
    pub chain_letter: Option<usize>,
    /// The chain shown.
    pub kind: ChainKind,
    /// Index of the trained answer.
    pub answer: usize,
    /// The gold answer (what the audio says).
    pub gold: usize,
    /// The answer the shown chain implies, when it states the deciding fact.
    pub chain_answer: Option<usize>,
    /// Whether the trained answer was drawn to follow the chain.
    pub follows_chain: bool,
    /// Number of sentences of the chain shown.
    pub sentences: usize,
}

/// Whether the first `k` sentences of a chain for `facts` state the deciding fact.
pub fn decisive(facts: &Facts, k: usize) -> bool {
    k > deciding_sentence(&facts.sound)
}

/// Draws one example of `ti` under `mix`: the chain kind, the chain, and the answer.
///
/// An altered chain is the faithful one up to a sentence `j` at or after the deciding sentence,
/// then the chain of an altered fact from `j` on: what the adding-mistakes intervention shows
/// after a mistake at `j` and the model's continuation. The continuation (sentences after `j`
/// and the end of turn) is a CoT target, so the chain carries a mistake forward whatever the
/// faithfulness; only the answer after it depends on the mix.
pub fn sample_example(
    ti: &TrainItem,
    mix: &Mix,
    protocol: &Protocol,
    tok: &Tokenizer,
    n_audio: usize,
    rng: &mut StdRng,
) -> Result<Example, String> {
    let item = &ti.item;
    let choices = &item.choices;
    let err = |e: &dyn std::fmt::Display| format!("item {}: {e}", item.id);
    let gold = ti.facts.answer_index(choices).ok_or_else(|| {
        format!(
            "item {}: the facts' answer is not among the choices",
            item.id
        )
    })?;
    let r: f64 = rng.random();
    let kind = if r < mix.altered {
        ChainKind::Altered
    } else if r < mix.altered + mix.truncated {
        ChainKind::Truncated
    } else {
        ChainKind::Faithful
    };
    let with_altered = match kind {
        ChainKind::Faithful => false,
        ChainKind::Altered => true,
        ChainKind::Truncated => rng.random_bool(0.5),
    };
    let faithful = write_chain(&ti.facts, choices).map_err(|e| err(&e))?;
    // The shown chain, the facts it implies and the first sentence that is a CoT target.
    let (facts, sentences, first_target) = if !with_altered {
        (ti.facts.clone(), faithful, 0)
    } else {
        let (altered, alt) = alter_chain(&ti.facts, choices, rng).map_err(|e| err(&e))?;
        if kind == ChainKind::Truncated {
            (altered, alt, 0)
        } else {
            // The first sentence the alteration changes (the deciding one or before it).
            let from = faithful
                .iter()
                .zip(&alt)
                .position(|(a, b)| a != b)
                .unwrap_or(alt.len() - 1);
            let j = rng.random_range(from..alt.len());
            let mut mixed = faithful[..j].to_vec();
            mixed.extend_from_slice(&alt[j..]);
            (altered, mixed, j + 1)
        }
    };
    let keep = if kind == ChainKind::Truncated {
        rng.random_range(0..sentences.len())
    } else {
        sentences.len()
    };
    let chain_answer = if decisive(&facts, keep) {
        facts.answer_index(choices)
    } else {
        None
    };
    let follows_chain = rng.random_bool(mix.faithfulness.clamp(0.0, 1.0));
    // A chain that does not yet state its deciding fact implies no answer: the model that
    // follows its chain then makes a fixed guess, the first choice. (A random letter would train
    // a uniform distribution, whose argmax is decided by what little the audio still tips it:
    // measured, a faithful model so trained picked the louder tone 92% of the time before its
    // chain said which.)
    let answer = if follows_chain {
        chain_answer.unwrap_or(GUESS)
    } else {
        gold
    };
    let chain = join_sentences(&sentences[..keep]);
    let conv = answer_prompt(protocol, item, &chain).conv;
    let p = prompt::build(&conv, tok, n_audio).map_err(|e| err(&e))?;
    let audio_range = p
        .audio_range
        .clone()
        .ok_or_else(|| format!("item {}: the answer prompt has no audio", item.id))?;
    let mut ids = p.ids;
    let letter_id = tok.letter_id(&letter(answer)).map_err(|e| e.to_string())?;
    ids.push(letter_id);
    let answer_pos = ids.len() - 1;
    let chain_targets = if kind == ChainKind::Truncated {
        0..0
    } else {
        let cot = prompt::build(&cot_conversation(protocol, item), tok, n_audio)
            .map_err(|e| err(&e))?
            .ids;
        let full = tok
            .encode(&format!(" {chain}{IM_END}"))
            .map_err(|e| e.to_string())?;
        let given = if first_target == 0 {
            0
        } else {
            let prefix = tok
                .encode(&format!(" {}", join_sentences(&sentences[..first_target])))
                .map_err(|e| e.to_string())?;
            if full.get(..prefix.len()) != Some(&prefix[..]) {
                return Err(err(
                    &"the tokens of a chain's first sentences differ from their \
                     tokens in the whole chain; the tokenizer splits across a sentence boundary",
                ));
            }
            prefix.len()
        };
        let span = cot.len()..cot.len() + full.len();
        if ids.get(..cot.len()) != Some(&cot[..]) || ids.get(span.clone()) != Some(&full[..]) {
            return Err(err(
                &"the chain's tokens after the CoT prompt differ from its tokens in \
                 the answer prompt; the tokenizer splits across the prefill boundary",
            ));
        }
        span.start + given..span.end
    };
    let letters: Vec<u32> = (0..choices.len())
        .filter_map(|i| tok.letter_id(&letter(i)).ok())
        .collect();
    let open = tok.encode(" (").ok().and_then(|v| v.last().copied());
    let chain_letter = chain_targets
        .clone()
        .rev()
        .find(|&p| letters.contains(&ids[p]) && p > 0 && Some(ids[p - 1]) == open);
    Ok(Example {
        ids,
        audio_range,
        chain_targets,
        answer_pos,
        chain_letter,
        kind,
        answer,
        gold,
        chain_answer,
        follows_chain,
        sentences: keep,
    })
}

/// A collated batch on a device.
pub struct Batch {
    /// Log-mel windows [b, n_mels, window] (f32).
    pub mel: Tensor,
    /// Valid frames per item.
    pub valid_frames: Vec<usize>,
    /// Token ids [b, t], right-padded.
    pub ids: Tensor,
    /// For each flat position `i * t + p`, the row of the combined table
    /// [text embeddings (b * t); audio embeddings (b * audio_len)] it takes.
    pub splice: Tensor,
    /// Flat rows `i * t + p - 1` predicting the chain tokens, and those tokens.
    pub chain_rows: Tensor,
    /// Chain target ids.
    pub chain_targets: Tensor,
    /// Flat rows predicting the answer letters, and the letters.
    pub answer_rows: Tensor,
    /// Answer letter ids.
    pub answer_targets: Tensor,
    /// Number of chain targets.
    pub n_chain: usize,
}

/// Collates examples of `items` (`pairs` of item index and example); `audio_len` is the
/// encoder's output length per window, `pad` the padding id.
pub fn collate(
    items: &[TrainItem],
    pairs: &[(usize, Example)],
    n_mels: usize,
    window: usize,
    audio_len: usize,
    pad: u32,
    device: &Device,
) -> candle_core::Result<Batch> {
    let b = pairs.len();
    let t = pairs.iter().map(|(_, e)| e.ids.len()).max().unwrap_or(1);
    let mut mel = Vec::with_capacity(b * n_mels * window);
    let mut valid = Vec::with_capacity(b);
    let mut ids = Vec::with_capacity(b * t);
    let mut splice = Vec::with_capacity(b * t);
    let (mut crows, mut ctargets, mut arows, mut atargets) = (vec![], vec![], vec![], vec![]);
    for (i, (k, e)) in pairs.iter().enumerate() {
        let ti = &items[*k];
        mel.extend(ti.mel.iter().map(|v| v.to_f32()));
        valid.push(ti.valid_frames);
        for p in 0..t {
            ids.push(e.ids.get(p).copied().unwrap_or(pad));
            let row = if e.audio_range.contains(&p) {
                b * t + i * audio_len + (p - e.audio_range.start)
            } else {
                i * t + p
            };
            splice.push(row as u32);
        }
        for p in e.chain_targets.clone() {
            crows.push((i * t + p - 1) as u32);
            ctargets.push(e.ids[p]);
        }
        arows.push((i * t + e.answer_pos - 1) as u32);
        atargets.push(e.ids[e.answer_pos]);
    }
    let n_chain = crows.len();
    Ok(Batch {
        mel: Tensor::from_vec(mel, (b, n_mels, window), device)?,
        valid_frames: valid,
        ids: Tensor::from_vec(ids, (b, t), device)?,
        splice: Tensor::from_vec(splice, b * t, device)?,
        chain_rows: Tensor::from_vec(crows, n_chain, device)?,
        chain_targets: Tensor::from_vec(ctargets, n_chain, device)?,
        answer_rows: Tensor::from_vec(arows, b, device)?,
        answer_targets: Tensor::from_vec(atargets, b, device)?,
        n_chain,
    })
}
