//! The clips behind a dataset's items: a cheap existence check, or a full decode of every clip,
//! with what is wrong reported per item as [`Problem`]s (field `audio`, located at the clip).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{Item, Problem, Severity};
use crate::audio::{decode_file, AudioError, DecodeOptions};

/// What was found about one audio file.
#[derive(Debug, Clone, PartialEq)]
pub enum ClipState {
    /// It exists (existence check) or decoded whole (full check).
    Ok,
    /// No file at the path.
    Missing,
    /// It cannot be opened or decoded: the reason, without the path.
    Unreadable(String),
    /// It decodes to no audio: the reason.
    Empty(String),
    /// It ends before the length its header promises: what was read and what was promised.
    Truncated(String),
    /// It is longer than the decoder's limit and was not decoded: the lengths.
    TooLong(String),
}

/// Counts of a clip check over the distinct audio files of a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AudioSummary {
    /// True when every file was decoded; false for the existence check only.
    pub decoded: bool,
    /// Distinct audio files the items name.
    pub files: usize,
    /// Files that exist (existence check) or decoded whole (full check).
    pub ok: usize,
    /// Files that are not there.
    pub missing: usize,
    /// Files that cannot be opened or decoded.
    pub unreadable: usize,
    /// Files that decode to no audio.
    pub empty: usize,
    /// Files that end before the length their header promises.
    pub truncated: usize,
    /// Files over the decoder's length limit, not decoded.
    pub too_long: usize,
}

/// The result of [`check_clips`]: counts over files, problems per item.
#[derive(Debug, Clone, Default)]
pub struct AudioCheck {
    /// Counts over the distinct files.
    pub summary: AudioSummary,
    /// One problem per item whose clip is not [`ClipState::Ok`], in item order.
    pub problems: Vec<Problem>,
}

/// Checks the clips of `items`: with `decode`, decodes every distinct file (in parallel, one
/// worker per core); without, only checks that each file exists.
pub fn check_clips(items: &[Item], decode: bool) -> AudioCheck {
    let mut states: BTreeMap<&Path, ClipState> = BTreeMap::new();
    for item in items {
        states.entry(item.audio.as_path()).or_insert(ClipState::Ok);
    }
    let paths: Vec<&Path> = states.keys().copied().collect();
    let checked = if decode {
        parallel_map(&paths, |p| decoded_state(p))
    } else {
        paths.iter().map(|p| existence_state(p)).collect()
    };
    let mut summary = AudioSummary {
        decoded: decode,
        files: paths.len(),
        ..AudioSummary::default()
    };
    for (path, state) in paths.iter().zip(checked) {
        let n = match &state {
            ClipState::Ok => &mut summary.ok,
            ClipState::Missing => &mut summary.missing,
            ClipState::Unreadable(_) => &mut summary.unreadable,
            ClipState::Empty(_) => &mut summary.empty,
            ClipState::Truncated(_) => &mut summary.truncated,
            ClipState::TooLong(_) => &mut summary.too_long,
        };
        *n += 1;
        states.insert(path, state);
    }
    let problems = items
        .iter()
        .filter_map(|item| problem(item, &states[item.audio.as_path()]))
        .collect();
    AudioCheck { summary, problems }
}

/// Missing or present, from the file system alone.
fn existence_state(path: &Path) -> ClipState {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => ClipState::Ok,
        Ok(_) => ClipState::Unreadable("not a file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClipState::Missing,
        Err(e) => ClipState::Unreadable(format!("cannot be opened: {e}")),
    }
}

/// The state of a file decoded whole with the default limits.
fn decoded_state(path: &Path) -> ClipState {
    let opts = DecodeOptions {
        quiet: true,
        ..DecodeOptions::default()
    };
    match decode_file(path, &opts) {
        Ok(clip) if clip.ends_early => ClipState::Truncated(format!(
            "only {:.2} s could be read; the file ends before the length its header promises",
            clip.seconds()
        )),
        Ok(_) => ClipState::Ok,
        Err(AudioError::Open { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            ClipState::Missing
        }
        Err(e @ AudioError::Empty { .. }) => ClipState::Empty(e.reason()),
        Err(e @ AudioError::TooLong { .. }) => ClipState::TooLong(format!(
            "{}: not decoded (models hear only their window)",
            e.reason()
        )),
        Err(e) => ClipState::Unreadable(e.reason()),
    }
}

/// The problem an item's clip state makes, if any: errors for clips a run cannot use, notes
/// for clips it uses in part.
fn problem(item: &Item, state: &ClipState) -> Option<Problem> {
    let (severity, message) = match state {
        ClipState::Ok => return None,
        ClipState::Missing => (
            Severity::Error,
            "no such file; put the dataset's clips in place or fix the path in its metadata"
                .to_string(),
        ),
        ClipState::Unreadable(why) => (
            Severity::Error,
            format!("unreadable: {why}; replace the file"),
        ),
        ClipState::Empty(why) => (Severity::Error, format!("empty: {why}; replace the file")),
        ClipState::Truncated(why) => (
            Severity::Note,
            format!("truncated: {why}; runs use what was read"),
        ),
        ClipState::TooLong(why) => (Severity::Note, format!("too long: {why}")),
    };
    Some(Problem {
        location: item.audio.display().to_string(),
        item: Some(item.id.clone()),
        field: Some("audio".into()),
        message,
        severity,
    })
}

/// `f` over `inputs` on one scoped thread per core, results in input order.
fn parallel_map<T: Sync, R: Send>(inputs: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(inputs.len().max(1));
    let chunk = inputs.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ItemMeta;

    fn item(id: &str, audio: &Path) -> Item {
        Item {
            id: id.into(),
            audio: audio.to_path_buf(),
            question: "q".into(),
            choices: vec!["a".into(), "b".into()],
            gold: Some(0),
            meta: ItemMeta::default(),
        }
    }

    #[test]
    fn shared_clips_are_checked_once_and_reported_per_item() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"not audio at all, just text").unwrap();
        let gone = dir.path().join("gone.wav");
        let items = [
            item("a", &junk),
            item("b", &junk),
            item("c", &gone),
            item("d", dir.path()),
        ];
        let cheap = check_clips(&items, false);
        assert_eq!(
            (cheap.summary.files, cheap.summary.ok, cheap.summary.missing),
            (3, 1, 1)
        );
        let full = check_clips(&items, true);
        assert_eq!(full.summary.unreadable, 2, "{:?}", full.problems);
        assert_eq!(full.summary.missing, 1);
        let ids: Vec<_> = full.problems.iter().map(|p| p.item.as_deref()).collect();
        assert_eq!(ids, [Some("a"), Some("b"), Some("c"), Some("d")]);
        assert!(full.problems[0].message.starts_with("unreadable: "));
        assert!(!full.problems[0].message.contains("junk.wav"));
        assert_eq!(parallel_map(&[1, 2, 3, 4, 5], |x| x * 2), [2, 4, 6, 8, 10]);
    }
}
