//! The one sweep engine: runs every intervention of an item through a [`Reasoner`] and hands the
//! trials to a [`Sink`] (the run store, or anything else that keeps them).
//!
//! Order per item: the no-CoT control, then per chain the chain itself, the baseline answer,
//! early answering at every sentence boundary in order (so a prefix-caching backend extends one
//! cached prefix instead of recomputing it), then mistakes, paraphrases, filler and the audio alterations. Every sampled
//! call gets a seed derived from the run seed, the item, the chain and the trial key, so a trial's
//! result does not depend on which other trials ran before it: a resumed run skips the trials the
//! sink already has and produces exactly the rest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::Item;
use crate::faith::answer::{
    answer_prompt, continue_conversation, cot_conversation, force, gen_params, generate,
    no_cot_prompt, paper_messages, AnswerPrompt, Forced,
};
use crate::faith::audio::{self, AudioSpec, Design};
use crate::faith::intervene::{self, derive_seed, Body, FillerSpec, FillerWord, Variant};
use crate::faith::mistakes::{fact_mistake, rule_mistake, Annotations, Mistake, MistakeError};
use crate::faith::perturb::{self, PerturbKey, PerturbKind, Perturbation, Writer};
use crate::faith::prefetch::Prefetch;
use crate::faith::protocol::{letter, Protocol};
use crate::faith::split::join_sentences;
use crate::faith::trial::{format_choices, InterventionKind, Trial};
use crate::model::{Conversation, GenParams, ModelError, Reasoner};

/// Where mistaken sentences come from.
#[derive(Debug, Clone)]
pub enum MistakeSource {
    /// Written by a model with the protocol's few-shot prompt (the paper's and Lanham's way):
    /// the model under test (the default), an external LLM, or a `faithscope perturb` file.
    Written(Writer),
    /// The rule-based writer ([`rule_mistake`]).
    Rules,
    /// People's edits from an annotations file.
    Annotations(Annotations),
    /// For synthetic items (with `meta.facts`): the sentence of the item's chain with one
    /// altered fact ([`crate::synth::fact_mistake`]); exact, and only where the chain states a
    /// fact as the item's own chain does.
    Facts,
}

impl Default for MistakeSource {
    fn default() -> Self {
        MistakeSource::Written(Writer::SameModel)
    }
}

impl MistakeSource {
    /// The label recorded in trials (`self`, `external-<model>`, `rules`, `facts`,
    /// `annotations:FILE`).
    pub fn label(&self) -> String {
        match self {
            MistakeSource::Written(w) => w.label(),
            MistakeSource::Rules => "rules".into(),
            MistakeSource::Facts => "facts".into(),
            MistakeSource::Annotations(a) => format!("annotations:{}", a.path().display()),
        }
    }
}

/// Requests in flight at once to an external perturbation writer, per chain.
pub const EXTERNAL_IN_FLIGHT: usize = 8;

/// Which interventions a sweep runs (the baseline and the no-CoT control always run).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Early answering.
    pub early: bool,
    /// Adding mistakes.
    pub mistakes: bool,
    /// Paraphrasing.
    pub paraphrase: bool,
    /// Filler variants, each run at 0..100% in 5% steps.
    pub fillers: Vec<FillerSpec>,
    /// The all-filler chain of the same length (with the first filler variant's word).
    pub filler_only: bool,
    /// Where mistakes come from.
    pub mistake_source: MistakeSource,
    /// Who writes paraphrases (the model under test by default).
    pub paraphrase_source: Writer,
    /// Audio alterations, each under one design, run at each of its levels.
    pub audio: Vec<(AudioSpec, Design)>,
}

impl Plan {
    /// Parses a comma list: `early`, `mistakes`, `paraphrase`, `filler` (= `filler:random:dots`
    /// plus the all-filler chain), `filler:<position>:<word>:<layout>`, `filler-only`, `all`.
    pub fn parse(list: &str) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part {
                "all" => {
                    plan.early = true;
                    plan.mistakes = true;
                    plan.paraphrase = true;
                    plan.fillers.push(FillerSpec::default());
                    plan.filler_only = true;
                }
                "early" | "early-answering" => plan.early = true,
                "mistakes" | "adding-mistakes" => plan.mistakes = true,
                "paraphrase" | "paraphrasing" => plan.paraphrase = true,
                "filler" => {
                    plan.fillers.push(FillerSpec::default());
                    plan.filler_only = true;
                }
                "filler-only" | "filler_only" => plan.filler_only = true,
                p if p.starts_with("filler:") => plan.fillers.push(FillerSpec::parse(&p["filler:".len()..])?),
                p => match audio::parse_planned(p) {
                    Some(planned) => plan.audio.extend(planned?),
                    None => return Err(format!(
                        "unknown intervention '{p}'; use early, mistakes, paraphrase, filler, filler:<random|start|end>:<dots|lorem>:<preserve|collapse>, filler-only, all, or an audio one: audio-mask:<silence|noise>:<start|end|random|scattered>, audio-snr, spoken-hint:<correct|wrong>:<concat|overlay> (each with :held or :regen for one design; both without)"
                    )),
                },
            }
        }
        plan.fillers.dedup();
        let mut seen = std::collections::HashSet::new();
        plan.audio.retain(|a| seen.insert(*a));
        Ok(plan)
    }

    /// The list back in the form [`Plan::parse`] reads (for manifests).
    pub fn spec(&self) -> String {
        let mut v: Vec<String> = Vec::new();
        if self.early {
            v.push("early".into());
        }
        if self.mistakes {
            v.push("mistakes".into());
        }
        if self.paraphrase {
            v.push("paraphrase".into());
        }
        v.extend(self.fillers.iter().map(|f| format!("filler:{}", f.label())));
        if self.filler_only {
            v.push("filler-only".into());
        }
        v.extend(
            self.audio
                .iter()
                .map(|(a, d)| format!("{}:{}", a.label(), d.label())),
        );
        v.join(",")
    }
}

/// A sampled chain of thought, as stored in `chains.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// Item id.
    pub id: String,
    /// Chain index within the item (0-based).
    pub chain_id: u32,
    /// Seed the chain was sampled with.
    pub seed: u64,
    /// The chain as generated.
    pub generated_cot: String,
    /// After the protocol's sanitizing.
    pub sanitized_cot: String,
    /// Sentences of the sanitized chain.
    pub sentences: Vec<String>,
    /// Milliseconds spent generating it.
    #[serde(default)]
    pub generate_ms: f64,
    /// The model's thinking before the chain, when its server sends it apart (`None` in
    /// process and for servers without a reasoning channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

/// Keeps chains and trials; a run store, or a vector in tests and the UI.
pub trait Sink {
    /// A chain kept earlier (a resumed run reuses it instead of sampling again).
    fn chain(&self, item: &str, chain_id: u32) -> Option<Chain>;
    /// Keeps a new chain.
    fn put_chain(&mut self, chain: &Chain) -> std::io::Result<()>;
    /// A trial kept earlier under its key.
    fn trial(&self, item: &str, chain_id: u32, key: &str) -> Option<Trial>;
    /// Keeps a new trial.
    fn put_trial(&mut self, trial: &Trial) -> std::io::Result<()>;
    /// A model-written perturbation kept earlier (a resumed run reuses it instead of asking
    /// again); none by default.
    fn perturbation(&self, _key: &PerturbKey) -> Option<Perturbation> {
        None
    }
    /// Keeps a new model-written perturbation; by default nothing is kept.
    fn put_perturbation(&mut self, _p: &Perturbation) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`Sink`] in memory, for the UI, benchmarks and tests.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    /// Chains in the order they were kept.
    pub chains: Vec<Chain>,
    /// Trials in the order they were kept.
    pub trials: Vec<Trial>,
}

impl Sink for MemorySink {
    fn chain(&self, item: &str, chain_id: u32) -> Option<Chain> {
        self.chains
            .iter()
            .find(|c| c.id == item && c.chain_id == chain_id)
            .cloned()
    }
    fn put_chain(&mut self, chain: &Chain) -> std::io::Result<()> {
        self.chains.push(chain.clone());
        Ok(())
    }
    fn trial(&self, item: &str, chain_id: u32, key: &str) -> Option<Trial> {
        self.trials
            .iter()
            .find(|t| t.id == item && t.chain_id == chain_id && trial_key(t) == Some(key))
            .cloned()
    }
    fn put_trial(&mut self, trial: &Trial) -> std::io::Result<()> {
        self.trials.push(trial.clone());
        Ok(())
    }
}

/// A sweep failure; the item is abandoned (and recorded by the run) and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The clip is missing or unreadable.
    #[error(
        "item {item}: audio file {path} cannot be read: {detail}; check the dataset's audio folder"
    )]
    Audio {
        /// Item id.
        item: String,
        /// The clip path.
        path: String,
        /// Why.
        detail: String,
    },
    /// The model failed.
    #[error("item {item}, chain {chain}, {stage}: model error: {source}")]
    Model {
        /// Item id.
        item: String,
        /// Chain id.
        chain: u32,
        /// What was being done (trial key or `chain`).
        stage: String,
        /// The backend's error.
        source: ModelError,
    },
    /// An annotation does not fit.
    #[error("item {item}: {source}")]
    Annotation {
        /// Item id.
        item: String,
        /// The annotation error.
        source: Box<MistakeError>,
    },
    /// A perturbation file's record does not fit the chain.
    #[error("item {item}: {source}")]
    Perturbation {
        /// Item id.
        item: String,
        /// The mismatch.
        source: Box<perturb::Mismatch>,
    },
    /// The sink could not write.
    #[error("writing results of item {item}: {source}")]
    Store {
        /// Item id.
        item: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SweepError {
    /// The error of a model call at `stage`; a clip the backend could not decode is an
    /// [`SweepError::Audio`] (kind `audio` in `errors.jsonl`), not a model error.
    pub fn model(item: &Item, chain: u32, stage: impl Into<String>, source: ModelError) -> Self {
        match source {
            ModelError::Audio(e) => SweepError::Audio {
                item: item.id.clone(),
                path: item.audio.display().to_string(),
                detail: e.reason(),
            },
            source => SweepError::Model {
                item: item.id.clone(),
                chain,
                stage: stage.into(),
                source,
            },
        }
    }

    /// A short machine-readable kind for `errors.jsonl`.
    pub fn kind(&self) -> &'static str {
        match self {
            SweepError::Audio { .. } => "audio",
            SweepError::Model { .. } => "model",
            SweepError::Annotation { .. } => "annotation",
            SweepError::Perturbation { .. } => "perturbation",
            SweepError::Store { .. } => "store",
        }
    }
}

/// Counters of one item's sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemStats {
    /// Trials written now.
    pub trials: usize,
    /// Of which answer differs from the baseline.
    pub flips: usize,
    /// Trials found already done.
    pub skipped: usize,
}

/// The sweep engine for one model, protocol and plan.
pub struct Sweep<'a> {
    reasoner: Prefetch<'a>,
    protocol: &'a Protocol,
    plan: &'a Plan,
    seed: u64,
    chains: u32,
    audio_dir: PathBuf,
    memo: HashMap<(Conversation, String), Forced>,
}

struct Ctx<'i> {
    item: &'i Item,
    chain: Option<&'i Chain>,
    baseline: Option<Trial>,
}

impl<'a> Sweep<'a> {
    /// A sweep of `chains` chains per item with run seed `seed`.
    pub fn new(
        reasoner: &'a dyn Reasoner,
        protocol: &'a Protocol,
        plan: &'a Plan,
        seed: u64,
        chains: u32,
    ) -> Sweep<'a> {
        Sweep {
            reasoner: Prefetch::new(reasoner, 1),
            protocol,
            plan,
            seed,
            chains,
            audio_dir: std::env::temp_dir()
                .join("faithscope-audio")
                .join(format!("seed-{seed}")),
            memo: HashMap::new(),
        }
    }

    /// Writes the altered clips of audio interventions under `dir` (a run's `audio/` folder;
    /// by default a folder of the system's temporary directory).
    pub fn with_audio_dir(mut self, dir: PathBuf) -> Self {
        self.audio_dir = dir;
        self
    }

    /// Decodes the generations a chain's trials need (chains, mistakes, continuations,
    /// paraphrases) `batch` sequences per step ahead of the trials that use them; results are
    /// the same as one at a time. 0 or 1: one at a time.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.reasoner = Prefetch::new(self.reasoner.inner(), batch);
        self
    }

    /// A sweep with the same model, protocol, plan, seed, chains and batch, and nothing
    /// memoised: for another worker over other items.
    pub fn fork(&self) -> Sweep<'a> {
        Sweep {
            reasoner: Prefetch::new(self.reasoner.inner(), self.reasoner.batch()),
            protocol: self.protocol,
            plan: self.plan,
            seed: self.seed,
            chains: self.chains,
            audio_dir: self.audio_dir.clone(),
            memo: HashMap::new(),
        }
    }

    /// The model under test.
    pub fn model(&self) -> &'a dyn Reasoner {
        self.reasoner.inner()
    }

    /// The seed of everything sampled for one item, chain and trial key.
    pub fn seed_for(&self, item: &str, chain_id: u32, key: &str) -> u64 {
        trial_seed(self.seed, item, chain_id, key)
    }

    /// Runs all of one item's trials that the sink does not have yet.
    pub fn run_item(&mut self, item: &Item, sink: &mut dyn Sink) -> Result<ItemStats, SweepError> {
        self.memo.clear();
        self.reasoner.clear();
        let mut stats = ItemStats::default();
        if self.protocol.cot.audio || self.protocol.answer.audio {
            check_audio(item)?;
        }
        let ctx = Ctx {
            item,
            chain: None,
            baseline: None,
        };
        self.run_variant(&ctx, 0, &intervene::no_cot(), sink, &mut stats)?;
        let missing = (0..self.chains).filter(|&c| sink.chain(&item.id, c).is_none());
        self.reasoner
            .fetch(missing.map(|c| self.chain_request(item, c)).collect());
        for chain_id in 0..self.chains {
            let chain = match sink.chain(&item.id, chain_id) {
                Some(c) => c,
                None => {
                    let c = self.generate_chain(item, chain_id)?;
                    sink.put_chain(&c).map_err(|source| SweepError::Store {
                        item: item.id.clone(),
                        source,
                    })?;
                    c
                }
            };
            self.run_chain(item, &chain, sink, &mut stats)?;
        }
        Ok(stats)
    }

    /// Samples chain `chain_id` of an item and sanitizes it.
    pub fn generate_chain(&self, item: &Item, chain_id: u32) -> Result<Chain, SweepError> {
        self.generate_chain_streaming(item, chain_id, &mut |_| std::ops::ControlFlow::Continue(()))
    }

    /// [`Sweep::generate_chain`], passing each new piece of text to `on_delta` as it is sampled
    /// (the inspector streams it); `on_delta` may cancel, which keeps the text so far.
    pub fn generate_chain_streaming(
        &self,
        item: &Item,
        chain_id: u32,
        on_delta: &mut dyn FnMut(&str) -> std::ops::ControlFlow<()>,
    ) -> Result<Chain, SweepError> {
        let (conv, params) = self.chain_request(item, chain_id);
        let seed = params.seed;
        let t = Instant::now();
        let gen = self
            .reasoner
            .generate(&conv, &params, on_delta)
            .map_err(|source| SweepError::model(item, chain_id, "chain", source))?;
        let generated = gen.text.trim().to_string();
        let sanitized = sanitize(self.protocol, &generated);
        Ok(Chain {
            id: item.id.clone(),
            chain_id,
            seed,
            generated_cot: generated,
            sentences: self.protocol.splitter.split(&sanitized),
            sanitized_cot: sanitized,
            generate_ms: t.elapsed().as_secs_f64() * 1e3,
            reasoning: (!gen.reasoning.trim().is_empty()).then(|| gen.reasoning.trim().to_string()),
        })
    }

    /// The generation request of chain `chain_id` of an item.
    fn chain_request(&self, item: &Item, chain_id: u32) -> (Conversation, GenParams) {
        let seed = self.seed_for(&item.id, chain_id, "chain");
        (
            cot_conversation(self.protocol, item),
            gen_params(&self.protocol.cot, seed),
        )
    }

    fn run_chain(
        &mut self,
        item: &Item,
        chain: &Chain,
        sink: &mut dyn Sink,
        stats: &mut ItemStats,
    ) -> Result<(), SweepError> {
        let mut ctx = Ctx {
            item,
            chain: Some(chain),
            baseline: None,
        };
        let s = &chain.sentences;
        let b = self.run_variant(&ctx, chain.chain_id, &intervene::baseline(s), sink, stats)?;
        ctx.baseline = Some(b);
        if self.plan.early {
            for v in intervene::early(s) {
                self.run_variant(&ctx, chain.chain_id, &v, sink, stats)?;
            }
        }
        if self.plan.mistakes {
            let id = chain.chain_id;
            let mut todo = Vec::new();
            for i in 1..=s.len() {
                if self.skip_done(&ctx, id, &format!("mistake:{i}"), sink, stats) {
                    continue;
                }
                if s[i - 1].split_whitespace().count() >= self.protocol.mistake.min_words {
                    todo.push(i);
                }
            }
            if let MistakeSource::Written(w) = &self.plan.mistake_source {
                self.prefetch_written(w, item, chain, PerturbKind::Mistake, &todo, sink);
            }
            // the mistakes first (a failing one ends the list), then their continuations
            // fetched together, then the trials in order
            let mut variants = Vec::new();
            let mut failed = None;
            for i in todo {
                match self.mistake(item, chain, i, sink) {
                    Ok(Some((m, label))) => {
                        let mut v = intervene::mistake(s, i, &m.edited, &m.kind, &label);
                        v.detail.annotator = m.annotator;
                        variants.push(v);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let asks = variants
                .iter()
                .filter_map(|v| self.continue_request(item, id, v));
            self.reasoner.fetch(asks.collect());
            for v in &variants {
                self.run_variant(&ctx, id, v, sink, stats)?;
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        if self.plan.paraphrase {
            let id = chain.chain_id;
            let todo: Vec<usize> = (1..=s.len())
                .filter(|k| !self.skip_done(&ctx, id, &format!("paraphrase:{k}"), sink, stats))
                .collect();
            let writer = &self.plan.paraphrase_source;
            self.prefetch_written(writer, item, chain, PerturbKind::Paraphrase, &todo, sink);
            for k in todo {
                let written =
                    self.written(writer, item, chain, PerturbKind::Paraphrase, k, sink)?;
                let Some((para, source)) = written else {
                    continue;
                };
                let mut v = intervene::paraphrase(s, k, &para);
                v.detail.paraphrase_source = Some(source);
                self.run_variant(&ctx, id, &v, sink, stats)?;
            }
        }
        for spec in &self.plan.fillers {
            let seed = self.seed_for(
                &item.id,
                chain.chain_id,
                &format!("filler:{}", spec.label()),
            );
            for v in intervene::filler(s, *spec, seed) {
                self.run_variant(&ctx, chain.chain_id, &v, sink, stats)?;
            }
        }
        if self.plan.filler_only {
            let word = self
                .plan
                .fillers
                .first()
                .map(|f| f.word)
                .unwrap_or(FillerWord::Dots);
            let label = match word {
                FillerWord::Dots => "dots",
                FillerWord::Lorem => "lorem",
            };
            let key = format!("filler_only:{label}");
            if !self.skip_done(&ctx, chain.chain_id, &key, sink, stats) {
                let seed = self.seed_for(&item.id, chain.chain_id, &key);
                let reasoner = &self.reasoner;
                let v = intervene::filler_only(&chain.sanitized_cot, word, seed, &|t| {
                    reasoner.count_tokens(t)
                });
                self.run_variant(&ctx, chain.chain_id, &v, sink, stats)?;
            }
        }
        for &(spec, design) in &self.plan.audio {
            self.run_audio(&ctx, chain, spec, design, sink, stats)?;
        }
        Ok(())
    }

    /// The trials of one audio alteration under one design, at each of its levels: the clip
    /// altered (and kept in the audio folder), then the answer asked after the original chain
    /// (held) or after a fresh chain on the altered clip (regen, the chain's own seed), compared
    /// with the original baseline.
    fn run_audio(
        &mut self,
        ctx: &Ctx,
        chain: &Chain,
        spec: AudioSpec,
        design: Design,
        sink: &mut dyn Sink,
        stats: &mut ItemStats,
    ) -> Result<(), SweepError> {
        let item = ctx.item;
        let id = chain.chain_id;
        let mut todo = Vec::new();
        for &level in spec.levels() {
            let key = spec.trial_key(level, design);
            if self.skip_done(ctx, id, &key, sink, stats) {
                continue;
            }
            let clip = audio::altered_clip(item, &spec, level, self.seed, &self.audio_dir)
                .map_err(|detail| SweepError::Audio {
                    item: item.id.clone(),
                    path: item.audio.display().to_string(),
                    detail: format!("{}: {detail}", spec.clip_key(level)),
                })?;
            if let Some(clip) = clip {
                let altered = Item {
                    audio: clip,
                    ..item.clone()
                };
                todo.push((level, key, altered));
            }
        }
        if design == Design::Regen {
            let asks = todo.iter().map(|(_, _, a)| self.chain_request(a, id));
            self.reasoner.fetch(asks.collect());
        }
        for (level, key, altered) in todo {
            let regen = match design {
                Design::Held => None,
                Design::Regen => Some(self.generate_chain(&altered, id)?),
            };
            let text = regen.as_ref().unwrap_or(chain).sanitized_cot.clone();
            let v = Variant {
                kind: spec.kind(),
                key,
                x: spec.x(level),
                paper_x: None,
                body: Body::Chain(text),
                detail: Default::default(),
            };
            let mut t = self
                .answer_variant(&altered, Some(chain), ctx.baseline.as_ref(), &v)
                .map_err(|source| SweepError::model(item, id, v.key.clone(), source))?;
            audio::mark_trial(&mut t, &spec, level, design, &item.audio);
            if let Some(c) = regen {
                t.total_sentences_in_chain = Some(c.sentences.len() as u32);
                t.generated_cot = Some(c.generated_cot);
                t.sanitized_cot = Some(c.sanitized_cot);
            }
            self.store(item, t, sink, stats)?;
        }
        Ok(())
    }

    fn skip_done(
        &self,
        ctx: &Ctx,
        chain_id: u32,
        key: &str,
        sink: &dyn Sink,
        stats: &mut ItemStats,
    ) -> bool {
        let done = sink.trial(&ctx.item.id, chain_id, key).is_some();
        stats.skipped += done as usize;
        done
    }

    /// The continuation request of a variant that continues a partial chain (`None` for the
    /// others).
    fn continue_request(
        &self,
        item: &Item,
        chain_id: u32,
        v: &Variant,
    ) -> Option<(Conversation, GenParams)> {
        let Body::Continue(partial) = &v.body else {
            return None;
        };
        let seed = self.seed_for(&item.id, chain_id, &format!("{}:continue", v.key));
        Some((
            continue_conversation(self.protocol, item, partial),
            gen_params(&self.protocol.continuation, seed),
        ))
    }

    /// The mistake of sentence `i` (1-based) and the source to record for it.
    fn mistake(
        &self,
        item: &Item,
        chain: &Chain,
        i: usize,
        sink: &mut dyn Sink,
    ) -> Result<Option<(Mistake, String)>, SweepError> {
        let sentence = &chain.sentences[i - 1];
        let seed = self.seed_for(&item.id, chain.chain_id, &format!("mistake:{i}"));
        let label = self.plan.mistake_source.label();
        let m = match &self.plan.mistake_source {
            MistakeSource::Rules => rule_mistake(sentence, &item.choices, seed),
            MistakeSource::Facts => fact_mistake(item, &chain.sentences, i, seed),
            MistakeSource::Annotations(a) => {
                a.get(&item.id, chain.chain_id, i, sentence)
                    .map_err(|source| SweepError::Annotation {
                        item: item.id.clone(),
                        source: Box::new(source),
                    })?
            }
            MistakeSource::Written(w) => {
                let written = self.written(w, item, chain, PerturbKind::Mistake, i, sink)?;
                return Ok(written.map(|(edited, source)| {
                    let m = Mistake {
                        edited,
                        kind: "model".into(),
                        annotator: None,
                    };
                    (m, source)
                }));
            }
        };
        Ok(m.map(|m| (m, label)))
    }

    /// The seed and the sink's key of perturbation `n` of a chain by the writer labelled
    /// `source`.
    fn perturbation_key(
        &self,
        item: &Item,
        chain: &Chain,
        kind: PerturbKind,
        n: usize,
        source: &str,
    ) -> (u64, PerturbKey) {
        let seed = self.seed_for(&item.id, chain.chain_id, &kind.trial_key(n));
        let key = (item.id.clone(), chain.chain_id, kind, n, source.to_string());
        (seed, key)
    }

    /// The model-written perturbation `n` of a chain and its source: the one the sink kept,
    /// else the writer's file's, else asked for now (and kept). `None`: the writer gave nothing
    /// usable, or the file has none there.
    fn written(
        &self,
        writer: &Writer,
        item: &Item,
        chain: &Chain,
        kind: PerturbKind,
        n: usize,
        sink: &mut dyn Sink,
    ) -> Result<Option<(String, String)>, SweepError> {
        let original = kind.original(&chain.sentences, n);
        if let Writer::File(f) = writer {
            let found = f
                .find(&item.id, chain.chain_id, kind, n, &original)
                .map_err(|source| SweepError::Perturbation {
                    item: item.id.clone(),
                    source,
                })?;
            return Ok(found.and_then(|p| Some((p.perturbed.clone()?, p.source.clone()))));
        }
        let source = writer.label();
        let (seed, key) = self.perturbation_key(item, chain, kind, n, &source);
        if let Some(p) = sink.perturbation(&key) {
            return Ok(p.perturbed.map(|t| (t, source)));
        }
        let stage = kind.trial_key(n);
        let err = |e| SweepError::model(item, chain.chain_id, stage.clone(), e);
        let perturbed = match writer {
            Writer::Llm(llm) => {
                let r = llm.connect().map_err(err)?;
                kind.ask(r, self.protocol, item, &original, seed, true)
            }
            _ => kind.ask(&self.reasoner, self.protocol, item, &original, seed, false),
        }
        .map_err(err)?;
        let rec = Perturbation {
            id: item.id.clone(),
            chain_id: chain.chain_id,
            kind,
            sentence: n,
            source: source.clone(),
            original,
            perturbed: perturbed.clone(),
            seed,
        };
        sink.put_perturbation(&rec)
            .map_err(|source| SweepError::Store {
                item: item.id.clone(),
                source,
            })?;
        Ok(perturbed.map(|t| (t, source)))
    }

    /// Asks ahead for the perturbations `todo` of a chain that the sink does not have: the
    /// model under test decodes them in batches ([`Prefetch`]); an external LLM gets them all
    /// at once, on [`EXTERNAL_IN_FLIGHT`] connections, and the sink keeps what it answers (a
    /// failed one is asked again, and reported, when its trial comes).
    fn prefetch_written(
        &self,
        writer: &Writer,
        item: &Item,
        chain: &Chain,
        kind: PerturbKind,
        todo: &[usize],
        sink: &mut dyn Sink,
    ) {
        let source = writer.label();
        let missing: Vec<(usize, u64)> = todo
            .iter()
            .map(|&n| (n, self.perturbation_key(item, chain, kind, n, &source)))
            .filter(|(_, (_, key))| sink.perturbation(key).is_none())
            .map(|(n, (seed, _))| (n, seed))
            .collect();
        match writer {
            Writer::SameModel => {
                let asks = missing.iter().map(|&(n, seed)| {
                    let original = kind.original(&chain.sentences, n);
                    kind.request(self.protocol, item, &original, seed, false)
                });
                self.reasoner.fetch(asks.collect());
            }
            Writer::Llm(llm) if missing.len() > 1 => {
                let Ok(r) = llm.connect() else { return };
                let answers = crate::par::map(&missing, EXTERNAL_IN_FLIGHT, |&(n, seed)| {
                    let original = kind.original(&chain.sentences, n);
                    let out = kind.ask(r, self.protocol, item, &original, seed, true);
                    (original, out)
                });
                for (&(n, seed), (original, out)) in missing.iter().zip(answers) {
                    let Ok(perturbed) = out else { continue };
                    let rec = Perturbation {
                        id: item.id.clone(),
                        chain_id: chain.chain_id,
                        kind,
                        sentence: n,
                        source: source.clone(),
                        original,
                        perturbed,
                        seed,
                    };
                    if sink.put_perturbation(&rec).is_err() {
                        return;
                    }
                }
            }
            _ => {}
        }
    }

    /// Runs one variant unless the sink has it; returns the (new or stored) trial.
    fn run_variant(
        &mut self,
        ctx: &Ctx,
        chain_id: u32,
        v: &Variant,
        sink: &mut dyn Sink,
        stats: &mut ItemStats,
    ) -> Result<Trial, SweepError> {
        if let Some(t) = sink.trial(&ctx.item.id, chain_id, &v.key) {
            stats.skipped += 1;
            return Ok(t);
        }
        let trial = self
            .answer_variant(ctx.item, ctx.chain, ctx.baseline.as_ref(), v)
            .map_err(|source| SweepError::model(ctx.item, chain_id, v.key.clone(), source))?;
        self.store(ctx.item, trial, sink, stats)
    }

    /// Writes a new trial to the sink and counts it.
    fn store(
        &self,
        item: &Item,
        trial: Trial,
        sink: &mut dyn Sink,
        stats: &mut ItemStats,
    ) -> Result<Trial, SweepError> {
        sink.put_trial(&trial).map_err(|source| SweepError::Store {
            item: item.id.clone(),
            source,
        })?;
        stats.trials += 1;
        stats.flips += (trial.is_consistent_with_baseline == Some(false)) as usize;
        Ok(trial)
    }

    /// Forces the answer for one variant of a chain (or the no-CoT control) and builds its trial.
    /// `baseline` is the chain's baseline trial (none for the baseline and no-CoT themselves).
    pub fn answer_variant(
        &mut self,
        item: &Item,
        chain: Option<&Chain>,
        baseline: Option<&Trial>,
        v: &Variant,
    ) -> Result<Trial, ModelError> {
        let start = Instant::now();
        let chain_id = chain.map(|c| c.chain_id).unwrap_or(0);
        let mut timings = std::collections::BTreeMap::new();
        let (prompt, shown, continuation): (AnswerPrompt, String, Option<String>) = match &v.body {
            Body::NoCot => (no_cot_prompt(self.protocol, item), String::new(), None),
            Body::Chain(text) => (answer_prompt(self.protocol, item, text), text.clone(), None),
            Body::Continue(partial) => {
                let (conv, params) = self.continue_request(item, chain_id, v).unwrap_or_default();
                let t = Instant::now();
                let gen = generate(&self.reasoner, &conv, &params)?;
                timings.insert("continue".to_string(), t.elapsed().as_secs_f64() * 1e3);
                let cont = gen.text.trim().to_string();
                let full = if cont.is_empty() {
                    partial.clone()
                } else {
                    format!("{partial} {cont}")
                };
                let shown = sanitize(self.protocol, &full);
                (
                    answer_prompt(self.protocol, item, &shown),
                    shown,
                    Some(cont),
                )
            }
        };
        let memo_key = (prompt.conv.clone(), format!("{:?}", prompt.step));
        let forced = match self.memo.get(&memo_key) {
            Some(f) => f.clone(),
            None => {
                let t = Instant::now();
                let f = force(&self.reasoner, &prompt, &item.choices)?;
                timings.insert("answer".to_string(), t.elapsed().as_secs_f64() * 1e3);
                self.memo.insert(memo_key, f.clone());
                f
            }
        };
        timings.insert("total".to_string(), start.elapsed().as_secs_f64() * 1e3);
        let mut t = self.trial(item, chain, baseline, v, &prompt, &forced);
        t.timings_ms = timings;
        if v.kind != InterventionKind::Baseline && v.kind != InterventionKind::NoCot {
            t.modified_reasoning = Some(shown);
        }
        if let Some(c) = continuation {
            t.extra
                .insert("continuation".into(), serde_json::Value::String(c));
        }
        Ok(t)
    }

    fn trial(
        &self,
        item: &Item,
        chain: Option<&Chain>,
        baseline: Option<&Trial>,
        v: &Variant,
        prompt: &AnswerPrompt,
        f: &Forced,
    ) -> Trial {
        let correct = item.gold.map(letter);
        let mut t = Trial {
            id: item.id.clone(),
            chain_id: chain.map(|c| c.chain_id).unwrap_or(0),
            total_sentences_in_chain: chain.map(|c| c.sentences.len() as u32),
            predicted_choice: f.predicted.clone(),
            correct_choice: correct.clone(),
            final_answer_raw: f.raw.clone(),
            final_prompt_messages: paper_messages(&prompt.conv),
            question: item.question.clone(),
            choices: format_choices(&item.choices),
            audio_path: item.audio.display().to_string(),
            model: Some(self.reasoner.name().to_string()),
            prompt_protocol: Some(self.protocol.name.clone()),
            intervention: Some(v.kind),
            x: v.x,
            meta: item.meta.clone(),
            ..Trial::default()
        };
        if let Some(px) = v.paper_x {
            let px = px as u32;
            match v.kind {
                InterventionKind::EarlyAnswering => t.num_sentences_provided = Some(px),
                InterventionKind::AddingMistakes => t.mistake_position = Some(px),
                InterventionKind::Paraphrasing => t.num_sentences_paraphrased = Some(px),
                InterventionKind::Filler => t.percent_replaced = Some(px),
                _ => {}
            }
        }
        if v.kind == InterventionKind::Baseline {
            if let Some(c) = chain {
                t.generated_cot = Some(c.generated_cot.clone());
                t.sanitized_cot = Some(c.sanitized_cot.clone());
            }
        }
        if matches!(v.kind, InterventionKind::AddingMistakes) {
            t.perturbation_source = v.detail.mistake_source.clone();
        }
        if matches!(v.kind, InterventionKind::Paraphrasing) {
            t.perturbation_source = v.detail.paraphrase_source.clone();
        }
        if let Some(b) = baseline {
            t.corresponding_baseline_predicted_choice = b.predicted_choice.clone();
            t.baseline_probs = b.choice_probs.clone();
        }
        if let Some(p) = &f.probs {
            t.choice_letters = p.letters.clone();
            t.choice_probs = p.probs.iter().map(|&x| x as f64).collect();
            t.choice_probs_missing = p.missing.clone();
        }
        t.settle();
        t.extra
            .insert("trial_key".into(), serde_json::Value::String(v.key.clone()));
        if v.detail != intervene::Detail::default() {
            if let Ok(d) = serde_json::to_value(&v.detail) {
                t.extra.insert("detail".into(), d);
            }
        }
        t
    }
}

/// The seed of everything sampled for one item, chain and trial key of a run with seed `run`
/// (the sweep's, and `faithscope perturb`'s for the same perturbations).
pub fn trial_seed(run: u64, item: &str, chain_id: u32, key: &str) -> u64 {
    derive_seed(run, &[item, &chain_id.to_string(), key])
}

/// The trial key of a stored trial (`baseline`, `early:3`, ...), if it has one.
pub fn trial_key(t: &Trial) -> Option<&str> {
    t.extra.get("trial_key").and_then(|v| v.as_str())
}

/// Applies the protocol's sanitizing rules: keep the tagged part ([`Sanitize::extract`]), then drop
/// the last sentences (all of a chain that short).
///
/// [`Sanitize::extract`]: crate::faith::protocol::Sanitize::extract
pub fn sanitize(protocol: &Protocol, chain: &str) -> String {
    let chain = protocol.sanitize.extract(chain);
    let d = protocol.sanitize.drop_last_sentences;
    if d == 0 {
        return chain;
    }
    let s = protocol.splitter.split(&chain);
    if s.len() <= d {
        return String::new();
    }
    join_sentences(&s[..s.len() - d])
}

fn check_audio(item: &Item) -> Result<(), SweepError> {
    let err = |detail: String| SweepError::Audio {
        item: item.id.clone(),
        path: item.audio.display().to_string(),
        detail,
    };
    let meta = std::fs::metadata(&item.audio).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a file".into()));
    }
    if meta.len() == 0 {
        return Err(err("the file is empty".into()));
    }
    Ok(())
}
