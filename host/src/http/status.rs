//! `/proxy/status`, `/proxy/sessions/{content}` and `/healthz`.
//!
//! The status document keeps the shape operators know from the original
//! proxy and adds buffer metrics per session and per player.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::stream::{Session, SessionState};

use super::{ApiError, AppState};

fn unix(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// One session as status shows it.
pub fn session_json(s: &Session) -> Value {
    let ring = s.ring.stats();
    let state = s.state();
    let info = s.info.lock();
    let engine = info.engine.clone();
    let es = info.engine_session.clone();
    let players: Vec<Value> = s
        .player_stats()
        .iter()
        .map(|p| {
            let offset = p.offset.load(Ordering::Relaxed);
            json!({
                "id": p.id,
                "client": p.client.map(|a| a.to_string()),
                "connected_seconds": p.connected_at.elapsed().as_secs_f64(),
                "bytes_sent": p.bytes_sent.load(Ordering::Relaxed),
                "lag_bytes": ring.appended_bytes.saturating_sub(offset),
                "skips": p.skips.load(Ordering::Relaxed),
                "skipped_bytes": p.skipped_bytes.load(Ordering::Relaxed),
            })
        })
        .collect();
    json!({
        "stream_id": s.id,
        "ace_id": s.key.id,
        "key_type": s.key.key_type,
        "state": state,
        "engine_id": engine.as_ref().map(|e| e.id.clone()),
        "engine_host": engine.as_ref().map(|e| e.host.clone()),
        "engine_port": engine.as_ref().map(|e| e.port),
        "container_id": engine.as_ref().and_then(|e| e.container_id.clone()),
        "playback_session_id": es.as_ref().and_then(|e| e.playback_session_id.clone()),
        "infohash": es.as_ref().and_then(|e| e.infohash.clone()),
        "is_live": es.as_ref().map(|e| e.is_live),
        "is_active": matches!(state, SessionState::Live | SessionState::Prebuffering | SessionState::Recovering),
        "client_count": s.player_count(),
        "created_at": unix(Some(info.created_at)),
        "started_at": unix(info.started_at),
        "ended_at": Value::Null,
        "error": info.error,
        "idle_seconds": info.idle_since.map_or(0.0, |t| t.elapsed().as_secs_f64()),
        "buffer": {
            "bytes": ring.bytes,
            "capacity_bytes": ring.capacity_bytes,
            "chunks": ring.chunks,
            "packets": ring.packets,
            "oldest_seq": ring.oldest_seq,
            "newest_seq": ring.next_seq.checked_sub(1),
            "appended_bytes": ring.appended_bytes,
            "span_seconds": ring.span_seconds,
            "keyframes": ring.keyframes,
        },
        "counters": s.counters.snapshot(),
        "players": players,
    })
}

pub async fn status(State(app): State<AppState>) -> Json<Value> {
    let sessions = app.registry.sessions();
    let active = sessions.iter().filter(|s| s.state() == SessionState::Live).count();
    let clients: usize = sessions.iter().map(|s| s.player_count()).sum();
    Json(json!({
        "running": true,
        "uptime_seconds": app.started_at.elapsed().as_secs_f64(),
        "total_sessions": app.registry.created_total(),
        "active_sessions": active,
        "total_clients": clients,
        "sessions": sessions.iter().map(|s| session_json(s)).collect::<Vec<_>>(),
        "engines": app.registry.context().pool.views(),
    }))
}

pub async fn session(
    State(app): State<AppState>,
    Path(content): Path<String>,
) -> Result<Json<Value>, ApiError> {
    app.registry
        .find(&content)
        .map(|s| Json(session_json(&s)))
        .ok_or_else(|| ApiError::not_found(format!("no stream session for `{content}`")))
}

pub async fn healthz(State(app): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "sessions": app.registry.sessions().len()}))
}
