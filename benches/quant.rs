//! `cargo bench --bench quant`: `--quant` on a random checkpoint of a published shape, written
//! in bf16 at bench time by tools/bench_torch_model.py (`FAITHSCOPE_BENCH_SHAPE` = `0.5b`, the
//! default, or `7b`; `FAITHSCOPE_BENCH_QUANT_MODEL` names an existing folder instead). Each quant
//! type runs in a process of its own (so that its peak resident memory is its own): load time,
//! peak memory, prefill and decode tokens/s; ratios against f32 candle and against PyTorch bf16
//! on the same checkpoint and machine, measured in the same run. Then batched decoding: tokens/s
//! of 1, 4, 8 and 16 sequences (prompts of different lengths) decoded one token each per step,
//! against one sequence in the same process.

mod torch_baseline;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device};
use faithscope::model::candle_backend::{resident_bytes, weight_bytes};
use faithscope::model::quant_cache::QuantCache;
use faithscope::model::qwen2_audio::Checkpoint;
use faithscope::model::qwen2_audio::Quantizer;
use faithscope::model::sampling::argmax;
use faithscope::model::{KvCache, Quant, Qwen2Audio, Qwen2AudioConfig, QUANT_NAMES};
use torch_baseline::{median, python, torch_speed, write_random, Speed};

const CHILD: &str = "FAITHSCOPE_QUANT_CHILD";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Prompt ids inside the borrowed tokenizer's vocabulary.
fn prompt(n: usize) -> Vec<u32> {
    (0..n).map(|i| (i as u32 * 7919) % 400 + 10).collect()
}

fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(l.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Loads the checkpoint in `dir` quantised as `quant`, with the quant cache in `cache` (the
/// first load writes it, the next reads it back); the load's seconds.
fn load(quant: Quant, dir: &Path, cache: Option<&Path>) -> (Qwen2Audio, f64) {
    let t0 = Instant::now();
    let config = Qwen2AudioConfig::from_dir(dir).unwrap();
    let ckpt = Checkpoint::open(dir).unwrap();
    let mut q = Quantizer::new(quant);
    if let (Some(c), true) = (cache, quant != Quant::None) {
        let mut files = ckpt.files().to_vec();
        files.push(dir.join("config.json"));
        q = q.with_cache(QuantCache::open(c, "bench", &files, quant));
    }
    let model =
        Qwen2Audio::load_from(config, ckpt, None, q, &Device::Cpu, DType::F32, dir).unwrap();
    (model, t0.elapsed().as_secs_f64())
}

/// The second load of a quant type, from the cache the first one wrote: prints one JSON line.
fn cached_child(quant: Quant, dir: &Path, cache: &Path) {
    let (_model, load_s) = load(quant, dir, Some(cache));
    println!(
        "{}",
        serde_json::json!({ "load_s": load_s, "peak_rss": peak_rss() })
    );
}

/// One quant type, in this process: prints one JSON line.
fn child(quant: Quant, dir: &Path, cache: &Path, n_prompt: usize, n_decode: usize, repeats: usize) {
    let (model, load_s) = load(quant, dir, Some(cache));
    let ids = prompt(n_prompt);
    let (mut pre, mut dec) = (Vec::new(), Vec::new());
    for r in 0..=repeats {
        let mut cache = KvCache::new();
        let t0 = Instant::now();
        let logits = model.forward_ids_last(&ids, &mut cache).unwrap();
        let t1 = Instant::now();
        let mut tok = argmax(&logits.to_vec1::<f32>().unwrap()) as u32;
        for _ in 0..n_decode {
            let l = model.forward_ids_last(&[tok], &mut cache).unwrap();
            tok = argmax(&l.to_vec1::<f32>().unwrap()) as u32;
        }
        if r > 0 {
            pre.push((t1 - t0).as_secs_f64());
            dec.push(t1.elapsed().as_secs_f64());
        }
    }
    let batched = batched_decode(&model, n_prompt / 4, n_decode / 2);
    println!(
        "{}",
        serde_json::json!({
            "batch": batched,
            "load_s": load_s,
            "peak_rss": peak_rss(),
            "prefill": n_prompt as f64 / median(pre),
            "decode": n_decode as f64 / median(dec),
        })
    );
}

/// The batch sizes measured.
const BATCHES: [usize; 4] = [1, 4, 8, 16];

/// Decode tokens/s (all sequences together) at each of [`BATCHES`]: sequence `i` has a prompt of
/// `n_prompt + 8 i` tokens; each step feeds every sequence its greedy next token.
fn batched_decode(model: &Qwen2Audio, n_prompt: usize, steps: usize) -> Vec<f64> {
    let max = *BATCHES.iter().max().unwrap();
    let mut caches = Vec::new();
    let mut firsts = Vec::new();
    for i in 0..max {
        let mut c = KvCache::new();
        let l = model
            .forward_ids_last(&prompt(n_prompt + 8 * i), &mut c)
            .unwrap();
        firsts.push(argmax(&l.to_vec1::<f32>().unwrap()) as u32);
        caches.push(c);
    }
    BATCHES
        .iter()
        .map(|&b| {
            let mut cs = caches[..b].to_vec();
            let mut ids = firsts[..b].to_vec();
            let t0 = Instant::now();
            for _ in 0..steps {
                let l = model.forward_ids_batch(&ids, &mut cs).unwrap();
                ids = (0..b)
                    .map(|r| argmax(&l.get(r).unwrap().to_vec1::<f32>().unwrap()) as u32)
                    .collect();
            }
            (b * steps) as f64 / t0.elapsed().as_secs_f64()
        })
        .collect()
}

/// Runs one quant type in a child process (`cached`: only the load from the cache the first
/// run wrote) and returns its JSON line.
fn run_child(
    name: &str,
    dir: &Path,
    cache: &Path,
    cached: bool,
) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, name)
        .env("FAITHSCOPE_QUANT_DIR", dir)
        .env("FAITHSCOPE_QUANT_CACHE_DIR", cache);
    if cached {
        cmd.env("FAITHSCOPE_QUANT_CACHED", "1");
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .ok_or_else(|| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string()
        })
}

fn available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let l = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(l.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn gb(b: u64) -> String {
    format!("{:.2} GB", b as f64 / 1e9)
}

fn main() {
    let shape = std::env::var("FAITHSCOPE_BENCH_SHAPE").unwrap_or_else(|_| "0.5b".into());
    let (n_prompt, n_decode, repeats) = if shape == "7b" {
        (64, 8, 1)
    } else {
        (256, 32, 2)
    };
    if let Ok(q) = std::env::var(CHILD) {
        let dir = PathBuf::from(std::env::var("FAITHSCOPE_QUANT_DIR").unwrap());
        let cache = PathBuf::from(std::env::var("FAITHSCOPE_QUANT_CACHE_DIR").unwrap());
        let quant = Quant::parse(&q).unwrap();
        if std::env::var_os("FAITHSCOPE_QUANT_CACHED").is_some() {
            cached_child(quant, &dir, &cache);
        } else {
            child(quant, &dir, &cache, n_prompt, n_decode, repeats);
        }
        return;
    }
    let py = python();
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("FAITHSCOPE_BENCH_QUANT_MODEL") {
        Some(d) => PathBuf::from(d),
        None => {
            let Ok(py) = &py else {
                println!("NOTE: no Python with torch to write the checkpoint ({}); set FAITHSCOPE_PYTHON or FAITHSCOPE_BENCH_QUANT_MODEL", py.unwrap_err());
                return;
            };
            let out = tmp.path().join(format!("qwen2-audio-{shape}-random"));
            let tiny = repo().join("tests/fixtures/qwen2_audio/tiny-b");
            match write_random(py, &shape, "bf16", &tiny, &out) {
                Ok(s) => println!("checkpoint ({shape}, bf16): {s}"),
                Err(e) => {
                    println!("NOTE: could not write the {shape} checkpoint: {e}");
                    return;
                }
            }
            out
        }
    };
    let shapes = Checkpoint::open(&dir).unwrap().shapes();
    let free = available();
    println!("\n## --quant on the {shape}-shaped random Qwen2-Audio (prompt {n_prompt}, decode {n_decode}, CPU)\n");
    println!("| quant | weights (est.) | once run (est.) | load (first / cached) | peak RSS (first / cached) | prefill tok/s | decode tok/s | decode vs f32 | decode vs PyTorch bf16 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let torch = py
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|py| torch_speed(py, &dir, &prompt(n_prompt), n_decode, repeats, "bf16"));
    let mut f32_decode = None;
    let mut batch_rows = Vec::new();
    for name in QUANT_NAMES {
        let quant = Quant::parse(name).unwrap();
        let est = weight_bytes(&shapes, quant, DType::F32);
        let resident = resident_bytes(&shapes, quant, DType::F32);
        if free.is_some_and(|f| est > f / 10 * 9) {
            println!(
                "| {name} | {} | {} | skipped: more than the {} free | | | | | |",
                gb(est),
                gb(resident),
                gb(free.unwrap())
            );
            continue;
        }
        let cache = tmp.path().join(format!("cache-{name}"));
        let v = match run_child(name, &dir, &cache, false) {
            Ok(v) => v,
            Err(e) => {
                println!(
                    "| {name} | {} | {} | failed: {e} | | | | | |",
                    gb(est),
                    gb(resident)
                );
                continue;
            }
        };
        let cached = if quant == Quant::None {
            None
        } else {
            let c = run_child(name, &dir, &cache, true);
            let _ = std::fs::remove_dir_all(&cache);
            c.ok()
        };
        let s = Speed {
            prefill: v["prefill"].as_f64().unwrap(),
            decode: v["decode"].as_f64().unwrap(),
            peak_rss: v["peak_rss"].as_u64(),
        };
        if quant == Quant::None {
            f32_decode = Some(s.decode);
        }
        let tps: Vec<f64> = v["batch"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        batch_rows.push((name, tps));
        let vs = |base: Option<f64>| {
            base.map(|b| format!("{:.2}x", s.decode / b))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "| {name} | {} | {} | {:.1} s{} | {}{} | {:.1} | {:.2} | {} | {} |",
            gb(est),
            gb(resident),
            v["load_s"].as_f64().unwrap(),
            cached
                .as_ref()
                .and_then(|c| c["load_s"].as_f64())
                .map(|c| format!(" / {c:.1} s"))
                .unwrap_or_default(),
            s.peak_rss.map(gb).unwrap_or_else(|| "n/a".into()),
            cached
                .as_ref()
                .and_then(|c| c["peak_rss"].as_u64())
                .map(|c| format!(" / {}", gb(c)))
                .unwrap_or_default(),
            s.prefill,
            s.decode,
            vs(f32_decode),
            vs(torch.as_ref().ok().map(|t| t.decode)),
        );
    }
    match &torch {
        Ok(t) => println!(
            "| PyTorch bf16 | | | | {} | {:.1} | {:.2} | | 1.00x |",
            t.peak_rss.map(gb).unwrap_or_else(|| "n/a".into()),
            t.prefill,
            t.decode
        ),
        Err(e) => println!("\nNOTE: the PyTorch bf16 baseline could not run: {e}"),
    }
    println!(
        "\n## Batched decoding on the {shape} shape (prompts {}..{} tokens, {} steps; tok/s of all sequences, vs batch 1)\n",
        n_prompt / 4,
        n_prompt / 4 + 8 * (BATCHES[BATCHES.len() - 1] - 1),
        n_decode / 2
    );
    println!(
        "| quant |{}",
        BATCHES
            .iter()
            .map(|b| format!(" batch {b} |"))
            .collect::<String>()
    );
    println!("|---|{}", "---|".repeat(BATCHES.len()));
    for (name, tps) in batch_rows {
        let cells: String = tps
            .iter()
            .map(|t| format!(" {t:.1} ({:.2}x) |", t / tps[0]))
            .collect();
        println!("| {name} |{cells}");
    }
}
