//! Admin endpoints. When `ACEMUX_ADMIN_TOKEN` is set they require
//! `Authorization: Bearer <token>`; otherwise they are open (bind acemux to
//! a private address, or set the token).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Refuses the request unless it carries the admin token (when one is set).
pub fn require_admin(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.settings.admin_token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin token required (Authorization: Bearer …)",
        )),
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "wrong admin token")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `DELETE /proxy/sessions/{content}`: ends the stream on purpose (players
/// disconnected, engine stop sent, `stream_ended` with reason `stopped`).
pub async fn stop_session(
    State(app): State<AppState>,
    Path(content): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&app, &headers)?;
    let session = app
        .registry
        .find(&content)
        .ok_or_else(|| ApiError::not_found(format!("no stream session for `{content}`")))?;
    session.stop();
    Ok((StatusCode::ACCEPTED, axum::Json(serde_json::json!({"stopping": session.id}))).into_response())
}
