//! The synthetic benchmark: determinism, the properties of the decoded clips, balance, the
//! shipped test split, and the chain writer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use faithscope::audio::{decode_file, DecodeOptions};
use faithscope::data::{self, Item, LoadOptions};
use faithscope::faith::split::split_sentences;
use faithscope::synth::{
    self, alter_chain, chain_for_item, write_chain, AudioFormat, ChoiceOrder, Direction, Facts,
    Kind, Level, Order, Sound, Split, SynthOptions, Task, RATE,
};
use rand::SeedableRng;
use realfft::RealFftPlanner;

fn opts(seed: u64, count: usize) -> SynthOptions {
    SynthOptions {
        seed,
        count,
        tasks: Task::ALL.to_vec(),
        format: AudioFormat::Flac,
        choice_order: ChoiceOrder::Fixed,
    }
}

/// Every file under `dir` with its bytes, by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_identical_files_and_other_seeds_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    synth::write_split(&a, Split::Dev, &opts(7, 24), false).unwrap();
    synth::write_split(&b, Split::Dev, &opts(7, 24), false).unwrap();
    synth::write_split(&c, Split::Dev, &opts(8, 24), false).unwrap();
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(fa.len(), 25, "24 clips and items.jsonl");
    assert_eq!(fa, fb);
    assert_ne!(fa[Path::new("items.jsonl")], fc[Path::new("items.jsonl")]);
    let differing = fa
        .iter()
        .filter(|(k, v)| fc.get(*k).is_some_and(|w| w != *v))
        .count();
    assert_eq!(
        differing, 25,
        "every clip and the items differ under another seed"
    );
    // Splits draw from distinct streams and id prefixes.
    let dev = synth::generate(Split::Dev, &opts(7, 12));
    let test = synth::generate(Split::Test, &opts(7, 12));
    assert!(dev.iter().all(|g| g.item.id.starts_with("synth-dev-")));
    assert!(test.iter().all(|g| g.item.id.starts_with("synth-test-")));
    assert!(dev.iter().zip(&test).all(|(d, t)| d.samples != t.samples));
}

#[test]
fn refuses_a_non_empty_folder_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("test");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "x").unwrap();
    let err = synth::write_split(&dir, Split::Test, &opts(1, 6), false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not empty") && msg.contains("--force"),
        "{msg}"
    );
    assert!(dir.join("keep.txt").exists());
    synth::write_split(&dir, Split::Test, &opts(1, 6), true).unwrap();
    assert!(!dir.join("keep.txt").exists());
    assert_eq!(files(&dir).len(), 7);
}

#[test]
fn flac_and_wav_decode_bit_exactly_to_the_generated_samples() {
    let tmp = tempfile::tempdir().unwrap();
    for g in synth::generate(Split::Dev, &opts(3, 12)) {
        let flac = tmp.path().join(format!("{}.flac", g.item.id));
        let wav = tmp.path().join(format!("{}.wav", g.item.id));
        std::fs::write(&flac, synth::encode_flac(&g.samples).unwrap()).unwrap();
        std::fs::write(&wav, synth::encode_wav(&g.samples)).unwrap();
        let expected: Vec<f32> = g.samples.iter().map(|&s| s as f32 / 32768.0).collect();
        for path in [&flac, &wav] {
            let clip = decode_file(path, &DecodeOptions::default()).unwrap();
            assert_eq!(clip.sample_rate, RATE);
            assert_eq!(clip.samples, expected, "{}", path.display());
        }
    }
}

// ---- measuring the clips ----

/// RMS of 10 ms frames.
fn envelope(x: &[f32]) -> Vec<f32> {
    x.chunks(160)
        .map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

/// Runs of frames above `threshold`, as frame ranges.
fn runs(env: &[f32], threshold: f32) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &e) in env.iter().chain(std::iter::once(&0.0)).enumerate() {
        match (start, e > threshold) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Power spectrum of `x` (Hann window).
fn power(x: &[f32]) -> Vec<f32> {
    let n = x.len();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut input: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v * (0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n as f32).cos()))
        .collect();
    let mut spec = fft.make_output_vec();
    fft.process(&mut input, &mut spec).unwrap();
    spec.iter().map(|c| c.norm_sqr()).collect()
}

/// Frequency (Hz) of the strongest bin of `x`.
fn dominant_hz(x: &[f32]) -> f32 {
    let p = power(x);
    let (bin, _) =
        p.iter().enumerate().skip(1).fold(
            (0, 0.0),
            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
        );
    bin as f32 * RATE as f32 / x.len() as f32
}

/// Mean spectral flatness (geometric over arithmetic mean of power) of 512-sample frames.
fn flatness(x: &[f32]) -> f32 {
    let frames: Vec<f32> = x
        .chunks_exact(512)
        .map(|f| {
            let p: Vec<f32> = power(f).iter().map(|v| v + 1e-12).collect();
            let geo = (p.iter().map(|v| v.ln()).sum::<f32>() / p.len() as f32).exp();
            geo / (p.iter().sum::<f32>() / p.len() as f32)
        })
        .collect();
    frames.iter().sum::<f32>() / frames.len() as f32
}

/// The samples of the active part of the clip (frames above a tenth of the loudest).
fn active(x: &[f32]) -> &[f32] {
    let env = envelope(x);
    let max = env.iter().cloned().fold(0.0, f32::max);
    let r = runs(&env, 0.1 * max);
    &x[r.first().unwrap().start * 160..(r.last().unwrap().end * 160).min(x.len())]
}

/// Dominant frequencies of the first and last fifth of the active part.
fn start_end_hz(x: &[f32]) -> (f32, f32) {
    let a = active(x);
    let fifth = a.len() / 5;
    (dominant_hz(&a[..fifth]), dominant_hz(&a[a.len() - fifth..]))
}

fn level_of(hz: f32) -> Level {
    if hz < 400.0 {
        Level::Low
    } else if hz <= 1500.0 {
        Level::Medium
    } else {
        Level::High
    }
}

fn kind_of(x: &[f32]) -> Kind {
    let a = active(x);
    if flatness(a) > 0.3 {
        return Kind::Noise;
    }
    let (s, e) = start_end_hz(x);
    if s.max(e) / s.min(e) > 1.5 {
        Kind::Chirp
    } else {
        Kind::Tone
    }
}

/// Checks one decoded clip against its facts; returns a description of any mismatch.
fn check(sound: &Sound, x: &[f32]) -> Result<(), String> {
    let secs = x.len() as f32 / RATE as f32;
    if !(1.0..=5.0).contains(&secs) {
        return Err(format!("clip lasts {secs} s"));
    }
    match sound {
        Sound::Beeps { count, freq_hz } => {
            let env = envelope(x);
            let max = env.iter().cloned().fold(0.0, f32::max);
            let n = runs(&env, 0.3 * max).len() as u32;
            let hz = dominant_hz(active(x));
            if n != *count || (hz - *freq_hz as f32).abs() > 0.03 * *freq_hz as f32 {
                return Err(format!("measured {n} beeps at {hz} Hz"));
            }
        }
        Sound::Tone { level, freq_hz } => {
            let hz = dominant_hz(active(x));
            if level_of(hz) != *level || (hz - *freq_hz as f32).abs() > 0.02 * *freq_hz as f32 {
                return Err(format!("measured {hz} Hz"));
            }
        }
        Sound::Chirp {
            direction,
            start_hz,
            end_hz,
        } => {
            let (s, e) = start_end_hz(x);
            let measured = if e > s {
                Direction::Rising
            } else {
                Direction::Falling
            };
            // The fifths' dominant frequencies lie inside the sweep, nearer its ends.
            let (lo, hi) = (*start_hz.min(end_hz) as f32, *start_hz.max(end_hz) as f32);
            let inside = |f: f32| f >= 0.9 * lo && f <= 1.1 * hi;
            if measured != *direction || !inside(s) || !inside(e) || s.max(e) / s.min(e) < 2.0 {
                return Err(format!("measured {s} Hz -> {e} Hz"));
            }
        }
        Sound::TwoTones {
            louder,
            freq_hz,
            levels_db,
        } => {
            let env = envelope(x);
            let r = runs(&env, 0.01);
            if r.len() != 2 {
                return Err(format!("measured {} tones", r.len()));
            }
            let rms: Vec<f32> = r
                .iter()
                .map(|r| {
                    let s = &x[r.start * 160..(r.end * 160).min(x.len())];
                    (s.iter().map(|v| v * v).sum::<f32>() / s.len() as f32).sqrt()
                })
                .collect();
            let measured = if rms[0] > rms[1] {
                Order::First
            } else {
                Order::Second
            };
            let db = 20.0 * (rms[0] / rms[1]).log10();
            let stated = (levels_db[0] - levels_db[1]) as f32;
            let hz = dominant_hz(active(x));
            if measured != *louder
                || (db - stated).abs() > 2.0
                || (hz - *freq_hz as f32).abs() > 0.03 * *freq_hz as f32
            {
                return Err(format!("measured {db} dB apart at {hz} Hz"));
            }
        }
        Sound::Kind { kind } => {
            let measured = kind_of(x);
            if measured != *kind {
                return Err(format!("measured {measured:?}"));
            }
        }
    }
    Ok(())
}

/// Writes a split, loads it back with the data loader, decodes each clip and checks it.
#[test]
fn every_clip_has_the_property_its_facts_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    synth::write_split(&dir, Split::Dev, &opts(11, 6 * 40), false).unwrap();
    let ds = data::load(&dir, &LoadOptions::default()).unwrap();
    assert!(ds.problems.is_empty(), "{:?}", ds.problems);
    assert_eq!(ds.items.len(), 240);
    let mut failures = Vec::new();
    let mut per_task: BTreeMap<Task, usize> = BTreeMap::new();
    for item in &ds.items {
        let facts = Facts::of_item(item).unwrap();
        *per_task.entry(facts.task).or_default() += 1;
        let clip = decode_file(&item.audio, &DecodeOptions::default()).unwrap();
        if let Err(e) = check(&facts.sound, &clip.samples) {
            failures.push(format!("{}: {:?}: {e}", item.id, facts.sound));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(per_task.values().all(|&n| n == 40), "{per_task:?}");
}

#[test]
fn the_measures_tell_the_properties_apart() {
    // The checks above can fail: a clip of another value is caught.
    let gen = synth::generate(Split::Dev, &opts(4, 60));
    let mut caught = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for g in &gen {
        let samples: Vec<f32> = g.samples.iter().map(|&s| s as f32 / 32768.0).collect();
        let (altered, _) = alter_chain(&g.facts, &g.item.choices, &mut rng).unwrap();
        if check(&altered.sound, &samples).is_err() {
            caught += 1;
        }
    }
    assert_eq!(caught, gen.len());
}

/// Gold letters and deciding values per group (task, or hop of multi-hop).
type Tally = BTreeMap<String, BTreeMap<String, usize>>;

fn tally(gen: &[synth::Generated]) -> (Tally, Tally) {
    let (mut letters, mut values) = (Tally::new(), Tally::new());
    for g in gen {
        let group = g.item.meta.category.clone().unwrap();
        *letters
            .entry(group.clone())
            .or_default()
            .entry(g.item.gold.unwrap().to_string())
            .or_default() += 1;
        *values
            .entry(group)
            .or_default()
            .entry(format!("{:?}", g.facts.sound.value()))
            .or_default() += 1;
        assert_eq!(g.facts.answer_index(&g.item.choices), g.item.gold);
    }
    assert_eq!(letters.len(), 10, "five single tasks and five hops");
    (letters, values)
}

fn assert_even(tally: &Tally) {
    for (group, counts) in tally {
        let (min, max) = (
            counts.values().min().unwrap(),
            counts.values().max().unwrap(),
        );
        assert!(max - min <= 1, "{group}: {counts:?}");
    }
}

#[test]
fn gold_letters_and_values_are_balanced() {
    // Fixed layout: every item of a group shows the same choices, every option; the gold letter
    // is a function of the value, so both are balanced together.
    let gen = synth::generate(Split::Train, &opts(5, 6 * 60));
    let (letters, values) = tally(&gen);
    assert_even(&letters);
    assert_even(&values);
    for (group, counts) in &letters {
        let layouts: BTreeSet<&Vec<String>> = gen
            .iter()
            .filter(|g| g.item.meta.category.as_deref() == Some(group.as_str()))
            .map(|g| &g.item.choices)
            .collect();
        assert_eq!(layouts.len(), 1, "{group}: one layout, got {layouts:?}");
        assert_eq!(
            counts.len(),
            values[group].len(),
            "{group}: one letter per value"
        );
    }
    assert_eq!(values["count"].len(), 6);
    assert_eq!(g_choices(&gen, "count"), 6);
    assert_eq!(values["legs"].len(), 3);
    assert_eq!(
        g_choices(&gen, "legs"),
        4,
        "a spider is shown, never the answer"
    );

    // Shuffled layout (the first one): four choices at most, every letter gold somewhere.
    let shuffled = SynthOptions {
        choice_order: ChoiceOrder::Shuffled,
        ..opts(5, 6 * 60)
    };
    let gen = synth::generate(Split::Train, &shuffled);
    let (letters, values) = tally(&gen);
    assert_even(&letters);
    assert_even(&values);
    for (group, counts) in &letters {
        assert_eq!(
            counts.len(),
            g_choices(&gen, group),
            "{group}: every letter is gold"
        );
    }
    assert_eq!(g_choices(&gen, "count"), 4);
    assert_eq!(values["count"].len(), 6);
}

/// Number of choices of the items of a group.
fn g_choices(gen: &[synth::Generated], group: &str) -> usize {
    gen.iter()
        .find(|g| g.item.meta.category.as_deref() == Some(group))
        .unwrap()
        .item
        .choices
        .len()
}

// ---- chains ----

/// Splits on the one rule the chains rely on: a period followed by whitespace ends a sentence.
fn naive_split(text: &str) -> Vec<String> {
    text.split_inclusive(". ")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn assert_plain(chain: &[String], id: &str) {
    assert!((6..=7).contains(&chain.len()), "{id}: {chain:?}");
    for s in chain {
        assert!(s.starts_with(|c: char| c.is_ascii_uppercase()), "{id}: {s}");
        assert!(s.ends_with('.'), "{id}: {s}");
        assert_eq!(
            s.matches('.').count(),
            1,
            "{id}: one period, no decimals: {s}"
        );
        for abbrev in ["e.g", "i.e", "approx", "etc", "vs", "Dr", "Mr"] {
            assert!(!s.contains(abbrev), "{id}: {s}");
        }
    }
    assert_eq!(naive_split(&chain.join(" ")), chain, "{id}");
    assert_eq!(
        split_sentences(&chain.join(" ")),
        chain,
        "{id}: the project's splitter"
    );
}

#[test]
fn chains_state_the_facts_and_end_with_the_gold_letter() {
    for g in synth::generate(Split::Test, &opts(9, 6 * 20)) {
        let chain = chain_for_item(&g.item).unwrap();
        assert_plain(&chain, &g.item.id);
        let letter = Item::letter(g.item.gold.unwrap());
        assert_eq!(
            chain.last().unwrap(),
            &format!("So the answer is ({letter}).")
        );
    }
}

#[test]
fn chain_wording_for_two_examples() {
    let choices: Vec<String> = ["a spider", "a dog", "a chicken", "an ant"]
        .map(String::from)
        .to_vec();
    let facts = Facts {
        task: Task::Multihop,
        hop: Some(synth::Hop::Legs),
        sound: Sound::Beeps {
            count: 4,
            freq_hz: 1000,
        },
    };
    assert_eq!(
        write_chain(&facts, &choices).unwrap(),
        [
            "Let me listen to the clip carefully.",
            "I hear short beeps with silences between them.",
            "Let me count them one by one.",
            "I count four beeps.",
            "There are four beeps in total.",
            "A dog has four legs.",
            "So the answer is (B).",
        ]
    );
    let facts = Facts {
        task: Task::Level,
        hop: None,
        sound: Sound::Tone {
            level: Level::High,
            freq_hz: 2500,
        },
    };
    let choices: Vec<String> = [
        "low (below 400 Hz)",
        "medium (400 to 1500 Hz)",
        "high (above 1500 Hz)",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        write_chain(&facts, &choices).unwrap(),
        [
            "Let me listen to the clip carefully.",
            "I hear one steady tone.",
            "Let me estimate its pitch.",
            "Its pitch is about 2500 Hz.",
            "That is above 1500 Hz, so the pitch is high.",
            "So the answer is (C).",
        ]
    );
    let err = write_chain(&facts, &choices[..2]).unwrap_err().to_string();
    assert!(err.contains("not among the choices"), "{err}");
}

#[test]
fn alter_chain_changes_one_fact_and_the_answer_follows_it() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for g in synth::generate(Split::Dev, &opts(2, 6 * 20)) {
        let (altered, chain) = alter_chain(&g.facts, &g.item.choices, &mut rng).unwrap();
        let id = &g.item.id;
        assert_plain(&chain, id);
        assert_eq!(
            (altered.task, altered.hop),
            (g.facts.task, g.facts.hop),
            "{id}"
        );
        assert_ne!(altered.sound.value(), g.facts.sound.value(), "{id}");
        // Only the deciding fact and what follows from it change.
        let fields = |s: &Sound| match serde_json::to_value(s).unwrap() {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let (before, after) = (fields(&g.facts.sound), fields(&altered.sound));
        let changed: Vec<&str> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, _)| k.as_str())
            .collect();
        let allowed: &[&str] = match &g.facts.sound {
            Sound::Beeps { .. } => &["count"],
            Sound::Tone { .. } => &["level", "freq_hz"],
            Sound::Chirp { .. } => &["direction", "start_hz", "end_hz"],
            Sound::TwoTones { .. } => &["louder", "levels_db"],
            Sound::Kind { .. } => &["kind"],
        };
        assert!(
            changed.iter().all(|c| allowed.contains(c)),
            "{id}: {changed:?}"
        );
        assert!(changed.contains(&allowed[0]), "{id}: {changed:?}");
        // The answer follows the altered fact, and differs from the gold.
        let index = altered.answer_index(&g.item.choices).unwrap();
        assert_ne!(Some(index), g.item.gold, "{id}");
        assert_eq!(
            chain.last().unwrap(),
            &format!("So the answer is ({}).", Item::letter(index)),
            "{id}"
        );
        // The altered chain differs from the faithful one in the fact sentences.
        let faithful = write_chain(&g.facts, &g.item.choices).unwrap();
        assert_eq!(chain.len(), faithful.len(), "{id}");
        // The opening and the description before the deciding sentence do not change.
        let d = synth::deciding_sentence(&g.facts.sound);
        assert_eq!(chain[..d - 1], faithful[..d - 1], "{id}");
        assert_ne!(chain[d..], faithful[d..], "{id}");
    }
}

// ---- the shipped split ----

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/synth-test")
}

#[test]
fn shipped_test_split_loads_and_is_what_the_generator_writes() {
    let ds = data::load(
        &shipped(),
        &LoadOptions {
            strict: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ds.items.len(), 240);
    assert!(ds.problems.is_empty(), "{:?}", ds.problems);
    let c = ds.counts();
    assert!(c.by_track.values().all(|&n| n == 40), "{:?}", c.by_track);
    // Regenerating with the documented command gives the same items and clips.
    let gen = synth::generate(Split::Test, &opts(5, 240));
    let bytes: usize = files(&shipped().join("audio")).values().map(Vec::len).sum();
    assert!(bytes < 6_000_000, "{bytes} bytes of audio");
    for (g, item) in gen.iter().zip(&ds.items) {
        assert_eq!(g.item.id, item.id);
        assert_eq!(g.item.choices, item.choices);
        assert_eq!(g.item.gold, item.gold);
        assert_eq!(g.item.meta, item.meta);
        // Sample for sample, up to one step of rounding: the clips are rendered with the
        // platform's sin and exp, whose last bit may differ between systems.
        let shipped = decode_file(&item.audio, &DecodeOptions::default()).unwrap();
        assert_eq!(shipped.samples.len(), g.samples.len(), "{}", item.id);
        let worst = shipped
            .samples
            .iter()
            .zip(&g.samples)
            .map(|(a, &b)| (a * 32768.0 - b as f32).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1.0, "{}: clip differs by {worst} steps", item.id);
    }
}

#[test]
fn items_command_lists_the_shipped_split_without_problems() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args(["items", "--json"])
        .arg(shipped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "faithscope");
    assert_eq!(v["counts"]["total"], 240);
    assert_eq!(v["counts"]["errors"], 0);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    assert!(v["items"][0]["meta"]["facts"]["task"].is_string());
}

#[test]
fn synth_command_writes_splits_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_faithscope"))
            .args(["synth", "--out"])
            .arg(tmp.path())
            .args(["--count", "6", "--tasks", "count,louder", "--format", "wav"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("train: 6 items") && text.contains("count      3"),
        "{text}"
    );
    for split in ["train", "dev", "test"] {
        let ds = data::load(&tmp.path().join(split), &LoadOptions::default()).unwrap();
        assert_eq!(ds.items.len(), 6);
        assert!(ds
            .items
            .iter()
            .all(|i| i.audio.extension().unwrap() == "wav"));
    }
    let again = run(&["--split", "test"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    assert!(run(&["--split", "test", "--force"]).status.success());
}
