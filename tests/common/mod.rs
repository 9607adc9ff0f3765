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
