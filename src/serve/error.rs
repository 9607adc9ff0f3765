//! The one error type of the server: an HTTP status with OpenAI's error body
//! `{"error": {"message", "type", "code"}}`, and the request-body reader that turns malformed,
//! oversized or misspelt bodies into such errors (axum's own rejections are plain text).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::model::openai::{ErrorBody, ErrorDetail};
use crate::model::ModelError;

/// A failed request: status, OpenAI error type and code, and a message saying what to change.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI's `type` (`invalid_request_error`, `authentication_error`, ...).
    pub kind: &'static str,
    /// OpenAI's `code`, when there is a specific one.
    pub code: Option<&'static str>,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Seconds for a `Retry-After` header (busy server).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is wrong; the message names the field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 401: no or a wrong API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
            .with_code("invalid_api_key")
    }

    /// 404: no such route or model.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
    }

    /// 413: the body is over `--max-body-mb`.
    pub fn too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!(
                "the request body is larger than this server's limit of {} MB; send a shorter clip or restart the server with a larger --max-body-mb",
                limit_bytes >> 20
            ),
        )
        .with_code("request_too_large")
    }

    /// 503 with `Retry-After`: `--queue` requests are already in flight.
    pub fn busy(queue: usize) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!(
                "the server is busy: {queue} requests are in flight (--queue {queue}); retry shortly"
            ),
        )
        .with_code("server_busy");
        e.retry_after = Some(1);
        e
    }

    /// 504: the request ran past `--timeout-s`.
    pub fn timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            format!("the request took longer than this server's limit of {seconds} s (--timeout-s); ask for fewer tokens or raise the limit"),
        )
        .with_code("timeout")
    }

    /// 500: the model failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The same error with an OpenAI `code`.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                code: self.code.map(Into::into),
            },
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Input(_) | ModelError::Audio(_) => ApiError::bad_request(e.to_string()),
            ModelError::Load(_) | ModelError::Compute(_) => {
                ApiError::internal(format!("the model failed: {e}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// Reads a whole request body, refusing it with 413 once it passes `limit` bytes (the rest is
/// read and dropped, up to 4 times the limit, so that the client gets to read the answer).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit.saturating_mul(4) {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(buf.into())
}

/// Reads and parses a JSON body before `deadline` (408 after it).
pub async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<T, ApiError> {
    match tokio::time::timeout_at(deadline, read_body(body, limit)).await {
        Ok(bytes) => parse_json(&bytes?),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "the request body did not arrive in time (--timeout-s)",
        )
        .with_code("timeout")),
    }
}

/// Parses a JSON body; the message says where it is malformed (serde's line and column) or
/// which field is unknown or wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof => "the request body is not valid JSON",
            Category::Data | Category::Io => "the request body does not match the API",
        };
        let hint = part_hint(bytes)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        ApiError::bad_request(format!("{what}: {e}{hint}"))
    })
}

/// A clearer reason for the most common mismatch serde can only call "did not match any
/// variant": a content part of a type other than `text` and `input_audio`.
fn part_hint(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    for (i, m) in v.get("messages")?.as_array()?.iter().enumerate() {
        let Some(parts) = m.get("content").and_then(|c| c.as_array()) else {
            continue;
        };
        for (j, p) in parts.iter().enumerate() {
            let kind = p.get("type").and_then(|t| t.as_str()).unwrap_or("");
            if kind != "text" && kind != "input_audio" {
                return Some(format!(
                    "messages[{i}].content[{j}] has type \"{kind}\"; supported: text, input_audio (base64 WAV)"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::openai::ChatRequest;

    #[test]
    fn messages_name_the_problem() {
        let e = parse_json::<ChatRequest>(b"{\"messages\": [}").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("line 1 column"), "{}", e.message);
        let e = parse_json::<ChatRequest>(br#"{"messages": [], "temprature": 0}"#).unwrap_err();
        assert!(e.message.contains("temprature"), "{}", e.message);
        let body = br#"{"messages": [{"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": "x"}}]}]}"#;
        let e = parse_json::<ChatRequest>(body).unwrap_err();
        assert!(e.message.contains("\"audio_url\""), "{}", e.message);
        let json = serde_json::to_value(ApiError::busy(8).body()).unwrap();
        assert_eq!(json["error"]["code"], "server_busy");
        assert_eq!(json["error"]["type"], "server_error");
    }
}
