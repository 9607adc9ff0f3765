//! Model benchmarks (`cargo bench --bench model`), each a ratio against a baseline measured in
//! the same run:
//!
//! 1. Prefill and decode tokens/s of the candle Qwen2-Audio against the same checkpoint in
//!    PyTorch eager (tools/bench_torch_model.py, run with `FAITHSCOPE_PYTHON`, else `python3`),
//!    on the tiny fixture checkpoints and on a random 0.5B-shaped checkpoint that the script
//!    writes to a temp dir (skip it with `FAITHSCOPE_BENCH_SKIP_MID=1`).
//! 2. An early-answering sweep (one 10-s clip, an 8-sentence chain, the answer read after every
//!    sentence boundary) with prefix reuse against recomputing every prompt from scratch; the
//!    answers must be identical.

mod torch_baseline;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use faithscope::model::candle_backend::{CacheOptions, CandleReasoner};
use faithscope::model::sampling::argmax;
use faithscope::model::tokenizer::Tokenizer;
use faithscope::model::{ChoiceProbs, Conversation, KvCache, Message, Qwen2Audio, Reasoner, Role};
use torch_baseline::{median, python, torch_speed, write_random, Speed};

const SWEEP_CLIP: &str = "sakura-mini/data/Gender/audio/en_test_0_common_voice_en_31694143.wav";
const CHAIN: [&str; 8] = [
    "The recording is about ten seconds of a single person speaking.",
    " The voice is clear and there is little background noise.",
    " The pitch of the voice stays fairly low through the whole clip.",
    " The speaker talks at a steady pace with a calm tone.",
    " Low pitch and a deep resonance are typical of an adult male voice.",
    " There is no sign of a second speaker or of music.",
    " A female voice would usually sound higher and lighter.",
    " Therefore the speaker is most likely male.",
];
const CUE: &str = " Given all of the above, the single, most likely answer is (";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Prompt ids of realistic text, `n` long.
fn prompt_ids(tok: &Tokenizer, n: usize) -> Vec<u32> {
    let text = CHAIN.concat();
    let one = tok.encode(&text).unwrap();
    one.iter().copied().cycle().take(n).collect()
}

fn candle_speed(dir: &Path, ids: &[u32], decode: usize, repeats: usize) -> Speed {
    let model = Qwen2Audio::load(dir, &Device::Cpu, DType::F32).unwrap();
    let (mut pre, mut dec) = (Vec::new(), Vec::new());
    for r in 0..=repeats {
        let mut cache = KvCache::new();
        let t0 = Instant::now();
        let logits = model.forward_ids_last(ids, &mut cache).unwrap();
        let t1 = Instant::now();
        let mut tok = argmax(&logits.to_vec1::<f32>().unwrap()) as u32;
        for _ in 0..decode {
            let l = model.forward_ids_last(&[tok], &mut cache).unwrap();
            tok = argmax(&l.to_vec1::<f32>().unwrap()) as u32;
        }
        let t2 = Instant::now();
        if r > 0 {
            pre.push((t1 - t0).as_secs_f64());
            dec.push((t2 - t1).as_secs_f64());
        }
    }
    Speed {
        prefill: ids.len() as f64 / median(pre),
        decode: decode as f64 / median(dec),
        peak_rss: None,
    }
}

fn speed_row(
    name: &str,
    dir: &Path,
    py: &Result<String, String>,
    prompt: usize,
    decode: usize,
    repeats: usize,
) {
    let tok = Tokenizer::load(dir).unwrap();
    let ids = prompt_ids(&tok, prompt);
    let c = candle_speed(dir, &ids, decode, repeats);
    match py
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|py| torch_speed(py, dir, &ids, decode, repeats, "f32"))
    {
        Ok(t) => println!(
            "| {name} | {prompt} | {:.0} | {:.0} | {:.2}x | {:.1} | {:.1} | {:.2}x |",
            c.prefill,
            t.prefill,
            c.prefill / t.prefill,
            c.decode,
            t.decode,
            c.decode / t.decode
        ),
        Err(e) => {
            println!(
                "| {name} | {prompt} | {:.0} | n/a | n/a | {:.1} | n/a | n/a |",
                c.prefill, c.decode
            );
            println!("  PyTorch baseline could not run for {name}: {e}");
        }
    }
}

fn sweep(m: &CandleReasoner, clip: &Path) -> (f64, Vec<ChoiceProbs>) {
    let letters: Vec<String> = ["A", "B"].iter().map(|s| s.to_string()).collect();
    let question = "Is the speaker male or female?\n(A) male\n(B) female".to_string();
    let t0 = Instant::now();
    let mut out = Vec::new();
    for k in 0..=CHAIN.len() {
        let conv = Conversation {
            audio: Some(clip.to_path_buf()),
            messages: vec![Message {
                role: Role::User,
                text: question.clone(),
            }],
            prefill: Some(format!("{}{CUE}", CHAIN[..k].concat())),
        };
        out.push(m.choice_probs(&conv, &letters).unwrap());
    }
    (t0.elapsed().as_secs_f64(), out)
}

fn sweep_row(name: &str, dir: &Path, clip: &Path) {
    let cached =
        CandleReasoner::load(dir, &Device::Cpu, DType::F32, CacheOptions::default()).unwrap();
    let fresh =
        CandleReasoner::load(dir, &Device::Cpu, DType::F32, CacheOptions::disabled()).unwrap();
    // warm both (page in the weights) on an unrelated prompt
    let _ = fresh.render_prompt(&Conversation {
        audio: None,
        messages: vec![Message {
            role: Role::User,
            text: "hi".into(),
        }],
        prefill: None,
    });
    let (t_fresh, p_fresh) = sweep(&fresh, clip);
    let (t_cached, p_cached) = sweep(&cached, clip);
    let same = p_fresh
        .iter()
        .zip(&p_cached)
        .all(|(a, b)| a.argmax() == b.argmax());
    let max_diff = p_fresh
        .iter()
        .zip(&p_cached)
        .flat_map(|(a, b)| {
            a.logprobs
                .iter()
                .zip(&b.logprobs)
                .map(|(x, y)| (x - y).abs())
        })
        .fold(0f32, f32::max);
    let (sf, sc) = (fresh.stats(), cached.stats());
    println!(
        "| {name} | {:.3} s | {:.3} s | {:.1}x | {} | {} / {} | {} / {} | {:.1e} |",
        t_fresh,
        t_cached,
        t_fresh / t_cached,
        if same { "identical" } else { "DIFFERENT" },
        sf.tokens_computed,
        sf.audio_encoded,
        sc.tokens_computed,
        sc.audio_encoded,
        max_diff
    );
    assert!(
        same,
        "{name}: answers differ between prefix reuse and recomputation"
    );
}

fn main() {
    let fixtures = repo().join("tests/fixtures/qwen2_audio");
    let data = std::env::var_os("FAITHSCOPE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let py = python();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("# Model benchmarks (CPU, f32, {threads} threads available)");
    if let Err(e) = &py {
        println!("NOTE: the PyTorch baseline cannot run ({e}); set FAITHSCOPE_PYTHON to a Python with the packages of tools/requirements.txt. Only candle figures follow.");
    }
    let mid = if std::env::var_os("FAITHSCOPE_BENCH_SKIP_MID").is_some() {
        println!("NOTE: mid-size checkpoint skipped (FAITHSCOPE_BENCH_SKIP_MID)");
        None
    } else {
        match &py {
            Ok(py) => {
                let tmp = tempfile::tempdir().unwrap();
                let out = tmp.path().join("qwen2-audio-0.5b-random");
                match write_random(py, "0.5b", "f32", &fixtures.join("tiny-b"), &out) {
                    Ok(summary) => {
                        println!("mid-size checkpoint: {summary}");
                        Some((tmp, out))
                    }
                    Err(e) => {
                        println!("NOTE: could not write the mid-size checkpoint: {e}");
                        None
                    }
                }
            }
            Err(_) => {
                println!(
                    "NOTE: the mid-size checkpoint is written by the Python script and is skipped"
                );
                None
            }
        }
    };

    println!("\n## Prefill and decode (tokens/s; ratio = candle / PyTorch eager)\n");
    println!("| checkpoint | prompt | candle prefill | torch prefill | ratio | candle decode | torch decode | ratio |");
    println!("|---|---|---|---|---|---|---|---|");
    speed_row("tiny-a", &fixtures.join("tiny-a"), &py, 256, 32, 5);
    speed_row("tiny-b", &fixtures.join("tiny-b"), &py, 256, 32, 5);
    if let Some((_, dir)) = &mid {
        speed_row("0.5B-shaped random", dir, &py, 512, 16, 2);
    }

    println!("\n## Early-answering sweep (10-s clip, 8 sentences, 9 answers; from scratch vs prefix reuse)\n");
    let clip = data.join(SWEEP_CLIP);
    if !clip.is_file() {
        println!(
            "NOTE: {} not found; the sweep needs the shared data (FAITHSCOPE_SHARED_DATA)",
            clip.display()
        );
        return;
    }
    println!("| checkpoint | from scratch | prefix reuse | speed-up | answers | positions / clips encoded (scratch) | (reuse) | max abs logprob diff |");
    println!("|---|---|---|---|---|---|---|---|");
    sweep_row("tiny-b", &fixtures.join("tiny-b"), &clip);
    if let Some((_, dir)) = &mid {
        sweep_row("0.5B-shaped random", dir, &clip);
    }
}
