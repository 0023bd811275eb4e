//! Admin endpoints. When `ACEMUX_ADMIN_TOKEN` is set they require
//! `Authorization: Bearer <token>` (see [`super::auth`]); otherwise they
//! are open (bind acemux to a private address, or set the token).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::{ApiError, AppState};

/// `DELETE /proxy/sessions/{content}`: ends the stream on purpose (players
/// disconnected, engine stop sent, `stream_ended` with reason `stopped`).
pub async fn stop_session(
    State(app): State<AppState>,
    Path(content): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Caller::of(&app, &headers).require_admin()?;
    let session = app
        .registry
        .find(&content)
        .ok_or_else(|| ApiError::not_found(format!("no stream session for `{content}`")))?;
    session.stop();
    Ok((StatusCode::ACCEPTED, axum::Json(serde_json::json!({"stopping": session.id}))).into_response())
}
