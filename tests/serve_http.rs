//! `faithscope serve` over real loopback sockets: the binary serves the demo model, reqwest's
//! blocking client talks to it, and answers are compared with the same model loaded in
//! process (text, log-probs), streaming and cancelling, the bad-input table, the queue, the
//! timeout and the API key.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use candle_core::{DType, Device};
use faithscope::audio::{load_clip, DecodeOptions};
use faithscope::model::candle_backend::{CacheOptions, CandleReasoner};
use faithscope::model::openai::{messages_of, ChatCompletion, ErrorBody};
use faithscope::model::{Conversation, GenParams, Message, Reasoner, Role, StopReason};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

const MODEL: &str = "samples/models/demo-faithful";
const NAME: &str = "demo-faithful";
const QUESTION: &str =
    "How many beeps do you hear?\n(A) one\n(B) two\n(C) three\n(D) four\n(E) five\n(F) six";

/// A running `faithscope serve`, stopped (SIGTERM, then kill) when dropped. Its stdout and
/// stderr are collected.
struct Server {
    child: Child,
    base: String,
    output: Arc<Mutex<String>>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = spawn(extra);
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        collect(child.stderr.take().unwrap(), output.clone());
        collect(stdout, output.clone());
        let Some(url) = line
            .trim()
            .strip_prefix(&format!("faithscope serve: {NAME} on "))
        else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(100));
            panic!(
                "no listening line: {line:?}; output: {}",
                output.lock().unwrap()
            );
        };
        let base = url.trim_end_matches("/v1").replace("0.0.0.0", "127.0.0.1");
        output.lock().unwrap().push_str(&line);
        Server {
            child,
            base,
            output,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn stats(&self) -> Value {
        Client::new()
            .get(self.url("/v1/stats"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// `/v1/stats` once `n` requests are in flight (polled; the caller asserts on the result,
    /// which after many polls may still differ).
    fn stats_when_in_flight(&self, n: u64) -> Value {
        let mut stats = self.stats();
        for _ in 0..3000 {
            if stats["in_flight"] == n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            stats = self.stats();
        }
        stats
    }

    fn healthy(&self) -> bool {
        let r = Client::new().get(self.url("/health")).send().unwrap();
        r.status() == StatusCode::OK && r.json::<Value>().unwrap() == json!({"status": "ok"})
    }

    /// Stops the server and returns everything it printed.
    fn stop(mut self) -> String {
        self.terminate();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let out = self.output.lock().unwrap().clone();
        out
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        for _ in 0..200 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn spawn(extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_faithscope"))
        .current_dir(common::repo())
        .args(["serve", "--model", MODEL, "--port", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn collect(from: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(from);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

fn model() -> CandleReasoner {
    CandleReasoner::load(
        &common::repo().join(MODEL),
        &Device::Cpu,
        DType::F32,
        CacheOptions::default(),
    )
    .unwrap()
}

/// A synth-test clip decoded and written as 16 kHz mono 16-bit WAV; returns its path and the
/// file's base64.
fn wav_clip(dir: &Path, n: usize) -> (PathBuf, String) {
    let flac = common::repo().join(format!(
        "samples/synth-test/audio/synth-test-count-{n:04}.flac"
    ));
    let clip = load_clip(&flac, 16_000, &DecodeOptions::default()).unwrap();
    let path = dir.join(format!("clip{n}.wav"));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for s in &clip.samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap());
    (path, b64)
}

fn conversation(audio: Option<PathBuf>, prefill: Option<&str>) -> Conversation {
    Conversation {
        audio,
        messages: vec![Message {
            role: Role::User,
            text: QUESTION.into(),
        }],
        prefill: prefill.map(str::to_string),
    }
}

/// The request body for a conversation, as faithscope's client sends it.
fn chat_body(conv: &Conversation, b64: Option<&str>, extra: Value) -> Value {
    let (messages, cont) = messages_of(conv, b64);
    let mut body = json!({"model": NAME, "messages": messages});
    if cont {
        body["continue_final_message"] = json!(true);
        body["add_generation_prompt"] = json!(false);
    }
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn post(server: &Server, body: &Value) -> reqwest::blocking::Response {
    Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(body)
        .send()
        .unwrap()
}

/// The message of an error reply, after checking its status and that it is OpenAI's body.
fn error_message(resp: reqwest::blocking::Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status);
    let err: ErrorBody = resp.json().expect("an OpenAI error body");
    assert!(!err.error.kind.is_empty());
    err.error.message
}

/// One SSE stream read line by line as it arrives: the `data:` payloads in arrival order.
fn sse_events(resp: reqwest::blocking::Response) -> Vec<String> {
    BufReader::new(resp)
        .lines()
        .map(|l| l.unwrap())
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

fn content_of(event: &str) -> Option<String> {
    let v: Value = serde_json::from_str(event).ok()?;
    v["choices"][0]["delta"]["content"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn models_and_health() {
    let server = Server::start(&[]);
    assert!(server.healthy());
    let list: Value = Client::new()
        .get(server.url("/v1/models"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], NAME);
    assert_eq!(
        list["data"][0]["max_model_len"],
        json!(model().max_context())
    );
    // /tokenize takes vLLM's prompt and llama.cpp's content, with the same ids as in process
    let ids = model().tokenizer().encode("So the answer is (").unwrap();
    for field in ["prompt", "content"] {
        let r: Value = Client::new()
            .post(server.url("/tokenize"))
            .json(&json!({ field: "So the answer is (" }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(r["tokens"], json!(ids), "{field}");
        assert_eq!(r["count"], json!(ids.len()));
    }
}

#[test]
fn greedy_chat_with_audio_equals_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (wav, b64) = wav_clip(tmp.path(), 0);
    let server = Server::start(&[]);
    let conv = conversation(Some(wav), None);
    let params = GenParams {
        max_tokens: 48,
        ..GenParams::default()
    };
    let local = model()
        .generate(&conv, &params, &mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    let body = chat_body(
        &conv,
        Some(&b64),
        json!({"max_tokens": 48, "temperature": 0}),
    );
    let resp = post(&server, &body);
    assert_eq!(resp.status(), StatusCode::OK);
    let reply: ChatCompletion = resp.json().unwrap();
    let choice = &reply.choices[0];
    assert_eq!(choice.message.role, "assistant");
    assert_eq!(choice.message.content.as_deref(), Some(local.text.as_str()));
    let finish = match local.stop {
        StopReason::MaxTokens => "length",
        _ => "stop",
    };
    assert_eq!(choice.finish_reason.as_deref(), Some(finish));
    let usage = reply.usage.unwrap();
    assert_eq!(usage.completion_tokens, local.tokens.len());
    assert_eq!(
        usage.prompt_tokens,
        model().render_prompt(&conv).unwrap().ids.len()
    );
    // the same clip again is the same file on the server: its clip and prefix caches hit
    let before = server.stats()["model"].clone();
    let again: ChatCompletion = post(&server, &body).json().unwrap();
    assert_eq!(again.choices[0].message.content, choice.message.content);
    let after = server.stats()["model"].clone();
    assert_eq!(after["audio_encoded"], before["audio_encoded"]);
    assert!(after["tokens_reused"].as_u64() > before["tokens_reused"].as_u64());
}

#[test]
fn letter_logprobs_equal_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (wav, b64) = wav_clip(tmp.path(), 1);
    let server = Server::start(&[]);
    let cue = "Let's think step by step: I listen to the clip. So the answer is (";
    let conv = conversation(Some(wav), Some(cue));
    let local = model();
    let lsm = local.next_token_logprobs(&conv).unwrap();
    let letters: Vec<u32> = ["A", "B", "C", "D", "E", "F"]
        .iter()
        .map(|l| local.tokenizer().letter_id(l).unwrap())
        .collect();
    let body = chat_body(
        &conv,
        Some(&b64),
        json!({"max_tokens": 1, "temperature": 0, "logprobs": true, "top_logprobs": 3,
               "logprob_token_ids": letters}),
    );
    assert_eq!(body["continue_final_message"], true);
    let resp = post(&server, &body);
    assert_eq!(resp.status(), StatusCode::OK);
    let reply: ChatCompletion = resp.json().unwrap();
    let entry = &reply.choices[0].logprobs.as_ref().unwrap().content[0];
    // greedy: the argmax of the in-process distribution, with its log-prob
    let best = faithscope::model::sampling::argmax(&lsm) as u32;
    assert_eq!(entry.id, Some(best));
    assert!((entry.logprob - lsm[best as usize] as f64).abs() < 1e-5);
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        Some(local.tokenizer().decode(&[best]).unwrap().as_str())
    );
    // the top 3 first, most likely first, then every asked-for letter, exact values
    let mut sorted: Vec<usize> = (0..lsm.len()).collect();
    sorted.sort_by(|a, b| lsm[*b].total_cmp(&lsm[*a]));
    let top: Vec<u32> = entry.top_logprobs[..3]
        .iter()
        .map(|t| t.id.unwrap())
        .collect();
    assert_eq!(
        top,
        sorted[..3].iter().map(|&i| i as u32).collect::<Vec<_>>()
    );
    for (letter, id) in ["A", "B", "C", "D", "E", "F"].iter().zip(&letters) {
        let got = entry
            .top_logprobs
            .iter()
            .find(|t| t.id == Some(*id))
            .unwrap_or_else(|| panic!("letter {letter} (id {id}) missing"));
        assert_eq!(got.token, *letter);
        assert!(
            (got.logprob - lsm[*id as usize] as f64).abs() < 1e-5,
            "{letter}: served {} vs in process {}",
            got.logprob,
            lsm[*id as usize]
        );
    }
    assert_eq!(
        entry.top_logprobs.len(),
        3 + letters.iter().filter(|id| !top.contains(id)).count()
    );
}

#[test]
fn streaming_sends_pieces_as_they_come() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, b64) = wav_clip(tmp.path(), 2);
    let server = Server::start(&[]);
    let conv = conversation(None, None);
    let extra = json!({"max_tokens": 40, "temperature": 0});
    let plain: ChatCompletion = post(&server, &chat_body(&conv, Some(&b64), extra.clone()))
        .json()
        .unwrap();
    let mut stream_extra = extra;
    stream_extra["stream"] = json!(true);
    let resp = post(&server, &chat_body(&conv, Some(&b64), stream_extra));
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse_events(resp);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let contents: Vec<(usize, String)> = events
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, e)| content_of(e).map(|c| (i, c)))
        .collect();
    assert!(contents.len() > 1, "{events:?}");
    let final_at = events
        .iter()
        .position(|e| {
            serde_json::from_str::<Value>(e)
                .is_ok_and(|v| v["choices"][0]["finish_reason"].is_string())
        })
        .unwrap();
    // arrival order: text pieces, then the final chunk, then [DONE]
    assert!(contents[0].0 < final_at);
    assert!(contents.iter().all(|(i, _)| *i < final_at));
    let text: String = contents.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(Some(text), plain.choices[0].message.content);
    let last: Value = serde_json::from_str(&events[final_at]).unwrap();
    assert_eq!(
        last["choices"][0]["finish_reason"],
        json!(plain.choices[0].finish_reason)
    );
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(final_at + 2, events.len());
}

#[test]
fn a_dropped_stream_stops_the_generation() {
    let server = Server::start(&[]);
    let mut conv = conversation(None, None);
    conv.messages[0].text = "How many beeps?".into();
    // greedy, without audio or choices, this model repeats itself until its context is full
    let body = chat_body(
        &conv,
        None,
        json!({"max_tokens": 5000, "temperature": 0, "stream": true}),
    );
    let before = server.stats();
    {
        let client = Client::new();
        let resp = client
            .post(server.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .unwrap();
        let mut lines = BufReader::new(resp).lines();
        let mut pieces = 0;
        while pieces < 3 {
            let line = lines.next().unwrap().unwrap();
            if line.strip_prefix("data: ").and_then(content_of).is_some() {
                pieces += 1;
            }
        }
        // the response and its connection are dropped here
    }
    let stats = server.stats_when_in_flight(0);
    assert_eq!(stats["in_flight"], 0, "{stats}");
    assert_eq!(stats["requests"]["cancelled"], 1, "{stats}");
    assert_eq!(stats["requests"]["completed"], 0, "{stats}");
    let computed = stats["model"]["tokens_computed"].as_u64().unwrap()
        - before["model"]["tokens_computed"].as_u64().unwrap();
    let context = model().max_context() as u64;
    assert!(
        computed < context / 2,
        "the generation ran on after the client left: {computed} positions"
    );
    // the counter stays put: nothing is still generating
    let later = server.stats();
    assert_eq!(
        later["model"]["tokens_computed"],
        stats["model"]["tokens_computed"]
    );
    // and the next request is served
    let ok = post(
        &server,
        &chat_body(&conv, None, json!({"max_tokens": 2, "temperature": 0})),
    );
    assert_eq!(ok.status(), StatusCode::OK);
}

#[test]
fn bad_inputs_get_named_errors_and_the_server_stays_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, b64) = wav_clip(tmp.path(), 3);
    let server = Server::start(&["--max-audio-seconds", "1", "--max-body-mb", "1"]);
    let conv = conversation(None, None);
    let good = chat_body(&conv, None, json!({"max_tokens": 1}));
    let with_audio = |data: &str| chat_body(&conv, Some(data), json!({"max_tokens": 1}));
    let b64_of = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut unknown_field = good.clone();
    unknown_field["temprature"] = json!(0);
    let mut unknown_model = good.clone();
    unknown_model["model"] = json!("gpt-17");
    let mut robot = good.clone();
    robot["messages"][1]["role"] = json!("robot");
    let mut no_user = good.clone();
    no_user["messages"] = json!([{"role": "system", "content": "Be brief."}]);
    let mut both = good.clone();
    both["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "assistant", "content": "The answer is ("}));
    both["continue_final_message"] = json!(true);
    both["add_generation_prompt"] = json!(true);
    let mut long_logprobs = good.clone();
    long_logprobs["logprobs"] = json!(true);
    long_logprobs["max_tokens"] = json!(5);
    let mut audio_url = good.clone();
    audio_url["messages"][1]["content"] =
        json!([{"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,AAAA"}}]);
    let mut past_context = good.clone();
    past_context["messages"][1]["content"] = json!("beep ".repeat(3000));
    let big = "A".repeat(3 << 20);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            r#"{"messages": [}"#.into(),
            StatusCode::BAD_REQUEST,
            "line 1 column",
        ),
        (
            "unknown field",
            unknown_field.to_string(),
            StatusCode::BAD_REQUEST,
            "temprature",
        ),
        (
            "bad base64",
            with_audio("not base64 at all!").to_string(),
            StatusCode::BAD_REQUEST,
            "base64",
        ),
        (
            "undecodable audio",
            with_audio(&b64_of(b"RIFF but not really a wave file")).to_string(),
            StatusCode::BAD_REQUEST,
            "cannot be decoded",
        ),
        (
            "clip over the limit",
            with_audio(&b64).to_string(),
            StatusCode::BAD_REQUEST,
            "--max-audio-seconds",
        ),
        (
            "body over the limit",
            json!({"messages": [{"role": "user", "content": big}]}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "--max-body-mb",
        ),
        (
            "unknown model",
            unknown_model.to_string(),
            StatusCode::NOT_FOUND,
            "\"demo-faithful\"",
        ),
        (
            "prompt past the context",
            past_context.to_string(),
            StatusCode::BAD_REQUEST,
            "context of 1024 tokens",
        ),
        (
            "unknown role",
            robot.to_string(),
            StatusCode::BAD_REQUEST,
            "robot",
        ),
        (
            "no user message",
            no_user.to_string(),
            StatusCode::BAD_REQUEST,
            "no user message",
        ),
        (
            "continue and a new turn",
            both.to_string(),
            StatusCode::BAD_REQUEST,
            "add_generation_prompt",
        ),
        (
            "logprobs past one token",
            long_logprobs.to_string(),
            StatusCode::BAD_REQUEST,
            "max_tokens 1",
        ),
        (
            "audio_url part",
            audio_url.to_string(),
            StatusCode::BAD_REQUEST,
            "audio_url",
        ),
    ];
    let client = Client::new();
    for (what, body, status, needle) in &cases {
        let resp = client
            .post(server.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let message = error_message(resp, *status);
        assert!(
            message.contains(needle),
            "{what}: {message:?} does not name {needle:?}"
        );
        assert!(server.healthy(), "after {what}");
    }
    // no route and a wrong method are error bodies too
    let resp = client.get(server.url("/v1/nothing")).send().unwrap();
    assert!(error_message(resp, StatusCode::NOT_FOUND).contains("/v1/nothing"));
    let resp = client
        .get(server.url("/v1/chat/completions"))
        .send()
        .unwrap();
    assert!(error_message(resp, StatusCode::METHOD_NOT_ALLOWED).contains("GET"));
    // and good requests still work
    assert_eq!(post(&server, &good).status(), StatusCode::OK);
    assert!(server.healthy());
}

#[test]
fn two_hundred_requests_against_a_queue_of_eight() {
    let server = Server::start(&["--queue", "8"]);
    let body = chat_body(
        &conversation(None, Some("So the answer is (")),
        None,
        json!({"max_tokens": 1, "temperature": 0}),
    );
    let url = server.url("/v1/chat/completions");
    let next = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (url, body, next) = (url.clone(), body.clone(), next.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                let mut seen = Vec::new();
                loop {
                    {
                        let mut n = next.lock().unwrap();
                        if *n == 200 {
                            return seen;
                        }
                        *n += 1;
                    }
                    let resp = client.post(&url).json(&body).send().unwrap();
                    let status = resp.status();
                    let retry = resp.headers().get("retry-after").is_some();
                    let ok_body = match status {
                        StatusCode::OK => resp.json::<ChatCompletion>().is_ok(),
                        _ => resp.json::<ErrorBody>().is_ok(),
                    };
                    seen.push((status, retry, ok_body));
                }
            })
        })
        .collect();
    let all: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(all.len(), 200);
    for (status, retry, ok_body) in &all {
        assert!(ok_body, "{status}: not the expected body");
        match *status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => assert!(retry, "503 without Retry-After"),
            other => panic!("unexpected status {other}"),
        }
    }
    let ok = all.iter().filter(|(s, ..)| *s == StatusCode::OK).count();
    assert!(ok >= 1);
    let stats = server.stats();
    assert_eq!(stats["requests"]["completed"], json!(ok), "{stats}");
    assert_eq!(stats["requests"]["busy"], json!(200 - ok), "{stats}");
    assert_eq!(stats["in_flight"], 0);
    assert!(server.healthy());
    assert_eq!(post(&server, &body).status(), StatusCode::OK);
}

/// Opens a request whose body never finishes: it holds a queue slot until its timeout.
fn hold_a_slot(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    // a guard against hanging, not a measurement
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{{\"messages\": "
    )
    .unwrap();
    s.flush().unwrap();
    s
}

#[test]
fn a_full_queue_answers_503_at_once_and_a_slow_body_times_out() {
    let server = Server::start(&["--queue", "1"]);
    let held = hold_a_slot(&server);
    // the slot is taken once the server has the request's head; /v1/stats shows it
    let stats = server.stats_when_in_flight(1);
    assert_eq!(stats["in_flight"], 1);
    let body = chat_body(&conversation(None, None), None, json!({"max_tokens": 1}));
    let resp = post(&server, &body);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(error_message(resp, StatusCode::SERVICE_UNAVAILABLE).contains("--queue 1"));
    drop(held);
    drop(server);

    let server = Server::start(&["--timeout-s", "1"]);
    let mut held = hold_a_slot(&server);
    let mut answer = String::new();
    held.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--timeout-s"), "{answer}");
    assert!(server.healthy());
}

#[test]
fn an_api_key_is_needed_off_loopback() {
    let out = spawn(&["--host", "0.0.0.0"]).wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--api-key-file"), "{stderr}");
    assert!(out.stdout.is_empty());

    let key = "sk-faithscope-test-7f3a9c1e";
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let server = Server::start(&[
        "--host",
        "0.0.0.0",
        "--api-key-file",
        key_file.to_str().unwrap(),
    ]);
    let client = Client::new();
    let models = server.url("/v1/models");
    let resp = client.get(&models).send().unwrap();
    assert!(error_message(resp, StatusCode::UNAUTHORIZED).contains("Bearer"));
    let resp = client.get(&models).bearer_auth("sk-wrong").send().unwrap();
    let wrong = error_message(resp, StatusCode::UNAUTHORIZED);
    assert!(
        !wrong.contains(key) && !wrong.contains("sk-wrong"),
        "{wrong}"
    );
    let resp = client.get(&models).bearer_auth(key).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = chat_body(&conversation(None, None), None, json!({"max_tokens": 1}));
    let resp = client
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // /health answers without the key
    assert!(server.healthy());
    let printed = server.stop();
    assert!(
        printed.contains("faithscope serve: demo-faithful on http://0.0.0.0:"),
        "{printed}"
    );
    assert!(!printed.contains(key), "the key was printed: {printed}");
}

#[test]
fn concurrent_requests_join_the_running_batch_and_get_their_own_replies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&["--batch", "4", "--queue", "16"]);
    // five different requests, greedy and sampled, each first sent alone
    let bodies: Vec<Value> = (0..5)
        .map(|n| {
            let (_, b64) = wav_clip(tmp.path(), n);
            let extra = match n {
                3 => json!({"max_tokens": 40, "temperature": 0.9, "seed": 11}),
                4 => json!({"max_tokens": 25, "temperature": 0, "stream": true}),
                _ => json!({"max_tokens": 30 + 5 * n, "temperature": 0}),
            };
            chat_body(&conversation(None, None), Some(&b64), extra)
        })
        .collect();
    let reply_of = |server: &Server, body: &Value| -> (String, String) {
        let resp = post(server, body);
        assert_eq!(resp.status(), StatusCode::OK);
        if body["stream"] == json!(true) {
            let events = sse_events(resp);
            let text: String = events.iter().filter_map(|e| content_of(e)).collect();
            let finish = events
                .iter()
                .filter_map(|e| serde_json::from_str::<Value>(e).ok())
                .find_map(|v| {
                    v["choices"][0]["finish_reason"]
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap();
            (text, finish)
        } else {
            let c: ChatCompletion = resp.json().unwrap();
            let choice = &c.choices[0];
            (
                choice.message.content.clone().unwrap(),
                choice.finish_reason.clone().unwrap(),
            )
        }
    };
    let alone: Vec<_> = bodies.iter().map(|b| reply_of(&server, b)).collect();
    assert_eq!(server.stats()["batch"]["largest"], 1);

    // a long generation runs (greedy, no audio: it repeats itself until its context is full);
    // the five arrive while it does and decode in the same steps
    let mut conv = conversation(None, None);
    conv.messages[0].text = "How many beeps?".into();
    let long = chat_body(
        &conv,
        None,
        json!({"max_tokens": 5000, "temperature": 0, "stream": true}),
    );
    let resp = post(&server, &long);
    let mut lines = BufReader::new(resp).lines();
    let mut pieces = 0;
    while pieces < 3 {
        let line = lines.next().unwrap().unwrap();
        if line.strip_prefix("data: ").and_then(content_of).is_some() {
            pieces += 1;
        }
    }
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|b| s.spawn(|| reply_of(&server, b)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let long_running = server.stats()["in_flight"].as_u64().unwrap();
    drop(lines);
    assert_eq!(together, alone);
    let stats = server.stats_when_in_flight(0);
    let batch = &stats["batch"];
    assert_eq!(batch["max"], 4, "{stats}");
    assert!(batch["largest"].as_u64().unwrap() >= 2, "{stats}");
    assert!(batch["largest"].as_u64().unwrap() <= 4, "{stats}");
    assert!(
        batch["rows"].as_u64().unwrap() > batch["steps"].as_u64().unwrap(),
        "{stats}"
    );
    assert_eq!(
        long_running, 1,
        "the long generation ended before the others: {stats}"
    );
    assert_eq!(stats["requests"]["completed"], 10, "{stats}");
    assert!(server.healthy());
}

#[test]
fn a_batch_of_zero_is_refused() {
    let out = spawn(&["--batch", "0"]).wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--batch 0"), "{stderr}");
}
