//! `GET /proxy/events`: the status document as server-sent events, once a
//! second, for the dashboard (and anyone with `curl -N`).
//!
//! Each event is the `/proxy/status` snapshot with the plugins and what
//! the caller may do added: one snapshot type, two encodings. The channel
//! list (tens of thousands of channels with big sources) comes in the
//! first event and again only when it changed. The same access rule
//! applies as to `/proxy/status`, decided when the feed is opened. The feed ends when acemux shuts down;
//! the `retry` field tells the browser to reconnect two seconds later.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Caller;
use super::playlist::hls_url;
use super::plugins::plugins_json;
use super::status::{Detail, snapshot};
use super::{ApiError, AppState};

/// Time between two events.
const PERIOD: Duration = Duration::from_secs(1);

/// The channel list as the feed sends it.
fn channels_json(listing: &crate::channels::Listing) -> Value {
    let channels: Vec<Value> = listing
        .channels
        .iter()
        .map(|l| {
            let c = &l.channel;
            json!({
                "number": l.number,
                "source": l.source,
                "name": c.name,
                "id": c.key.id,
                "key_type": c.key.key_type,
                "ids": c.ids().count(),
                "group": c.group,
                "logo": c.logo,
                // Relative to the page (empty base).
                "hls": hls_url("", c),
            })
        })
        .collect();
    Value::Array(channels)
}

/// The live feed's document for a caller; with the channel list when
/// `channels` is given.
pub fn feed_document(
    app: &AppState,
    detail: Detail,
    admin: bool,
    channels: Option<&crate::channels::Listing>,
) -> Value {
    let mut doc = snapshot(app, detail);
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    if let Some(map) = doc.as_object_mut() {
        map.insert("time".into(), json!(time));
        map.insert("version".into(), json!(crate::plugins::contract::ACEMUX_VERSION));
        if let Some(listing) = channels {
            map.insert("channels".into(), channels_json(listing));
        }
        map.insert("plugins".into(), plugins_json(app, detail));
        map.insert("admin".into(), json!(admin));
        map.insert("admin_token_set".into(), json!(app.front.admin_token.is_some()));
    }
    doc
}

pub async fn events(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let detail = Detail::for_caller(&app, &headers)?;
    let admin = Caller::of(&app, &headers) == Caller::Admin;
    let stopping = app.stopping.clone();
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The list last sent on this feed (none yet).
    let sent: Option<std::sync::Arc<crate::channels::Listing>> = None;
    let feed = futures_util::stream::unfold((app, ticks, sent), move |(app, mut ticks, mut sent)| {
        let stopping = stopping.clone();
        async move {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopping.cancelled() => return None,
            }
            let listing = app.channels.current();
            let changed = !sent.as_ref().is_some_and(|s| std::sync::Arc::ptr_eq(s, &listing));
            let doc = feed_document(&app, detail, admin, changed.then_some(&*listing));
            sent = Some(listing);
            let event = Bytes::from(format!("retry: 2000\nevent: status\ndata: {doc}\n\n"));
            Some((Ok::<_, std::io::Error>(event), (app, ticks, sent)))
        }
    });
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    // Tells nginx not to buffer the feed.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok((h, Body::from_stream(feed)).into_response())
}
