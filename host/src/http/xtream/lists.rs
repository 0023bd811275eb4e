//! `/get.php` (the user's channels as an M3U list whose URLs are the
//! API's live stream URLs) and `/xmltv.php` (the guide, as `/epg.xml`).

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Login, NO_GROUP};
use crate::http::{ApiError, AppState, Connection};

/// `GET /get.php?username=&password=&type=m3u_plus|m3u&output=ts|m3u8`.
pub async fn get_php(
    State(app): State<AppState>,
    conn: Option<Extension<Connection>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let login = match Login::check(&app, conn.as_deref(), &q) {
        Ok(login) => login,
        Err(e) => return e.into_response(),
    };
    let plus = match q.get("type").map(String::as_str) {
        None | Some("m3u_plus") => true,
        Some("m3u") => false,
        Some(_) => return bad("type", "`m3u_plus` or `m3u`"),
    };
    let extension = match q.get("output").map(String::as_str) {
        None | Some("ts") | Some("mpegts") => "ts",
        Some("m3u8") | Some("hls") => "m3u8",
        Some(_) => return bad("output", "`ts` or `m3u8`"),
    };
    let base = crate::http::playlist::base_url(&app, &headers);
    let listing = app.channels.current();
    let attr = |v: &str| v.replace(['"', '\n', '\r'], "'");
    let mut body = format!("#EXTM3U url-tvg=\"{base}/xmltv.php?{}\"\n", login.query());
    for listed in login.channels(&listing) {
        let c = &listed.channel;
        let name = c.name.replace(['\n', '\r'], " ");
        if plus {
            body.push_str(&format!(
                "#EXTINF:-1 tvg-id=\"{}\" tvg-name=\"{}\" tvg-logo=\"{}\" group-title=\"{}\",{name}\n",
                attr(&crate::channels::guide::write::guide_id(listed)),
                attr(&c.name),
                attr(c.logo.as_deref().unwrap_or("")),
                attr(c.group.as_deref().unwrap_or(NO_GROUP)),
            ));
        } else {
            body.push_str(&format!("#EXTINF:-1,{name}\n"));
        }
        body.push_str(&login.live_url(&base, listed.number, extension));
        body.push('\n');
    }
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/x-mpegurl; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"playlist.m3u\""));
    (h, body).into_response()
}

/// `GET /xmltv.php?username=&password=`: the guide of acemux's channels.
pub async fn xmltv_php(
    State(app): State<AppState>,
    conn: Option<Extension<Connection>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = Login::check(&app, conn.as_deref(), &q) {
        return e.into_response();
    }
    crate::http::channels::guide_response(app, &headers).await
}

fn bad(param: &str, expected: &str) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", format!("`{param}` must be {expected}"))
        .into_response()
}
