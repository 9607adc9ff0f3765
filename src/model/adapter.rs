//! PEFT LoRA adapters merged into a checkpoint at load (Audio Flamingo 3's thinking mode is one,
//! in the checkpoint's `think/` folder): `W += scale · B · A` for every adapted weight, with
//! scale `lora_alpha / r` (or `lora_alpha / √r` with `use_rslora`), as peft's
//! `merge_and_unload` does; plus the tensors of `non_lora_trainables.bin` (a PyTorch state dict
//! the paper's code loads before the adapter) whose names match the model, the others reported.
//!
//! Names are compared in one canonical form: transformers 5's in-memory names (`model.*`,
//! `lm_head`) without Omni's `thinker.` prefix, whatever layout the checkpoint uses on disk.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::config::list_dir;
use super::qwen2_audio::{modern_name, Checkpoint};
use super::ModelError;

/// The peft file with the adapter's settings.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// The peft file with the adapter's tensors.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
/// Extra trained tensors saved beside the adapter (a PyTorch state dict).
pub const NON_LORA: &str = "non_lora_trainables.bin";

/// A tensor name in the canonical form used to match adapters and checkpoints.
pub fn canonical(name: &str) -> String {
    let name = name.strip_prefix("base_model.model.").unwrap_or(name);
    modern_name(name.strip_prefix("thinker.").unwrap_or(name))
}

/// The adapter folder `--adapter ARG` names for the model folder `model_dir`: a subfolder of
/// the model (`think`), else a path.
pub fn resolve_adapter(model_dir: &Path, arg: &str) -> Result<PathBuf, ModelError> {
    let inside = model_dir.join(arg);
    let dir = if inside.is_dir() {
        inside
    } else {
        PathBuf::from(arg)
    };
    if !dir.is_dir() {
        return Err(ModelError::Load(format!(
            "--adapter {arg}: no folder {} (the model folder {} holds: {}); pass a subfolder of \
             the model such as think, or the path of a peft adapter folder",
            model_dir.join(arg).display(),
            model_dir.display(),
            list_dir(model_dir)
        )));
    }
    Ok(dir)
}

/// The files of an adapter folder that make its weights.
pub fn files_of(dir: &Path) -> Vec<PathBuf> {
    [ADAPTER_CONFIG, ADAPTER_WEIGHTS, NON_LORA]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

#[derive(serde::Deserialize)]
struct AdapterConfig {
    #[serde(default)]
    peft_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    rank_pattern: HashMap<String, serde_json::Value>,
    #[serde(default)]
    alpha_pattern: HashMap<String, serde_json::Value>,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
}

/// One adapted weight: `lora_A` [r, in] and `lora_B` [out, r] (f32).
struct Lora {
    a: Tensor,
    b: Tensor,
}

/// An opened adapter folder.
pub struct Adapter {
    dir: PathBuf,
    scale: f64,
    base_model: Option<String>,
    lora: HashMap<String, Lora>,
    non_lora: HashMap<String, Tensor>,
}

impl Adapter {
    /// Reads `adapter_config.json`, `adapter_model.safetensors` and, if present,
    /// `non_lora_trainables.bin` of a peft LoRA folder.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let bad = |m: String| ModelError::Load(format!("adapter {}: {m}", dir.display()));
        let cfg_path = dir.join(ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
            bad(format!(
                "cannot read {ADAPTER_CONFIG} ({e}); the folder holds: {}",
                list_dir(dir)
            ))
        })?;
        let cfg: AdapterConfig = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{ADAPTER_CONFIG} is not a peft LoRA config: {e}")))?;
        if let Some(t) = cfg.peft_type.as_deref().filter(|t| *t != "LORA") {
            return Err(bad(format!(
                "peft_type {t} is not supported; only LORA adapters are"
            )));
        }
        if cfg.use_dora {
            return Err(bad("use_dora adapters are not supported".into()));
        }
        if cfg.fan_in_fan_out {
            return Err(bad("fan_in_fan_out adapters are not supported".into()));
        }
        if let Some(b) = cfg.bias.as_deref().filter(|b| *b != "none") {
            return Err(bad(format!(
                "bias = \"{b}\" is not supported; only \"none\""
            )));
        }
        if !cfg.rank_pattern.is_empty() || !cfg.alpha_pattern.is_empty() {
            return Err(bad(
                "per-module rank_pattern / alpha_pattern is not supported".into(),
            ));
        }
        if cfg.r == 0 {
            return Err(bad("r is 0".into()));
        }
        let scale = if cfg.use_rslora {
            cfg.lora_alpha / (cfg.r as f64).sqrt()
        } else {
            cfg.lora_alpha / cfg.r as f64
        };
        let weights = dir.join(ADAPTER_WEIGHTS);
        if !weights.is_file() {
            return Err(bad(format!(
                "{ADAPTER_WEIGHTS} is missing (the folder holds: {})",
                list_dir(dir)
            )));
        }
        // SAFETY: mapped read-only for the duration of this call.
        let st = unsafe { MmapedSafetensors::new(&weights) }
            .map_err(|e| bad(format!("cannot read {ADAPTER_WEIGHTS}: {e}")))?;
        let mut halves: HashMap<String, (Option<Tensor>, Option<Tensor>)> = HashMap::new();
        for (name, _) in st.tensors() {
            let (module, half) = if let Some(m) = name.strip_suffix(".lora_A.weight") {
                (m, 0)
            } else if let Some(m) = name.strip_suffix(".lora_B.weight") {
                (m, 1)
            } else {
                return Err(bad(format!(
                    "tensor `{name}` in {ADAPTER_WEIGHTS} is neither lora_A nor lora_B; only \
                     plain LoRA adapters are supported"
                )));
            };
            let t = st
                .load(&name, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| bad(format!("cannot load `{name}`: {e}")))?;
            let slot = halves
                .entry(canonical(&format!("{module}.weight")))
                .or_default();
            if half == 0 {
                slot.0 = Some(t);
            } else {
                slot.1 = Some(t);
            }
        }
        let mut lora = HashMap::new();
        for (name, pair) in halves {
            match pair {
                (Some(a), Some(b)) => {
                    let (ra, _) = a.dims2().map_err(|e| bad(e.to_string()))?;
                    let (_, rb) = b.dims2().map_err(|e| bad(e.to_string()))?;
                    if ra != rb {
                        return Err(bad(format!(
                            "`{name}`: lora_A is {:?} and lora_B is {:?}; their ranks differ",
                            a.dims(),
                            b.dims()
                        )));
                    }
                    lora.insert(name, Lora { a, b });
                }
                (a, _) => {
                    return Err(bad(format!(
                        "`{name}` has lora_{} but not lora_{}; {ADAPTER_WEIGHTS} is incomplete",
                        if a.is_some() { "A" } else { "B" },
                        if a.is_some() { "B" } else { "A" }
                    )))
                }
            }
        }
        if lora.is_empty() {
            return Err(bad(format!("{ADAPTER_WEIGHTS} holds no LoRA tensors")));
        }
        let mut non_lora = HashMap::new();
        let bin = dir.join(NON_LORA);
        if bin.is_file() {
            let tensors = candle_core::pickle::read_all(&bin).map_err(|e| {
                bad(format!(
                    "cannot read {NON_LORA} as a PyTorch state dict: {e}"
                ))
            })?;
            for (name, t) in tensors {
                let t = t
                    .to_dtype(DType::F32)
                    .map_err(|e| bad(format!("`{name}` in {NON_LORA}: {e}")))?;
                non_lora.insert(canonical(&name), t);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            scale,
            base_model: cfg.base_model_name_or_path,
            lora,
            non_lora,
        })
    }

    /// The folder's name, for the manifest and the screen (`think`).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The merge scale (`alpha / r`, or `alpha / √r` with rsLoRA).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Number of adapted weights.
    pub fn adapted(&self) -> usize {
        self.lora.len()
    }

    /// A `VarBuilder` over `base` that returns merged weights, and the record of what the model
    /// took from the adapter (check it once the model is built). Non-LoRA tensors matching no
    /// tensor of the checkpoint are reported now, as a warning.
    pub fn wrap(
        self,
        base: Checkpoint,
        dtype: DType,
        device: &Device,
    ) -> (VarBuilder<'static>, AdapterUse) {
        let names: HashSet<String> = base.names().map(|n| canonical(n)).collect();
        let mut ignored: Vec<&String> = self
            .non_lora
            .keys()
            .filter(|k| !names.contains(*k))
            .collect();
        ignored.sort();
        if !ignored.is_empty() {
            let shown: Vec<&str> = ignored.iter().take(5).map(|s| s.as_str()).collect();
            crate::warn::warn(&format!(
                "adapter {}: {} of the {} tensors in {NON_LORA} match no tensor of the model and \
                 are ignored (as load_state_dict(strict=False) does): {}{}",
                self.dir.display(),
                ignored.len(),
                self.non_lora.len(),
                shown.join(", "),
                if ignored.len() > 5 { ", ..." } else { "" }
            ));
        }
        let used = Arc::new(Mutex::new(HashSet::new()));
        let record = AdapterUse {
            dir: self.dir.clone(),
            targets: self.lora.keys().cloned().collect(),
            used: used.clone(),
        };
        let backend = Merged {
            base,
            adapter: self,
            used,
        };
        (
            VarBuilder::from_backend(Box::new(backend), dtype, device.clone()),
            record,
        )
    }
}

/// What a model build took from an adapter.
pub struct AdapterUse {
    dir: PathBuf,
    targets: Vec<String>,
    used: Arc<Mutex<HashSet<String>>>,
}

impl AdapterUse {
    /// An error naming the adapted weights the model never loaded (the adapter was made for
    /// another architecture).
    pub fn check(&self) -> Result<(), ModelError> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let mut missing: Vec<&String> =
            self.targets.iter().filter(|t| !used.contains(*t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        let shown: Vec<&str> = missing.iter().take(5).map(|s| s.as_str()).collect();
        Err(ModelError::Load(format!(
            "adapter {}: {} adapted weights are not in the model: {}{}; the adapter was made for \
             a different model",
            self.dir.display(),
            missing.len(),
            shown.join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        )))
    }
}

struct Merged {
    base: Checkpoint,
    adapter: Adapter,
    used: Arc<Mutex<HashSet<String>>>,
}

impl Merged {
    fn merged(&self, name: &str, base: Tensor, dtype: DType) -> candle_core::Result<Tensor> {
        let key = canonical(name);
        let a = &self.adapter;
        let mut w = base;
        if let Some(r) = a.non_lora.get(&key) {
            if r.dims() != w.dims() {
                candle_core::bail!(
                    "{NON_LORA} of adapter {}: `{key}` is {:?} there but {:?} in the model",
                    a.dir.display(),
                    r.dims(),
                    w.dims()
                );
            }
            w = r.to_device(w.device())?;
        }
        if let Some(l) = a.lora.get(&key) {
            let (out, _) = l.b.dims2()?;
            let (_, inp) = l.a.dims2()?;
            if w.dims() != [out, inp] {
                candle_core::bail!(
                    "adapter {}: `{key}` is [{out}, {inp}] in the adapter (lora_B {:?} x lora_A {:?}) \
                     but {:?} in the model; the adapter was made for a different base model{}",
                    a.dir.display(),
                    l.b.dims(),
                    l.a.dims(),
                    w.dims(),
                    a.base_model
                        .as_deref()
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default()
                );
            }
            let delta = (l.b.matmul(&l.a)? * a.scale)?.to_device(w.device())?;
            w = (w.to_dtype(DType::F32)? + delta)?;
            self.used
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
        }
        w.to_dtype(dtype)
    }
}

impl SimpleBackend for Merged {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        // The base in f32 so that the merge is exact before the cast.
        let t = self.base.get(s, name, h, DType::F32, dev)?;
        self.merged(name, t, dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.base.get_unchecked(name, DType::F32, dev)?;
        self.merged(name, t, dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.base.contains_tensor(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_meet_across_layouts() {
        assert_eq!(
            canonical("base_model.model.model.language_model.layers.0.self_attn.q_proj.weight"),
            "model.language_model.layers.0.self_attn.q_proj.weight"
        );
        assert_eq!(
            canonical("language_model.model.layers.0.self_attn.q_proj.weight"),
            "model.language_model.layers.0.self_attn.q_proj.weight"
        );
        assert_eq!(canonical("language_model.lm_head.weight"), "lm_head.weight");
        assert_eq!(
            canonical("thinker.model.layers.1.mlp.down_proj.weight"),
            "model.layers.1.mlp.down_proj.weight"
        );
    }
}
