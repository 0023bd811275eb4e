//! `GET /playlist.m3u`: the operator's channels as an M3U playlist whose
//! URLs point at acemux itself (MPEG-TS, or HLS with `?format=hls`), and
//! the base URL logic shared with the HDHomeRun documents.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::channels::Channel;

use super::viewer::ListBase;
use super::{ApiError, AppState};

/// Where players reach acemux: the configured public URL, else what a
/// reverse proxy says (`X-Forwarded-Proto/Host`), else the `Host` header.
pub fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = app.front.public_url.as_ref() {
        return url.clone();
    }
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
    };
    let proto = get("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host =
        get("x-forwarded-host").or_else(|| get("host")).unwrap_or_else(|| app.front.listen.to_string());
    format!("{proto}://{host}")
}

/// A channel's HLS URL on acemux (the engine's own HLS URL form); a
/// channel with alternates is named by its channel key.
pub fn hls_url(base: &str, channel: &Channel) -> String {
    let key = channel.play_key();
    format!("{base}/ace/manifest.m3u8?{}={}", key.key_type.engine_param(), key.id)
}

/// A channel's stream URL on acemux (the path form players' playlists
/// use): `/pid/<id>/…` or `/infohash/<id>/…` for a channel with one id,
/// `/channel/<key>/…` for one with alternates.
pub fn stream_url(base: &str, channel: &Channel) -> String {
    let key = channel.play_key();
    let form = match key.key_type {
        crate::content::KeyType::Infohash => "infohash",
        crate::content::KeyType::Channel => "channel",
        // (Channels are named by content id or infohash.)
        _ => "pid",
    };
    let slug: String =
        channel.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{base}/{form}/{}/{slug}.ts", key.id)
}

fn attr(value: &str) -> String {
    value.replace('"', "'")
}

pub async fn playlist(
    State(app): State<AppState>,
    ListBase(base, groups): ListBase,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let url: fn(&str, &Channel) -> String = match q.get("format").map(String::as_str) {
        None | Some("ts") => stream_url,
        Some("hls") => hls_url,
        Some(other) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_format",
                format!("`format` must be `ts` or `hls` (got `{other}`)"),
            )
            .into_response();
        }
    };
    let group = q.get("group").cloned();
    // The operator's own guide, else acemux's for exactly these channels.
    let guide = app.channels.epg_url.clone().unwrap_or_else(|| format!("{base}/epg.xml"));
    let listing = app.channels.current();
    // Tens of thousands of channels are megabytes: off the runtime threads.
    let written = tokio::task::spawn_blocking(move || {
        let mut body = String::from("#EXTM3U");
        body.push_str(&format!(" url-tvg=\"{}\" x-tvg-url=\"{0}\"", attr(&guide)));
        body.push('\n');
        let shown = listing.channels.iter().filter(|l| group.is_none() || l.channel.group == group);
        for listed in shown.filter(|l| groups.sees(&l.channel)) {
            let c = &listed.channel;
            body.push_str("#EXTINF:-1");
            // The guide's channel id (its tvg-id, else its number).
            body.push_str(&format!(" tvg-id=\"{}\"", attr(&crate::channels::guide::write::guide_id(listed))));
            body.push_str(&format!(" tvg-name=\"{}\" tvg-chno=\"{}\"", attr(&c.name), listed.number));
            if let Some(logo) = &c.logo {
                body.push_str(&format!(" tvg-logo=\"{}\"", attr(logo)));
            }
            if let Some(g) = &c.group {
                body.push_str(&format!(" group-title=\"{}\"", attr(g)));
            }
            body.push_str(&format!(",{}\n{}\n", c.name.replace('\n', " "), url(&base, c)));
        }
        body
    })
    .await;
    let Ok(body) = written else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "playlist_failed",
            "the playlist could not be written",
        )
        .into_response();
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/x-mpegurl; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    (h, body).into_response()
}
