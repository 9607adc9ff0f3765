//! Finding the embedded samples (clips, the synthetic test split, the demo models) from wherever
//! `faithscope` is started: the checkout's `samples/` in the working directory, the `samples/`
//! of the repository the binary was built in (walking up from the binary), or an installed
//! `<prefix>/share/faithscope/samples` beside `<prefix>/bin/faithscope`.

use std::path::{Path, PathBuf};

/// Environment variable that names the samples folder, before any other place is looked at.
pub const SAMPLES_ENV: &str = "FAITHSCOPE_SAMPLES";

/// The embedded samples are not where they were looked for.
#[derive(Debug, thiserror::Error)]
#[error("the embedded samples (samples/ with models/ and synth-test/) were not found; looked in {looked}; pass {what}, run faithscope from its checkout, install the samples as <prefix>/share/faithscope/samples, or set {SAMPLES_ENV}")]
pub struct SamplesMissing {
    /// The folders looked at, comma-separated.
    pub looked: String,
    /// What to pass instead (e.g. `--data DATASET`).
    pub what: String,
}

/// The samples folder: `$FAITHSCOPE_SAMPLES`, else `samples` in the working directory, else
/// `samples` or `share/faithscope/samples` in the binary's folder or any folder above it. A
/// folder counts when it holds `models/`. The working directory's is returned as the relative
/// path `samples`.
pub fn samples_dir() -> Option<PathBuf> {
    first_samples(candidates())
}

/// The first candidate that is a samples folder (holds `models/`).
fn first_samples(candidates: Vec<PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|d| d.join("models").is_dir())
}

/// The folders [`samples_dir`] looks at, in order.
fn candidates() -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    candidates_from(
        std::env::var_os(SAMPLES_ENV).map(PathBuf::from),
        exe.as_deref(),
    )
}

/// The candidates for an explicit folder and a binary's path.
fn candidates_from(explicit: Option<PathBuf>, exe: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = explicit.into_iter().collect();
    out.push(PathBuf::from("samples"));
    for dir in exe
        .and_then(Path::parent)
        .into_iter()
        .flat_map(Path::ancestors)
    {
        out.push(dir.join("samples"));
        out.push(dir.join("share").join("faithscope").join("samples"));
    }
    out
}

/// A path inside the samples folder, written as the demo constants spell it
/// (`samples/models/demo-faithful`), when it exists.
pub fn sample_path(rel: &str) -> Option<PathBuf> {
    let rest = Path::new(rel)
        .strip_prefix("samples")
        .unwrap_or(Path::new(rel));
    let path = samples_dir()?.join(rest);
    path.exists().then_some(path)
}

/// A demo model folder (`samples/models/...`) as a `--model` value, when it holds a config.json.
pub fn demo_model(rel: &str) -> Option<String> {
    sample_path(rel)
        .filter(|p| p.join("config.json").is_file())
        .map(|p| p.display().to_string())
}

/// The default dataset: `default` inside the samples folder (e.g. `samples/synth-test`), else the
/// samples folder itself; an error naming where it looked and `what` to pass instead.
pub fn default_data(default: &str, what: &str) -> Result<PathBuf, SamplesMissing> {
    sample_path(default)
        .or_else(samples_dir)
        .ok_or_else(|| SamplesMissing {
            looked: candidates()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            what: what.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_beside_an_installed_binary_and_above_a_built_one() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("prefix/bin/faithscope");
        let c = candidates_from(Some(PathBuf::from("/x")), Some(&exe));
        assert_eq!(c[0], PathBuf::from("/x"));
        assert_eq!(c[1], PathBuf::from("samples"));
        assert_eq!(c[2], dir.path().join("prefix/bin/samples"));
        assert!(c.contains(&dir.path().join("prefix/share/faithscope/samples")));
        // a binary built in a checkout: target/debug/faithscope finds <checkout>/samples
        let built = dir.path().join("repo/target/debug/faithscope");
        assert!(candidates_from(None, Some(&built)).contains(&dir.path().join("repo/samples")));
        assert_eq!(candidates_from(None, None), [PathBuf::from("samples")]);

        // An installed layout is found; without it, nothing is.
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        let outside = |exe: &Path| {
            let mut c = candidates_from(None, Some(exe));
            c.retain(|p| p != Path::new("samples"));
            first_samples(c)
        };
        assert_eq!(outside(&exe), None);
        let share = dir.path().join("prefix/share/faithscope/samples");
        std::fs::create_dir_all(share.join("models/demo-faithful")).unwrap();
        assert_eq!(outside(&exe), Some(share));

        let msg = SamplesMissing {
            looked: "samples, /opt/share/faithscope/samples".into(),
            what: "--data DATASET".into(),
        }
        .to_string();
        assert!(
            msg.contains("looked in samples, /opt/share/faithscope/samples; pass --data DATASET")
                && msg.contains(SAMPLES_ENV),
            "{msg}"
        );
    }
}
