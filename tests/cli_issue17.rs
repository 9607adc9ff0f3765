//! The command line's rough edges of issue 17, run through the binary on real files: the clip
//! check of `items`, range checks, audio errors and progress lines of `run`, the protocol of
//! `generate`, the embedded samples found from outside the checkout, and the report's plots.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn faithscope(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running faithscope")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies a folder tree (files made writable), so that tests can damage the copy.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::write(&dest, std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

// ------------------------------------------------------------------ items --check-audio

#[test]
fn items_check_audio_reports_missing_unreadable_empty_and_truncated_clips_per_item() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let track = dir.path().join("data/Animal");
    copy_tree(&shared.join("sakura-mini/data/Animal"), &track);
    let audio = track.join("audio");
    let wav = |name: &str| audio.join(name);
    let cat = std::fs::read(wav("cat62.wav")).unwrap();
    // cow21: gone; crow9: not audio; cat62: its header only; dog: cut in half.
    std::fs::remove_file(wav("cow21.wav")).unwrap();
    std::fs::write(wav("crow9.wav"), b"this is not a wav file, only text").unwrap();
    std::fs::write(wav("cat62.wav"), &cat[..44]).unwrap();
    let dog = std::fs::read_dir(&audio)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("dog"))
        .unwrap();
    let bytes = std::fs::read(&dog).unwrap();
    std::fs::write(&dog, &bytes[..bytes.len() / 2]).unwrap();
    let dog_name = dog.file_stem().unwrap().to_str().unwrap().to_string();
    let root = dir.path().to_str().unwrap();

    // The default listing: a cheap existence check, one missing file of 8.
    let out = faithscope(&["items", root], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains("  audio        1 of 8 files missing, e.g. ")
            && listing.contains("cow21.wav; --check-audio"),
        "{listing}"
    );

    // --check-audio: every clip decoded, each bad one named per item (two items per clip).
    let out = faithscope(&["items", root, "--check-audio", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "",
        "the decoder's warnings are not repeated"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &doc["audio"];
    assert_eq!(a["decoded"], true);
    assert_eq!(
        [
            &a["files"],
            &a["ok"],
            &a["missing"],
            &a["unreadable"],
            &a["empty"],
            &a["truncated"]
        ]
        .map(|v| v.as_u64().unwrap()),
        [8, 4, 1, 1, 1, 1]
    );
    let problems = doc["problems"].as_array().unwrap();
    let about = |stem: &str| -> Vec<(String, String, String)> {
        problems
            .iter()
            .filter(|p| {
                p["item"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("Animal/{stem}.wav#"))
            })
            .map(|p| {
                assert_eq!(p["field"], "audio");
                assert!(p["location"].as_str().unwrap().ends_with(".wav"));
                (
                    p["item"].as_str().unwrap().to_string(),
                    p["severity"].as_str().unwrap().to_string(),
                    p["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    for (stem, severity, start) in [
        ("cow21", "error", "no such file"),
        ("crow9", "error", "unreadable: unsupported format"),
        ("cat62", "error", "empty: holds no audio"),
        (dog_name.as_str(), "note", "truncated: only "),
    ] {
        let found = about(stem);
        assert_eq!(found.len(), 2, "{stem}: one problem per item: {found:?}");
        for (_, sev, msg) in &found {
            assert_eq!(sev, severity, "{stem}: {msg}");
            assert!(msg.starts_with(start), "{stem}: {msg}");
            assert!(
                !msg.contains(".wav"),
                "the path is the location only: {msg}"
            );
        }
    }
    assert_eq!(problems.len(), 8);

    // The text form, and --strict makes the unusable clips fatal.
    let out = faithscope(&["items", root, "--check-audio", "--strict"], dir.path());
    assert!(!out.status.success());
    let listing = text(&out.stdout);
    assert!(
        listing.contains(
            "  audio        8 files decoded: 4 ok, 1 missing, 1 unreadable, 1 empty, 1 truncated"
        ),
        "{listing}"
    );
    assert!(
        text(&out.stderr).contains("6 item(s) of")
            && text(&out.stderr).contains("missing or unreadable audio"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn items_on_mmar_metadata_says_every_clip_is_missing() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let mmar = shared.join("mmar/MMAR-meta.jsonl");
    let out = faithscope(&["items", mmar.to_str().unwrap()], &common::repo());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains("  audio        1000 of 1000 files missing"),
        "{}",
        &listing[listing.len() - 400..]
    );
    assert!(!listing.contains("\nNo problems.\n"));
    let out = faithscope(
        &["items", mmar.to_str().unwrap(), "--check-audio", "--json"],
        &common::repo(),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["audio"]["missing"], 1000);
    assert_eq!(doc["counts"]["errors"], 1000);
}
