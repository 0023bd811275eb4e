//! Every error a client sees: an HTTP status and a JSON body
//! `{"error": "<message>", "code": "<kind>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::content::ContentKeyError;
use crate::engine::{EngineError, SelectError};
use crate::stream::StreamError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before asking again (`Retry-After`), for a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl ApiError {
    /// The error's status and `Retry-After` with another body (the
    /// engine's answer shape, the Xtream API's).
    pub fn with_body(self, body: serde_json::Value) -> Response {
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "code": self.code});
        self.with_body(body)
    }
}

impl From<crate::access::AccessError> for ApiError {
    fn from(e: crate::access::AccessError) -> Self {
        use crate::access::AccessError;
        let (status, code) = match &e {
            AccessError::Missing => (StatusCode::UNAUTHORIZED, "token_required"),
            AccessError::Wrong => (StatusCode::FORBIDDEN, "wrong_token"),
            AccessError::Limited(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_failures"),
        };
        let retry_after = match &e {
            AccessError::Limited(wait) => Some(wait.as_secs().max(1)),
            _ => None,
        };
        Self { retry_after, ..Self::new(status, code, e.to_string()) }
    }
}

impl From<crate::access::plugin_check::PluginRefusal> for ApiError {
    fn from(e: crate::access::plugin_check::PluginRefusal) -> Self {
        use crate::access::plugin_check::PluginRefusal;
        match &e {
            PluginRefusal::Denied(_) => Self::new(StatusCode::FORBIDDEN, "denied", e.to_string()),
            PluginRefusal::CheckFailed => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "access_check_failed", e.to_string())
            }
        }
    }
}

impl From<ContentKeyError> for ApiError {
    fn from(e: ContentKeyError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_content_id", e.to_string())
    }
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        let (status, code) = match &e {
            StreamError::Select(SelectError::Refused(_)) => (StatusCode::FORBIDDEN, "refused"),
            StreamError::Select(SelectError::NoEngines) => (StatusCode::SERVICE_UNAVAILABLE, "no_engines"),
            StreamError::Select(SelectError::AtCapacity(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "at_capacity")
            }
            StreamError::Select(SelectError::UnknownEngine(_)) => (StatusCode::BAD_GATEWAY, "selector_error"),
            StreamError::Engine(EngineError::Timeout(_)) => (StatusCode::GATEWAY_TIMEOUT, "engine_timeout"),
            StreamError::Engine(EngineError::Local(_)) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            StreamError::Engine(_) => (StatusCode::BAD_GATEWAY, "engine_error"),
            StreamError::InitTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "init_timeout"),
            StreamError::UpstreamLost(_) => (StatusCode::BAD_GATEWAY, "upstream_lost"),
            StreamError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "stopped"),
            StreamError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            StreamError::Limit(_) => (StatusCode::SERVICE_UNAVAILABLE, "limit"),
            StreamError::UnknownChannel => (StatusCode::NOT_FOUND, "unknown_channel"),
            StreamError::UserLimit(_) => (StatusCode::TOO_MANY_REQUESTS, "user_limit"),
        };
        Self::new(status, code, e.to_string())
    }
}
