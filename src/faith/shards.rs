//! Runs split over a cluster's job array: `--shard K/N` picks a deterministic 1/N of the items,
//! and several run directories are read as one run when their manifests agree.
//!
//! An item's shard is a hash of its id (FNV-1a through SplitMix64, the seeds' hash), so it does
//! not depend on the dataset's order or on `--limit`: the shards of a run with `--limit L` are a
//! partition of the same L items an unsharded run with `--limit L` takes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faith::intervene::derive_seed;

/// One slice of a run: items whose shard is `index`, out of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based index, below `count` (a Slurm array's `$SLURM_ARRAY_TASK_ID`).
    pub index: u32,
    /// How many shards the run is split into.
    pub count: u32,
}

/// The most shards a run may be split into.
pub const MAX_SHARDS: u32 = 100_000;

impl Shard {
    /// Parses `K/N` (0 <= K < N).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let usage = "give K/N with 0 <= K < N, e.g. --shard $SLURM_ARRAY_TASK_ID/16";
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s:?}: no '/'; {usage}"))?;
        let num = |t: &str, what: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("--shard {s:?}: {what} {t:?} is not a whole number; {usage}"))
        };
        let (index, count) = (num(k, "K")?, num(n, "N")?);
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "--shard {s:?}: N must be 1 to {MAX_SHARDS}; {usage}"
            ));
        }
        if index >= count {
            return Err(format!(
                "--shard {s:?}: K must be below N (shards are numbered 0 to {}); {usage}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard (of `count`) that item `id` belongs to.
    pub fn of(id: &str, count: u32) -> u32 {
        (derive_seed(0, &["shard", id]) % u64::from(count.max(1))) as u32
    }

    /// Whether item `id` is in this shard.
    pub fn holds(&self, id: &str) -> bool {
        Shard::of(id, self.count) == self.index
    }

    /// The manifest's shard, if it has one.
    pub fn of_manifest(m: &Value) -> Option<Shard> {
        serde_json::from_value(m.get("shard")?.clone()).ok()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Manifest fields that must be equal for run directories to be read as one run: they decide
/// which trials a run holds and what they mean. Device, dtype and versions may differ.
pub const AGREE: &[&str] = &[
    "model",
    "served_model",
    "adapter",
    "quant",
    "protocol",
    "interventions",
    "mistake_source",
    "paraphrase_source",
    "chains",
    "seed",
    "data",
    "data_format",
    "limit",
];

/// Why run directories cannot be read as one run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixError {
    /// A field of [`AGREE`] differs.
    #[error("{a} and {b} are not parts of one run: their manifests differ in {field} ({va} vs {vb}); give the run directories of one run only")]
    Field {
        /// The first directory.
        a: String,
        /// The directory that differs from it.
        b: String,
        /// The manifest field.
        field: String,
        /// Its value in `a`, shortened.
        va: String,
        /// Its value in `b`, shortened.
        vb: String,
    },
}

fn short(v: Option<&Value>) -> String {
    let s = v.map_or_else(|| "none".to_string(), |v| v.to_string());
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(77).collect::<String>())
    } else {
        s
    }
}

/// Checks that every manifest agrees with the first on [`AGREE`] and on the shard count (a
/// sharded and an unsharded run, or runs split differently, do not mix).
pub fn agree(manifests: &[(PathBuf, Value)]) -> Result<(), MixError> {
    let Some((first_dir, first)) = manifests.first() else {
        return Ok(());
    };
    let count = |m: &Value| Shard::of_manifest(m).map(|s| Value::from(s.count));
    for (dir, m) in &manifests[1..] {
        let differs = AGREE
            .iter()
            .map(|f| (f.to_string(), first.get(*f).cloned(), m.get(*f).cloned()))
            .chain(std::iter::once((
                "shard count".to_string(),
                count(first),
                count(m),
            )))
            .find(|(_, a, b)| {
                a.as_ref().unwrap_or(&Value::Null) != b.as_ref().unwrap_or(&Value::Null)
            });
        if let Some((field, va, vb)) = differs {
            return Err(MixError::Field {
                a: first_dir.display().to_string(),
                b: dir.display().to_string(),
                field,
                va: short(va.as_ref()),
                vb: short(vb.as_ref()),
            });
        }
    }
    Ok(())
}

/// The shards of an N-way split that none of the manifests is (empty when unsharded).
pub fn missing_shards(manifests: &[(PathBuf, Value)]) -> Vec<u32> {
    let shards: Vec<Shard> = manifests
        .iter()
        .filter_map(|(_, m)| Shard::of_manifest(m))
        .collect();
    let Some(count) = shards.first().map(|s| s.count) else {
        return Vec::new();
    };
    let have: HashSet<u32> = shards.iter().map(|s| s.index).collect();
    (0..count).filter(|k| !have.contains(k)).collect()
}

/// Drops paths given twice (the same file or directory under two names too); returns the kept
/// ones and a warning per dropped one.
pub fn distinct_paths(dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut seen: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut kept = Vec::new();
    let mut warnings = Vec::new();
    for d in dirs {
        let key = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        match seen.get(&key) {
            Some(first) => warnings.push(format!(
                "{} is given twice (also as {}): read once",
                d.display(),
                first.display()
            )),
            None => {
                seen.insert(key, d.clone());
                kept.push(d.clone());
            }
        }
    }
    (kept, warnings)
}

/// What one run directory holds, by item id.
#[derive(Debug, Clone, Default)]
pub struct RunIds {
    /// The directory.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Value,
    /// Items whose trials are all written (`done.jsonl`).
    pub done: HashSet<String>,
    /// Items recorded in `errors.jsonl`.
    pub failed: HashSet<String>,
    /// Items with a chain or a trial.
    pub touched: HashSet<String>,
    /// Lines that could not be read (file:line: why).
    pub warnings: Vec<String>,
}

/// The completeness of a set of run directories against the dataset's items.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Completeness {
    /// Items the run covers (the dataset after `--limit`).
    pub items: usize,
    /// Items done.
    pub done: Vec<String>,
    /// Items that failed and are not done (errors.jsonl; `--resume DIR --retry-errors`).
    pub errored: Vec<String>,
    /// Items begun and not finished.
    pub partial: Vec<String>,
    /// Items in no directory at all.
    pub missing: Vec<String>,
    /// Shards of the split that no directory is.
    pub missing_shards: Vec<u32>,
    /// Items found in more than one directory, with those directories.
    pub twice: Vec<(String, Vec<String>)>,
    /// Items in a directory that the dataset no longer has.
    pub unknown: Vec<String>,
    /// Items in a directory that are not in its shard (the dataset's ids changed).
    pub misplaced: Vec<String>,
}

impl Completeness {
    /// Whether every item is done and no shard is missing.
    pub fn complete(&self) -> bool {
        self.done.len() == self.items && self.missing_shards.is_empty()
    }
}

/// Classifies every item of the dataset (`ids`, in order) by what the run directories hold.
pub fn completeness(ids: &[String], runs: &[RunIds]) -> Completeness {
    let manifests: Vec<(PathBuf, Value)> = runs
        .iter()
        .map(|r| (r.dir.clone(), r.manifest.clone()))
        .collect();
    let mut c = Completeness {
        items: ids.len(),
        missing_shards: missing_shards(&manifests),
        ..Completeness::default()
    };
    let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut unknown = BTreeSet::new();
    let mut misplaced = BTreeSet::new();
    for r in runs {
        let shard = Shard::of_manifest(&r.manifest);
        for id in r.touched.iter().chain(&r.done).chain(&r.failed) {
            if !known.contains(id.as_str()) {
                unknown.insert(id.clone());
            } else if shard.is_some_and(|s| !s.holds(id)) {
                misplaced.insert(id.clone());
            }
        }
    }
    c.unknown = unknown.into_iter().collect();
    c.misplaced = misplaced.into_iter().collect();
    for id in ids {
        let holders: Vec<&RunIds> = runs
            .iter()
            .filter(|r| r.touched.contains(id) || r.done.contains(id) || r.failed.contains(id))
            .collect();
        if holders.len() > 1 {
            c.twice.push((
                id.clone(),
                holders
                    .iter()
                    .map(|r| r.dir.display().to_string())
                    .collect(),
            ));
        }
        let list = if holders.iter().any(|r| r.done.contains(id)) {
            &mut c.done
        } else if holders.iter().any(|r| r.failed.contains(id)) {
            &mut c.errored
        } else if holders.is_empty() {
            &mut c.missing
        } else {
            &mut c.partial
        };
        list.push(id.clone());
    }
    c
}

/// The completeness as text: a summary line, then the items of each kind (at most `show` ids
/// each) and the directories' warnings.
pub fn render(c: &Completeness, runs: &[RunIds], show: usize) -> String {
    let mut out = String::new();
    let shards = runs
        .iter()
        .filter_map(|r| Shard::of_manifest(&r.manifest))
        .collect::<Vec<_>>();
    let what = match shards.first() {
        Some(s) => format!(
            "{} of {} shards",
            s.count as usize - c.missing_shards.len(),
            s.count
        ),
        None => format!(
            "{} run director{}",
            runs.len(),
            if runs.len() == 1 { "y" } else { "ies" }
        ),
    };
    out.push_str(&format!(
        "{what}, {} items: {} done, {} errored, {} partial, {} missing{}\n",
        c.items,
        c.done.len(),
        c.errored.len(),
        c.partial.len(),
        c.missing.len(),
        if c.complete() { " (complete)" } else { "" }
    ));
    if !c.missing_shards.is_empty() {
        let count = shards.first().map_or(0, |s| s.count);
        let list: Vec<String> = c
            .missing_shards
            .iter()
            .map(|k| format!("{k}/{count}"))
            .collect();
        out.push_str(&format!("missing shards: {}\n", list.join(", ")));
    }
    let ids = |label: &str, v: &[String], hint: &str, out: &mut String| {
        if v.is_empty() {
            return;
        }
        let mut line = v.iter().take(show).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > show {
            line.push_str(&format!(", ... ({} more)", v.len() - show));
        }
        out.push_str(&format!("{label} ({}): {line}{hint}\n", v.len()));
    };
    ids(
        "errored",
        &c.errored,
        "  [faithscope run --resume DIR --retry-errors]",
        &mut out,
    );
    ids(
        "partial",
        &c.partial,
        "  [faithscope run --resume DIR]",
        &mut out,
    );
    ids("missing", &c.missing, "", &mut out);
    ids(
        "not in the dataset",
        &c.unknown,
        "  [the dataset changed since the run]",
        &mut out,
    );
    ids("in the wrong shard", &c.misplaced, "", &mut out);
    for (id, dirs) in c.twice.iter().take(show) {
        out.push_str(&format!(
            "item {id} is in {}: counted once\n",
            dirs.join(" and ")
        ));
    }
    if c.twice.len() > show {
        out.push_str(&format!(
            "... {} more items in two directories\n",
            c.twice.len() - show
        ));
    }
    for r in runs {
        for w in &r.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_refuse() {
        assert_eq!(
            Shard::parse("3/16"),
            Ok(Shard {
                index: 3,
                count: 16
            })
        );
        assert_eq!(Shard::parse("0/1"), Ok(Shard { index: 0, count: 1 }));
        for bad in ["16/16", "1/0", "3", "a/4", "-1/4", "1/200000"] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("--shard") && e.contains("K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_partition_the_ids_evenly_whatever_the_order() {
        let ids: Vec<String> = (0..4000).map(|i| format!("item-{i}")).collect();
        let mut sizes = [0usize; 8];
        for id in &ids {
            let k = Shard::of(id, 8);
            sizes[k as usize] += 1;
            let holders = (0..8)
                .filter(|&i| Shard { index: i, count: 8 }.holds(id))
                .count();
            assert_eq!(holders, 1, "{id}");
        }
        for s in sizes {
            assert!((400..600).contains(&s), "{sizes:?}");
        }
        // known values (FNV-1a + SplitMix64 computed apart, in Python): the assignment must
        // never change between versions, or the shards of a resumed array would not fit
        assert_eq!(Shard::of("item-0", 16), 11);
        assert_eq!(Shard::of("item-1", 16), 15);
        assert_eq!(Shard::of("sakura-animal-0001", 16), 4);
        assert_eq!(Shard::of("", 1), 0);
    }

    fn m(v: Value) -> (PathBuf, Value) {
        (PathBuf::from(format!("run-{}", v["seed"])), v)
    }

    #[test]
    fn manifests_that_differ_are_named() {
        let a = serde_json::json!({"model": "x", "seed": 1, "shard": {"index": 0, "count": 2}});
        let mut b = a.clone();
        b["shard"]["index"] = 1.into();
        assert_eq!(agree(&[m(a.clone()), m(b.clone())]), Ok(()));
        b["model"] = "y".into();
        let e = agree(&[m(a.clone()), m(b)]).unwrap_err().to_string();
        assert!(e.contains("differ in model (\"x\" vs \"y\")"), "{e}");
        let mut c = a.clone();
        c["shard"]["count"] = 4.into();
        let e = agree(&[m(a.clone()), m(c)]).unwrap_err().to_string();
        assert!(e.contains("shard count (2 vs 4)"), "{e}");
        let mut d = a.clone();
        d.as_object_mut().unwrap().remove("shard");
        let e = agree(&[m(a.clone()), m(d)]).unwrap_err().to_string();
        assert!(e.contains("shard count (2 vs none)"), "{e}");
        assert_eq!(missing_shards(&[m(a)]), vec![1]);
    }

    #[test]
    fn items_are_classified() {
        let ids: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let r1 = RunIds {
            dir: "r1".into(),
            done: set(&["a"]),
            touched: set(&["a", "b", "z"]),
            failed: set(&["c"]),
            ..RunIds::default()
        };
        let r2 = RunIds {
            dir: "r2".into(),
            done: set(&["b"]),
            touched: set(&["b"]),
            ..RunIds::default()
        };
        let c = completeness(&ids, &[r1, r2]);
        assert_eq!(c.done, vec!["a", "b"]);
        assert_eq!(c.errored, vec!["c"]);
        assert_eq!(c.missing, vec!["d", "e"]);
        assert!(c.partial.is_empty());
        assert_eq!(c.unknown, vec!["z"]);
        assert_eq!(
            c.twice,
            vec![("b".to_string(), vec!["r1".to_string(), "r2".to_string()])]
        );
        assert!(!c.complete());
    }
}
