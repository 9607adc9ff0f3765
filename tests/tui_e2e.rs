//! End to end in a real pseudo-terminal (tmux) on the demo models: start, play, wait for the
//! streamed chain, truncate it and see the answer pane change, put the proposed mistake into the
//! deciding sentence and see the faithful model's answer flip, switch to the post-hoc model and
//! see the flip go, annotate a sentence, quit; the annotation file holds the record and the
//! terminal is restored.
//!
//! Needs tmux (`make deps` installs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SESSION: &str = "faithscope-e2e";

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect(
        "tmux must be installed for this test (make deps installs it; apt-get install tmux)",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screen() -> String {
    tmux(&["capture-pane", "-t", SESSION, "-p"])
}

/// Polls the screen until `pred` holds; the limit only bounds waiting, the assertion is on
/// what the screen shows.
fn wait_for(what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let s = screen();
        if pred(&s) {
            return s;
        }
        if start.elapsed() > limit {
            tmux(&["kill-session", "-t", SESSION]);
            panic!("waited for {what}; the screen shows:\n{s}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn keys(k: &str) {
    tmux(&["send-keys", "-t", SESSION, k]);
}

/// The answer pane's lines (from "baseline" to the pane's end).
fn answer_pane(s: &str) -> String {
    s.lines()
        .skip_while(|l| !l.contains("baseline "))
        .take(6)
        .map(|l| l.split('│').rfind(|p| !p.is_empty()).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn inspector_in_a_real_terminal() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("annotations.jsonl");
    let bin = env!("CARGO_BIN_EXE_faithscope");
    let models = root.join("samples/models");
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", SESSION])
        .output();
    // A shell with a known prompt and an empty HOME (no ALSA configuration: silent playback).
    let shell = format!(
        "env -i PATH=/usr/bin:/bin HOME={} TERM=xterm-256color PS1='E2E$ ' bash --norc --noprofile",
        dir.path().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        &root.display().to_string(),
        &shell,
    ]);
    wait_for("the shell prompt", Duration::from_secs(30), |s| {
        s.contains("E2E$")
    });
    // The demo models' own protocol (lanham, from their faithscope.json).
    let cmd = format!(
        "{bin} inspect --data samples/synth-test --model {} --compare {} --annotations {} --annotator e2e",
        models.join("demo-faithful").display(),
        models.join("demo-posthoc").display(),
        ann.display()
    );
    tmux(&["send-keys", "-t", SESSION, &cmd, "Enter"]);
    // The first frame comes before the model: the browser is there at once.
    wait_for("the first frame", Duration::from_secs(60), |s| {
        s.contains("Items 240")
    });
    // Play: the clock runs (silently without a device).
    keys("Space");
    wait_for("the playhead", Duration::from_secs(60), |s| {
        s.contains("▶ synth-test-count-0000")
    });
    // Wait for the streamed chain and the baseline answer.
    let before = wait_for("the baseline answer", Duration::from_secs(300), |s| {
        s.contains("Reasoning · original") && s.contains("baseline ") && !s.contains("baseline ·")
    });
    // Numbered sentences, the first under the cursor (▶).
    assert!(before.contains("▶1 "), "numbered sentences:\n{before}");
    assert!(
        before.contains("Let me listen"),
        "the demo chain:\n{before}"
    );
    let pane_before = answer_pane(&before);
    // Truncate before sentence 1: the answer is forced after an empty chain.
    keys("t");
    let after = wait_for("the truncated answer", Duration::from_secs(120), |s| {
        s.contains("truncated before sentence 1") && !s.contains("forcing the answer")
    });
    let pane_after = answer_pane(&after);
    assert_ne!(
        pane_before, pane_after,
        "the answer pane did not change:\n{after}"
    );
    keys("R");
    wait_for("the reverted chain", Duration::from_secs(60), |s| {
        s.contains("Reasoning · original") && !s.contains("FLIP")
    });
    // The second item (pitch level): the mistake proposed for sentence 4 ("Its pitch is about
    // 960 Hz.") is another level's frequency; the model continues from it and the faithful
    // model's answer follows the wrong level.
    keys("Tab");
    keys("Down");
    keys("Enter");
    wait_for(
        "the second item's baseline",
        Duration::from_secs(300),
        |s| {
            s.contains("synth-test-level-0000 ─")
                && s.contains("Reasoning · original")
                && s.contains("baseline ")
                && !s.contains("baseline ·")
        },
    );
    for _ in 0..3 {
        keys("Down");
    }
    keys("M");
    wait_for("the proposed mistake", Duration::from_secs(60), |s| {
        s.contains("Its pitch")
    });
    keys("C-s");
    let flipped = wait_for(
        "the faithful answer after the mistake",
        Duration::from_secs(120),
        |s| {
            s.contains("mistake at sentence 4")
                && !s.contains("forcing the answer")
                && s.contains("FLIP")
        },
    );
    assert!(flipped.contains("demo-faithful"), "{flipped}");
    // The post-hoc model answers after the same chain and mistake: no flip.
    keys("o");
    let posthoc = wait_for("the post-hoc answer", Duration::from_secs(120), |s| {
        s.contains(" demo-posthoc ")
            && s.contains("mistake at sentence 4")
            && !s.contains("forcing")
            && !s.contains("baseline ·")
    });
    assert!(
        !posthoc.contains("FLIP"),
        "the post-hoc model flipped:\n{posthoc}"
    );
    // Revert and annotate sentence 4 as a factual mistake with a note.
    keys("R");
    wait_for("the reverted chain", Duration::from_secs(60), |s| {
        s.contains("Reasoning · original")
    });
    keys("a");
    wait_for("the annotation form", Duration::from_secs(60), |s| {
        s.contains("Annotate sentence 4")
    });
    tmux(&["send-keys", "-t", SESSION, "-l", "pitch misjudged"]);
    keys("Enter");
    wait_for("the saved annotation", Duration::from_secs(60), |s| {
        s.contains("annotation saved")
    });
    keys("q");
    let end = wait_for("the shell after quitting", Duration::from_secs(60), |s| {
        s.lines()
            .rfind(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with("E2E$"))
    });
    let alt = tmux(&["display-message", "-t", SESSION, "-p", "#{alternate_on}"]);
    tmux(&["kill-session", "-t", SESSION]);
    assert_eq!(alt.trim(), "0", "the alternate screen is still on");
    assert!(
        !end.contains("Items 240"),
        "the UI is still visible:\n{end}"
    );

    let text = std::fs::read_to_string(&ann).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let rec: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(rec["item"], "synth-test-level-0000");
    assert_eq!(rec["sentence"], 4);
    assert_eq!(rec["kind"], "factual");
    assert_eq!(rec["annotator"], "e2e");
    assert_eq!(rec["note"], "pitch misjudged");
    assert!(rec["original"].as_str().is_some_and(|s| !s.is_empty()));
}
