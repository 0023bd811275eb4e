//! HDHomeRun tuner emulation, so Plex, Jellyfin and Emby add acemux as a
//! live-TV tuner: `/discover.json`, `/lineup.json`, `/lineup_status.json`,
//! `/device.xml`. The lineup is the operator's channel list; the tuner
//! count is what the engines can carry.

use std::hash::{Hash, Hasher};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::playlist::{base_url, stream_url};
use super::viewer::ListBase;

/// A stable 8-hex-digit device id (from the listen address).
fn device_id(app: &AppState) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    app.front.listen.hash(&mut h);
    format!("{:08X}", h.finish() as u32)
}

/// Streams the engines can carry at once (and the stream limit, if lower).
fn tuner_count(app: &AppState) -> usize {
    let pool = &app.registry.context().pool;
    let capacity = pool.engines().len().max(1) * pool.capacity();
    app.registry.context().stream.max_streams.get().map_or(capacity, |m| m.min(capacity))
}

pub async fn discover(State(app): State<AppState>, ListBase(base, _): ListBase) -> Json<Value> {
    Json(json!({
        "FriendlyName": "acemux",
        "Manufacturer": "acemux",
        "ModelNumber": "HDTC-2US",
        "FirmwareName": "hdhomeruntc_atsc",
        "FirmwareVersion": env!("CARGO_PKG_VERSION"),
        "DeviceID": device_id(&app),
        "DeviceAuth": "acemux",
        "BaseURL": base,
        "LineupURL": format!("{base}/lineup.json"),
        "TunerCount": tuner_count(&app),
    }))
}

/// One channel of the lineup, as HDHomeRun tuners write it.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct LineupEntry<'a> {
    guide_number: String,
    guide_name: &'a str,
    #[serde(rename = "URL")]
    url: String,
}

/// `GET /lineup.json`, written off the runtime threads (a long list is
/// megabytes).
pub async fn lineup(State(app): State<AppState>, ListBase(base, groups): ListBase) -> Response {
    let listing = app.channels.current();
    let written = tokio::task::spawn_blocking(move || {
        let entries: Vec<LineupEntry<'_>> = listing
            .channels
            .iter()
            .filter(|l| groups.sees(&l.channel))
            .map(|l| LineupEntry {
                guide_number: l.number.to_string(),
                guide_name: &l.channel.name,
                url: stream_url(&base, &l.channel),
            })
            .collect();
        serde_json::to_vec(&entries)
    })
    .await;
    super::channels::json_written(written, "the lineup")
}

pub async fn lineup_status() -> Json<Value> {
    Json(json!({"ScanInProgress": 0, "ScanPossible": 1, "Source": "Cable", "SourceList": ["Cable"]}))
}

pub async fn device_xml(State(app): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let base = base_url(&app, &headers);
    let id = device_id(&app);
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
  <specVersion><major>1</major><minor>0</minor></specVersion>
  <URLBase>{base}</URLBase>
  <device>
    <deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>
    <friendlyName>acemux</friendlyName>
    <manufacturer>acemux</manufacturer>
    <modelName>HDTC-2US</modelName>
    <modelNumber>HDTC-2US</modelNumber>
    <serialNumber>{id}</serialNumber>
    <UDN>uuid:acemux-{id}</UDN>
  </device>
</root>
"#
    );
    ([(header::CONTENT_TYPE, "application/xml")], xml)
}
