//! Received clips as files: each clip's bytes are written once to a per-process folder under a
//! name made from a hash of the bytes, and the same file is handed out again for the same bytes.
//! The model's prefix and clip caches key clips by file identity, so repeated prefixes across
//! requests (a sweep over one item) hit them as they do in process.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;

use super::error::ApiError;
use crate::audio::{decode_file, AudioError, DecodeOptions};
use crate::model::openai::InputAudio;

/// Containers the decoder reads (the `format` field of `input_audio`).
pub const FORMATS: &[&str] = &["wav", "flac", "mp3", "ogg"];

/// How many clip files are kept; the oldest is deleted past it (bounds the folder's size).
pub const KEEP_FILES: usize = 64;

/// The per-process folder of received clips.
pub struct ClipStore {
    dir: PathBuf,
    max_seconds: f64,
    files: Mutex<Files>,
}

#[derive(Default)]
struct Files {
    /// Checked files by name.
    known: HashMap<String, PathBuf>,
    /// Names, oldest first.
    order: VecDeque<String>,
}

impl ClipStore {
    /// A fresh folder `dir` (emptied if it exists); clips longer than `max_seconds` are refused.
    pub fn create(dir: PathBuf, max_seconds: f64) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            max_seconds,
            files: Mutex::new(Files::default()),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding this clip: decodes the base64, reuses the file of identical bytes, or
    /// writes and checks a new one (it must decode, and be no longer than the limit). `at`
    /// names the message for errors.
    pub fn file_for(&self, audio: &InputAudio, at: &str) -> Result<PathBuf, ApiError> {
        let format = audio.format.to_ascii_lowercase();
        if !FORMATS.contains(&format.as_str()) {
            return Err(ApiError::bad_request(format!(
                "{at}.input_audio.format \"{}\" is not supported; use one of {}",
                audio.format,
                FORMATS.join(", ")
            )));
        }
        // a data URL is accepted too ("data:audio/wav;base64,...")
        let data = match audio.data.split_once(";base64,") {
            Some((head, rest)) if head.starts_with("data:") => rest,
            _ => audio.data.as_str(),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| {
                ApiError::bad_request(format!("{at}.input_audio.data is not valid base64: {e}"))
            })?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        let name = format!("{:016x}-{}.{format}", h.finish(), bytes.len());
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = files.known.get(&name) {
            // the same name for other bytes would be a hash collision: then it is rewritten
            if std::fs::read(path).is_ok_and(|b| b == bytes) {
                return Ok(path.clone());
            }
        }
        let path = self.dir.join(&name);
        std::fs::write(&path, &bytes).map_err(|e| {
            ApiError::internal(format!(
                "cannot write the received clip to {}: {e}",
                path.display()
            ))
        })?;
        if let Err(e) = self.check(&path) {
            let _ = std::fs::remove_file(&path);
            files.known.remove(&name);
            return Err(ApiError::bad_request(format!("{at}.input_audio: {e}")));
        }
        if files.known.insert(name.clone(), path.clone()).is_none() {
            files.order.push_back(name);
        }
        while files.order.len() > KEEP_FILES {
            if let Some(old) = files.order.pop_front() {
                if let Some(p) = files.known.remove(&old) {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        Ok(path)
    }

    /// Decodes the clip once to check it; the reason says what is wrong, without the path.
    fn check(&self, path: &Path) -> Result<(), String> {
        let opts = DecodeOptions {
            max_seconds: None,
            hard_limit_seconds: self.max_seconds,
            quiet: true,
        };
        match decode_file(path, &opts) {
            Ok(_) => Ok(()),
            Err(AudioError::TooLong { seconds, limit, .. }) => Err(format!(
                "the clip is {seconds:.1} s long, over this server's limit of {limit:.0} s (--max-audio-seconds)"
            )),
            Err(e) => Err(format!("the clip cannot be decoded: {}", e.reason())),
        }
    }

    /// Deletes the clip folders of servers that are no longer running (`PREFIX<pid>` beside
    /// `dir`), left behind when a server was killed before it could clean up.
    pub fn sweep_stale(parent: &Path, prefix: &str) {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if !process_alive(pid) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Deletes the folder (at shutdown).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a process of this id exists (on other systems than Unix: assumed so).
fn process_alive(pid: i32) -> bool {
    #[cfg(unix)]
    {
        // signal 0 checks existence; EPERM means it exists under another user
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}
