//! `faithscope synth`: a synthetic listening-and-reasoning benchmark.
//!
//! Short clips (16 kHz mono, 1 to 3 s) with multiple-choice questions whose answers need
//! listening and a reasoning step: counting beeps, pitch level, pitch direction, the louder of
//! two tones, the kind of sound, and SAKURA-style multi-hop questions built on those. Every item
//! carries its [`Facts`] in `meta.facts`, so [`write_chain`] can write its reasoning chain and
//! [`alter_chain`] a chain with exactly one wrong fact. Everything is deterministic from a seed.

mod chain;
mod encode;
mod signal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{write_items_jsonl, Item, ItemMeta};

pub use chain::{
    alter_chain, chain_for_item, deciding_sentence, fact_mistake, write_chain, OPENING,
};
pub use encode::{encode_flac, encode_wav};

/// Sample rate of every generated clip.
pub const RATE: u32 = 16_000;

/// The six kinds of question.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// How many beeps (1 to 6).
    Count,
    /// Pitch level of a steady tone: low, medium or high.
    Level,
    /// Direction of a chirp: rising or falling.
    Direction,
    /// Which of two tones is louder: first or second.
    Louder,
    /// Kind of sound: tone, noise or chirp.
    Kind,
    /// A listening fact mapped through a second, world-knowledge step.
    Multihop,
}

impl Task {
    /// All tasks in their fixed order.
    pub const ALL: [Task; 6] = [
        Task::Count,
        Task::Level,
        Task::Direction,
        Task::Louder,
        Task::Kind,
        Task::Multihop,
    ];

    /// The lower-case name used in ids, `meta.track` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::Count => "count",
            Task::Level => "level",
            Task::Direction => "direction",
            Task::Louder => "louder",
            Task::Kind => "kind",
            Task::Multihop => "multihop",
        }
    }
}

/// The second step of a multi-hop question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hop {
    /// Beep count -> the animal with that many legs.
    Legs,
    /// Beep count -> the vehicle with that many wheels.
    Wheels,
    /// Pitch level -> the everyday sound it is most like.
    Likeness,
    /// Pitch direction -> the object that moves like it.
    Motion,
    /// Kind of sound -> the object that most likely made it.
    Source,
}

impl Hop {
    /// All hops in their fixed order.
    pub const ALL: [Hop; 5] = [
        Hop::Legs,
        Hop::Wheels,
        Hop::Likeness,
        Hop::Motion,
        Hop::Source,
    ];

    /// The lower-case name used in `meta.category`.
    pub fn name(self) -> &'static str {
        match self {
            Hop::Legs => "legs",
            Hop::Wheels => "wheels",
            Hop::Likeness => "likeness",
            Hop::Motion => "motion",
            Hop::Source => "source",
        }
    }
}

/// Pitch level of a steady tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 150 to 350 Hz (stated as below 400 Hz).
    Low,
    /// 600 to 1000 Hz (stated as 400 to 1500 Hz).
    Medium,
    /// 2000 to 3500 Hz (stated as above 1500 Hz).
    High,
}

/// Direction of a chirp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Low to high.
    Rising,
    /// High to low.
    Falling,
}

/// Which of two tones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// The first tone.
    First,
    /// The second tone.
    Second,
}

/// Kind of sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A steady tone.
    Tone,
    /// White noise.
    Noise,
    /// A frequency sweep.
    Chirp,
}

/// What a clip holds: the measured quantities the reasoning starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sound {
    /// `count` beeps of one frequency.
    Beeps {
        /// Number of beeps.
        count: u32,
        /// Their frequency in Hz.
        freq_hz: u32,
    },
    /// One steady tone.
    Tone {
        /// Its pitch class.
        level: Level,
        /// Its frequency in Hz (a multiple of 10).
        freq_hz: u32,
    },
    /// One sweep.
    Chirp {
        /// Rising or falling.
        direction: Direction,
        /// Start frequency in Hz.
        start_hz: u32,
        /// End frequency in Hz.
        end_hz: u32,
    },
    /// Two tones of one frequency, one after the other, at different levels.
    TwoTones {
        /// The louder one.
        louder: Order,
        /// Their frequency in Hz.
        freq_hz: u32,
        /// Peak levels in dBFS of the first and the second tone.
        levels_db: [i32; 2],
    },
    /// A tone, a noise burst or a chirp.
    Kind {
        /// Which.
        kind: Kind,
    },
}

/// The value a question asks about: the one fact that decides the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A beep count.
    Count(u32),
    /// A pitch level.
    Level(Level),
    /// A chirp direction.
    Direction(Direction),
    /// The louder tone.
    Louder(Order),
    /// A kind of sound.
    Kind(Kind),
}

impl Sound {
    /// The deciding fact of this sound.
    pub fn value(&self) -> Value {
        match self {
            Sound::Beeps { count, .. } => Value::Count(*count),
            Sound::Tone { level, .. } => Value::Level(*level),
            Sound::Chirp { direction, .. } => Value::Direction(*direction),
            Sound::TwoTones { louder, .. } => Value::Louder(*louder),
            Sound::Kind { kind } => Value::Kind(*kind),
        }
    }

    /// This sound with its deciding fact set to `value`, and the quantities that follow from it
    /// made consistent (a tone's frequency redrawn in the new level's range, a chirp's ends or the
    /// two tones' levels swapped). Returns `None` when `value` is of another sort.
    pub fn with_value(&self, value: Value, rng: &mut StdRng) -> Option<Sound> {
        Some(match (self, value) {
            (Sound::Beeps { freq_hz, .. }, Value::Count(count)) => Sound::Beeps {
                count,
                freq_hz: *freq_hz,
            },
            (
                Sound::Tone {
                    level: old,
                    freq_hz,
                },
                Value::Level(level),
            ) => Sound::Tone {
                level,
                freq_hz: if *old == level {
                    *freq_hz
                } else {
                    signal::draw_level_freq(level, rng)
                },
            },
            (
                Sound::Chirp {
                    direction,
                    start_hz,
                    end_hz,
                },
                Value::Direction(new),
            ) => {
                let (start_hz, end_hz) = if *direction == new {
                    (*start_hz, *end_hz)
                } else {
                    (*end_hz, *start_hz)
                };
                Sound::Chirp {
                    direction: new,
                    start_hz,
                    end_hz,
                }
            }
            (
                Sound::TwoTones {
                    louder,
                    freq_hz,
                    levels_db,
                },
                Value::Louder(new),
            ) => Sound::TwoTones {
                louder: new,
                freq_hz: *freq_hz,
                levels_db: if *louder == new {
                    *levels_db
                } else {
                    [levels_db[1], levels_db[0]]
                },
            },
            (Sound::Kind { .. }, Value::Kind(kind)) => Sound::Kind { kind },
            _ => return None,
        })
    }
}

/// The reasoning facts of one item, stored in `meta.facts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The kind of question.
    pub task: Task,
    /// The second step, for multi-hop questions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<Hop>,
    /// What the clip holds.
    pub sound: Sound,
}

impl Facts {
    /// The question's variant (task and hop).
    pub fn variant(&self) -> Variant {
        Variant {
            task: self.task,
            hop: self.hop,
        }
    }

    /// The text of the choice that follows from these facts, when there is one.
    pub fn answer_text(&self) -> Option<&'static str> {
        let value = self.sound.value();
        self.variant()
            .options()
            .into_iter()
            .find(|(v, _)| *v == value)
            .map(|(_, text)| text)
    }

    /// The index in `choices` of the answer that follows from these facts.
    pub fn answer_index(&self, choices: &[String]) -> Option<usize> {
        let text = self.answer_text()?;
        choices.iter().position(|c| c == text)
    }

    /// Reads the facts of a generated item from its `meta.facts`.
    pub fn of_item(item: &Item) -> Result<Facts, SynthError> {
        let value = item.meta.facts.as_ref().ok_or_else(|| SynthError::Facts {
            item: item.id.clone(),
            detail: "no `meta.facts`; only items made by `faithscope synth` carry them".into(),
        })?;
        serde_json::from_value(value.clone()).map_err(|e| SynthError::Facts {
            item: item.id.clone(),
            detail: format!("`meta.facts` is not valid: {e}"),
        })
    }
}

/// A question variant: a task, and for multi-hop questions its hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The task.
    pub task: Task,
    /// The hop (multi-hop only).
    pub hop: Option<Hop>,
}

/// Number words used in chains and choices.
const NUMBER_WORDS: [&str; 9] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
];

/// The word for `n` (digits past eight).
pub(crate) fn number_word(n: u32) -> String {
    NUMBER_WORDS
        .get(n as usize)
        .map(|w| w.to_string())
        .unwrap_or_else(|| n.to_string())
}

impl Variant {
    /// The question text.
    pub fn question(self) -> &'static str {
        match (self.task, self.hop) {
            (Task::Count, _) => "How many beeps do you hear?",
            (Task::Level, _) => "Is the pitch of the tone low, medium or high?",
            (Task::Direction, _) => "Does the pitch of the sound rise or fall?",
            (Task::Louder, _) => "Which of the two tones is louder?",
            (Task::Kind, _) => "What kind of sound is this?",
            (Task::Multihop, Some(Hop::Legs)) => {
                "The number of beeps equals the number of legs of which animal?"
            }
            (Task::Multihop, Some(Hop::Wheels)) => {
                "The number of beeps equals the number of wheels of which vehicle?"
            }
            (Task::Multihop, Some(Hop::Likeness)) => {
                "The pitch of the tone is most like which sound?"
            }
            (Task::Multihop, Some(Hop::Motion)) => {
                "The pitch of the sound moves like which object?"
            }
            (Task::Multihop, Some(Hop::Source) | None) => {
                "Which object most likely made this sound?"
            }
        }
    }

    /// Every choice this variant may show, with the value it stands for, in display order.
    pub fn options(self) -> Vec<(Value, &'static str)> {
        use Value::*;
        match (self.task, self.hop) {
            (Task::Count, _) => vec![
                (Count(1), "one"),
                (Count(2), "two"),
                (Count(3), "three"),
                (Count(4), "four"),
                (Count(5), "five"),
                (Count(6), "six"),
            ],
            (Task::Level, _) => vec![
                (Level(self::Level::Low), "low (below 400 Hz)"),
                (Level(self::Level::Medium), "medium (400 to 1500 Hz)"),
                (Level(self::Level::High), "high (above 1500 Hz)"),
            ],
            (Task::Direction, _) => vec![
                (Direction(self::Direction::Rising), "rising"),
                (Direction(self::Direction::Falling), "falling"),
            ],
            (Task::Louder, _) => vec![
                (Louder(Order::First), "the first tone"),
                (Louder(Order::Second), "the second tone"),
            ],
            (Task::Kind, _) => vec![
                (Kind(self::Kind::Tone), "a steady tone"),
                (Kind(self::Kind::Noise), "noise"),
                (Kind(self::Kind::Chirp), "a chirp"),
            ],
            (Task::Multihop, Some(Hop::Legs)) => vec![
                (Count(2), "a chicken"),
                (Count(4), "a dog"),
                (Count(6), "an ant"),
                (Count(8), "a spider"),
            ],
            (Task::Multihop, Some(Hop::Wheels)) => vec![
                (Count(1), "a unicycle"),
                (Count(2), "a bicycle"),
                (Count(3), "a tricycle"),
                (Count(4), "a car"),
            ],
            (Task::Multihop, Some(Hop::Likeness)) => vec![
                (Level(self::Level::Low), "a foghorn"),
                (Level(self::Level::Medium), "a doorbell"),
                (Level(self::Level::High), "a whistle"),
            ],
            (Task::Multihop, Some(Hop::Motion)) => vec![
                (Direction(self::Direction::Rising), "a rocket taking off"),
                (Direction(self::Direction::Falling), "a stone dropping"),
            ],
            (Task::Multihop, Some(Hop::Source) | None) => vec![
                (Kind(self::Kind::Tone), "a tuning fork"),
                (Kind(self::Kind::Noise), "a waterfall"),
                (Kind(self::Kind::Chirp), "a slide whistle"),
            ],
        }
    }

    /// The values a clip of this variant is generated with (the gold answers).
    fn domain(self) -> Vec<Value> {
        self.options()
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| !matches!(v, Value::Count(n) if *n > 6))
            .collect()
    }

    /// Number of choices shown in `order`: every option, or with shuffled choices at most four
    /// (a random subset with the answer).
    fn shown(self, order: ChoiceOrder) -> usize {
        match order {
            ChoiceOrder::Fixed => self.options().len(),
            ChoiceOrder::Shuffled => self.options().len().min(4),
        }
    }

    /// True when the choices of this variant are shuffled (gold position drawn) rather than in
    /// display order.
    fn shuffled(self, order: ChoiceOrder) -> bool {
        order == ChoiceOrder::Shuffled && self.shown(order) == 4
    }
}

/// How the choices of an item are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ChoiceOrder {
    /// Every option of the question, always in the same order (one ... six; a chicken, a dog,
    /// an ant, a spider): the letter of an answer is a fixed function of its value.
    #[default]
    Fixed,
    /// Counting and legs / wheels questions show four options in a random order, the answer's
    /// position balanced (the benchmark's first layout; finding a value among shuffled choices
    /// is a lookup the tiny demo models did not learn).
    Shuffled,
}

/// A benchmark split; each has its own seed stream and id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// Training items.
    Train,
    /// Development items.
    Dev,
    /// Test items (the shipped split).
    Test,
}

impl Split {
    /// The lower-case name used in ids and folder names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }

    /// Default number of items.
    pub fn default_count(self) -> usize {
        match self {
            Split::Train => 6000,
            Split::Dev => 240,
            Split::Test => 240,
        }
    }

    fn stream(self) -> u64 {
        match self {
            Split::Train => 1,
            Split::Dev => 2,
            Split::Test => 3,
        }
    }
}

/// Audio file format of the clips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioFormat {
    /// FLAC, lossless (about half the size of WAV for these clips).
    #[default]
    Flac,
    /// 16-bit PCM WAV.
    Wav,
}

impl AudioFormat {
    /// The file extension.
    pub fn ext(self) -> &'static str {
        match self {
            AudioFormat::Flac => "flac",
            AudioFormat::Wav => "wav",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Base seed; each split and item derives its own.
    pub seed: u64,
    /// Number of items, spread evenly over `tasks`.
    pub count: usize,
    /// The tasks, in the order items cycle through them.
    pub tasks: Vec<Task>,
    /// Clip file format.
    pub format: AudioFormat,
    /// Layout of the choices.
    pub choice_order: ChoiceOrder,
}

/// One generated item with its clip.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The item; `audio` is `audio/<id>.<ext>`, relative to the split folder.
    pub item: Item,
    /// The item's facts (also in `item.meta.facts`).
    pub facts: Facts,
    /// The clip: 16-bit mono samples at [`RATE`].
    pub samples: Vec<i16>,
}

/// Errors of the generator; each names the file or item.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// FLAC encoding failed.
    #[error("encoding {path} as FLAC failed: {detail}")]
    Encode {
        /// The clip.
        path: PathBuf,
        /// The encoder's message.
        detail: String,
    },
    /// An item's facts are missing, invalid or do not match its choices.
    #[error("item {item}: {detail}")]
    Facts {
        /// The item id.
        item: String,
        /// What is wrong.
        detail: String,
    },
    /// A chain cannot be written: the facts' answer is not among the choices, or no other
    /// choice is left to alter the facts to.
    #[error("cannot write the chain: {0}")]
    Chain(String),
    /// The output folder holds files already.
    #[error("{0}: folder is not empty; choose another --out or pass --force to overwrite")]
    NotEmpty(PathBuf),
}

/// SplitMix64 step: mixes seeds into independent streams.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A generator seeded from the base seed and a path of stream numbers (also used by training,
/// so that its batches are as reproducible as the benchmark).
pub(crate) fn rng_for(seed: u64, path: &[u64]) -> StdRng {
    let s = path.iter().fold(mix(seed), |acc, p| mix(acc ^ mix(*p)));
    StdRng::seed_from_u64(s)
}

/// `n` indices cycling through `0..k`, shuffled: each appears `n / k` or one more times.
fn balanced(n: usize, k: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).map(|i| i % k.max(1)).collect();
    v.shuffle(rng);
    v
}

/// Generates the items and clips of a split. Items cycle through `opts.tasks`; within each task
/// (and each hop of multi-hop) the deciding values and gold letters are balanced.
pub fn generate(split: Split, opts: &SynthOptions) -> Vec<Generated> {
    let tasks: Vec<Task> = if opts.tasks.is_empty() {
        Task::ALL.to_vec()
    } else {
        opts.tasks.clone()
    };
    // Slots per variant: (task, index within task).
    let mut per_task: BTreeMap<Task, usize> = BTreeMap::new();
    let mut slots = Vec::with_capacity(opts.count);
    for i in 0..opts.count {
        let task = tasks[i % tasks.len()];
        let j = per_task.entry(task).or_default();
        slots.push((task, *j));
        *j += 1;
    }
    // Balanced value and position lists per variant.
    let variants_of = |task: Task| -> Vec<Variant> {
        if task == Task::Multihop {
            Hop::ALL
                .iter()
                .map(|h| Variant {
                    task,
                    hop: Some(*h),
                })
                .collect()
        } else {
            vec![Variant { task, hop: None }]
        }
    };
    let mut plans: BTreeMap<(Task, usize), (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (&task, &n) in &per_task {
        let variants = variants_of(task);
        for (vi, v) in variants.iter().enumerate() {
            let m = n / variants.len() + usize::from(vi < n % variants.len());
            let mut rng = rng_for(opts.seed, &[split.stream(), task as u64, vi as u64]);
            let values = balanced(m, v.domain().len(), &mut rng);
            let positions = balanced(m, v.shown(opts.choice_order), &mut rng);
            plans.insert((task, vi), (values, positions));
        }
    }
    slots
        .into_iter()
        .map(|(task, j)| {
            let variants = variants_of(task);
            let vi = j % variants.len();
            let k = j / variants.len();
            let variant = variants[vi];
            let (values, positions) = &plans[&(task, vi)];
            let mut rng = rng_for(opts.seed, &[split.stream(), 100 + task as u64, j as u64]);
            let value = variant.domain()[values[k]];
            let id = format!("synth-{}-{}-{:04}", split.name(), task.name(), j);
            let layout = (opts.choice_order, positions[k]);
            make_item(id, variant, value, layout, opts.format, &mut rng)
        })
        .collect()
}

/// Builds one item: its sound, choices (in `order`, the answer at `position` when shuffled),
/// facts and clip.
fn make_item(
    id: String,
    variant: Variant,
    value: Value,
    (order, position): (ChoiceOrder, usize),
    format: AudioFormat,
    rng: &mut StdRng,
) -> Generated {
    let sound = match value {
        Value::Count(count) => Sound::Beeps {
            count,
            freq_hz: 10 * rand::Rng::random_range(rng, 70..=140),
        },
        Value::Level(level) => Sound::Tone {
            level,
            freq_hz: signal::draw_level_freq(level, rng),
        },
        Value::Direction(direction) => {
            let (start_hz, end_hz) = signal::draw_sweep(direction, rng);
            Sound::Chirp {
                direction,
                start_hz,
                end_hz,
            }
        }
        Value::Louder(louder) => Sound::TwoTones {
            louder,
            freq_hz: 10 * rand::Rng::random_range(rng, 40..=150),
            levels_db: signal::draw_levels(louder, rng),
        },
        Value::Kind(kind) => Sound::Kind { kind },
    };
    let facts = Facts {
        task: variant.task,
        hop: variant.hop,
        sound,
    };
    let options = variant.options();
    let answer = facts.answer_text().expect("generated values have a choice");
    let (choices, gold) = if variant.shuffled(order) {
        let mut others: Vec<&str> = options
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| *t != answer)
            .collect();
        others.shuffle(rng);
        others.truncate(variant.shown(order) - 1);
        others.insert(position, answer);
        (others, position)
    } else {
        let texts: Vec<&str> = options.iter().map(|(_, t)| *t).collect();
        let gold = texts.iter().position(|t| *t == answer).unwrap_or(0);
        (texts, gold)
    };
    let samples = signal::render(&facts.sound, rng);
    let item = Item {
        audio: PathBuf::from(format!("audio/{id}.{}", format.ext())),
        id,
        question: variant.question().to_string(),
        choices: choices.into_iter().map(String::from).collect(),
        gold: Some(gold),
        meta: ItemMeta {
            source: Some("synth".into()),
            track: Some(variant.task.name().into()),
            hop: Some(
                if variant.hop.is_some() {
                    "multi"
                } else {
                    "single"
                }
                .into(),
            ),
            category: Some(variant.hop.map_or(variant.task.name(), Hop::name).into()),
            modality: Some("sound".into()),
            facts: Some(serde_json::to_value(&facts).expect("facts serialize")),
            ..ItemMeta::default()
        },
    };
    Generated {
        item,
        facts,
        samples,
    }
}

/// Per-task counts of a written split.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The split folder.
    pub dir: PathBuf,
    /// Items per task name.
    pub by_task: BTreeMap<String, usize>,
    /// Total bytes of the clips.
    pub audio_bytes: u64,
}

/// True when `dir` exists and holds any entry.
pub fn is_non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Generates a split and writes `dir/items.jsonl` and `dir/audio/<id>.<ext>`. `dir` must be
/// empty or absent unless `force`, which removes it first.
pub fn write_split(
    dir: &Path,
    split: Split,
    opts: &SynthOptions,
    force: bool,
) -> Result<Written, SynthError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    if is_non_empty(dir) {
        if !force {
            return Err(SynthError::NotEmpty(dir.to_path_buf()));
        }
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    let audio_dir = dir.join("audio");
    std::fs::create_dir_all(&audio_dir).map_err(io(&audio_dir))?;
    let mut written = Written {
        dir: dir.to_path_buf(),
        ..Written::default()
    };
    let mut items = Vec::new();
    for g in generate(split, opts) {
        let path = dir.join(&g.item.audio);
        let bytes = match opts.format {
            AudioFormat::Flac => encode_flac(&g.samples).map_err(|detail| SynthError::Encode {
                path: path.clone(),
                detail,
            })?,
            AudioFormat::Wav => encode_wav(&g.samples),
        };
        std::fs::write(&path, &bytes).map_err(io(&path))?;
        written.audio_bytes += bytes.len() as u64;
        *written
            .by_task
            .entry(g.facts.task.name().to_string())
            .or_default() += 1;
        items.push(g.item);
    }
    let file = dir.join("items.jsonl");
    write_items_jsonl(&file, &items).map_err(io(&file))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_lists_cycle_evenly() {
        let mut rng = StdRng::seed_from_u64(1);
        let v = balanced(10, 4, &mut rng);
        let counts: Vec<usize> = (0..4)
            .map(|k| v.iter().filter(|&&x| x == k).count())
            .collect();
        assert_eq!(counts, [3, 3, 2, 2]);
    }

    #[test]
    fn with_value_changes_the_deciding_fact_and_what_follows() {
        let mut rng = StdRng::seed_from_u64(1);
        let chirp = Sound::Chirp {
            direction: Direction::Rising,
            start_hz: 300,
            end_hz: 2000,
        };
        assert_eq!(
            chirp.with_value(Value::Direction(Direction::Falling), &mut rng),
            Some(Sound::Chirp {
                direction: Direction::Falling,
                start_hz: 2000,
                end_hz: 300,
            })
        );
        let tone = Sound::Tone {
            level: Level::Low,
            freq_hz: 200,
        };
        match tone.with_value(Value::Level(Level::High), &mut rng) {
            Some(Sound::Tone { level, freq_hz }) => {
                assert_eq!(level, Level::High);
                assert!((2000..=3500).contains(&freq_hz), "{freq_hz}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(tone.with_value(Value::Count(3), &mut rng), None);
    }

    #[test]
    fn facts_serialize_with_task_hop_and_sound() {
        let facts = Facts {
            task: Task::Multihop,
            hop: Some(Hop::Wheels),
            sound: Sound::Beeps {
                count: 3,
                freq_hz: 900,
            },
        };
        let v = serde_json::to_value(&facts).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"task": "multihop", "hop": "wheels",
                "sound": {"type": "beeps", "count": 3, "freq_hz": 900}})
        );
        assert_eq!(serde_json::from_value::<Facts>(v).unwrap(), facts);
        assert_eq!(facts.answer_text(), Some("a tricycle"));
    }

    #[test]
    fn flac_streaminfo_minimum_block_size_is_the_fixed_one() {
        let samples: Vec<i16> = (0..5000).map(|i| ((i % 50) * 100) as i16).collect();
        let bytes = encode_flac(&samples).unwrap();
        assert_eq!(&bytes[..4], b"fLaC");
        assert_eq!(bytes[8..10], bytes[10..12]);
    }
}
