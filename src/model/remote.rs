//! The remote backend: a model served over an OpenAI-compatible HTTP API (vLLM, llama.cpp's
//! `llama-server`, SGLang, `faithscope serve`) behind the same [`Reasoner`] seam.
//!
//! - The clip is decoded here (any format faithscope reads), cut to the model's window with the
//!   usual warning, and sent as a 16 kHz mono 32-bit float WAV in `input_audio`; the encoded clip
//!   is kept for the next calls on the same file.
//! - `generate` streams (`stream: true`); a prefill is a trailing assistant message with
//!   `continue_final_message: true, add_generation_prompt: false`. Cancelling drops the
//!   connection, which stops the server's work.
//! - `choice_probs` asks for one token after the answer cue with `logprobs`, `top_logprobs: 20`
//!   and, where the server accepts it, `logprob_token_ids` with the letters' ids (from
//!   `/tokenize`), so each letter's log-prob is exact; otherwise a letter missing from the top 20
//!   (1000 where the server has no cap, as llama.cpp)
//!   is reported (never silently zero). No `prompt_logprobs` / `echo` (they bypass vLLM's
//!   prefix cache).
//! - An API key (`FAITHSCOPE_API_KEY`, else `OPENAI_API_KEY`) is sent as a bearer token and
//!   appears nowhere else: errors name the URL only.

use std::collections::HashMap;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde::Serialize;

use super::openai::{
    messages_of, ChatChunk, ChatCompletion, ChatRequest, ErrorBody, ModelList, Stop,
    TokenizeRequest, TokenizeResponse,
};
use super::prefix_cache::ClipKey;
use super::{
    ChoiceProbs, Conversation, GenParams, Generation, ModelError, ModelStats, Reasoner, StopReason,
};
use crate::audio::{self, DecodeOptions};

/// Seconds of audio Qwen2-Audio and its kin take in (one Whisper window), when not told.
pub const DEFAULT_AUDIO_WINDOW_S: f64 = 30.0;

/// Alternatives asked for on servers without a cap on `top_logprobs` (llama.cpp).
pub const MANY_LOGPROBS: usize = 1000;

/// How often a request refused with 429 or 503 is tried again (with backoff).
pub const RETRIES: u32 = 4;

/// Where and how to reach a served model.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Base URL ending in `/v1` (`http://127.0.0.1:8000/v1`).
    pub url: String,
    /// Served model id; `None` takes the first one `/v1/models` lists.
    pub served_model: Option<String>,
    /// Longest wait for one request (a whole generation).
    pub timeout: Duration,
    /// Seconds of audio the served model takes in; longer clips are cut to it here (a server
    /// that reports its window in `/v1/models`, as faithscope serve does, overrides it).
    pub audio_window_s: f64,
    /// The bearer token; [`RemoteOptions::new`] reads it from the environment.
    pub api_key: Option<String>,
}

impl RemoteOptions {
    /// Options for `url` with the API key from `FAITHSCOPE_API_KEY`, else `OPENAI_API_KEY`.
    pub fn new(url: &str) -> RemoteOptions {
        let key = ["FAITHSCOPE_API_KEY", "OPENAI_API_KEY"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|k| !k.trim().is_empty())
            .map(|k| k.trim().to_string());
        RemoteOptions {
            url: url.trim_end_matches('/').to_string(),
            served_model: None,
            timeout: Duration::from_secs(600),
            audio_window_s: DEFAULT_AUDIO_WINDOW_S,
            api_key: key,
        }
    }
}

/// Whether a `--model` value names a server rather than a folder or repo id.
pub fn is_url(spec: &str) -> bool {
    spec.starts_with("http://") || spec.starts_with("https://")
}

/// What the server was found to do when the backend opened.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    /// Model ids `/v1/models` lists.
    pub models: Vec<String>,
    /// Context length the server reports for the served model.
    pub max_model_len: Option<usize>,
    /// `/tokenize` answers (`prompt` field as vLLM, or `content` as llama.cpp).
    pub tokenize: Option<&'static str>,
    /// A trailing assistant message is continued (`continue_final_message`).
    pub prefill: bool,
    /// Log-probs of the generated token are returned.
    pub logprobs: bool,
    /// `logprob_token_ids` returns exactly the asked tokens' log-probs.
    pub letter_ids: bool,
    /// Most alternatives per position the server returns (20 is what vLLM allows by default;
    /// llama.cpp has no cap, so more letters are read exactly there).
    pub top_logprobs: usize,
}

/// Requests and bytes sent, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// HTTP requests made (retries included).
    pub requests: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
}

/// A model served over HTTP.
pub struct RemoteReasoner {
    opts: RemoteOptions,
    /// The served model id, for trials, manifests and the UI.
    name: String,
    /// `HOST:PORT` of the server.
    host: String,
    model: String,
    http: Client,
    caps: Capabilities,
    /// The last clips encoded, by file identity.
    clips: Mutex<Vec<(ClipKey, std::sync::Arc<String>)>>,
    letter_ids: Mutex<HashMap<String, Option<u32>>>,
    traffic: Mutex<Traffic>,
    /// Token counts the server reported.
    usage: Mutex<ModelStats>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RemoteReasoner {
    /// Connects: lists the models (choosing the served one), then probes tokenize, prefill,
    /// log-probs and letter ids with tiny requests.
    pub fn connect(opts: RemoteOptions) -> Result<RemoteReasoner, ModelError> {
        if !is_url(&opts.url) {
            return Err(ModelError::Load(format!(
                "{}: not an http:// or https:// URL",
                opts.url
            )));
        }
        let http = Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                ModelError::Load(format!(
                    "cannot start the HTTP client: {}",
                    crate::warn::chain_text(&e)
                ))
            })?;
        let host = opts
            .url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
            .to_string();
        let mut r = RemoteReasoner {
            opts,
            name: String::new(),
            host: String::new(),
            model: String::new(),
            http,
            caps: Capabilities::default(),
            clips: Mutex::new(Vec::new()),
            letter_ids: Mutex::new(HashMap::new()),
            traffic: Mutex::new(Traffic::default()),
            usage: Mutex::new(ModelStats::default()),
        };
        let list: ModelList = r.get_json("/models")?;
        r.caps.models = list.data.iter().map(|m| m.id.clone()).collect();
        let card = match &r.opts.served_model {
            Some(want) => list.data.iter().find(|m| &m.id == want).ok_or_else(|| {
                ModelError::Load(format!(
                    "{}/models does not list model {want:?}; it serves {}",
                    r.opts.url,
                    r.caps.models.join(", ")
                ))
            })?,
            None => list
                .data
                .first()
                .ok_or_else(|| ModelError::Load(format!("{}/models lists no model", r.opts.url)))?,
        };
        r.model = card.id.clone();
        r.caps.max_model_len = card.max_model_len;
        if let Some(w) = card.audio_window_seconds.filter(|w| *w > 0.0) {
            r.opts.audio_window_s = w;
        }
        // the served id, as the trials' `model` (the same as the folder's name in process)
        r.name = r.model.clone();
        r.host = host;
        r.probe();
        Ok(r)
    }

    /// What the server was found to do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The served model id.
    pub fn served_model(&self) -> &str {
        &self.model
    }

    /// `HOST:PORT` of the server.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Requests and bytes sent so far.
    pub fn traffic(&self) -> Traffic {
        *lock(&self.traffic)
    }

    /// The server's root (the base URL without its `/v1`), where `/tokenize` lives.
    fn root(&self) -> &str {
        self.opts.url.strip_suffix("/v1").unwrap_or(&self.opts.url)
    }

    fn probe(&mut self) {
        for field in ["prompt", "content"] {
            if self.tokenize_with(field, "A").is_ok() {
                self.caps.tokenize = Some(field);
                break;
            }
        }
        let hello = Conversation {
            audio: None,
            messages: vec![super::Message {
                role: super::Role::User,
                text: "Say A.".into(),
            }],
            prefill: Some("A".into()),
        };
        let mut req = self.request(&hello, None, 1, 0.0);
        self.caps.prefill = self
            .post_json::<ChatCompletion>("/chat/completions", &req)
            .is_ok();
        req.logprobs = Some(true);
        req.top_logprobs = Some(1);
        if let Ok(c) = self.post_json::<ChatCompletion>("/chat/completions", &req) {
            self.caps.logprobs = first_logprobs(&c).is_some();
        }
        if self.caps.logprobs {
            self.caps.top_logprobs = 20;
            req.top_logprobs = Some(MANY_LOGPROBS);
            if let Ok(c) = self.post_json::<ChatCompletion>("/chat/completions", &req) {
                let n = first_logprobs(&c).map_or(0, |t| t.top_logprobs.len());
                if n > 20 {
                    self.caps.top_logprobs = MANY_LOGPROBS;
                }
            }
            if let Ok(Some(id)) = self.letter_id("B") {
                req.logprob_token_ids = Some(vec![id]);
                req.top_logprobs = Some(1);
                if let Ok(c) = self.post_json::<ChatCompletion>("/chat/completions", &req) {
                    self.caps.letter_ids = first_logprobs(&c)
                        .is_some_and(|t| t.top_logprobs.iter().any(|a| a.id == Some(id)));
                }
            }
        }
    }

    fn tokenize_with(&self, field: &str, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut req = TokenizeRequest {
            model: Some(self.model.clone()),
            ..TokenizeRequest::default()
        };
        match field {
            "prompt" => req.prompt = Some(text.into()),
            _ => req.content = Some(text.into()),
        }
        let url = format!("{}/tokenize", self.root());
        let r: TokenizeResponse = self.send_json(&url, Some(&req))?;
        Ok(r.tokens)
    }

    /// The single token id of `letter` on the server (`None` when it is several tokens or the
    /// server cannot tokenize).
    fn letter_id(&self, letter: &str) -> Result<Option<u32>, ModelError> {
        if let Some(hit) = lock(&self.letter_ids).get(letter) {
            return Ok(*hit);
        }
        let id = match self.caps.tokenize {
            None => None,
            Some(field) => match self.tokenize_with(field, letter)?.as_slice() {
                [id] => Some(*id),
                _ => None,
            },
        };
        lock(&self.letter_ids).insert(letter.to_string(), id);
        Ok(id)
    }

    /// The clip as base64 of a 16 kHz mono float WAV, cut to the model's window.
    fn clip_b64(&self, path: &Path) -> Result<std::sync::Arc<String>, ModelError> {
        let key = ClipKey::of(path).map_err(|e| {
            ModelError::Input(format!("cannot read audio file {}: {e}", path.display()))
        })?;
        if let Some((_, hit)) = lock(&self.clips).iter().find(|(k, _)| *k == key) {
            return Ok(hit.clone());
        }
        let opts = DecodeOptions::with_max_seconds(self.opts.audio_window_s);
        let clip = audio::load_clip(path, 16_000, &opts)?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut buf = std::io::Cursor::new(Vec::new());
        let wav_err = |e: hound::Error| {
            ModelError::Compute(format!("encoding {} as WAV: {e}", path.display()))
        };
        {
            let mut w = hound::WavWriter::new(&mut buf, spec).map_err(wav_err)?;
            for s in &clip.samples {
                w.write_sample(*s).map_err(wav_err)?;
            }
            w.finalize().map_err(wav_err)?;
        }
        let b64 =
            std::sync::Arc::new(base64::engine::general_purpose::STANDARD.encode(buf.into_inner()));
        let mut clips = lock(&self.clips);
        clips.push((key, b64.clone()));
        if clips.len() > 4 {
            clips.remove(0);
        }
        Ok(b64)
    }

    /// The request for `conv`: the clip inline, the prefill continued.
    fn request(
        &self,
        conv: &Conversation,
        audio: Option<&str>,
        max_tokens: usize,
        temperature: f64,
    ) -> ChatRequest {
        let (messages, cont) = messages_of(conv, audio);
        ChatRequest {
            model: Some(self.model.clone()),
            messages,
            max_tokens: Some(max_tokens),
            temperature: Some(temperature),
            continue_final_message: cont.then_some(true),
            // said either way: a trailing finished assistant turn is not to be continued
            // (llama.cpp continues one unless told)
            add_generation_prompt: Some(!cont),
            ..ChatRequest::default()
        }
    }

    fn audio_of(&self, conv: &Conversation) -> Result<Option<std::sync::Arc<String>>, ModelError> {
        conv.audio.as_deref().map(|p| self.clip_b64(p)).transpose()
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ModelError> {
        let url = format!("{}{path}", self.opts.url);
        self.send_json::<T, ()>(&url, None)
    }

    /// Adds a reply's token counts to [`Reasoner::stats`].
    fn count(&self, u: &super::openai::Usage) {
        let mut s = lock(&self.usage);
        s.tokens_generated += u.completion_tokens as u64;
        s.prompt_tokens += u.prompt_tokens as u64;
        let cached = u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens);
        if let Some(c) = cached {
            s.prompt_tokens_cached = Some(s.prompt_tokens_cached.unwrap_or(0) + c as u64);
        }
    }

    fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &ChatRequest,
    ) -> Result<T, ModelError> {
        let url = format!("{}{path}", self.opts.url);
        self.send_json(&url, Some(body))
    }

    fn send_json<T: serde::de::DeserializeOwned, B: Serialize>(
        &self,
        url: &str,
        body: Option<&B>,
    ) -> Result<T, ModelError> {
        let resp = self.send(url, body)?;
        let text = resp.text().map_err(|e| {
            ModelError::Compute(format!(
                "{url}: reading the reply: {}",
                crate::warn::chain_text(&e)
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            ModelError::Compute(format!(
                "{url}: the reply is not what an OpenAI-compatible server sends ({e}): {}",
                text.chars().take(200).collect::<String>()
            ))
        })
    }

    /// Sends a request (GET without a body, POST with one), trying again on 429 and 503 with
    /// backoff (the server's Retry-After when it gives one); any other refusal is a named error.
    fn send<B: Serialize>(&self, url: &str, body: Option<&B>) -> Result<Response, ModelError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ModelError::Input(format!("encoding the request: {e}")))?;
        let mut attempt = 0;
        loop {
            let mut rb = match &bytes {
                Some(b) => self
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone()),
                None => self.http.get(url),
            };
            if let Some(k) = &self.opts.api_key {
                rb = rb.bearer_auth(k);
            }
            {
                let mut t = lock(&self.traffic);
                t.requests += 1;
                t.bytes_sent += bytes.as_ref().map_or(0, |b| b.len() as u64);
            }
            let resp = rb.send().map_err(|e| self.network_error(url, &e))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let busy = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            if busy && attempt < RETRIES {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(|s| s.clamp(0.05, 30.0))
                    .unwrap_or(0.25 * f64::from(1u32 << attempt));
                attempt += 1;
                std::thread::sleep(Duration::from_secs_f64(wait));
                continue;
            }
            return Err(status_error(url, status, resp, attempt));
        }
    }

    fn network_error(&self, url: &str, e: &reqwest::Error) -> ModelError {
        let why = crate::warn::chain_text(e);
        let what = if e.is_timeout() {
            format!(
                "no reply within {} s (raise --timeout, or check the server's load)",
                self.opts.timeout.as_secs()
            )
        } else if e.is_connect() {
            if why.contains("dns") || why.contains("resolve") || why.contains("lookup") {
                "the host name does not resolve (check the URL)".to_string()
            } else if why.to_lowercase().contains("certificate") || why.contains("tls") {
                "the TLS handshake failed (check https vs http and the server's certificate)"
                    .to_string()
            } else {
                "cannot connect: is the server running and listening there? (faithscope serve, vllm serve, llama-server)".to_string()
            }
        } else {
            "the request failed".to_string()
        };
        ModelError::Load(format!("{url}: {what}: {why}"))
    }
}

/// A refusal by status, with the server's own message.
fn status_error(url: &str, status: StatusCode, resp: Response, retries: u32) -> ModelError {
    let body = resp.text().unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| body.chars().take(300).collect());
    let hint = match status.as_u16() {
        401 | 403 => "the server refused the API key: set FAITHSCOPE_API_KEY (or OPENAI_API_KEY) to the key it expects".to_string(),
        404 => "not found: check the URL (it ends in /v1) and --served-model".to_string(),
        413 => "the request is too large for the server (a long clip? raise the server's body limit)".to_string(),
        429 | 503 => format!("the server is busy and still was after {retries} retries; try again later or lower the concurrency"),
        _ => "the server refused the request".to_string(),
    };
    ModelError::Input(format!("{url}: HTTP {status}: {hint}: {message}"))
}

/// Each letter's log-prob in a reply's first position (the chosen token and its alternatives),
/// found by token id where the letter's id is known, else by the token's text; the letters not
/// there get minus infinity and are returned apart.
fn letter_logprobs(
    first: &super::openai::TokenLogprob,
    letters: &[String],
    ids: &[Option<u32>],
) -> (Vec<f32>, Vec<String>) {
    let mut missing = Vec::new();
    let logprobs = letters
        .iter()
        .zip(ids)
        .map(|(l, id)| {
            let hit = std::iter::once((first.id, first.token.as_str(), first.logprob))
                .chain(
                    first
                        .top_logprobs
                        .iter()
                        .map(|a| (a.id, a.token.as_str(), a.logprob)),
                )
                .find(|(tid, tok, _)| match (id, tid) {
                    (Some(want), Some(got)) => want == got,
                    _ => tok.trim() == l,
                });
            match hit {
                Some((_, _, lp)) => lp as f32,
                None => {
                    missing.push(l.clone());
                    f32::NEG_INFINITY
                }
            }
        })
        .collect();
    (logprobs, missing)
}

/// The first generated token's log-probs, if the reply has them.
fn first_logprobs(c: &ChatCompletion) -> Option<&super::openai::TokenLogprob> {
    c.choices.first()?.logprobs.as_ref()?.content.first()
}

impl Reasoner for RemoteReasoner {
    fn name(&self) -> &str {
        &self.name
    }

    /// All at once, each on a connection of its own (the server batches them); in order, one
    /// request's error not stopping the others.
    fn generate_batch(
        &self,
        requests: &[(Conversation, GenParams)],
    ) -> Vec<Result<Generation, ModelError>> {
        crate::par::map(requests, requests.len(), |(c, p)| {
            self.generate(c, p, &mut |_| ControlFlow::Continue(()))
        })
    }

    fn generate(
        &self,
        conv: &Conversation,
        params: &GenParams,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ModelError> {
        let audio = self.audio_of(conv)?;
        let mut req = self.request(
            conv,
            audio.as_deref().map(String::as_str),
            params.max_tokens,
            params.temperature,
        );
        req.stream = true;
        req.stream_options = Some(serde_json::json!({ "include_usage": true }));
        req.top_p = Some(params.top_p);
        req.seed = Some(params.seed);
        req.stop = (!params.stop.is_empty()).then(|| Stop::Many(params.stop.clone()));
        let url = format!("{}/chat/completions", self.opts.url);
        let resp = self.send(&url, Some(&req))?;
        // llama-server repeats the prefill at the start of the first delta
        let mut strip = conv.prefill.clone().filter(|p| !p.is_empty());
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut stop = None;
        for event in sse_events(resp) {
            let data = event
                .map_err(|e| ModelError::Compute(format!("{url}: the stream broke off: {e}")))?;
            if data.trim() == "[DONE]" {
                stop.get_or_insert(StopReason::EndToken);
                break;
            }
            let chunk: ChatChunk = serde_json::from_str(&data).map_err(|e| {
                ModelError::Compute(format!(
                    "{url}: a stream chunk is not a chat.completion.chunk ({e}): {data}"
                ))
            })?;
            if let Some(u) = &chunk.usage {
                self.count(u);
            }
            let Some(choice) = chunk.choices.into_iter().next() else {
                continue;
            };
            // thinking comes on its own channel (llama.cpp: reasoning_content, vLLM: reasoning)
            for r in [&choice.delta.reasoning_content, &choice.delta.reasoning]
                .into_iter()
                .flatten()
            {
                reasoning.push_str(r);
            }
            if let Some(mut piece) = choice.delta.content.filter(|c| !c.is_empty()) {
                if let Some(p) = strip.take() {
                    if let Some(rest) = piece.strip_prefix(p.as_str()) {
                        piece = rest.to_string();
                    }
                }
                if !piece.is_empty() {
                    text.push_str(&piece);
                    if on_delta(&piece).is_break() {
                        // dropping the response closes the connection: the server stops
                        return Ok(Generation {
                            text,
                            tokens: Vec::new(),
                            stop: StopReason::Cancelled,
                            reasoning,
                        });
                    }
                }
            }
            if let Some(f) = choice.finish_reason {
                stop = Some(match f.as_str() {
                    "length" => StopReason::MaxTokens,
                    _ if params.stop.iter().any(|s| text.ends_with(s.as_str())) => {
                        StopReason::StopString
                    }
                    _ => StopReason::EndToken,
                });
            }
        }
        let stop = stop.ok_or_else(|| {
            ModelError::Compute(format!(
                "{url}: the stream ended before its last chunk (no finish_reason, no [DONE]): the server went away mid-generation"
            ))
        })?;
        Ok(Generation {
            text,
            tokens: Vec::new(),
            stop,
            reasoning,
        })
    }

    fn choice_probs(
        &self,
        conv: &Conversation,
        letters: &[String],
    ) -> Result<ChoiceProbs, ModelError> {
        super::check_letters(letters)?;
        if !self.caps.logprobs {
            return Err(ModelError::Input(format!(
                "{} returns no log-probabilities, so the choice letters' probabilities cannot be read; use a server that does (vLLM, llama-server, faithscope serve)",
                self.opts.url
            )));
        }
        let ids: Vec<Option<u32>> = letters
            .iter()
            .map(|l| self.letter_id(l))
            .collect::<Result<_, _>>()?;
        let audio = self.audio_of(conv)?;
        let mut req = self.request(conv, audio.as_deref().map(String::as_str), 1, 0.0);
        req.logprobs = Some(true);
        req.top_logprobs = Some(self.caps.top_logprobs.max(1));
        if self.caps.letter_ids && ids.iter().all(Option::is_some) {
            // the letters' own log-probs come back exactly: no long list of alternatives
            req.logprob_token_ids = Some(ids.iter().flatten().copied().collect());
            req.top_logprobs = Some(1);
        }
        let c: ChatCompletion = self.post_json("/chat/completions", &req)?;
        if let Some(u) = &c.usage {
            self.count(u);
        }
        let Some(first) = first_logprobs(&c) else {
            return Err(ModelError::Compute(format!(
                "{}/chat/completions: the reply has no log-probs although they were asked for",
                self.opts.url
            )));
        };
        let (logprobs, missing) = letter_logprobs(first, letters, &ids);
        if logprobs.iter().all(|l| l.is_infinite()) {
            return Err(ModelError::Compute(format!(
                "{}: none of the letters {} is among the server's top {} next tokens; the answer cue may not end where a letter follows",
                self.opts.url,
                letters.join(", "),
                self.caps.top_logprobs
            )));
        }
        if !missing.is_empty() {
            crate::warn::warn(&format!(
                "{}: letters {} are not among the server's top {} next tokens, so their probabilities are taken as 0 and the others' are upper bounds (the server does not return chosen token ids)",
                self.name,
                missing.join(", "),
                self.caps.top_logprobs
            ));
        }
        let mut probs = ChoiceProbs::from_logprobs(letters.to_vec(), logprobs);
        probs.missing = missing;
        Ok(probs)
    }

    fn has_logprobs(&self) -> bool {
        self.caps.logprobs
    }

    fn describe(&self) -> Option<String> {
        let c = &self.caps;
        let answers = match (c.logprobs, c.letter_ids) {
            (false, _) => {
                "no log-probs: answers read from generated text, shown without bars".to_string()
            }
            (true, true) => "letter log-probs exact (logprob_token_ids)".to_string(),
            (true, false) => format!("letter log-probs from the top {}", c.top_logprobs),
        };
        Some(format!(
            "{} served at {}: {answers}; prefill {}; tokenize {}",
            self.model,
            self.host,
            if c.prefill { "yes" } else { "no" },
            c.tokenize.unwrap_or("no")
        ))
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        let field = self.caps.tokenize?;
        self.tokenize_with(field, text).ok().map(|t| t.len())
    }

    fn audio_window_seconds(&self) -> Option<f64> {
        Some(self.opts.audio_window_s)
    }

    /// The token counts the server reported (`usage`): generated, prompt, and cached where it
    /// says (vLLM with `--enable-prompt-tokens-details`).
    fn stats(&self) -> ModelStats {
        *lock(&self.usage)
    }
}

/// The `data` fields of a server-sent event stream, read as they arrive (the parser is
/// eventsource-stream's; the body is read in pieces from the blocking response).
fn sse_events(resp: Response) -> impl Iterator<Item = Result<String, String>> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let mut resp = resp;
    let chunks = futures::stream::iter(std::iter::from_fn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        match resp.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok::<Vec<u8>, std::io::Error>(buf))
            }
            Err(e) => Some(Err(e)),
        }
    }));
    let events = chunks
        .eventsource()
        .map(|r| r.map(|e| e.data).map_err(|e| e.to_string()));
    futures::executor::block_on_stream(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::openai::{TokenLogprob, TopLogprob};

    #[test]
    fn letters_are_found_by_id_else_by_text_and_the_missing_ones_named() {
        let alt = |token: &str, logprob: f64, id: Option<u32>| TopLogprob {
            token: token.into(),
            logprob,
            bytes: None,
            id,
        };
        let first = TokenLogprob {
            token: "B".into(),
            logprob: -0.1,
            bytes: None,
            id: Some(33),
            top_logprobs: vec![alt("B", -0.1, Some(33)), alt(" A", -2.5, None)],
        };
        let letters: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let (lp, missing) = letter_logprobs(&first, &letters, &[None, Some(33), None]);
        assert_eq!(lp[..2], [-2.5, -0.1]);
        assert!(lp[2].is_infinite());
        assert_eq!(missing, ["C"]);
        let p = ChoiceProbs::from_logprobs(letters, lp);
        assert_eq!(p.probs[2], 0.0);
        // an id that does not match is not taken for the letter, whatever its text
        let (_, missing) = letter_logprobs(&first, &["B".to_string()], &[Some(7)]);
        assert_eq!(missing, ["B"]);
    }
}
