//! The PyTorch baseline of the model benchmarks (tools/bench_torch_model.py, run with
//! `FAITHSCOPE_PYTHON`, else `python3`): random checkpoints of the published shapes written at
//! bench time, and transformers' prefill / decode speed on them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The median of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A Python that can import torch and transformers, or why not.
pub fn python() -> Result<String, String> {
    let py = std::env::var("FAITHSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&py)
        .args(["-c", "import torch, transformers, safetensors"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(py),
        Ok(o) => Err(format!(
            "{py} cannot import torch/transformers: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Err(format!("cannot run {py}: {e}")),
    }
}

/// Writes a random Qwen2-Audio checkpoint of `shape` ("0.5b", "7b") in `dtype` ("f32",
/// "bf16") to `out`, the tokenizer borrowed from the fixture `tokenizer_from`; returns the
/// script's summary line.
pub fn write_random(
    py: &str,
    shape: &str,
    dtype: &str,
    tokenizer_from: &Path,
    out: &Path,
) -> Result<String, String> {
    let st = Command::new(py)
        .arg(repo().join("tools/bench_torch_model.py"))
        .args([
            "write-random",
            "--shape",
            shape,
            "--dtype",
            dtype,
            "--tokenizer-from",
        ])
        .arg(tokenizer_from)
        .arg("--out")
        .arg(out)
        .output()
        .map_err(|e| e.to_string())?;
    if st.status.success() {
        Ok(String::from_utf8_lossy(&st.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&st.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_string())
    }
}

/// Prefill and decode tokens/s, and the peak resident memory when measured.
pub struct Speed {
    /// Prefill tokens/s.
    pub prefill: f64,
    /// Decode tokens/s.
    pub decode: f64,
    /// Peak resident memory of the process, bytes (read by the quant benchmark only).
    #[allow(dead_code)]
    pub peak_rss: Option<u64>,
}

/// transformers' speed on `dir` in `dtype`.
pub fn torch_speed(
    py: &str,
    dir: &Path,
    ids: &[u32],
    decode: usize,
    repeats: usize,
    dtype: &str,
) -> Result<Speed, String> {
    let tmp = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(tmp.path(), serde_json::to_string(ids).unwrap()).map_err(|e| e.to_string())?;
    let out = Command::new(py)
        .arg(repo().join("tools/bench_torch_model.py"))
        .args(["time", "--model"])
        .arg(dir)
        .arg("--ids-file")
        .arg(tmp.path())
        .args([
            "--decode",
            &decode.to_string(),
            "--repeats",
            &repeats.to_string(),
            "--dtype",
            dtype,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .join(" | "));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("bad output from the torch script: {e}"))?;
    Ok(Speed {
        prefill: v["prefill_tok_s"].as_f64().unwrap_or(0.0),
        decode: v["decode_tok_s"].as_f64().unwrap_or(0.0),
        peak_rss: v["peak_rss_kb"].as_u64().map(|kb| kb * 1024),
    })
}
