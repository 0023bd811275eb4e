//! A channel source: a JSON list of channels fetched over HTTP, e.g. what
//! a site or a script of the operator publishes.
//!
//! ```toml
//! # json-source.toml, beside json-source.wasm
//! time_budget = "10s"          # the fetch happens inside the call
//! [grants]
//! network = true               # outbound TCP to the list's host
//! [config]
//! url = "http://lists.example:8080/channels.json"
//! ```
//!
//! and in acemux's settings file:
//!
//! ```toml
//! [[sources]]
//! name = "site"
//! kind = "plugin"
//! plugin = "json-source"
//! ```
//!
//! The list is `[{"name": …, "id": …}, …]` (or `{"channels": [...]}`),
//! each entry with `id` (or `content_id`) or `infohash`, and optionally
//! `group`, `logo`, `tvg_id`, `number`. Plain `http://` only: the plugin
//! carries no TLS stack.

mod http;
mod list;

use acemux_plugin_sdk::{Channel, ChannelSource, Level, config, log};
use serde::Deserialize;

/// Largest list read.
const MAX_BYTES: usize = 4 << 20;

#[derive(Deserialize)]
struct Config {
    url: String,
}

pub struct JsonSource;

impl ChannelSource for JsonSource {
    fn channels(source: &str) -> Result<Vec<Channel>, String> {
        let config: Config = config()?;
        let body = http::get(&config.url, MAX_BYTES)?;
        let (channels, skipped) = list::read(&body)?;
        log(Level::Info, &format!("source {source}: {} channels, {skipped} entries skipped", channels.len()));
        Ok(channels)
    }
}

acemux_plugin_sdk::export!(JsonSource: channel_source);
