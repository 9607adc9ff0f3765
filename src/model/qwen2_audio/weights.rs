//! Memory-mapped safetensors of a model folder (single file or sharded with an index), behind a
//! `VarBuilder` whose errors name the tensor, the file(s) and both shapes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::model::config::list_dir;
use crate::model::ModelError;

/// The safetensors files of a checkpoint and which file holds each tensor.
pub struct Checkpoint {
    files: Vec<PathBuf>,
    maps: Vec<MmapedSafetensors>,
    routing: HashMap<String, usize>,
}

impl Checkpoint {
    /// Finds and memory-maps `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`, or else every `*.safetensors` in the folder.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let files = safetensors_files(dir)?;
        let mut maps = Vec::with_capacity(files.len());
        let mut routing = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            // SAFETY: the file is mapped read-only; like every safetensors loader we assume it
            // is not modified while the model is alive.
            let m = unsafe { MmapedSafetensors::new(f) }.map_err(|e| {
                ModelError::Load(format!("cannot read safetensors file {}: {e}", f.display()))
            })?;
            for (name, _) in m.tensors() {
                routing.insert(name, i);
            }
            maps.push(m);
        }
        Ok(Self {
            files,
            maps,
            routing,
        })
    }

    /// The files read, for messages.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn file_names(&self) -> String {
        self.files
            .iter()
            .map(|f| {
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.routing.keys()
    }

    /// Every tensor's name and shape.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.maps
            .iter()
            .flat_map(|m| m.tensors())
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect()
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.routing.contains_key(name)
    }

    fn load(&self, name: &str, dev: &Device) -> candle_core::Result<(Tensor, &Path)> {
        let Some(&i) = self.routing.get(name) else {
            return Err(candle_core::Error::Msg(format!(
                "tensor `{name}` is missing from the checkpoint (searched {} in {}); the folder \
                 does not hold a complete model of its config.json",
                self.file_names(),
                self.files
                    .first()
                    .and_then(|f| f.parent())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        };
        let t = self.maps[i].load(name, dev).map_err(|e| {
            candle_core::Error::Msg(format!(
                "cannot load tensor `{name}` from {}: {e}",
                self.files[i].display()
            ))
        })?;
        // The tensor is copied out: hand its pages of the mapped file back, so that a load
        // holds one tensor of the file at a time rather than all of it (a bf16 7B is 15 GB).
        if let Ok(view) = self.maps[i].get(name) {
            release_pages(view.data());
        }
        Ok((t, &self.files[i]))
    }

    /// A `VarBuilder` over these files producing `dtype` tensors on `device`.
    pub fn var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }
}

impl SimpleBackend for Checkpoint {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let (t, file) = self.load(name, dev)?;
        if t.shape() != &s {
            return Err(candle_core::Error::Msg(format!(
                "tensor `{name}` in {} has shape {:?} but the config expects {:?}; config.json \
                 and the weights do not belong together",
                file.display(),
                t.dims(),
                s.dims()
            )));
        }
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, dev)?.0.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}

/// Tells the kernel that the mapped file pages under `data` are not needed any more (they are
/// read again from the file if touched), so they leave the process's resident memory.
fn release_pages(data: &[u8]) {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let start = data.as_ptr() as usize;
        let begin = start & !(page - 1);
        let len = start + data.len() - begin;
        // SAFETY: the range lies within a read-only mapping of a file that stays mapped;
        // MADV_DONTNEED only drops pages, which are read again from the file on access.
        unsafe {
            libc::madvise(begin as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
    #[cfg(not(unix))]
    let _ = data;
}

/// The safetensors files of a model folder, in load order.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index)
            .map_err(|e| ModelError::Load(format!("cannot read {}: {e}", index.display())))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            ModelError::Load(format!(
                "{} is not valid JSON (line {}, column {}): {e}",
                index.display(),
                e.line(),
                e.column()
            ))
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                ModelError::Load(format!(
                    "{} has no \"weight_map\" object; re-download the index file",
                    index.display()
                ))
            })?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        files.sort();
        files.dedup();
        let mut out = Vec::new();
        for f in files {
            let p = dir.join(&f);
            if !p.is_file() {
                return Err(ModelError::Load(format!(
                    "shard {f} listed in {} is missing from {} (found: {})",
                    index.display(),
                    dir.display(),
                    list_dir(dir)
                )));
            }
            out.push(p);
        }
        if out.is_empty() {
            return Err(ModelError::Load(format!(
                "{} lists no shard files",
                index.display()
            )));
        }
        return Ok(out);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut any: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ModelError::Load(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    any.sort();
    if any.is_empty() {
        return Err(ModelError::Load(format!(
            "no model.safetensors, model.safetensors.index.json or *.safetensors in {} (found: {})",
            dir.display(),
            list_dir(dir)
        )));
    }
    Ok(any)
}
