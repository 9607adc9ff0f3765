//! Quantised weights kept between runs: quantising a 7B takes minutes, so the blocks are written
//! once to a GGUF file in a cache folder and read back on later loads. The file's name and its
//! `faithscope.key` entry hold a key made of the checkpoint's (and adapter's) files, their sizes
//! and modification times, and the quantisation, so a changed checkpoint never meets an old
//! cache; an unreadable or mismatched file is rebuilt with a message.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::QTensor;
use candle_core::Device;

use super::qwen2_audio::Quant;

/// Bumped when the layout of the cached blocks changes.
const FORMAT: u32 = 1;
const KEY_FIELD: &str = "faithscope.key";

/// The default cache folder: `FAITHSCOPE_QUANT_CACHE`, else `$XDG_CACHE_HOME/faithscope/quant`,
/// else `~/.cache/faithscope/quant`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("FAITHSCOPE_QUANT_CACHE") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("faithscope").join("quant"))
}

/// The key of a set of files and a quantisation.
fn key_of(files: &[PathBuf], quant: Quant) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    FORMAT.hash(&mut h);
    quant.name().hash(&mut h);
    for f in files {
        let abs = f.canonicalize().unwrap_or_else(|_| f.clone());
        abs.hash(&mut h);
        if let Ok(m) = std::fs::metadata(f) {
            m.len().hash(&mut h);
            if let Ok(t) = m.modified() {
                t.hash(&mut h);
            }
        }
    }
    format!("{:016x}", h.finish())
}

struct Hit {
    content: Content,
    file: Mutex<BufReader<File>>,
}

/// The cache of one model load.
pub struct QuantCache {
    path: PathBuf,
    key: String,
    hit: Option<Hit>,
    fresh: Mutex<Vec<(String, Arc<QTensor>)>>,
    read: Mutex<usize>,
}

impl QuantCache {
    /// The cache in `dir` of a model named `name` made of `files` (weights, config, adapter),
    /// quantised as `quant`: read back when a valid file is there.
    pub fn open(dir: &Path, name: &str, files: &[PathBuf], quant: Quant) -> QuantCache {
        let key = key_of(files, quant);
        let path = dir.join(format!("{name}-{}-{key}.gguf", quant.name()));
        let hit = if path.is_file() {
            match read(&path, &key) {
                Ok(h) => Some(h),
                Err(why) => {
                    crate::warn::warn(&format!(
                        "quantised-weight cache {} is unusable ({why}); rebuilding it",
                        path.display()
                    ));
                    None
                }
            }
        } else {
            None
        };
        QuantCache {
            path,
            key,
            hit,
            fresh: Mutex::new(Vec::new()),
            read: Mutex::new(0),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a valid file was found.
    pub fn is_hit(&self) -> bool {
        self.hit.is_some()
    }

    /// The cached blocks of `name`, if the file has them.
    pub fn get(&self, name: &str, device: &Device) -> Option<QTensor> {
        let hit = self.hit.as_ref()?;
        if !hit.content.tensor_infos.contains_key(name) {
            return None;
        }
        let mut f = hit.file.lock().unwrap_or_else(|p| p.into_inner());
        let t = hit.content.tensor(&mut *f, name, device).ok()?;
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Some(t)
    }

    /// Records blocks quantised in this load.
    pub fn put(&self, name: &str, t: Arc<QTensor>) {
        self.fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), t));
    }

    /// Tensors read from the file so far.
    pub fn read_count(&self) -> usize {
        *self.read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the file when this load quantised anything (atomically: a temporary file renamed
    /// into place). The blocks read from an existing file are written again with the new ones.
    pub fn finish(&self) -> Result<(), String> {
        let fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        if fresh.is_empty() {
            return Ok(());
        }
        let mut all: Vec<(String, Arc<QTensor>)> = fresh.clone();
        if let Some(h) = &self.hit {
            let have: std::collections::HashSet<&String> = all.iter().map(|(n, _)| n).collect();
            let old: Vec<String> = h
                .content
                .tensor_infos
                .keys()
                .filter(|n| !have.contains(n))
                .cloned()
                .collect();
            for n in old {
                if let Some(t) = self.get(&n, &Device::Cpu) {
                    all.push((n, Arc::new(t)));
                }
            }
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("gguf.partial");
        let write = || -> candle_core::Result<()> {
            let mut f = std::io::BufWriter::new(File::create(&tmp)?);
            let key = Value::String(self.key.clone());
            let tensors: Vec<(&str, &QTensor)> =
                all.iter().map(|(n, t)| (n.as_str(), t.as_ref())).collect();
            gguf_file::write(&mut f, &[(KEY_FIELD, &key)], &tensors)?;
            std::io::Write::flush(&mut f)?;
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))
    }
}

fn read(path: &Path, key: &str) -> Result<Hit, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut r = BufReader::new(f);
    let content = Content::read(&mut r).map_err(|e| format!("not a GGUF file: {e}"))?;
    match content.metadata.get(KEY_FIELD) {
        Some(Value::String(k)) if k == key => {}
        _ => return Err("it was made from other weights".into()),
    }
    // every tensor's data must lie inside the file (a cut file is caught here, not mid-load)
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    let end = content
        .tensor_infos
        .values()
        .map(|t| {
            let bytes = t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size();
            content.tensor_data_offset + t.offset + bytes as u64
        })
        .max()
        .unwrap_or(0);
    if end > len {
        return Err(format!("it is cut short ({len} of {end} bytes)"));
    }
    Ok(Hit {
        content,
        file: Mutex::new(r),
    })
}
