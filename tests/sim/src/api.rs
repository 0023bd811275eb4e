//! The engine's HTTP API, as described in the AceStream reference.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::counters::bump;
use crate::engine::{Playback, SimState, infohash_of};
use crate::media::Source;
use crate::tsgen::{TsGenerator, video_packets_in};

type Shared = State<Arc<SimState>>;
type Params = Query<HashMap<String, String>>;

const KEY_TYPES: [&str; 5] = ["content_id", "id", "infohash", "url", "magnet"];
/// How often a playback connection writes: smaller gives smoother pacing.
const TICK: Duration = Duration::from_millis(20);

pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/ace/getstream", get(start))
        .route("/ace/r/{infohash}/{token}", get(playback))
        .route("/ace/m/{infohash}/{token}", get(playback_redirected))
        .route("/ace/stat/{infohash}/{token}", get(stat))
        .route("/ace/cmd/{infohash}/{token}", get(command))
        .route("/webui/api/service", get(version))
        .route("/server/api", get(server_api))
        .route("/search", get(search))
        .route("/sim/counters", get(counters))
        .with_state(state)
}

/// Like a real engine, a start runs to its end even when the caller hangs
/// up before the answer: the playback session it creates then exists on the
/// engine until someone stops it.
async fn start(State(state): Shared, Query(q): Params) -> Response {
    let run = tokio::spawn(start_to_the_end(state, q));
    run.await.unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn start_to_the_end(state: Arc<SimState>, q: HashMap<String, String>) -> Response {
    {
        let mut asked: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| *k != "pid" && *k != "format")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        asked.sort();
        let mut kept = state.start_queries.lock();
        if kept.len() >= crate::engine::KEPT_START_QUERIES {
            kept.remove(0);
        }
        kept.push(asked);
    }
    let Some((key_type, key)) = KEY_TYPES.iter().find_map(|k| q.get(*k).map(|v| (*k, v.clone()))) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "missing content key").into_response();
    };
    let config = state.config.lock().clone();
    if !config.start_delay.is_zero() {
        tokio::time::sleep(config.start_delay).await;
    }
    let behaviour = config.contents.get(&key.to_ascii_lowercase()).cloned().unwrap_or_default();
    if let Some(error) = config.start_error.or(behaviour.start_error.clone()) {
        bump(&state.counters.failed_starts);
        return Json(json!({"response": null, "error": error})).into_response();
    }
    let key_type = if key_type == "id" { "content_id" } else { key_type };
    let infohash = infohash_of(key_type, &key);
    let token = format!("{:040x}", rand::random::<u128>());
    let playback = Playback {
        infohash: infohash.clone(),
        started_at: Instant::now(),
        cancel: state.killed.child_token(),
        bytes_sent: Arc::new(AtomicU64::new(0)),
        connections: Arc::new(AtomicU64::new(0)),
        behaviour,
    };
    {
        let mut playbacks = state.playbacks.lock();
        // The engine serves one live stream to one player: starting the same
        // content again ends the earlier session.
        playbacks.retain(|_, p| {
            let keep = p.infohash != infohash;
            if !keep {
                p.cancel.cancel();
                bump(&state.counters.superseded);
            }
            keep
        });
        playbacks.insert(token.clone(), playback);
        state.counters.peak_sessions.fetch_max(playbacks.len() as u64, Ordering::Relaxed);
    }
    bump(&state.counters.starts);
    let base = format!("http://{}", state.addr);
    Json(json!({
        "response": {
            "playback_url": format!("{base}/ace/r/{infohash}/{token}"),
            "stat_url": format!("{base}/ace/stat/{infohash}/{token}"),
            "command_url": format!("{base}/ace/cmd/{infohash}/{token}"),
            "infohash": infohash,
            "playback_session_id": token,
            "is_live": 1,
            "is_encrypted": 0,
            "client_session_id": -1,
        },
        "error": null,
    }))
    .into_response()
}

async fn playback(state: Shared, path: Path<(String, String)>) -> Response {
    if state.config.lock().redirect {
        let (infohash, token) = path.0;
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, format!("/ace/m/{infohash}/{token}"))
            .body(Body::empty())
            .unwrap_or_default();
    }
    playback_redirected(state, path).await
}

async fn playback_redirected(
    State(state): Shared,
    Path((_infohash, token)): Path<(String, String)>,
) -> Response {
    let Some(playback) = state.playbacks.lock().get(&token).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown playback session").into_response();
    };
    let mut config = state.config.lock().clone();
    match config.lie {
        Some(crate::Lie::PlaybackNotFound) => {
            return (StatusCode::NOT_FOUND, "<html><body>404 Not Found</body></html>").into_response();
        }
        Some(crate::Lie::Html) => {
            let page = format!(
                "<!DOCTYPE html><html><head><title>Login</title></head><body>{}</body></html>",
                "<p>please log in</p>".repeat(200)
            );
            return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
        }
        Some(crate::Lie::Silent) => {
            let cancel = playback.cancel.clone();
            let nothing = futures_util::stream::once(async move {
                cancel.cancelled().await;
                Err::<Bytes, _>(std::io::Error::other("playback session ended"))
            });
            return ([(header::CONTENT_TYPE, "video/mp2t")], Body::from_stream(nothing)).into_response();
        }
        _ => {}
    }
    if config.drop_first_connection_only && playback.connections.fetch_add(1, Ordering::Relaxed) > 0 {
        config.drop_after_bytes = None;
    }
    bump(&state.counters.playback_connections);
    state.counters.open_playbacks.fetch_add(1, Ordering::Relaxed);
    let open = OpenPlayback(state.clone());
    let packets_per_sec = (config.bitrate_bps / 8 / 188).max(1);
    let live_packets = state.epoch.elapsed().as_secs_f64() * packets_per_sec as f64;
    let source = match config.media.clone() {
        Some(media) => Source::recorded_from(media, playback.behaviour.start_at_packet.unwrap_or(0)),
        None => Source::Synthetic(TsGenerator::new(video_packets_in(live_packets as u64))),
    };
    let pacer = Pacer {
        _open: open,
        source,
        packets_per_sec,
        first_byte_at: playback.started_at + config.prebuffer,
        sent_packets: 0,
        sent_bytes: 0,
        config,
        cancel: playback.cancel.clone(),
        playback,
        state,
    };
    if pacer.config.late_headers {
        tokio::select! {
            _ = tokio::time::sleep_until(pacer.first_byte_at.into()) => {}
            _ = pacer.cancel.cancelled() => {}
        }
    }
    let body = futures_util::stream::unfold(pacer, |mut p| async move {
        let item = p.next_batch().await?;
        Some((item, p))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "video/mp2t")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

/// Keeps the open-playbacks gauge right however the body ends.
struct OpenPlayback(Arc<SimState>);

impl Drop for OpenPlayback {
    fn drop(&mut self) {
        self.0.counters.open_playbacks.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Paces one playback connection at the configured bitrate.
struct Pacer {
    _open: OpenPlayback,
    source: Source,
    packets_per_sec: u64,
    first_byte_at: Instant,
    sent_packets: u64,
    sent_bytes: u64,
    config: crate::SimConfig,
    cancel: CancellationToken,
    playback: Playback,
    state: Arc<SimState>,
}

impl Pacer {
    /// The next batch, an error that aborts the connection, or `None` for a
    /// clean end.
    async fn next_batch(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        let aborted = || Some(Err(std::io::Error::other("playback session ended")));
        if self.config.drop_after_bytes.is_some_and(|n| self.sent_bytes >= n) {
            return aborted();
        }
        let stalled =
            self.playback.behaviour.stall_after.is_some_and(|d| self.playback.started_at.elapsed() >= d);
        if stalled || self.config.stall_after_bytes.is_some_and(|n| self.sent_bytes >= n) {
            self.cancel.cancelled().await;
            return aborted();
        }
        let wait_until = if self.sent_packets == 0 { self.first_byte_at } else { Instant::now() + TICK };
        tokio::select! {
            _ = self.cancel.cancelled() => return aborted(),
            _ = tokio::time::sleep_until(wait_until.into()) => {}
        }
        let elapsed = self.first_byte_at.elapsed().as_secs_f64() + TICK.as_secs_f64();
        let due = (elapsed * self.packets_per_sec as f64) as u64;
        let mut count = due.saturating_sub(self.sent_packets).max(1) as usize;
        if let Some(limit) = self.config.drop_after_bytes.or(self.config.stall_after_bytes) {
            let left = limit.saturating_sub(self.sent_bytes).div_ceil(188) as usize;
            count = count.min(left.max(1));
        }
        let mut out = Vec::with_capacity(count * 188);
        self.source.write(count, &mut out);
        if let Some(crate::Lie::Garbage { after, lasting }) = self.config.lie {
            let age = self.playback.started_at.elapsed();
            if age >= after && age < after + lasting {
                // Bytes of the same amount that never hold a sync byte.
                for (i, b) in out.iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(31).wrapping_add(*b) | 0x80;
                }
            }
        }
        self.sent_packets += count as u64;
        self.sent_bytes += out.len() as u64;
        self.state.counters.bytes_sent.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.playback.bytes_sent.fetch_add(out.len() as u64, Ordering::Relaxed);
        Some(Ok(Bytes::from(out)))
    }
}

async fn stat(State(state): Shared, Path((infohash, token)): Path<(String, String)>) -> Response {
    bump(&state.counters.stat_calls);
    let Some(p) = state.playbacks.lock().get(&token).cloned() else {
        return Json(json!({"response": null, "error": "unknown playback session id"})).into_response();
    };
    let (prebuffer, lie) = {
        let config = state.config.lock();
        (config.prebuffer, config.lie)
    };
    if lie == Some(crate::Lie::MalformedStat) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"response\": {\"status\": \"dl\", \"peers\": ",
        )
            .into_response();
    }
    let age = p.started_at.elapsed();
    let status = if age < prebuffer { "prebuf" } else { "dl" };
    let downloaded = p.bytes_sent.load(Ordering::Relaxed);
    // Numbers that move, as a real swarm's do: peers come and go, the
    // speed follows what was sent.
    let secs = age.as_secs();
    let speed_down = downloaded / 1024 / secs.max(1);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    Json(json!({
        "response": {
            "status": status, "peers": p.behaviour.peers.unwrap_or(5 + secs % 11), "speed_down": speed_down, "speed_up": speed_down / 10,
            "downloaded": downloaded, "uploaded": downloaded / 10, "progress": 0, "total_progress": 0,
            "livepos": {"pos": (now - 2).to_string(), "first_ts": (now - 3600).to_string(),
                        "last_ts": now.to_string(), "live_first": now - 3600, "live_last": now, "buffer_pieces": 15},
            "playback_session_id": token, "infohash": infohash, "is_live": 1,
        },
        "error": null,
    }))
    .into_response()
}

async fn command(
    State(state): Shared,
    Path((_infohash, token)): Path<(String, String)>,
    Query(q): Params,
) -> Json<Value> {
    if q.get("method").map(String::as_str) != Some("stop") {
        return Json(json!({"response": null, "error": "unknown method"}));
    }
    match state.playbacks.lock().remove(&token) {
        Some(p) => {
            p.cancel.cancel();
            bump(&state.counters.stops);
            Json(json!({"response": "ok", "error": null}))
        }
        None => Json(json!({"response": null, "error": "unknown playback session id"})),
    }
}

async fn version(State(state): Shared) -> Response {
    health(&state, json!({"code": 3017000, "platform": "linux", "version": "3.1.70"}))
}

/// The access token this engine hands out and wants back on searches.
pub const ACCESS_TOKEN: &str = "sim-access-token";

async fn server_api(State(state): Shared, Query(q): Params) -> Response {
    match q.get("method").map(String::as_str) {
        Some("get_api_access_token") => health(&state, json!({"token": ACCESS_TOKEN})),
        Some("search") => search_answer(&state, &q),
        Some("get_media_files") => match q.get("infohash") {
            Some(infohash) => health(&state, json!({"0": format!("{infohash}.ts")})),
            None => Json(json!({"result": null, "error": "missing infohash"})).into_response(),
        },
        // `get_status`, and what older callers send without a method.
        _ => health(&state, json!({"playlist_loaded": true})),
    }
}

async fn search(State(state): Shared, Query(q): Params) -> Response {
    search_answer(&state, &q)
}

/// Three results per query (or category): items whose infohash is the
/// query's own (so a test knows what to play), `availability` from 0.9
/// down. With `group_by_channels=1` they come as two channels, the first
/// with items 1 and 2, the second with item 3, each with a programme
/// guide of the hour around now when `show_epg=1`.
fn search_answer(state: &SimState, q: &HashMap<String, String>) -> Response {
    bump(&state.counters.searches);
    if q.get("token").map(String::as_str) != Some(ACCESS_TOKEN) {
        return Json(json!({"result": null, "error": "invalid token"})).into_response();
    }
    let query = q.get("query").or_else(|| q.get("category")).cloned().unwrap_or_default();
    let items: Vec<Value> = (0..3)
        .map(|i| {
            json!({
                "infohash": infohash_of("search", &format!("{query}/{i}")),
                "name": format!("{query} {}", i + 1),
                "channel_id": 1000 + i,
                "categories": ["sport"],
                "countries": ["es"],
                "languages": ["spa"],
                "availability": 0.9 - 0.3 * f64::from(i),
                "availability_updated_at": 1_700_000_000,
                "status": 2,
                "bitrate": 2_000_000,
                "disabled": false,
            })
        })
        .collect();
    if q.get("group_by_channels").map(String::as_str) != Some("1") {
        return health(state, json!({"results": items, "total": items.len()}));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let hour = now - now % 3600;
    let epg = |n: usize| -> Value {
        if q.get("show_epg").map(String::as_str) != Some("1") {
            return json!([]);
        }
        json!([{"start": hour, "stop": hour + 3600, "name": format!("{query} live {n}")}])
    };
    let channels = json!([
        {"name": format!("{query} channel 1"), "icon": "http://logos.example/1.png", "epg": epg(1), "items": [items[0], items[1]]},
        {"name": format!("{query} channel 2"), "icon": null, "epg": epg(2), "items": [items[2]]},
    ]);
    health(state, json!({"results": channels, "total": 2}))
}

fn health(state: &SimState, result: Value) -> Response {
    bump(&state.counters.status_calls);
    if !state.config.lock().healthy {
        return (StatusCode::INTERNAL_SERVER_ERROR, "engine unhealthy").into_response();
    }
    Json(json!({"result": result, "error": null})).into_response()
}

async fn counters(State(state): Shared) -> Result<Json<crate::Counters>, Infallible> {
    Ok(Json(state.counters.snapshot()))
}
