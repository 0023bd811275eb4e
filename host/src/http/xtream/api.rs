//! `/player_api.php`: the account (no `action`), and the live TV
//! actions. Video on demand and series are not acemux's: their actions
//! answer empty lists, which apps show as empty sections (an error would
//! make some refuse the whole login).

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Login, NO_GROUP, category_id, user_info};
use crate::channels::guide::time;
use crate::http::{ApiError, AppState, Connection};

/// Programmes a short guide gives unless `limit` says, and at most.
const SHORT_EPG: usize = 4;
const MAX_EPG: usize = 500;

/// `GET /player_api.php?username=&password=[&action=…]`.
pub async fn player_api(
    State(app): State<AppState>,
    conn: Option<Extension<Connection>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let login = match Login::check(&app, conn.as_deref(), &q) {
        Ok(login) => login,
        Err(e) => return refused(e),
    };
    let answer = match q.get("action").map(String::as_str) {
        None | Some("") => account(&app, &login, &headers),
        Some("get_live_categories") => categories(&app, &login),
        Some("get_live_streams") => streams(&app, &login, q.get("category_id").map(String::as_str)),
        Some(action @ ("get_short_epg" | "get_simple_data_table")) => {
            let limit = match action {
                "get_short_epg" => q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(SHORT_EPG),
                _ => MAX_EPG,
            };
            guide(&app, &login, q.get("stream_id").map(String::as_str), limit.min(MAX_EPG))
        }
        Some("get_vod_categories" | "get_vod_streams" | "get_series_categories" | "get_series") => json!([]),
        Some("get_vod_info" | "get_series_info") => json!({}),
        Some(other) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_action",
                format!(
                    "unknown action `{}` (get_live_categories, get_live_streams, get_short_epg, get_simple_data_table)",
                    crate::channels::text::field(other, 64).unwrap_or_default()
                ),
            )
            .into_response();
        }
    };
    axum::Json(answer).into_response()
}

/// A refused login: the error's status, with `user_info.auth` 0 in the
/// body, which is how apps tell a wrong password.
fn refused(e: ApiError) -> Response {
    let body = json!({"user_info": {"auth": 0}, "error": e.message, "code": e.code});
    e.with_body(body)
}

fn account(app: &AppState, login: &Login, headers: &HeaderMap) -> Value {
    let base: Option<axum::http::Uri> = crate::http::playlist::base_url(app, headers).parse().ok();
    let protocol = base.as_ref().and_then(|b| b.scheme_str()).unwrap_or("http").to_owned();
    let host = base.as_ref().and_then(|b| b.host()).unwrap_or("").to_owned();
    let port = base
        .as_ref()
        .and_then(|b| b.port_u16())
        .unwrap_or(if protocol == "https" { 443 } else { 80 })
        .to_string();
    let now = time::now();
    json!({
        "user_info": user_info(login),
        "server_info": {
            "url": host,
            "port": if protocol == "http" { port.clone() } else { String::new() },
            "https_port": if protocol == "https" { port } else { String::new() },
            "server_protocol": protocol,
            "rtmp_port": "",
            "timezone": "UTC",
            "timestamp_now": now,
            "time_now": time::format_plain(now),
            "process": true,
        },
    })
}

fn categories(app: &AppState, login: &Login) -> Value {
    let listing = app.channels.current();
    let mut seen = std::collections::HashSet::new();
    let list: Vec<Value> = login
        .channels(&listing)
        .map(|l| l.channel.group.as_deref())
        .filter(|g| seen.insert(*g))
        .map(|g| {
            json!({"category_id": category_id(g), "category_name": g.unwrap_or(NO_GROUP), "parent_id": 0})
        })
        .collect();
    Value::Array(list)
}

fn streams(app: &AppState, login: &Login, category: Option<&str>) -> Value {
    let listing = app.channels.current();
    let list: Vec<Value> = login
        .channels(&listing)
        .map(|l| (l, category_id(l.channel.group.as_deref())))
        .filter(|(_, id)| category.is_none_or(|c| c.is_empty() || c == "*" || c == id))
        .map(|(l, category)| {
            json!({
                "num": l.number,
                "name": l.channel.name,
                "stream_type": "live",
                "stream_id": l.number,
                "stream_icon": l.channel.logo.as_deref().unwrap_or(""),
                "epg_channel_id": crate::channels::guide::write::guide_id(l),
                "added": "0",
                "is_adult": "0",
                "category_id": category,
                "category_ids": [category.parse::<u32>().unwrap_or(0)],
                "custom_sid": "",
                "tv_archive": 0,
                "direct_source": "",
                "tv_archive_duration": 0,
                "thumbnail": "",
            })
        })
        .collect();
    Value::Array(list)
}

/// The programmes of stream `stream_id` from now on (titles and
/// descriptions in base64, as the API has them).
fn guide(app: &AppState, login: &Login, stream_id: Option<&str>, limit: usize) -> Value {
    let listing = app.channels.current();
    let Some(listed) = stream_id.and_then(|id| login.stream(&listing, id)) else {
        return json!({"epg_listings": []});
    };
    let now = time::now();
    let channel_id = crate::channels::guide::write::guide_id(listed);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let listings: Vec<Value> = app
        .channels
        .schedule(listed, now, limit)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "id": (i + 1).to_string(),
                "epg_id": listed.number.to_string(),
                "title": b64(&p.title),
                "lang": "",
                "start": time::format_plain(p.start),
                "end": time::format_plain(p.stop),
                "description": b64(p.desc.as_deref().unwrap_or("")),
                "channel_id": channel_id,
                "start_timestamp": p.start.to_string(),
                "stop_timestamp": p.stop.to_string(),
                "now_playing": u8::from(p.start <= now && now < p.stop),
                "has_archive": 0,
            })
        })
        .collect();
    json!({"epg_listings": listings})
}
