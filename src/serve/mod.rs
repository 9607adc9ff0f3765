//! `faithscope serve`: the candle backend behind an OpenAI-compatible HTTP API, so a GPU box
//! can serve a model to faithscope clients elsewhere (docs/REMOTE.md).
//!
//! Endpoints: `GET /health`, `GET /v1/models`, `POST /v1/chat/completions` (plain and
//! streamed, prefill, next-token log-probs), `POST /tokenize` (and `/v1/tokenize`), and
//! `GET /v1/stats` (work counters). Every error is OpenAI's JSON error body. The model's thread
//! decodes up to `--batch` requests together, a new one joining at the next step (continuous
//! batching, [`batcher`]); at most `--queue` requests are in flight, more get 503 at once.

pub mod batcher;
pub mod chat;
pub mod clips;
pub mod error;
pub mod think;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::model::candle_backend::CandleReasoner;
use crate::model::openai::{ModelCard, ModelList, TokenizeRequest, TokenizeResponse};
use crate::model::Reasoner;
use clips::ClipStore;
use error::{read_json, ApiError};

/// The server's settings (from the command line).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The model id clients name (`--served-model-name`).
    pub name: String,
    /// Requests must carry `Authorization: Bearer KEY` (all but `/health`).
    pub api_key: Option<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest clip.
    pub max_audio_seconds: f64,
    /// Most requests in flight (running or waiting for the model).
    pub queue: usize,
    /// Most requests decoded together (`--batch`).
    pub batch: usize,
    /// Longest a request may take, waiting included.
    pub timeout: Duration,
    /// Refuse log-probabilities, as hosted APIs do (`--no-logprobs`: to try clients' fallback).
    pub no_logprobs: bool,
    /// Text between `<think>` and `</think>` goes to the reasoning channel (`--think-tags`).
    pub think_tags: bool,
}

/// Request counters, for `/v1/stats` and tests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Chat requests admitted and parsed.
    pub accepted: AtomicU64,
    /// Chat requests answered in full.
    pub completed: AtomicU64,
    /// Generations stopped because the client went away.
    pub cancelled: AtomicU64,
    /// Requests past the timeout.
    pub timed_out: AtomicU64,
    /// Requests refused because the queue was full.
    pub busy: AtomicU64,
    /// Decode steps and their batch sizes.
    pub batch: batcher::BatchCounters,
}

impl Counters {
    /// The timeout error, counted.
    pub fn timed_out(&self, timeout: Duration) -> error::ApiError {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
        error::ApiError::timeout(timeout.as_secs())
    }
}

/// What the handlers share.
pub struct AppState {
    /// The model.
    pub model: Arc<CandleReasoner>,
    /// The settings.
    pub opts: ServeOptions,
    /// Received clips as files.
    pub clips: ClipStore,
    /// `--queue` permits; a chat request holds one until its work ends.
    pub gate: Arc<Semaphore>,
    /// The model's thread, which takes checked requests.
    pub work: std::sync::mpsc::Sender<batcher::Work>,
    /// Counters.
    pub counters: Arc<Counters>,
}

impl AppState {
    /// The state for a loaded model; clips go to a fresh per-process folder under the system's
    /// temporary directory (the folders of killed servers are swept first); starts the model's
    /// thread.
    pub fn new(model: Arc<CandleReasoner>, opts: ServeOptions) -> std::io::Result<Self> {
        const PREFIX: &str = "faithscope-serve-";
        let tmp = std::env::temp_dir();
        ClipStore::sweep_stale(&tmp, PREFIX);
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        let counters = Arc::new(Counters::default());
        let work = batcher::Batcher {
            model: model.clone(),
            batch: opts.batch.max(1),
            think_tags: opts.think_tags,
            timeout: opts.timeout,
            counters: counters.clone(),
        }
        .start()?;
        Ok(Self {
            clips: ClipStore::create(dir, opts.max_audio_seconds)?,
            gate: Arc::new(Semaphore::new(opts.queue.max(1))),
            model,
            opts,
            work,
            counters,
        })
    }
}

/// The routes, with the API key checked on all but `/health`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/tokenize", post(tokenize))
        .route("/v1/tokenize", post(tokenize))
        .route("/v1/stats", get(stats))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .route("/health", get(health))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(key) = &st.opts.api_key else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if same_key(g.trim().as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::unauthorized("the API key is wrong").into_response(),
        None => ApiError::unauthorized(
            "this server needs an API key: send the header `Authorization: Bearer KEY`",
        )
        .into_response(),
    }
}

/// Compares keys in time independent of where they differ.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}; this server has GET /health, GET /v1/models, POST /v1/chat/completions, POST /tokenize, GET /v1/stats",
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    let mut e = ApiError::not_found(format!("{} does not take {method}", uri.path()));
    e.status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    e
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn models(State(st): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![ModelCard {
            id: st.opts.name.clone(),
            object: "model".into(),
            owned_by: "faithscope".into(),
            max_model_len: Some(st.model.max_context()),
            audio_window_seconds: st.model.audio_window_seconds(),
        }],
    })
}

async fn stats(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let c = &st.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Json(json!({
        "in_flight": st.opts.queue.max(1) - st.gate.available_permits(),
        "queue": st.opts.queue,
        "requests": {
            "accepted": get(&c.accepted),
            "completed": get(&c.completed),
            "cancelled": get(&c.cancelled),
            "timed_out": get(&c.timed_out),
            "busy": get(&c.busy),
        },
        "batch": {
            "max": st.opts.batch,
            "steps": get(&c.batch.steps),
            "rows": get(&c.batch.rows),
            "largest": get(&c.batch.largest),
        },
        "model": st.model.stats(),
    }))
}

async fn tokenize(State(st): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let deadline = tokio::time::Instant::now() + st.opts.timeout;
    let req: TokenizeRequest = read_json(req.into_body(), st.opts.max_body_bytes, deadline).await?;
    if let Some(m) = req.model.as_deref() {
        if m != st.opts.name {
            return Err(ApiError::not_found(format!(
                "model \"{m}\" is not served here; this server serves \"{}\"",
                st.opts.name
            ))
            .with_code("model_not_found"));
        }
    }
    let text = match (req.prompt, req.content) {
        (Some(t), None) | (None, Some(t)) => t,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either prompt or content, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "give prompt (or content) to tokenize",
            ))
        }
    };
    let tokens = st.model.tokenizer().encode(&text)?;
    Ok(Json(TokenizeResponse {
        count: Some(tokens.len()),
        tokens,
        max_model_len: Some(st.model.max_context()),
    })
    .into_response())
}

/// Serves on `listener` until Ctrl-C or SIGTERM, then deletes the clip folder.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state.clone());
    // replies go out at once, not held back for a delayed ACK (small SSE chunks, short replies)
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    state.clips.remove();
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_compare_whole() {
        assert!(super::same_key(b"abc", b"abc"));
        assert!(!super::same_key(b"abc", b"abd"));
        assert!(!super::same_key(b"ab", b"abc"));
    }
}
