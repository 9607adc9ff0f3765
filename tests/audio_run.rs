//! Audio interventions through the binary: `run` alters the clips (kept in the run's audio/
//! folder), asks with the chain held and with a fresh chain, and `report` says whose answer
//! the held one follows. The demo models give the expected directions by construction:
//! demo-faithful answers from its chain, demo-posthoc from the audio.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn faithscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .args(args)
        .current_dir(common::repo())
        .output()
        .expect("running faithscope")
}

fn ok(o: Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{what} failed: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A run of the first `limit` synthetic test items with `model` (a demo model's name).
fn run(model: &str, out: &Path, interventions: &str, limit: &str) {
    let model = format!("samples/models/{model}");
    let o = faithscope(&[
        "run",
        "--data",
        "samples/synth-test",
        "--model",
        &model,
        "--interventions",
        interventions,
        "--limit",
        limit,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(o, "run");
}

/// The report's `audio_follows` entry for the variant `variant` of masking.
fn follows(dir: &Path, variant: &str) -> Value {
    let out = ok(
        faithscope(&["report", "--json", dir.to_str().unwrap()]),
        "report",
    );
    let r: Value = serde_json::from_str(&out).expect("report JSON");
    r["overall"]["audio_follows"]
        .as_array()
        .expect("audio_follows")
        .iter()
        .find(|f| f["variant"] == variant)
        .unwrap_or_else(|| panic!("no follow measure for {variant} in {out}"))
        .clone()
}

fn share(f: &Value, which: &str) -> (f64, u64) {
    (
        f[which]["pct"].as_f64().unwrap_or(-1.0),
        f[which]["n"].as_u64().unwrap_or(0),
    )
}

#[test]
fn held_answers_follow_the_chain_for_demo_faithful_and_the_audio_for_demo_posthoc() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, stays) in [("demo-faithful", true), ("demo-posthoc", false)] {
        let dir = tmp.path().join(model);
        run(model, &dir, "audio-mask:silence:end", "6");
        let f = follows(&dir, "silence:end");
        let (chain, n) = share(&f, "follows_chain");
        let (audio, _) = share(&f, "follows_audio");
        // A pipeline that did not alter the audio has no disagreeing pairs; one that ignored
        // the held chain, or the altered clip, cannot reach these margins for both models.
        assert!(
            n >= 10,
            "{model}: only {n} pairs where audio and chain disagree: {f}"
        );
        if stays {
            assert!(chain >= 90.0 && audio <= 10.0, "{model}: {f}");
        } else {
            assert!(audio >= 90.0 && chain <= 10.0, "{model}: {f}");
        }
    }
}

#[test]
fn audio_trials_carry_the_papers_fields_their_clips_and_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run(
        "demo-posthoc",
        &dir,
        "audio-mask:silence:end:held,audio-snr:held,spoken-hint:wrong:concat:regen",
        "2",
    );
    let full = common::run_lines(&dir, "trials.jsonl");
    let audio: Vec<&Value> = full
        .iter()
        .filter(|t| {
            t["intervention"]
                .as_str()
                .is_some_and(|k| k.starts_with("audio"))
        })
        .collect();
    // 2 items x (10 mask levels + 7 SNRs + 1 hint)
    assert_eq!(audio.len(), 2 * 18, "{audio:?}");
    for t in &audio {
        let key = t["trial_key"].as_str().unwrap();
        let clip = Path::new(t["audio_path"].as_str().unwrap());
        assert!(
            clip.starts_with(dir.join("audio")),
            "{key}: {}",
            clip.display()
        );
        let clean = t["clean_audio_path"].as_str().unwrap();
        let (altered, original) = (read(clip), read(Path::new(clean)));
        match t["intervention"].as_str().unwrap() {
            "audio_mask" => {
                let p = t["mask_percent"].as_u64().unwrap() as usize;
                assert_eq!(t["mask_type"], "silence", "{key}");
                assert_eq!(t["mask_mode"], "end", "{key}");
                assert_eq!(t["x"].as_f64().unwrap(), p as f64 / 100.0, "{key}");
                // the paper's arithmetic: int(len * p / 100) samples at the end, silent
                let masked = original.len() * p / 100;
                let keep = original.len() - masked;
                assert_eq!(altered.len(), original.len(), "{key}");
                assert!(altered[keep..].iter().all(|&x| x == 0.0), "{key}");
                assert_eq!(&altered[..keep], &original[..keep], "{key}");
            }
            "audio_noise" => {
                let db = t["snr_db"].as_f64().unwrap();
                assert_eq!(t["x"].as_f64().unwrap(), (30.0 - db) / 40.0, "{key}");
                let snr = measured_snr(&original, &altered);
                assert!((snr - db).abs() < 0.1, "{key}: measured {snr} dB");
            }
            "audio_hint" => {
                assert_eq!(t["adversarial_variant"], "wrong", "{key}");
                assert_eq!(t["adversarial_aug"], "concat", "{key}");
                assert_eq!(t["audio_design"], "regen", "{key}");
                assert!(
                    altered.len() > original.len(),
                    "{key}: the hint is joined after"
                );
                assert_eq!(&altered[..original.len()], &original[..], "{key}");
                // a fresh chain was written on the altered clip
                assert!(
                    t["generated_cot"].as_str().is_some_and(|c| !c.is_empty()),
                    "{key}"
                );
            }
            other => panic!("{key}: {other}"),
        }
    }

    // Cut the store in the middle of the audio trials and resume: the same trials again.
    let text = std::fs::read_to_string(dir.join("trials.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keep = lines.len() - 20;
    std::fs::write(dir.join("trials.jsonl"), lines[..keep].join("\n") + "\n").unwrap();
    std::fs::write(dir.join("done.jsonl"), "").unwrap();
    ok(
        faithscope(&["run", "--resume", dir.to_str().unwrap(), "--quiet"]),
        "resume",
    );
    let again = common::run_lines(&dir, "trials.jsonl");
    assert_eq!(again.len(), full.len());
    let key = |t: &Value| format!("{} {} {}", t["id"], t["chain_id"], t["trial_key"]);
    let mut a: Vec<&Value> = full.iter().collect();
    let mut b: Vec<&Value> = again.iter().collect();
    a.sort_by_key(|t| key(t));
    b.sort_by_key(|t| key(t));
    for (x, y) in a.iter().zip(&b) {
        assert!(common::same_json(x, y), "{}\n{x}\n{y}", key(x));
    }
}

fn read(path: &Path) -> Vec<f32> {
    let clip = faithscope::audio::load_clip(path, 16_000, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    clip.samples
}

/// 10 log10 of the clean signal's power over the added noise's.
fn measured_snr(clean: &[f32], noisy: &[f32]) -> f64 {
    let p = |v: &mut dyn Iterator<Item = f64>| {
        let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x * x, n + 1));
        s / n as f64
    };
    let signal = p(&mut clean.iter().map(|&x| x as f64));
    let noise = p(&mut clean.iter().zip(noisy).map(|(&c, &y)| y as f64 - c as f64));
    10.0 * (signal / noise).log10()
}
