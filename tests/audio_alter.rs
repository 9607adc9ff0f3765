//! `faithscope audio mask | snr | hint` on real clips of the embedded samples: the written WAV
//! decoded again and measured against the definitions (the paper's mask positions, RMS, SNR),
//! with a real espeak-ng for spoken hints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faithscope::audio::alter::{mask_ranges, rms, MaskAt};
use faithscope::audio::{decode_file, load_clip, DecodeOptions, MODEL_RATE};

const CLIP: &str = "samples/synth-test/audio/synth-test-count-0002.flac";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn faithscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("running faithscope")
}

fn original() -> Vec<f32> {
    load_clip(&repo().join(CLIP), MODEL_RATE, &DecodeOptions::default())
        .unwrap()
        .samples
}

fn written(path: &Path) -> Vec<f32> {
    let c = decode_file(path, &DecodeOptions::default()).unwrap();
    assert_eq!(c.sample_rate, MODEL_RATE);
    c.samples
}

fn run_ok(args: &[&str]) -> String {
    let o = faithscope(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "faithscope {args:?}: {err}");
    err
}

#[test]
fn a_mask_silences_or_fills_exactly_the_papers_samples() {
    let dir = tempfile::tempdir().unwrap();
    let x = original();
    for (with, at, p) in [
        ("silence", "end", "40"),
        ("silence", "scattered", "30"),
        ("noise", "random", "50"),
        ("noise", "start", "20"),
    ] {
        let out = dir.path().join(format!("{with}-{at}-{p}.wav"));
        let msg = run_ok(&[
            "audio",
            "mask",
            CLIP,
            "--with",
            with,
            "--at",
            at,
            "--percent",
            p,
            "--out",
            out.to_str().unwrap(),
        ]);
        let at_v = match at {
            "end" => MaskAt::End,
            "scattered" => MaskAt::Scattered,
            "random" => MaskAt::Random,
            _ => MaskAt::Start,
        };
        // the item id is the file's stem, the seed the paper's 42
        let ranges = mask_ranges(
            x.len(),
            p.parse().unwrap(),
            at_v,
            42,
            "synth-test-count-0002",
            MODEL_RATE,
        )
        .unwrap();
        let y = written(&out);
        assert_eq!(y.len(), x.len());
        let covered: usize = ranges.iter().map(|(a, b)| b - a).sum();
        assert_eq!(covered, x.len() * p.parse::<usize>().unwrap() / 100);
        let inside = |i: usize| ranges.iter().any(|&(a, b)| (a..b).contains(&i));
        let (mut masked, mut kept) = (Vec::new(), Vec::new());
        for i in 0..x.len() {
            if inside(i) {
                masked.push(y[i]);
            } else {
                assert_eq!(
                    y[i], x[i],
                    "{with} {at} {p}: sample {i} outside the mask changed"
                );
                kept.push(x[i]);
            }
        }
        if with == "silence" {
            assert!(masked.iter().all(|&v| v == 0.0), "{with} {at} {p}");
        } else {
            let r = rms(&masked) / rms(&kept);
            assert!(
                (r - 1.0).abs() < 0.05,
                "{with} {at} {p}: noise RMS / rest {r}"
            );
        }
        assert!(msg.contains("item synth-test-count-0002, seed 42"), "{msg}");
    }
    // Bad requests are named.
    let o = faithscope(&[
        "audio",
        "mask",
        CLIP,
        "--with",
        "noise",
        "--at",
        "end",
        "--percent",
        "130",
        "--out",
        "/dev/null",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("--percent 130: give a share of the clip from 0 to 100"));
}

#[test]
fn noise_is_added_at_the_snr_asked() {
    let dir = tempfile::tempdir().unwrap();
    let x = original();
    for db in ["-10", "0", "20"] {
        let out = dir.path().join(format!("snr{db}.wav"));
        run_ok(&[
            "audio",
            "snr",
            CLIP,
            "--db",
            db,
            "--out",
            out.to_str().unwrap(),
        ]);
        let y = written(&out);
        let noise: Vec<f32> = y.iter().zip(&x).map(|(a, b)| a - b).collect();
        let snr = 20.0 * (rms(&x) / rms(&noise)).log10();
        let want: f64 = db.parse().unwrap();
        assert!(
            (snr - want).abs() < 0.1,
            "measured {snr:.3} dB for {want} dB"
        );
    }
}

#[test]
fn a_spoken_hint_is_joined_after_the_clip_or_laid_over_it() {
    assert!(
        Command::new("espeak-ng").arg("--version").output().is_ok(),
        "espeak-ng is not installed: `make deps` installs it (apt-get install espeak-ng)"
    );
    let dir = tempfile::tempdir().unwrap();
    let x = original();
    let concat = dir.path().join("concat.wav");
    let msg = run_ok(&[
        "audio",
        "hint",
        CLIP,
        "--text",
        "the answer is two",
        "--mode",
        "concat",
        "--out",
        concat.to_str().unwrap(),
    ]);
    assert!(msg.contains("espeak-ng"), "{msg}");
    let y = written(&concat);
    assert!(
        y.len() > x.len() + MODEL_RATE as usize / 2,
        "{} vs {}",
        y.len(),
        x.len()
    );
    assert_eq!(&y[..x.len()], &x[..], "the clip comes first, unchanged");
    assert!(rms(&y[x.len()..]) > 0.01, "speech after the clip");
    // The hint as a recorded clip, laid over: as long as the longer, loudness kept in range.
    let over = dir.path().join("over.wav");
    run_ok(&[
        "audio",
        "hint",
        CLIP,
        "--hint-clip",
        concat.to_str().unwrap(),
        "--mode",
        "overlay",
        "--out",
        over.to_str().unwrap(),
    ]);
    let z = written(&over);
    assert_eq!(z.len(), y.len());
    assert!(z.iter().all(|v| v.abs() <= 1.0));
    assert_ne!(&z[..x.len()], &x[..]);
    // Without the engine on PATH: the package is named.
    let o = Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .current_dir(repo())
        .env("PATH", dir.path())
        .args([
            "audio", "hint", CLIP, "--text", "two", "--mode", "concat", "--out",
        ])
        .arg(dir.path().join("x.wav"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("espeak-ng is not installed") && err.contains("make deps"),
        "{err}"
    );
}

#[test]
fn an_empty_clip_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&empty, spec)
        .unwrap()
        .finalize()
        .unwrap();
    let o = faithscope(&[
        "audio",
        "snr",
        empty.to_str().unwrap(),
        "--db",
        "0",
        "--out",
        dir.path().join("o.wav").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("empty.wav"), "{err}");
    assert!(!dir.path().join("o.wav").exists(), "nothing written");
}
