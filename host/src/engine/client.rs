//! The AceStream engine HTTP API: start, stop, probe, open playback.
//!
//! Every call here has a timeout, and none of them touches players or
//! chooses engines. The HTTP client has no overall request timeout (one
//! peer's did, and it killed every stream after 60 s): streaming bodies are
//! bounded by the upstream reader's stall detection instead.

use std::time::Duration;

use reqwest::header::{ACCEPT_ENCODING, HeaderValue};
use serde::{Deserialize, Serialize};

use super::stats::{self, EngineStats};
use crate::content::ContentKey;

/// What the engine said when it accepted a start.
#[derive(Debug, Clone, Serialize)]
pub struct EngineSession {
    pub playback_url: String,
    pub stat_url: String,
    pub command_url: String,
    pub infohash: Option<String>,
    pub playback_session_id: Option<String>,
    pub is_live: i64,
}

/// Why an engine call failed; the HTTP layer maps each kind to a status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine answered with its own error message (e.g. "failed to load content").
    #[error("engine error: {0}")]
    Refused(String),
    /// No answer within the connection timeout.
    #[error("engine did not answer within {0:?}")]
    Timeout(Duration),
    /// Could not connect, or the connection broke.
    #[error("engine unreachable: {0}")]
    Unreachable(String),
    /// An HTTP status other than success.
    #[error("engine answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// An answer that is not the documented shape.
    #[error("engine answer not understood: {0}")]
    Malformed(String),
    /// acemux itself is out of a local resource (file descriptors, socket
    /// buffers, memory): says nothing about the engine's health.
    #[error("acemux is out of local resources: {0}")]
    Local(String),
}

impl EngineError {
    fn from_reqwest(e: reqwest::Error, timeout: Duration) -> Self {
        if is_local_resource_error(&e) {
            EngineError::Local(without_url(&e))
        } else if e.is_timeout() {
            EngineError::Timeout(timeout)
        } else if e.is_decode() {
            EngineError::Malformed(e.to_string())
        } else {
            EngineError::Unreachable(without_url(&e))
        }
    }
}

/// Whether an I/O error somewhere in `e`'s causes is this process running
/// out of something (EMFILE, ENFILE, ENOBUFS, ENOMEM) rather than the peer
/// failing.
fn is_local_resource_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// reqwest's message without the URL (which may carry tokens).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(&format!(" ({url})"), "").replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[derive(Deserialize)]
struct Envelope<T> {
    response: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StartResponse {
    playback_url: String,
    stat_url: String,
    command_url: String,
    infohash: Option<String>,
    playback_session_id: Option<String>,
    #[serde(default)]
    is_live: i64,
}

/// Largest service answer read (a search with its guide data is a few
/// hundred KiB).
pub const MAX_SERVICE_BYTES: usize = 4 << 20;

/// A shared HTTP client for all engines.
#[derive(Debug, Clone)]
pub struct EngineClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl EngineClient {
    /// `timeout` bounds connecting and every non-streaming call.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .user_agent("VLC/3.0.21 LibVLC/3.0.21")
            .redirect(reqwest::redirect::Policy::limited(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { http, timeout })
    }

    /// Asks the engine at `base` (`http://host:port`) to start `key` with a
    /// fresh random player id.
    pub async fn start(&self, base: &str, key: &ContentKey) -> Result<EngineSession, EngineError> {
        let pid = format!("{:016x}", rand::random::<u64>());
        let url = format!("{base}/ace/getstream");
        let mut query = vec![("format", "json")];
        query.extend(key.engine_query());
        query.push(("pid", pid.as_str()));
        let started: StartResponse = self.call(self.http.get(url).query(&query)).await?;
        Ok(EngineSession {
            playback_url: started.playback_url,
            stat_url: started.stat_url,
            command_url: started.command_url,
            infohash: started.infohash,
            playback_session_id: started.playback_session_id,
            is_live: started.is_live,
        })
    }

    /// Stops an engine session. A session the engine no longer knows counts
    /// as stopped.
    pub async fn stop(&self, session: &EngineSession) -> Result<(), EngineError> {
        self.stop_command(&session.command_url).await
    }

    /// Stops the engine session whose command URL this is.
    pub async fn stop_command(&self, command_url: &str) -> Result<(), EngineError> {
        let request = self.http.get(command_url).query(&[("method", "stop")]);
        match self.call::<serde_json::Value>(request).await {
            Ok(_) => Ok(()),
            Err(EngineError::Refused(msg)) if msg.contains("unknown playback session id") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The engine's statistics of one playback session (its `stat_url`).
    /// An answer of more than [`stats::MAX_STAT_BYTES`] is refused unread.
    pub async fn stat(&self, stat_url: &str) -> Result<EngineStats, EngineError> {
        let response = self.send(self.http.get(stat_url)).await?;
        let body = read_bounded(response, stats::MAX_STAT_BYTES, self.timeout).await?;
        let envelope: Envelope<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| EngineError::Malformed(format!("stat answer: {e}")))?;
        match (envelope.response, envelope.error) {
            (_, Some(error)) => Err(EngineError::Refused(error)),
            (response, None) => Ok(EngineStats::from_response(&response.unwrap_or_default())),
        }
    }

    /// A service call (`/server/api?method=search…`, `/search?…`) on the
    /// engine at `base`, with the engine's own access token: its `result`,
    /// or its `error` as [`EngineError::Refused`]. Answers over
    /// [`MAX_SERVICE_BYTES`] are refused.
    pub async fn service_call(
        &self,
        base: &str,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<serde_json::Value, EngineError> {
        let token_request =
            self.http.get(format!("{base}/server/api")).query(&[("method", "get_api_access_token")]);
        let token = self.service_result(token_request).await?;
        let token = token
            .get("token")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| EngineError::Malformed("access token answer without `token`".into()))?
            .to_owned();
        let request =
            self.http.get(format!("{base}{path}")).query(params).query(&[("token", token.as_str())]);
        self.service_result(request).await
    }

    /// Sends a call whose answer is `{"result": T, "error": ...}`.
    async fn service_result(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, EngineError> {
        let response = self.send(request).await?;
        let body = read_bounded(response, MAX_SERVICE_BYTES, self.timeout).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| EngineError::Malformed(format!("service answer: {e}")))?;
        match (answer.get("error"), answer.get("result")) {
            (Some(serde_json::Value::String(error)), _) => Err(EngineError::Refused(error.clone())),
            (_, Some(result)) => Ok(result.clone()),
            _ => Err(EngineError::Malformed("service answer without `result`".into())),
        }
    }

    /// [`EngineClient::probe`] taking an owned base URL (for joined futures).
    pub async fn probe_at(&self, base: String) -> Result<(), EngineError> {
        self.probe(&base).await
    }

    /// Health probe: the engine's status call must answer with a result.
    pub async fn probe(&self, base: &str) -> Result<(), EngineError> {
        let url = format!("{base}/server/api");
        let request = self.http.get(url).query(&[("api_version", "3"), ("method", "get_status")]);
        let response = self.send(request).await?;
        let body: serde_json::Value =
            response.json().await.map_err(|e| EngineError::from_reqwest(e, self.timeout))?;
        match body.get("error") {
            Some(serde_json::Value::String(msg)) => Err(EngineError::Refused(msg.clone())),
            _ if body.get("result").is_some() => Ok(()),
            _ => Err(EngineError::Malformed("status answer without `result`".into())),
        }
    }

    /// Opens the playback URL (following redirects) and returns once the
    /// headers arrived; the body is read by the caller.
    pub async fn open_playback(
        &self,
        url: &str,
        header_wait: Duration,
        extra_header: Option<(reqwest::header::HeaderName, &'static str)>,
    ) -> Result<reqwest::Response, EngineError> {
        let mut request = self.http.get(url).header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Some((name, value)) = extra_header {
            request = request.header(name, HeaderValue::from_static(value));
        }
        let response = tokio::time::timeout(header_wait, request.send())
            .await
            .map_err(|_| EngineError::Timeout(header_wait))?
            .map_err(|e| EngineError::from_reqwest(e, header_wait))?;
        let response = check_status(response).await?;
        check_stream_type(&response)?;
        Ok(response)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, EngineError> {
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| EngineError::from_reqwest(e, self.timeout))?;
        check_status(response).await
    }

    /// Sends a call whose answer is `{"response": T, "error": ...}`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, EngineError> {
        let response = self.send(request).await?;
        let envelope: Envelope<T> =
            response.json().await.map_err(|e| EngineError::from_reqwest(e, self.timeout))?;
        match (envelope.response, envelope.error) {
            (_, Some(error)) => Err(EngineError::Refused(error)),
            (Some(r), None) => Ok(r),
            (None, None) => Err(EngineError::Malformed("neither `response` nor `error`".into())),
        }
    }
}

/// The body of `response`, refused past `max` bytes (read within `timeout`).
async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, EngineError> {
    let mut body = Vec::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.map_err(|e| EngineError::from_reqwest(e, timeout))? {
            if body.len() + chunk.len() > max {
                return Err(EngineError::Malformed(format!("answer of more than {max} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| EngineError::Timeout(timeout))??;
    Ok(body)
}

async fn check_status(mut response: reqwest::Response) -> Result<reqwest::Response, EngineError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // What the engine says, for the log: its first bytes, not waited on
    // long (an error page may be endless, or never come).
    let first = tokio::time::timeout(ERROR_BODY_WAIT, response.chunk()).await;
    let body = match first {
        Ok(Ok(Some(bytes))) => {
            String::from_utf8_lossy(&bytes[..bytes.len().min(800)]).chars().take(200).collect()
        }
        _ => String::new(),
    };
    Err(EngineError::Status { status: status.as_u16(), body })
}

/// Longest wait for the first bytes of an error answer's body.
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);

/// A playback answer that says it is a page or a document, not a stream
/// (an engine's login or error page under HTTP 200): refused at once, not
/// read for an init timeout.
fn check_stream_type(response: &reqwest::Response) -> Result<(), EngineError> {
    let Some(kind) = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let kind = kind.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if matches!(kind.as_str(), "text/html" | "application/json" | "text/plain" | "application/xhtml+xml") {
        return Err(EngineError::Malformed(format!("the playback URL answered `{kind}`, not a stream")));
    }
    Ok(())
}
