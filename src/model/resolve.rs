//! Finding a model folder (a path, or a repo id in the local Hugging Face cache; never
//! downloads) and choosing the device and dtype.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::ModelError;

/// Where the local Hugging Face hub cache lives: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d).join("hub"));
    }
    std::env::var_os("HOME").map(|h| {
        PathBuf::from(h)
            .join(".cache")
            .join("huggingface")
            .join("hub")
    })
}

/// The names of the files in a folder, sorted and comma-separated (for error messages).
pub fn list_files(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// The protocol a model folder says it was trained with (`faithscope.json`'s `protocol`, as
/// `faithscope train-demo` writes it), for tools that default to it.
pub fn model_protocol(spec: &str) -> Option<String> {
    let dir = resolve_model(spec).ok()?;
    let noted = std::fs::read_to_string(dir.join(MODEL_NOTE))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v.get("protocol")?.as_str().map(str::to_string));
    noted.or_else(|| {
        // else the architecture's: af3 for Audio Flamingo 3, omni for Qwen2.5-Omni
        let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let arch = super::config::Arch::from_model_type(v.get("model_type")?.as_str()?)?;
        (arch != super::config::Arch::Qwen2Audio).then(|| arch.default_protocol().to_string())
    })
}

/// File in a model folder with what faithscope knows of the model (protocol, how it was made).
pub const MODEL_NOTE: &str = "faithscope.json";

/// Resolves `--model`: an existing folder, or `ORG/NAME` looked up in the local hub cache
/// (`models--ORG--NAME/snapshots/<rev>`, the revision in `refs/main` first, else the newest
/// snapshot). The folder must hold a tokenizer.json.
pub fn resolve_model(arg: &str) -> Result<PathBuf, ModelError> {
    let path = Path::new(arg);
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        let cache = hub_cache_dir();
        match cache.as_deref().and_then(|c| find_in_cache(c, arg)) {
            Some(d) => d,
            None => {
                let where_ = cache
                    .map(|c| c.display().to_string())
                    .unwrap_or_else(|| "(no cache folder: HOME is unset)".into());
                return Err(ModelError::Load(format!(
                    "model {arg:?} is neither a folder nor a repo id in the local Hugging Face cache {where_}; \
                     pass a model folder, or download it first (e.g. `huggingface-cli download {arg}`) — faithscope never downloads"
                )));
            }
        }
    };
    check_model_dir(&dir)?;
    Ok(dir)
}

/// Looks up a repo id (`ORG/NAME`) in a hub cache folder.
pub fn find_in_cache(cache: &Path, repo_id: &str) -> Option<PathBuf> {
    let (org, name) = repo_id.split_once('/')?;
    if org.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    let repo = cache.join(format!("models--{org}--{name}"));
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let d = snapshots.join(rev.trim());
        if d.is_dir() {
            return Some(d);
        }
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// Checks that a model folder has the files a checkpoint needs, naming the files found when not.
pub fn check_model_dir(dir: &Path) -> Result<(), ModelError> {
    for needed in ["tokenizer.json", "config.json"] {
        if !dir.join(needed).is_file() {
            return Err(ModelError::Load(format!(
                "model folder {} has no {needed} (found: {}); a Hugging Face model folder needs config.json, \
                 *.safetensors, tokenizer.json and preprocessor_config.json",
                dir.display(),
                list_files(dir)
            )));
        }
    }
    Ok(())
}

/// Picks the compute device: `cpu`, `cuda` (or `cuda:N`) or `metal`; GPU devices need the
/// matching cargo feature.
pub fn select_device(name: &str) -> Result<Device, ModelError> {
    let gpu_err = |kind: &str, feature: &str, e: candle_core::Error| {
        ModelError::Load(format!(
            "cannot open the {kind} device: {e}; build faithscope with `--features {feature}` on a machine with such a GPU, or use --device cpu"
        ))
    };
    match name {
        "cpu" => Ok(Device::Cpu),
        "metal" => Device::new_metal(0).map_err(|e| gpu_err("metal", "metal", e)),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n.parse().map_err(|_| {
                    ModelError::Input(format!(
                        "device {s:?}: the GPU number must be an integer, e.g. cuda:0"
                    ))
                })?,
                None => 0,
            };
            Device::new_cuda(ordinal).map_err(|e| gpu_err("cuda", "cuda", e))
        }
        other => Err(ModelError::Input(format!(
            "unknown device {other:?}; use cpu, cuda, cuda:N or metal"
        ))),
    }
}

/// Parses `--dtype` (`f32`, `f16`, `bf16`); without one, f32 on CPU and bf16 on a GPU.
pub fn select_dtype(name: Option<&str>, device: &Device) -> Result<DType, ModelError> {
    match name {
        None => Ok(if device.is_cpu() {
            DType::F32
        } else {
            DType::BF16
        }),
        Some("f32") => Ok(DType::F32),
        Some("f16") => Ok(DType::F16),
        Some("bf16") => Ok(DType::BF16),
        Some(other) => Err(ModelError::Input(format!(
            "unknown dtype {other:?}; use f32, f16 or bf16"
        ))),
    }
}

/// The compute dtype: `--dtype` as [`select_dtype`] reads it, except that quantised weights
/// compute in f32 whatever the device when no dtype is given.
pub fn compute_dtype(
    name: Option<&str>,
    device: &Device,
    quant: super::Quant,
) -> Result<DType, ModelError> {
    if quant != super::Quant::None && name.is_none() {
        return Ok(DType::F32);
    }
    select_dtype(name, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lookup_prefers_refs_main() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("models--Org--Tiny");
        std::fs::create_dir_all(repo.join("snapshots/aaa")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/bbb")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "aaa\n").unwrap();
        assert_eq!(
            find_in_cache(tmp.path(), "Org/Tiny"),
            Some(repo.join("snapshots/aaa"))
        );
        std::fs::remove_file(repo.join("refs/main")).unwrap();
        assert!(find_in_cache(tmp.path(), "Org/Tiny").is_some());
        assert_eq!(find_in_cache(tmp.path(), "Org/Other"), None);
        assert_eq!(find_in_cache(tmp.path(), "noslash"), None);
    }

    #[test]
    fn missing_tokenizer_lists_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("model.safetensors"), "").unwrap();
        let e = check_model_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("no tokenizer.json"), "{e}");
        assert!(e.contains("config.json, model.safetensors"), "{e}");
    }

    #[test]
    fn dtype_defaults() {
        assert_eq!(select_dtype(None, &Device::Cpu).unwrap(), DType::F32);
        assert_eq!(
            select_dtype(Some("bf16"), &Device::Cpu).unwrap(),
            DType::BF16
        );
        assert!(select_dtype(Some("f8"), &Device::Cpu).is_err());
        assert!(select_device("tpu").is_err());
    }
}

/// What `--model` names and how to open it: a folder or cached repo id run here (candle), or
/// the URL of an OpenAI-compatible server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSpec {
    /// `--model`: folder, repo id or `http(s)://HOST:PORT/v1`.
    pub model: String,
    /// Compute device (in process only).
    pub device: String,
    /// Weight dtype (in process only).
    pub dtype: Option<String>,
    /// With a URL: the served model id (default the first listed).
    pub served_model: Option<String>,
    /// With a URL: seconds one request may take (0: the default, 600).
    pub timeout_s: u64,
    /// In process: a LoRA adapter merged at load (`think`, a subfolder of the model, or a path).
    pub adapter: Option<String>,
    /// In process: quantisation of the linear weights (`--quant`).
    pub quant: super::Quant,
}

/// Opens the model: the one place a backend is chosen.
pub fn open_model(spec: &ModelSpec) -> Result<Box<dyn super::Reasoner>, ModelError> {
    use super::candle_backend::{CacheOptions, CandleReasoner, LoadOptions};
    use super::remote::{is_url, RemoteOptions, RemoteReasoner};
    if is_url(&spec.model) {
        if spec.quant != super::Quant::None {
            return Err(ModelError::Load(format!(
                "--quant {} applies to a model run here; the server at {} runs its own weights",
                spec.quant.name(),
                spec.model
            )));
        }
        if let Some(a) = &spec.adapter {
            return Err(ModelError::Load(format!(
                "--adapter {a} applies to a model run here; a server at {} serves its adapters \
                 itself (pick one with --served-model)",
                spec.model
            )));
        }
        let mut opts = RemoteOptions::new(&spec.model);
        opts.served_model = spec.served_model.clone();
        if spec.timeout_s > 0 {
            opts.timeout = std::time::Duration::from_secs(spec.timeout_s);
        }
        return Ok(Box::new(RemoteReasoner::connect(opts)?));
    }
    let dir = resolve_model(&spec.model)?;
    let device = select_device(if spec.device.is_empty() {
        "cpu"
    } else {
        &spec.device
    })?;
    let dtype = compute_dtype(spec.dtype.as_deref(), &device, spec.quant)?;
    let m = CandleReasoner::load_with(
        &dir,
        &device,
        dtype,
        &LoadOptions {
            caches: CacheOptions::default(),
            adapter: spec.adapter.clone(),
            quant: spec.quant,
            quant_cache: super::quant_cache::default_dir(),
        },
    )
    .map_err(|e| ModelError::Load(format!("loading model {}: {e}", dir.display())))?;
    Ok(Box::new(m))
}
