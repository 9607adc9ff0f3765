//! `POST /v1/chat/completions`: a request becomes a [`Job`] (checked before any model work),
//! which the model's thread runs (super::batcher, batched with the other requests in flight)
//! and reports over a channel: plain replies collect the messages, streamed ones forward each
//! piece of text as an SSE chunk as it is produced. A closed connection or the deadline cancels
//! the generation.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candle_core::{Device, Tensor};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

use super::batcher::Work;
use super::error::{read_json, ApiError};
use super::AppState;
use crate::model::candle_backend::CandleReasoner;
use crate::model::openai::{
    conversation_of, ChatChunk, ChatCompletion, ChatRequest, Choice, ChoiceLogprobs, ChunkChoice,
    InputAudio, ReplyMessage, TokenLogprob, TopLogprob, Usage,
};
use crate::model::sampling::Sampler;
use crate::model::tokenizer::Tokenizer;
use crate::model::{Conversation, GenParams, StopReason};

/// `max_tokens` when the request gives none.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// `temperature` when the request gives none: OpenAI's default (1.0), not greedy.
pub const DEFAULT_TEMPERATURE: f64 = 1.0;

/// What a log-prob request asks for besides the chosen token.
#[derive(Debug, Clone, PartialEq)]
pub struct LogprobAsk {
    /// The most likely alternatives (`top_logprobs`).
    pub top: usize,
    /// These ids as well (`logprob_token_ids`).
    pub ids: Vec<u32>,
}

/// A checked request, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The prompt (its clip still to be stored).
    pub conv: Conversation,
    /// The clip and the message it came in, for error messages.
    pub audio: Option<(InputAudio, String)>,
    /// Decoding settings (`max_tokens` is capped at the context once the prompt is known).
    pub params: GenParams,
    /// `logprobs: true` (served for `max_tokens` 1).
    pub logprobs: Option<LogprobAsk>,
    /// Server-sent events.
    pub stream: bool,
    /// A last chunk with the token counts (`stream_options.include_usage`).
    pub stream_usage: bool,
}

impl Job {
    /// Checks a request against what this server serves; errors name the field.
    pub fn of(req: ChatRequest, served: &str) -> Result<Job, ApiError> {
        if let Some(m) = req.model.as_deref() {
            if m != served {
                return Err(ApiError::not_found(format!(
                    "model \"{m}\" is not served here; this server serves \"{served}\" (GET /v1/models)"
                ))
                .with_code("model_not_found"));
            }
        }
        let cont = req.continue_final_message == Some(true);
        if cont && req.add_generation_prompt == Some(true) {
            return Err(ApiError::bad_request(
                "continue_final_message and add_generation_prompt cannot both be true; set add_generation_prompt to false to continue the last message",
            ));
        }
        // llama.cpp's way too: a trailing assistant message is continued unless a new turn is
        // asked for explicitly
        let trailing_assistant = req.messages.last().is_some_and(|m| m.role == "assistant");
        let continue_last = cont || (trailing_assistant && req.add_generation_prompt != Some(true));
        let max_tokens = req
            .max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS);
        if max_tokens == 0 {
            return Err(ApiError::bad_request("max_tokens must be at least 1"));
        }
        let logprobs = if req.logprobs == Some(true) {
            if req.stream {
                return Err(ApiError::bad_request(
                    "logprobs are served without stream only; drop stream or logprobs",
                ));
            }
            if max_tokens != 1 {
                return Err(ApiError::bad_request(format!(
                    "logprobs are served for max_tokens 1 only (the next-token read after an answer cue), got max_tokens {max_tokens}"
                )));
            }
            Some(LogprobAsk {
                top: req.top_logprobs.unwrap_or(0),
                ids: req.logprob_token_ids.clone().unwrap_or_default(),
            })
        } else {
            if req.top_logprobs.is_some_and(|k| k > 0) || req.logprob_token_ids.is_some() {
                return Err(ApiError::bad_request(
                    "top_logprobs and logprob_token_ids need logprobs: true",
                ));
            }
            None
        };
        let (conv, audio) = conversation_of(&req.messages, continue_last)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let audio = audio.map(|a| {
            let at = req
                .messages
                .iter()
                .position(|m| m.role == "user")
                .map_or("messages".to_string(), |i| format!("messages[{i}]"));
            (a, at)
        });
        let params = GenParams {
            max_tokens,
            temperature: req.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: req.top_p.unwrap_or(1.0),
            seed: req.seed.unwrap_or_else(rand::random),
            stop: req
                .stop
                .map(|s| s.into_vec())
                .unwrap_or_default()
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
        };
        // the sampler's own checks (temperature, top_p), before any work
        Sampler::new(&params)?;
        Ok(Job {
            conv,
            audio,
            params,
            logprobs,
            stream: req.stream,
            stream_usage: req
                .stream_options
                .as_ref()
                .and_then(|o| o.get("include_usage"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }
}

/// What the model's side reports.
#[derive(Debug)]
pub enum Msg {
    /// The prompt is ready and fits; generation starts.
    Started { prompt_tokens: usize },
    /// A piece of text (streamed jobs only); `reasoning` for the reasoning channel.
    Delta { text: String, reasoning: bool },
    /// The end.
    Finished(Finished),
    /// The job failed (before or during generation).
    Failed(ApiError),
}

/// A reply's end.
#[derive(Debug)]
pub struct Finished {
    /// The text (the answer channel's, with --think-tags).
    pub text: String,
    /// The reasoning channel's text (with --think-tags).
    pub reasoning: String,
    /// Tokens generated.
    pub tokens: usize,
    /// OpenAI's `finish_reason`.
    pub finish: &'static str,
    /// The next-token log-probs asked for.
    pub logprobs: Option<ChoiceLogprobs>,
}

/// Sets the flag when dropped: the handler (or its stream) is gone, so the work should stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The handler.
pub async fn chat_completions(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let deadline = Instant::now() + st.opts.timeout;
    let Ok(permit) = st.gate.clone().try_acquire_owned() else {
        st.counters.busy.fetch_add(1, Ordering::Relaxed);
        return ApiError::busy(st.opts.queue).into_response();
    };
    let body = read_json(req.into_body(), st.opts.max_body_bytes, deadline).await;
    let job = match body.and_then(|r: ChatRequest| {
        if st.opts.no_logprobs && r.logprobs == Some(true) {
            return Err(ApiError::bad_request(
                "this server returns no log-probabilities (started with --no-logprobs)",
            ));
        }
        Job::of(r, &st.opts.name)
    }) {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    st.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = unbounded_channel();
    let stream = job.stream;
    let stream_usage = job.stream_usage;
    {
        let st = st.clone();
        let cancel = cancel.clone();
        // the clip is decoded and stored off the runtime's threads, then the model's thread
        // takes the request (super::batcher)
        tokio::task::spawn_blocking(move || {
            let mut job = job;
            if let Some((audio, at)) = &job.audio {
                match st.clips.file_for(audio, at) {
                    Ok(f) => job.conv.audio = Some(f),
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return;
                    }
                }
            }
            let work = Work {
                job,
                cancel,
                deadline,
                tx: tx.clone(),
                permit,
            };
            if st.work.send(work).is_err() {
                let _ = tx.send(Msg::Failed(ApiError::internal(
                    "the model's thread has stopped (see the server's log)",
                )));
            }
        });
    }
    let guard = CancelOnDrop(cancel);
    if stream {
        streamed(st, rx, guard, deadline, stream_usage).await
    } else {
        complete(st, rx, guard, deadline).await
    }
}

fn timed_out(st: &AppState) -> ApiError {
    st.counters.timed_out(st.opts.timeout)
}

/// OpenAI's `finish_reason`.
pub fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndToken | StopReason::StopString => "stop",
        StopReason::MaxTokens => "length",
        StopReason::Cancelled => "abort",
    }
}

/// One forward step: the full-vocabulary log-softmax of the next token, the token chosen from it
/// (argmax at temperature 0, else sampled), its top alternatives and the asked-for ids.
pub fn next_token(
    model: &CandleReasoner,
    job: &Job,
    ask: &LogprobAsk,
) -> Result<Finished, ApiError> {
    let lsm = model.next_token_logprobs(&job.conv)?;
    let vocab = lsm.len();
    if let Some(bad) = ask.ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(ApiError::bad_request(format!(
            "logprob_token_ids: id {bad} is outside the model's vocabulary of {vocab} tokens"
        )));
    }
    let row = Tensor::from_vec(lsm.clone(), vocab, &Device::Cpu)
        .map_err(|e| ApiError::internal(format!("sampling the next token: {e}")))?;
    let id = Sampler::new(&job.params)?.sample(&row)?;
    let tok = model.tokenizer();
    let entry = |id: u32| token_entry(tok, id, lsm[id as usize]);
    let mut top: Vec<TopLogprob> = top_ids(&lsm, ask.top).into_iter().map(entry).collect();
    for &extra in &ask.ids {
        if !top.iter().any(|t| t.id == Some(extra)) {
            top.push(entry(extra));
        }
    }
    let chosen = entry(id);
    let (text, finish) = if tok.end_tokens().contains(&id) {
        (String::new(), "stop")
    } else {
        let text = tok.decode(&[id])?;
        match job
            .params
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            Some(at) => (text[..at].to_string(), "stop"),
            None => (text, "length"),
        }
    };
    Ok(Finished {
        text,
        reasoning: String::new(),
        tokens: 1,
        finish,
        logprobs: Some(ChoiceLogprobs {
            content: vec![TokenLogprob {
                token: chosen.token,
                logprob: chosen.logprob,
                bytes: chosen.bytes,
                id: Some(id),
                top_logprobs: top,
            }],
        }),
    })
}

/// A token's entry: its text (lossy where it ends inside a character), bytes, id, log-prob.
fn token_entry(tok: &Tokenizer, id: u32, logprob: f32) -> TopLogprob {
    let bytes = tok.token_bytes(id).unwrap_or_default();
    TopLogprob {
        token: String::from_utf8_lossy(&bytes).into_owned(),
        logprob: logprob as f64,
        bytes: Some(bytes),
        id: Some(id),
    }
}

/// The `k` most likely ids, most likely first (ties: lower id first).
pub fn top_ids(lsm: &[f32], k: usize) -> Vec<u32> {
    let k = k.min(lsm.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &usize, b: &usize| lsm[*b].total_cmp(&lsm[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..lsm.len()).collect();
    idx.select_nth_unstable_by(k - 1, cmp);
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| i as u32).collect()
}

/// The id and time shared by a reply's chunks.
fn reply_id(st: &AppState) -> (String, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = st.counters.accepted.load(Ordering::Relaxed);
    (format!("chatcmpl-{:x}-{n}", now.as_millis()), now.as_secs())
}

/// Waits for the next message until the deadline; `None` with the error to answer.
async fn next_msg(
    st: &AppState,
    rx: &mut UnboundedReceiver<Msg>,
    deadline: Instant,
) -> Result<Msg, ApiError> {
    match tokio::time::timeout_at(deadline, rx.recv()).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(ApiError::internal(
            "the generation stopped without a result (see the server's log)",
        )),
        Err(_) => Err(timed_out(st)),
    }
}

async fn complete(
    st: Arc<AppState>,
    mut rx: UnboundedReceiver<Msg>,
    _guard: CancelOnDrop,
    deadline: Instant,
) -> Response {
    let mut prompt_tokens = 0;
    loop {
        match next_msg(&st, &mut rx, deadline).await {
            Ok(Msg::Started { prompt_tokens: n }) => prompt_tokens = n,
            Ok(Msg::Delta { .. }) => {}
            Ok(Msg::Failed(e)) | Err(e) => return e.into_response(),
            Ok(Msg::Finished(f)) => {
                let (id, created) = reply_id(&st);
                let reply = ChatCompletion {
                    id,
                    object: "chat.completion".into(),
                    created,
                    model: st.opts.name.clone(),
                    choices: vec![Choice {
                        index: 0,
                        message: ReplyMessage {
                            role: "assistant".into(),
                            content: Some(f.text),
                            reasoning_content: (!f.reasoning.is_empty()).then_some(f.reasoning),
                            ..ReplyMessage::default()
                        },
                        finish_reason: Some(f.finish.into()),
                        logprobs: f.logprobs,
                    }],
                    usage: Some(usage(prompt_tokens, f.tokens)),
                };
                return Json(reply).into_response();
            }
        }
    }
}

/// State of a streamed reply: the receiver, the cancel guard (dropped with the stream when the
/// client goes away), and where the stream is.
struct Streaming {
    st: Arc<AppState>,
    rx: UnboundedReceiver<Msg>,
    _guard: CancelOnDrop,
    deadline: Instant,
    id: String,
    created: u64,
    phase: Phase,
    /// The prompt's tokens, and whether a usage chunk ends the stream.
    prompt_tokens: usize,
    usage: bool,
}

#[derive(PartialEq)]
enum Phase {
    Role,
    Body,
    /// The usage chunk is due (tokens generated).
    Usage(usize),
    Done,
    End,
}

/// The token counts of a reply.
fn usage(prompt_tokens: usize, completion_tokens: usize) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        prompt_tokens_details: None,
    }
}

impl Streaming {
    fn chunk(&self, delta: ReplyMessage, finish: Option<&str>) -> Event {
        let chunk = ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.st.opts.name.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(Into::into),
            }],
            usage: None,
        };
        Event::default().data(serde_json::to_string(&chunk).unwrap_or_default())
    }

    /// The next event: the role chunk, the text chunks, the final chunk (or an error event),
    /// then `[DONE]`.
    async fn next_event(&mut self) -> Option<Event> {
        match self.phase {
            Phase::Role => {
                self.phase = Phase::Body;
                let role = ReplyMessage {
                    role: "assistant".into(),
                    content: Some(String::new()),
                    ..ReplyMessage::default()
                };
                Some(self.chunk(role, None))
            }
            Phase::Body => {
                let msg = next_msg(&self.st, &mut self.rx, self.deadline).await;
                match msg {
                    Ok(Msg::Delta { text, reasoning }) => {
                        let delta = if reasoning {
                            ReplyMessage {
                                reasoning_content: Some(text),
                                ..ReplyMessage::default()
                            }
                        } else {
                            ReplyMessage {
                                content: Some(text),
                                ..ReplyMessage::default()
                            }
                        };
                        Some(self.chunk(delta, None))
                    }
                    Ok(Msg::Started { .. }) => Some(Event::default().comment("started")),
                    Ok(Msg::Finished(f)) => {
                        self.phase = if self.usage {
                            Phase::Usage(f.tokens)
                        } else {
                            Phase::Done
                        };
                        Some(self.chunk(ReplyMessage::default(), Some(f.finish)))
                    }
                    Ok(Msg::Failed(e)) | Err(e) => {
                        self.phase = Phase::Done;
                        let body = serde_json::to_string(&e.body()).unwrap_or_default();
                        Some(Event::default().data(body))
                    }
                }
            }
            Phase::Usage(tokens) => {
                self.phase = Phase::Done;
                let chunk = ChatChunk {
                    id: self.id.clone(),
                    object: "chat.completion.chunk".into(),
                    created: self.created,
                    model: self.st.opts.name.clone(),
                    choices: Vec::new(),
                    usage: Some(usage(self.prompt_tokens, tokens)),
                };
                Some(Event::default().data(serde_json::to_string(&chunk).unwrap_or_default()))
            }
            Phase::Done => {
                self.phase = Phase::End;
                Some(Event::default().data("[DONE]"))
            }
            Phase::End => None,
        }
    }
}

async fn streamed(
    st: Arc<AppState>,
    mut rx: UnboundedReceiver<Msg>,
    guard: CancelOnDrop,
    deadline: Instant,
    usage: bool,
) -> Response {
    // errors found before generation starts are plain error replies with their status
    let prompt_tokens = match next_msg(&st, &mut rx, deadline).await {
        Ok(Msg::Started { prompt_tokens }) => prompt_tokens,
        Ok(Msg::Failed(e)) | Err(e) => return e.into_response(),
        Ok(_) => return ApiError::internal("the generation started out of order").into_response(),
    };
    let (id, created) = reply_id(&st);
    let state = Streaming {
        st,
        rx,
        _guard: guard,
        deadline,
        id,
        created,
        phase: Phase::Role,
        prompt_tokens,
        usage,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let ev = s.next_event().await?;
        Some((Ok::<_, Infallible>(ev), s))
    });
    Sse::new(events).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::openai::{ChatMessage, Content};

    fn user(text: &str) -> ChatMessage {
        ChatMessage {
            role: "user".into(),
            content: Content::Text(text.into()),
        }
    }

    #[test]
    fn top_ids_are_the_largest_first() {
        assert_eq!(top_ids(&[-3.0, -0.5, -2.0, -0.5], 3), vec![1, 3, 2]);
        assert_eq!(top_ids(&[-1.0], 5), vec![0]);
        assert!(top_ids(&[-1.0], 0).is_empty());
    }

    #[test]
    fn requests_are_checked_before_work() {
        let base = ChatRequest {
            messages: vec![user("hi")],
            ..ChatRequest::default()
        };
        let job = Job::of(base.clone(), "m").unwrap();
        assert_eq!(job.params.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(job.params.temperature, DEFAULT_TEMPERATURE);
        let both = ChatRequest {
            continue_final_message: Some(true),
            add_generation_prompt: Some(true),
            ..base.clone()
        };
        assert_eq!(Job::of(both, "m").unwrap_err().status, 400);
        let other = ChatRequest {
            model: Some("x".into()),
            ..base.clone()
        };
        let e = Job::of(other, "m").unwrap_err();
        assert_eq!(e.status, 404);
        assert!(e.message.contains("\"m\""), "{}", e.message);
        let long = ChatRequest {
            logprobs: Some(true),
            max_tokens: Some(5),
            ..base.clone()
        };
        assert!(Job::of(long, "m")
            .unwrap_err()
            .message
            .contains("max_tokens 1"));
        // a trailing assistant message is continued without being asked
        let prefill = ChatRequest {
            messages: vec![
                user("hi"),
                ChatMessage {
                    role: "assistant".into(),
                    content: Content::Text("The answer is (".into()),
                },
            ],
            ..base
        };
        let job = Job::of(prefill, "m").unwrap();
        assert_eq!(job.conv.prefill.as_deref(), Some("The answer is ("));
    }
}
