//! The engine's own playback API on acemux: `format=json` answers, and each
//! client's `playback_url`, `stat_url` and `command_url`.
//!
//! Answers keep the engine's shape, `{"response": …, "error": …}`. An
//! engine's refusal is answered as engines answer it, HTTP 200 with the
//! engine's message in `error`; acemux's own refusals (a malformed id, a
//! limit, no engine free) keep the engine's shape but carry the HTTP status
//! the rest of acemux uses (400, 503, …) and a `code`, which engine
//! clients read past: they look at `error` first.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use crate::content::ContentKey;
use crate::engine::EngineError;
use crate::engine::select::SelectRequest;
use crate::engine_api::{ClientPlayback, PlaybackFormat};
use crate::stream::{Player, SessionState, StreamError};

use super::getstream::stream_response;
use super::playlist::base_url;
use super::{ApiError, AppState, Connection};

/// The engine's answer to an unknown or finished playback.
const UNKNOWN_PLAYBACK: &str = "unknown playback session id";

/// `{"response": response, "error": null}`.
pub fn answer(response: Value) -> Response {
    Json(json!({"response": response, "error": null})).into_response()
}

/// `{"response": null, "error": message}` with HTTP 200, as engines answer.
pub fn engine_error(message: &str) -> Response {
    Json(json!({"response": null, "error": message})).into_response()
}

/// acemux's own refusal in the engine's shape, with acemux's status.
pub fn refusal(e: ApiError) -> Response {
    let body = json!({"response": null, "error": e.message, "code": e.code});
    e.with_body(body)
}

/// A stream that could not be had: the engine's refusal as the engine
/// answers it, anything else as acemux's refusal.
fn not_started(e: StreamError) -> Response {
    match &e {
        StreamError::Engine(EngineError::Refused(message)) => engine_error(message),
        _ => refusal(e.into()),
    }
}

/// Whether the client asked for the engine's JSON answer (`format=json`).
pub fn wants_json(query: &[(String, String)]) -> bool {
    query.iter().any(|(k, v)| k == "format" && v.eq_ignore_ascii_case("json"))
}

/// `format=json`: joins (or starts) the content's stream for a new client
/// and answers with its own three URLs once the engine accepted, without
/// waiting for the engine's prebuffering.
pub async fn open(
    app: &AppState,
    key: ContentKey,
    request: SelectRequest,
    format: PlaybackFormat,
    headers: &HeaderMap,
    user: Option<&crate::stream::UserPlayer>,
) -> Response {
    let slot = match app.registry.attach(key, request, user) {
        Ok(slot) => slot,
        Err(e) => return not_started(e),
    };
    if let Err(e) = slot.session().wait_ready().await {
        return not_started(e);
    }
    let playback = match app.engine_api.open(slot, format) {
        Ok(playback) => playback,
        Err(e) => return refusal(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "limit", e.to_string())),
    };
    let base = base_url(app, headers);
    let (infohash, is_live) = engine_facts(&playback);
    let token = &playback.token;
    let playback_url = match format {
        PlaybackFormat::Ts => format!("{base}/ace/r/{infohash}/{token}"),
        PlaybackFormat::Hls => format!("{base}/ace/m/{infohash}/{token}.m3u8"),
    };
    answer(json!({
        "playback_url": playback_url,
        "stat_url": format!("{base}/ace/stat/{infohash}/{token}"),
        "command_url": format!("{base}/ace/cmd/{infohash}/{token}"),
        "infohash": infohash,
        "playback_session_id": playback.playback_session_id,
        "is_live": is_live,
        "is_encrypted": 0,
        "client_session_id": -1,
    }))
}

/// The content's infohash (the engine's, else the key when it is one) and
/// whether it is live, as the engine said.
fn engine_facts(playback: &ClientPlayback) -> (String, i64) {
    let session = &playback.session;
    let es = session.info.lock().engine_session.clone();
    let infohash = es.as_ref().and_then(|e| e.infohash.clone()).unwrap_or_else(|| session.key.id.clone());
    (infohash, es.map_or(1, |e| e.is_live))
}

/// `GET /ace/r/{infohash}/{token}`: the client's MPEG-TS playback, an
/// ordinary player of the shared stream (keyframe join, keepalive); bytes
/// counted to the client; ends when the client stops.
pub async fn playback(
    State(app): State<AppState>,
    conn: Option<Extension<Connection>>,
    Path((_infohash, token)): Path<(String, String)>,
) -> Response {
    let Some(playback) = app.engine_api.get(&token) else {
        return refusal(ApiError::not_found(UNKNOWN_PLAYBACK));
    };
    let slot = playback.player_slot();
    if let Err(e) = slot.session().wait_ready().await {
        return not_started(e);
    }
    let client = conn.as_ref().map(|c| c.peer);
    let player =
        Player::new(slot, client, &app.registry.context().stream, conn.map(|c| c.write_timed_out.clone()));
    let open = OpenPlayback::new(playback);
    let stopped = open.0.stopped.clone().cancelled_owned();
    let body = player.into_stream().take_until(stopped).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            open.0.bytes.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    stream_response(Body::from_stream(body))
}

/// `GET /ace/m/{infohash}/{token}.m3u8`: the client's HLS playback, the
/// content's own HLS (a viewer of the same stream).
pub async fn hls_playback(
    State(app): State<AppState>,
    Path((_infohash, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = file.strip_suffix(".m3u8").unwrap_or(&file);
    let Some(playback) = app.engine_api.get(token) else {
        return refusal(ApiError::not_found(UNKNOWN_PLAYBACK));
    };
    playback.seen();
    let key = &playback.session.key;
    let target =
        format!("{}/ace/manifest.m3u8?{}={}", base_url(&app, &headers), key.key_type.engine_param(), key.id);
    (StatusCode::FOUND, [(axum::http::header::LOCATION, target)]).into_response()
}

/// A `playback_url` connection open: the client is present while it lasts.
struct OpenPlayback(std::sync::Arc<ClientPlayback>);

impl OpenPlayback {
    fn new(playback: std::sync::Arc<ClientPlayback>) -> Self {
        playback.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        playback.seen();
        Self(playback)
    }
}

impl Drop for OpenPlayback {
    fn drop(&mut self) {
        self.0.seen();
        self.0.open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `GET /ace/stat/{infohash}/{token}`: the engine's statistics of the
/// shared stream (from the stream's one poll), with acemux's own: players
/// of the stream and this client's bytes.
pub async fn stat(State(app): State<AppState>, Path((_infohash, token)): Path<(String, String)>) -> Response {
    let Some(playback) = app.engine_api.get(&token) else {
        return engine_error(UNKNOWN_PLAYBACK);
    };
    playback.seen();
    let session = &playback.session;
    let mut fields: Map<String, Value> =
        session.engine_stats.lock().as_ref().map(|l| l.stats.fields.clone()).unwrap_or_default();
    if !fields.contains_key("status") {
        let status = if session.state() == SessionState::Live { "dl" } else { "prebuf" };
        fields.insert("status".into(), json!(status));
    }
    let (infohash, is_live) = engine_facts(&playback);
    fields.insert("playback_session_id".into(), json!(playback.playback_session_id));
    fields.insert("infohash".into(), json!(infohash));
    fields.insert("is_live".into(), json!(is_live));
    fields.insert(
        "acemux".into(),
        json!({
            "players": session.player_count(),
            "client_bytes": playback.bytes.load(std::sync::atomic::Ordering::Relaxed),
            "state": session.state(),
        }),
    );
    answer(Value::Object(fields))
}

/// `GET /ace/cmd/{infohash}/{token}?method=stop`: ends this client's
/// playback only; the stream goes on for everyone else (its grace period
/// and engine stop follow when it was the last).
pub async fn command(
    State(app): State<AppState>,
    Path((_infohash, token)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let method = query.iter().find(|(k, _)| k == "method").map(|(_, v)| v.as_str());
    match method {
        Some("stop") if app.engine_api.stop(&token) => answer(json!("ok")),
        Some("stop") => engine_error(UNKNOWN_PLAYBACK),
        _ => engine_error("unknown method"),
    }
}
