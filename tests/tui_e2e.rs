//! End to end in a real pseudo-terminal (tmux) on the demo models: start, play, wait for the
//! streamed chain, truncate it and see the answer pane change, put the proposed mistake into the
//! deciding sentence and see the faithful model's answer flip, switch to the post-hoc model and
//! see the flip go, annotate a sentence, quit; the annotation file holds the record and the
//! terminal is restored.
//!
//! A second story opens a real SAKURA clip (12 s) with the demo model (a 3-s window) at 80x24:
//! the truncation warning must not reach the terminal (the frame's first line is unchanged after
//! the clip loads and the model has cut it), the audio strip says how much the model hears, the
//! messages overlay holds the warning, and the session's stderr log has it.
//!
//! A third story is the 80x24 terminal: after a mistake flips the faithful model's answer, the
//! item id's end, the cursor sentence, both answers with FLIP and both answers' bars are on the
//! 24 rows.
//!
//! Needs tmux (`make deps` installs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

/// One tmux session; killed when dropped so that a failing test leaves nothing behind.
struct Tmux {
    session: &'static str,
}

impl Tmux {
    /// A detached session of `cols` x `rows` in `dir` running `shell`.
    fn start(session: &'static str, cols: u16, rows: u16, dir: &Path, shell: &str) -> Tmux {
        let t = Tmux { session };
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &format!("={session}")])
            .output();
        let (x, y) = (cols.to_string(), rows.to_string());
        let dir = dir.display().to_string();
        t.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            &x,
            "-y",
            &y,
            "-c",
            &dir,
            shell,
        ]);
        t.wait_for("the shell prompt", Duration::from_secs(30), |s| {
            s.contains("E2E$")
        });
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect(
            "tmux must be installed for this test (make deps installs it; apt-get install tmux)",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The session's pane, by exact name: tmux matches a plain `-t name` by prefix too, so
    /// `faithscope-e2e` would hit `faithscope-e2e-80` of a test running beside it.
    fn pane(&self) -> String {
        format!("={}:", self.session)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-t", &self.pane(), "-p"])
    }

    /// Polls the screen until `pred` holds; the limit only bounds waiting, the assertion is on
    /// what the screen shows.
    fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > limit {
                panic!("waited for {what}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn keys(&self, k: &str) {
        self.run(&["send-keys", "-t", &self.pane(), k]);
    }

    /// Types `text` literally.
    fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.pane(), "-l", text]);
    }

    /// Opens the second item of synth-test (pitch level), waits for its baseline, and puts the
    /// proposed mistake into sentence 4 (Ctrl-S asks the model to continue after it).
    fn mistake_on_the_pitch_item(&self) {
        self.keys("Tab");
        self.keys("Down");
        self.keys("Enter");
        self.wait_for(
            "the second item's baseline",
            Duration::from_secs(300),
            |s| {
                s.contains("synth-test-level-0000 ─")
                    && s.contains("Reasoning · original")
                    && s.contains("Its pitch")
                    && s.contains("baseline ")
                    && !s.contains("baseline ·")
            },
        );
        // Each step waits for its effect on the screen: keys sent while the inspector is still
        // settling on the item (a slow server under load) must not land on a chain that is about
        // to be replaced.
        for n in 2..=4 {
            self.keys("Down");
            let at = format!("▶{n} ");
            self.wait_for(
                &format!("the cursor on sentence {n}"),
                Duration::from_secs(60),
                |s| s.contains(&at),
            );
        }
        self.keys("M");
        self.wait_for("the proposed mistake", Duration::from_secs(60), |s| {
            s.contains("Mistake at sentence 4 (")
        });
        self.keys("C-s");
    }

    /// Quits the inspector with q and checks that the shell is back on the main screen.
    fn quit_to_shell(&self, ui_marker: &str) -> String {
        self.keys("q");
        let end = self.wait_for("the shell after quitting", Duration::from_secs(60), |s| {
            s.lines()
                .rfind(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("E2E$"))
        });
        let alt = self.run(&[
            "display-message",
            "-t",
            &self.pane(),
            "-p",
            "#{alternate_on}",
        ]);
        assert_eq!(alt.trim(), "0", "the alternate screen is still on");
        assert!(!end.contains(ui_marker), "the UI is still visible:\n{end}");
        end
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-session", "-t", &format!("={}", self.session)]);
    }
}

/// A shell with a known prompt, an empty HOME (no ALSA configuration: silent playback) and the
/// temporary folder (the inspector's stderr log) in `home`.
fn clean_shell(home: &Path) -> String {
    format!(
        "env -i PATH=/usr/bin:/bin HOME={h} TMPDIR={h} TERM=xterm-256color PS1='E2E$ ' bash --norc --noprofile",
        h = home.display()
    )
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
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/models");
    let (m, c) = (models.join("demo-faithful"), models.join("demo-posthoc"));
    // The demo models' own protocol (lanham, from their faithscope.json).
    the_whole_story(
        "faithscope-e2e",
        &m.display().to_string(),
        &c.display().to_string(),
        "",
    );
}

#[test]
fn the_whole_story_with_both_models_served_over_http() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/models");
    let m = common::Served::start(&models.join("demo-faithful"), 0, &[]);
    let c = common::Served::start(&models.join("demo-posthoc"), 0, &[]);
    // a URL names no protocol: the demo models' own is given
    the_whole_story(
        "faithscope-e2e-both-http",
        &m.url,
        &c.url,
        "--protocol lanham",
    );
}

/// Play, stream, truncate, a mistake that flips the faithful model, the post-hoc model without
/// the flip, an annotation, quit; `model` and `compare` are folders or servers' URLs.
fn the_whole_story(session: &'static str, model: &str, compare: &str, extra: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("annotations.jsonl");
    let bin = env!("CARGO_BIN_EXE_faithscope");
    let t = Tmux::start(session, 100, 30, root, &clean_shell(dir.path()));
    let cmd = format!(
        "{bin} inspect --data samples/synth-test --model {model} --compare {compare} {extra} --annotations {} --annotator e2e",
        ann.display()
    );
    t.text(&cmd);
    t.keys("Enter");
    // The first frame comes before the model: the browser is there at once.
    t.wait_for("the first frame", Duration::from_secs(60), |s| {
        s.contains("Items 240")
    });
    // Play: the clock runs (silently without a device).
    t.keys("Space");
    t.wait_for("the playhead", Duration::from_secs(60), |s| {
        s.contains("▶ synth-test-count-0000")
    });
    // Wait for the streamed chain and the baseline answer.
    let before = t.wait_for("the baseline answer", Duration::from_secs(300), |s| {
        s.contains("Reasoning · original") && s.contains("baseline ") && !s.contains("baseline ·")
    });
    assert!(
        before.contains("1 Let me listen") && before.contains(" 2 "),
        "numbered sentences:\n{before}"
    );
    assert!(
        before.contains("Let me listen"),
        "the demo chain:\n{before}"
    );
    let pane_before = answer_pane(&before);
    // Truncate before sentence 1: the answer is forced after an empty chain.
    t.keys("t");
    let after = t.wait_for("the truncated answer", Duration::from_secs(120), |s| {
        s.contains("truncated before sentence 1") && !s.contains("forcing the answer")
    });
    let pane_after = answer_pane(&after);
    assert_ne!(
        pane_before, pane_after,
        "the answer pane did not change:\n{after}"
    );
    t.keys("R");
    t.wait_for("the reverted chain", Duration::from_secs(60), |s| {
        s.contains("Reasoning · original") && !s.contains("FLIP")
    });
    // The second item (pitch level): the mistake proposed for sentence 4 ("Its pitch is about
    // 960 Hz.") is another level's frequency; the model continues from it and the faithful
    // model's answer follows the wrong level.
    t.mistake_on_the_pitch_item();
    let flipped = t.wait_for(
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
    t.keys("o");
    let posthoc = t.wait_for("the post-hoc answer", Duration::from_secs(120), |s| {
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
    t.keys("R");
    t.wait_for("the reverted chain", Duration::from_secs(60), |s| {
        s.contains("Reasoning · original")
    });
    t.keys("a");
    t.wait_for("the annotation form", Duration::from_secs(60), |s| {
        s.contains("Annotate sentence 4")
    });
    t.text("pitch misjudged");
    t.keys("Enter");
    t.wait_for("the saved annotation", Duration::from_secs(60), |s| {
        s.contains("annotation saved")
    });
    t.quit_to_shell("Items 240");

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

#[test]
fn a_long_real_clip_does_not_garble_the_screen() {
    let Some(shared) = common::shared_data() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_faithscope");
    let t = Tmux::start(
        "faithscope-e2e-long",
        80,
        24,
        root,
        &clean_shell(dir.path()),
    );
    let cmd = format!(
        "{bin} inspect --data {} --model {} --annotations {}",
        shared.join("sakura-mini").display(),
        root.join("samples/models/demo-faithful").display(),
        dir.path().join("a.jsonl").display()
    );
    t.text(&cmd);
    t.keys("Enter");
    // The clip of the first item (Animal/cat62.wav, 12 s) is decoded and shown.
    let first = t.wait_for("the clip", Duration::from_secs(60), |s| {
        s.lines().next().is_some_and(|l| l.contains("cat62.wav"))
    });
    let top = first.lines().next().unwrap().to_string();
    // The model loads, cuts the clip to its window (the warning) and answers.
    let done = t.wait_for("the baseline answer", Duration::from_secs(300), |s| {
        s.contains("model hears 0:03.0 of 0:12.0") && s.contains("baseline ")
    });
    assert_eq!(
        done.lines().next().unwrap(),
        top,
        "the first line changed:\n{done}"
    );
    assert!(
        !done.contains("warning: only"),
        "stderr reached the terminal:\n{done}"
    );
    // The messages overlay has the whole warning.
    t.keys("!");
    let msgs = t.wait_for("the messages", Duration::from_secs(30), |s| {
        s.contains("Messages (")
    });
    assert!(msgs.contains("only the first 3.0 s of 12.0 s"), "{msgs}");
    assert!(msgs.contains("stderr of this session"), "{msgs}");
    t.keys("Escape");
    t.wait_for("the overlay closed", Duration::from_secs(30), |s| {
        !s.contains("Messages (")
    });
    let end = t.quit_to_shell("Items 64");
    assert!(
        end.contains("note: what was written to stderr during the session is in"),
        "{end}"
    );
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("faithscope-inspect-"))
        })
        .expect("the session's stderr log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("warning: only the first 3.0 s of 12.0 s are used"),
        "{text}"
    );
}

#[test]
fn at_80x24_both_answers_and_the_flip_stay_on_screen() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/models/demo-faithful");
    flip_story_80x24("faithscope-e2e-80", &model.display().to_string());
}

#[test]
fn the_flip_story_with_the_model_served_over_http() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/models/demo-faithful");
    let served = common::Served::start(&model, 0, &[]);
    flip_story_80x24("faithscope-e2e-http", &served.url);
}

/// At 80x24, with `model` (a folder or a server's URL): a mistake flips the faithful model's
/// answer, and the item id's end, the cursor sentence, both answers with FLIP and both answers'
/// bars are on the 24 rows.
fn flip_story_80x24(session: &'static str, model: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_faithscope");
    let t = Tmux::start(session, 80, 24, root, &clean_shell(dir.path()));
    let cmd = format!(
        "{bin} inspect --data samples/synth-test --model {model} --protocol lanham --annotations {}",
        dir.path().join("a.jsonl").display()
    );
    t.text(&cmd);
    t.keys("Enter");
    t.wait_for("the first baseline", Duration::from_secs(300), |s| {
        s.contains("Reasoning · original") && s.contains("current ") && !s.contains("baseline ·")
    });
    if model.starts_with("http") {
        // where the model is served and what the server does, in the messages overlay
        t.keys("!");
        let m = t.wait_for("the messages", Duration::from_secs(30), |s| {
            s.contains("Messages (")
        });
        assert!(
            m.contains("served at 127.0.0.1") && m.contains("letter log-probs exact"),
            "{m}"
        );
        t.keys("Escape");
        t.wait_for("the overlay closed", Duration::from_secs(30), |s| {
            !s.contains("Messages (")
        });
    }
    // The pitch item: the proposed mistake at sentence 4 names another level's frequency.
    t.mistake_on_the_pitch_item();
    let s = t.wait_for("the flip", Duration::from_secs(120), |s| {
        s.contains("mistake at sentence 4") && !s.contains("forcing") && s.contains("FLIP")
    });
    // On 24 rows: the item id's distinguishing end, the cursor sentence, both answers with the
    // FLIP on one line, and a bar for each of the two answers' letters.
    assert_eq!(s.lines().count(), 24, "{s}");
    assert!(s.contains("level-0000"), "{s}");
    assert!(s.contains("▶4 Its pitch"), "{s}");
    let line = s
        .lines()
        .find(|l| l.contains("baseline ") && l.contains("current "))
        .unwrap_or_else(|| panic!("no answers line:\n{s}"));
    assert!(line.contains("FLIP"), "{line}");
    let letter = |after: &str| {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.chars().next().unwrap()
    };
    let (b, c) = (letter("baseline "), letter("current "));
    assert_ne!(b, c, "{line}");
    for l in [b, c] {
        assert!(
            s.lines()
                .any(|row| row.contains(&format!("│{l}")) && row.contains('%')),
            "no bar for {l}:\n{s}"
        );
    }
    t.quit_to_shell("Items 240");
}

/// The audio story: seek to the clip's end, mark a region over all of it, mask it with
/// silence, switch playback to B, ask again with the chain held: demo-posthoc's answer follows
/// the silenced audio and the answer pane shows the flip.
#[test]
fn mask_a_region_switch_ab_and_ask_with_the_chain_held() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_faithscope");
    let t = Tmux::start(
        "faithscope-e2e-audio",
        110,
        32,
        root,
        &clean_shell(dir.path()),
    );
    let model = root.join("samples/models/demo-posthoc");
    t.text(&format!(
        "{bin} inspect --data samples/synth-test --model {} --annotations {}",
        model.display(),
        dir.path().join("a.jsonl").display()
    ));
    t.keys("Enter");
    let before = t.wait_for("the baseline answer", Duration::from_secs(300), |s| {
        s.contains("Reasoning · original") && s.contains("baseline ") && !s.contains("baseline ·")
    });
    assert!(!before.contains("FLIP"), "{before}");
    let pane_before = answer_pane(&before);
    // the playhead to the end of the (1-s) clip, then the region's end there: 0 to the end
    t.keys("Right");
    t.wait_for("the playhead at the end", Duration::from_secs(30), |s| {
        s.contains("0:01.0 / 0:01.0")
    });
    t.keys("]");
    t.wait_for("the region", Duration::from_secs(30), |s| {
        s.contains("region 0:00.0-0:01.0")
    });
    t.keys("z");
    t.wait_for("the altered clip", Duration::from_secs(60), |s| {
        s.contains("playing A · B: silence 0.00-1.00 s")
    });
    t.keys("b");
    t.wait_for("B playing", Duration::from_secs(30), |s| {
        s.contains("playing B: silence 0.00-1.00 s")
    });
    t.keys("h");
    let after = t.wait_for(
        "the answer with the chain held",
        Duration::from_secs(120),
        |s| s.contains("FLIP") && !s.contains("forcing the answer"),
    );
    assert_ne!(pane_before, answer_pane(&after), "{after}");
    t.quit_to_shell("Reasoning ·");
}
