//! `GET /channels.json`: the merged channel list for programs (numbers,
//! names, groups, logos, where each came from, its URLs on acemux);
//! `GET /epg.xml`: the guide for exactly those channels (gzip when the
//! client accepts it); and the sources as status shows them.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::channels::search::SearchDetails;
use crate::content::ContentKey;

use super::playlist::{hls_url, stream_url};
use super::status::Detail;
use super::viewer::ListBase;
use super::{ApiError, AppState};

/// One channel as `/channels.json` lists it.
#[derive(Serialize)]
struct Row<'a> {
    number: u32,
    name: &'a str,
    key: &'a ContentKey,
    /// Its other ids, in order of preference.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    alternates: &'a [ContentKey],
    /// The key players ask for a channel with alternates by.
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_key: Option<String>,
    group: Option<&'a str>,
    logo: Option<&'a str>,
    tvg_id: Option<&'a str>,
    /// The source's name; none for `[[channels]]`.
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<&'a SearchDetails>,
    url: String,
    hls: String,
}

#[derive(Serialize)]
struct Document<'a> {
    channels: Vec<Row<'a>>,
    total: usize,
    duplicates: usize,
    /// Entries merged into an earlier channel as its alternates.
    alternates: usize,
    left_out: usize,
}

/// `GET /channels.json[?group=…]`, written off the runtime threads (a
/// list of tens of thousands of channels is megabytes of JSON).
pub async fn list(
    State(app): State<AppState>,
    ListBase(base, groups): ListBase,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let group = q.get("group").cloned();
    let listing = app.channels.current();
    let written = tokio::task::spawn_blocking(move || {
        let channels = listing
            .channels
            .iter()
            .filter(|l| (group.is_none() || l.channel.group == group) && groups.sees(&l.channel))
            .map(|l| {
                let c = &l.channel;
                Row {
                    number: l.number,
                    name: &c.name,
                    key: &c.key,
                    alternates: &c.alternates,
                    channel_key: (!c.alternates.is_empty()).then(|| c.play_key().id),
                    group: c.group.as_deref(),
                    logo: c.logo.as_deref(),
                    tvg_id: c.tvg_id.as_deref(),
                    source: l.source.as_deref(),
                    search: l.search.as_deref(),
                    url: stream_url(&base, c),
                    hls: hls_url(&base, c),
                }
            })
            .collect();
        let document = Document {
            channels,
            total: listing.channels.len(),
            duplicates: listing.duplicates,
            alternates: listing.alternates,
            left_out: listing.left_out,
        };
        serde_json::to_vec(&document)
    })
    .await;
    json_written(written, "the channel list")
}

/// A JSON document written on a blocking thread, as a response.
pub(super) fn json_written(
    written: Result<serde_json::Result<Vec<u8>>, tokio::task::JoinError>,
    what: &str,
) -> Response {
    match written {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "write_failed",
            format!("{what} could not be written"),
        )
        .into_response(),
    }
}

/// `GET /epg.xml`: rendered and compressed off the runtime threads, once
/// per change of the list or a guide (a guide of many channels is tens of
/// megabytes); sent as kept to clients that take gzip, and decompressed as
/// it is sent, 64 KiB at a time, to the others.
pub async fn epg(State(app): State<AppState>, _: ListBase, headers: HeaderMap) -> Response {
    guide_response(app, &headers).await
}

/// The guide document, gzipped when the client takes it.
pub(super) async fn guide_response(app: AppState, headers: &HeaderMap) -> Response {
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip")));
    let catalog = app.channels.clone();
    let rendered = tokio::task::spawn_blocking(move || catalog.guide_document()).await;
    let compressed = match rendered {
        Ok(Ok(compressed)) => compressed,
        _ => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "guide_failed",
                "the guide could not be written",
            )
            .into_response();
        }
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (h, compressed).into_response();
    }
    (h, Body::from_stream(decompressed(compressed))).into_response()
}

/// The XML of a gzipped document, 64 KiB a chunk (each step is a little
/// CPU on bytes in memory, no I/O).
fn decompressed(gzip: Bytes) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    let decoder = flate2::read::GzDecoder::new(bytes::Buf::reader(gzip));
    futures_util::stream::unfold(Some(decoder), |decoder| async move {
        let mut decoder = decoder?;
        let mut chunk = vec![0u8; 64 << 10];
        let mut filled = 0;
        while filled < chunk.len() {
            match std::io::Read::read(&mut decoder, &mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Some((Err(e), None)),
            }
        }
        if filled == 0 {
            return None;
        }
        chunk.truncate(filled);
        Some((Ok(Bytes::from(chunk)), Some(decoder)))
    })
}

/// Each `[[guides]]` guide: what its last read kept, and its error
/// (redacted like a source's).
pub fn guides_json(app: &AppState, detail: Detail) -> Value {
    let guides: Vec<Value> = app
        .channels
        .guides()
        .iter()
        .map(|slot| {
            let mut v = serde_json::to_value(slot.state()).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("name".into(), json!(slot.spec.name));
                map.insert("refresh_seconds".into(), json!(slot.spec.refresh.as_secs_f64()));
                if detail == Detail::Redacted {
                    map.insert("error".into(), json!(slot.state().error.map(|_| "(redacted)")));
                }
            }
            v
        })
        .collect();
    Value::Array(guides)
}

/// Each source: kind, period, channels, last refresh and its error. A
/// redacted caller sees whether a refresh failed, not why (an error may
/// name a host or a path), nor the guide URL (it may carry a token).
pub fn sources_json(app: &AppState, detail: Detail) -> Value {
    let listing = app.channels.current();
    let sources: Vec<Value> = app
        .channels
        .sources()
        .iter()
        .map(|slot| {
            let state = slot.state();
            let name = slot.spec.name.as_str();
            let listed = listing.channels.iter().filter(|l| l.source.as_deref() == Some(name)).count();
            let mut v = serde_json::to_value(&state).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("name".into(), json!(name));
                map.insert("kind".into(), json!(slot.spec.kind.name()));
                map.insert("refresh_seconds".into(), json!(slot.spec.refresh.as_secs_f64()));
                map.insert("channels".into(), json!(state.channels.len()));
                map.insert("listed".into(), json!(listed));
                map.insert("guide".into(), json!(slot.guide().map(|g| g.state())));
                if detail == Detail::Redacted {
                    map.insert("error".into(), json!(state.error.map(|_| "(redacted)")));
                    map.insert("guide_url".into(), Value::Null);
                }
            }
            v
        })
        .collect();
    Value::Array(sources)
}
