//! `/proxy/status`, `/proxy/sessions/{content}` and `/healthz`.
//!
//! The status document keeps the shape operators know from the original
//! proxy and adds buffer metrics per session and per player. With an admin
//! token set, `--status-access` decides who reads it: by default anyone,
//! but what would let a caller find a player or reach an engine directly
//! (player addresses, engine addresses and containers, engine session ids)
//! is left out for callers without the token.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::settings::StatusAccess;
use crate::hls::HlsOutput;
use crate::stream::{Session, SessionState};

use super::auth::Caller;
use super::{ApiError, AppState};

fn unix(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// How much of the status a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Full,
    /// No player addresses, engine addresses, containers or engine session ids.
    Redacted,
}

impl Detail {
    /// What `headers` may see, or why they may see nothing.
    pub fn for_caller(app: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let caller = Caller::of(app, headers);
        match app.front.status_access {
            StatusAccess::Open => Ok(Detail::Full),
            StatusAccess::Token => caller.require_admin().map(|()| Detail::Full),
            StatusAccess::Redacted if caller == Caller::Admin => Ok(Detail::Full),
            StatusAccess::Redacted => Ok(Detail::Redacted),
        }
    }

    /// `value`, unless redacted.
    pub fn show<T: Into<Value>>(self, value: T) -> Value {
        match self {
            Detail::Full => value.into(),
            Detail::Redacted => Value::Null,
        }
    }
}

/// One session as status shows it, with its HLS output if it has one.
pub fn session_json(s: &Session, hls: Option<&HlsOutput>, detail: Detail) -> Value {
    let ring = s.ring.stats();
    let state = s.state();
    let info = s.info.lock();
    let engine = info.engine.clone();
    let es = info.engine_session.clone();
    let mut players: Vec<Value> = s
        .player_stats()
        .iter()
        .map(|p| {
            let offset = p.offset.load(Ordering::Relaxed);
            json!({
                "kind": "ts",
                "id": p.id,
                "user": p.user.as_deref(),
                "client": detail.show(p.client.map(|a| a.to_string())),
                "connected_seconds": p.connected_at.elapsed().as_secs_f64(),
                "bytes_sent": p.bytes_sent.load(Ordering::Relaxed),
                "lag_bytes": ring.appended_bytes.saturating_sub(offset),
                "skips": p.skips.load(Ordering::Relaxed),
                "skipped_bytes": p.skipped_bytes.load(Ordering::Relaxed),
            })
        })
        .collect();
    let ts_players = players.len();
    let viewers = hls.map(HlsOutput::viewers).unwrap_or_default();
    players.extend(viewers.iter().map(|v| {
        json!({
            "kind": "hls",
            "id": format!("hls-{}", v.id),
            "user": v.user.as_deref(),
            "client": detail.show(v.client.map(|a| a.to_string())),
            "connected_seconds": v.since.elapsed().as_secs_f64(),
            "last_fetch_seconds": v.last_seen.elapsed().as_secs_f64(),
            "playlists": v.playlists,
        })
    }));
    json!({
        "stream_id": s.id,
        "ace_id": s.key.id,
        "key_type": s.key.key_type,
        // The id on the engine: the content's own, or the one its channel plays.
        "playing_id": s.playing().id,
        "channel": channel_json(s, detail),
        "state": state,
        "engine_id": detail.show(engine.as_ref().map(|e| e.id.clone())),
        "engine_host": detail.show(engine.as_ref().map(|e| e.host.clone())),
        "engine_port": detail.show(engine.as_ref().map(|e| e.port)),
        "container_id": detail.show(engine.as_ref().and_then(|e| e.container_id.clone())),
        // In a cluster: the instance whose stream this one reads (it owns
        // the content; this instance holds no engine session for it).
        "following": detail.show(info.following.clone()),
        "playback_session_id": detail.show(es.as_ref().and_then(|e| e.playback_session_id.clone())),
        "infohash": es.as_ref().and_then(|e| e.infohash.clone()),
        "is_live": es.as_ref().map(|e| e.is_live),
        "is_active": matches!(state, SessionState::Live | SessionState::Prebuffering | SessionState::Recovering),
        "client_count": s.player_count(),
        "ts_players": ts_players,
        "hls_viewers": viewers.len(),
        "created_at": unix(Some(info.created_at)),
        "started_at": unix(info.started_at),
        "ended_at": Value::Null,
        // Engine errors may carry the engine's address.
        "error": detail.show(info.error.clone()),
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
            "kernel_pages": ring.kernel_pages,
        },
        "counters": s.counters.snapshot(),
        "engine_stats": engine_stats_json(s),
        "hls": hls.map(HlsOutput::stats),
        "players": players,
    })
}

/// A channel's ids, which it plays, their backoffs and its latest
/// switches; `null` for a content asked for by its own id. Errors may
/// carry an engine's address: redacted callers get none.
fn channel_json(s: &Session, detail: Detail) -> Value {
    let Some(mut status) = s.channel_status() else { return Value::Null };
    if detail == Detail::Redacted {
        status.ids.iter_mut().for_each(|id| id.last_error = None);
        status.history.iter_mut().for_each(|switch| switch.error = None);
    }
    serde_json::to_value(status).unwrap_or_default()
}

/// The engine's latest statistics of the stream (one poll per stream):
/// its state, peers, speeds (KB/s), bytes and live position, and how old
/// the answer is; `null` before the engine's first answer.
fn engine_stats_json(s: &Session) -> Value {
    let latest = s.engine_stats.lock().clone();
    latest.map_or(Value::Null, |l| {
        let mut v = serde_json::to_value(&l.stats).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("age_seconds".into(), json!(l.at.elapsed().as_secs_f64()));
        }
        v
    })
}

pub async fn status(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let detail = Detail::for_caller(&app, &headers)?;
    Ok(Json(snapshot(&app, detail)))
}

/// The status document: every session, every engine, the connections.
/// `/proxy/status` serves it as JSON; the dashboard's live feed sends it
/// (with the plugins and channels added) once a second.
pub fn snapshot(app: &AppState, detail: Detail) -> Value {
    let sessions = app.registry.sessions();
    let active = sessions.iter().filter(|s| s.state() == SessionState::Live).count();
    let clients: usize = sessions.iter().map(|s| s.player_count()).sum();
    let engines = match detail {
        Detail::Full => json!(app.registry.context().pool.views()),
        // Health and load without addresses: enough to see capacity.
        Detail::Redacted => Value::Array(
            app.registry
                .context()
                .pool
                .views()
                .iter()
                .map(|e| {
                    json!({
                        "healthy": e.healthy,
                        "draining": e.draining,
                        "load": e.load,
                        "load_elsewhere": e.load_elsewhere,
                        "pending": e.pending,
                        "capacity": e.capacity,
                        "forwarded": e.forwarded,
                    })
                })
                .collect(),
        ),
    };
    let cluster = app.cluster.as_ref().map(|c| {
        let mut status = c.status();
        if detail == Detail::Redacted {
            status.advertise_url = String::new();
            status.redis_error = status.redis_error.map(|_| "(redacted)".into());
        }
        status
    });
    json!({
        "running": true,
        "instance_id": app.cluster_settings.instance_id,
        "cluster": cluster,
        "uptime_seconds": app.started_at.elapsed().as_secs_f64(),
        "total_sessions": app.registry.created_total(),
        "active_sessions": active,
        "total_clients": clients,
        "redacted": detail == Detail::Redacted,
        "connections": {
            "open": app.connections.open(),
            "max": app.connections.total_cap(),
            "max_per_client": app.front.max_connections_per_client.get(),
        },
        "sessions": sessions
            .iter()
            .map(|s| session_json(s, app.hls.output_of(s).as_deref(), detail))
            .collect::<Vec<_>>(),
        "engines": engines,
        "sources": super::channels::sources_json(app, detail),
        "guides": super::channels::guides_json(app, detail),
        "access": access_json(app, detail),
    })
}

/// Who may watch: the mode, each user's players, streams and limits (by
/// name; tokens never), and the users file's last read.
fn access_json(app: &AppState, detail: Detail) -> Value {
    let users = app.access.user_states();
    match detail {
        Detail::Full => json!({
            "player_access": app.access.mode(),
            "users": users,
            "users_file": app.access.users_file(),
        }),
        Detail::Redacted => json!({"player_access": app.access.mode(), "users": users.len()}),
    }
}

pub async fn session(
    State(app): State<AppState>,
    Path(content): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let detail = Detail::for_caller(&app, &headers)?;
    app.registry
        .find(&content)
        .map(|s| Json(session_json(&s, app.hls.output_of(&s).as_deref(), detail)))
        .ok_or_else(|| ApiError::not_found(format!("no stream session for `{content}`")))
}

pub async fn healthz(State(app): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "sessions": app.registry.sessions().len()}))
}
