//! While the inspector owns the terminal nothing may write to it but the renderer: file
//! descriptor 2 is pointed at a log file for the session (so that whatever a dependency prints
//! lands there, not over the frame) and put back on exit and before a panic message prints.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// The original stderr while it is redirected (-1 when it is not).
static SAVED: AtomicI32 = AtomicI32::new(-1);

/// Stderr redirected to a file until dropped (or [`restore`] is called).
pub struct StderrLog {
    path: PathBuf,
}

impl StderrLog {
    /// Points stderr at `path` (created, appended to).
    pub fn start(path: &Path) -> std::io::Result<StderrLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        // SAFETY: plain descriptor calls on descriptors this process owns; `file` outlives the
        // dup2, after which descriptor 2 holds its own reference to the open file.
        unsafe {
            // Keep the first original when already redirected.
            if SAVED.load(Ordering::Acquire) < 0 {
                let saved = libc::dup(2);
                if saved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                SAVED.store(saved, Ordering::Release);
            }
            if libc::dup2(file.as_raw_fd(), 2) < 0 {
                let e = std::io::Error::last_os_error();
                restore();
                return Err(e);
            }
        }
        Ok(StderrLog {
            path: path.to_path_buf(),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StderrLog {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the original stderr back; safe to call more than once and from a panic hook.
pub fn restore() {
    let saved = SAVED.swap(-1, Ordering::AcqRel);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor dup'ed in `start`, owned by this module.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

/// Where the inspector's stderr goes: a file per process in the temporary folder.
pub fn default_path() -> PathBuf {
    std::env::temp_dir().join(format!("faithscope-inspect-{}.log", std::process::id()))
}
