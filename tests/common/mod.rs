//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/data` beside the checkout (or `FAITHSCOPE_SHARED_DATA`), which holds the real
/// benchmark files. CI always has it, so there a missing folder fails the test; a user's clone
/// may not, and then the test says so and returns.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("FAITHSCOPE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("..").join("shared").join("data"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: CI must have the shared benchmark data beside the checkout",
            dir.display()
        );
    }
    eprintln!(
        "NOTE: {} not found; this test needs the shared benchmark data and did not run",
        dir.display()
    );
    None
}

/// The numbers of a JSON array (panics on anything else: a test expectation).
pub fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|p| p.as_f64().unwrap_or_else(|| panic!("not a number: {p}")))
        .collect()
}

/// Lines of a run file as JSON, without the wall times (the only fields that may differ
/// between two runs of the same work).
pub fn run_lines(dir: &std::path::Path, file: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: {e}: {l}", dir.join(file).display()));
            let o = v.as_object_mut().unwrap();
            for k in ["timings_ms", "generate_ms", "unix_time"] {
                o.remove(k);
            }
            v
        })
        .collect()
}

/// Equal JSON, numbers within 1e-5 (recomputed prefixes may differ in the last bits).
pub fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-5,
            _ => x == y,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// `faithscope serve` of a model on loopback, stopped when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub url: String,
}

impl Served {
    /// Starts the real binary on `port` (0: any free port) and waits for its listening line.
    pub fn start(model: &std::path::Path, port: u16, extra: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faithscope"))
            .args(["serve", "--model", &model.display().to_string()])
            .args(["--port", &port.to_string()])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start faithscope serve");
        let out = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(out).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some((_, url)) = l.split_once(" on ") {
                        if l.starts_with("faithscope serve:") {
                            break url.trim().to_string();
                        }
                    }
                }
                _ => {
                    let status = child.wait();
                    panic!("faithscope serve ended before listening: {status:?}");
                }
            }
        };
        // keep draining stdout so the server never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        Served { child, url }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("a port in the URL")
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}
