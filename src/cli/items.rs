//! `faithscope items PATH`: lists the items a dataset yields (id, clip, question, choices with
//! the gold marked, track / hop / category), then the counts and the problems met. The listing
//! says how many audio files are missing; `--check-audio` decodes every clip and lists the
//! missing, unreadable, empty and truncated ones per item.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use serde::Serialize;

use crate::data::clips::{check_clips, AudioCheck, AudioSummary};
use crate::data::{self, Counts, Dataset, Format, Item, LoadOptions, Problem, Severity};

/// Arguments of `faithscope items`.
#[derive(Debug, Args)]
pub struct ItemsArgs {
    /// Dataset file or folder (SAKURA root / data / track folder, MMAR, MMAU, AIR-Bench,
    /// standardized or faithscope items file).
    pub path: PathBuf,
    /// Source format; `auto` detects it from the path.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// Print one JSON document {format, root, items, counts, problems} (see docs/ITEMS.md).
    #[arg(long)]
    pub json: bool,
    /// Stop at the first problem instead of skipping the item.
    #[arg(long)]
    pub strict: bool,
    /// Accept audio paths that leave the dataset folder.
    #[arg(long)]
    pub allow_outside: bool,
    /// Decode every clip and list, per item, the missing, unreadable, empty and truncated ones
    /// (without it only the number of missing files is given).
    #[arg(long)]
    pub check_audio: bool,
}

/// Runs `faithscope items`.
pub fn run(args: ItemsArgs) -> anyhow::Result<()> {
    let opts = LoadOptions {
        format: args.format,
        strict: args.strict,
        allow_outside: args.allow_outside,
    };
    // the loader's messages already name the path
    let mut ds = data::load(&args.path, &opts)?;
    let audio = check_clips(&ds.items, args.check_audio);
    if args.check_audio {
        ds.problems.extend(audio.problems.iter().cloned());
    }
    let text = if args.json {
        json_report(&ds, &audio.summary)?
    } else {
        text_report(&ds, &audio)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing to stdout")
        }
        _ => {}
    }
    if ds.items.is_empty() {
        anyhow::bail!(
            "no items loaded from {}; see the problems listed",
            args.path.display()
        );
    }
    let bad = audio
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if args.check_audio && args.strict && bad > 0 {
        anyhow::bail!(
            "{bad} item(s) of {} have missing or unreadable audio (--strict); see the problems listed",
            args.path.display()
        );
    }
    Ok(())
}

/// The `--json` document, fields in this order.
#[derive(Serialize)]
struct Report<'a> {
    format: Format,
    root: &'a Path,
    items: &'a [Item],
    counts: Counts,
    audio: &'a AudioSummary,
    problems: &'a [Problem],
}

/// The JSON document: `{format, root, items, counts, audio, problems}`.
pub fn json_report(ds: &Dataset, audio: &AudioSummary) -> anyhow::Result<String> {
    let doc = Report {
        format: ds.format,
        root: &ds.root,
        items: &ds.items,
        counts: ds.counts(),
        audio,
        problems: &ds.problems,
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

/// The human-readable listing; `audio` is the clip check (its problems are listed only when
/// the clips were decoded, and are then already among `ds.problems`).
pub fn text_report(ds: &Dataset, audio: &AudioCheck) -> String {
    let mut s = String::new();
    let counts = ds.counts();
    s.push_str(&format!(
        "{} items from {} ({})\n\n",
        counts.total,
        ds.root.display(),
        ds.format
    ));
    for item in &ds.items {
        s.push_str(&item_block(item));
        s.push('\n');
    }
    s.push_str("Counts\n");
    s.push_str(&format!("  total        {}\n", counts.total));
    if counts.without_gold > 0 {
        s.push_str(&format!("  without gold {}\n", counts.without_gold));
    }
    for (name, map) in [
        ("track", &counts.by_track),
        ("hop", &counts.by_hop),
        ("category", &counts.by_category),
    ] {
        if !map.is_empty() {
            let parts: Vec<String> = map.iter().map(|(k, n)| format!("{k} {n}")).collect();
            s.push_str(&format!("  by {name:<9} {}\n", parts.join(", ")));
        }
    }
    s.push_str(&audio_line(audio));
    if ds.problems.is_empty() && audio.summary.missing > 0 {
        s.push_str("\nNo problems in the metadata; the audio files are missing (see above).\n");
    } else if ds.problems.is_empty() {
        s.push_str("\nNo problems.\n");
    } else {
        s.push_str(&format!(
            "\nProblems ({} errors, {} notes)\n",
            counts.errors, counts.notes
        ));
        for p in &ds.problems {
            let tag = if p.severity == Severity::Error {
                "error: "
            } else {
                ""
            };
            s.push_str(&format!("  {tag}{p}\n"));
        }
    }
    s
}

/// The `audio` line of the counts: what the clip check found, and how to check more.
fn audio_line(audio: &AudioCheck) -> String {
    let a = &audio.summary;
    if !a.decoded {
        if a.missing == 0 {
            return format!(
                "  audio        {} files present (--check-audio decodes them)\n",
                a.files
            );
        }
        let first = audio
            .problems
            .first()
            .map(|p| format!(", e.g. {}", p.location))
            .unwrap_or_default();
        return format!(
            "  audio        {} of {} files missing{first}; --check-audio lists them per item and decodes the others\n",
            a.missing, a.files
        );
    }
    let parts: Vec<String> = [
        ("missing", a.missing),
        ("unreadable", a.unreadable),
        ("empty", a.empty),
        ("truncated", a.truncated),
        ("too long to decode", a.too_long),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| format!("{n} {k}"))
    .collect();
    let tail = if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(", "))
    };
    format!(
        "  audio        {} files decoded: {} ok{tail}\n",
        a.files, a.ok
    )
}

/// One item: id and groups, clip, question, choices with the gold marked.
fn item_block(item: &Item) -> String {
    let m = &item.meta;
    let groups: Vec<String> = [
        ("track", &m.track),
        ("hop", &m.hop),
        ("category", &m.category),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
    .collect();
    let mut s = item.id.clone();
    if !groups.is_empty() {
        s.push_str(&format!("  [{}]", groups.join(" · ")));
    }
    s.push('\n');
    s.push_str(&format!("  clip  {}\n", item.audio.display()));
    s.push_str(&format!("  Q     {}\n", item.question.replace('\n', " ")));
    for (i, c) in item.choices.iter().enumerate() {
        let gold = item.gold == Some(i);
        let mark = if gold { "*" } else { " " };
        let tail = if gold { "   (gold)" } else { "" };
        s.push_str(&format!(
            "      {mark} ({}) {}{tail}\n",
            Item::letter(i),
            c.replace('\n', " ")
        ));
    }
    if item.gold.is_none() {
        s.push_str("        (gold unknown)\n");
    }
    s
}
