//! Settings of the channel list: the `[[channels]]` tables of the settings
//! file, and the programme guide announced beside them.

use anyhow::Context;
use serde::Serialize;

use crate::content::ContentKey;
use crate::values::{self, OrNone};

/// A channel the operator lists for playlists and tuner lineups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub name: String,
    pub key: ContentKey,
    pub group: Option<String>,
    pub logo: Option<String>,
    pub tvg_id: Option<String>,
}

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct ChannelSettings {
    /// XMLTV guide announced in the playlist header (`url-tvg`)
    /// [default: none].
    #[arg(long, env = "ACEMUX_EPG_URL", default_value = "", hide_default_value = true, value_parser = values::empty_is_none(values::http_url))]
    pub epg_url: OrNone<String>,
    /// The file's `[[channels]]` (see [`channels_from_file`]).
    #[arg(skip)]
    pub channels: Vec<Channel>,
}

/// File keys of a `[[channels]]` table.
const CHANNEL_KEYS: &[&str] = &["name", "id", "content_id", "infohash", "group", "logo", "tvg_id"];

/// The file's `[[channels]]`: `name`, one of `id`/`content_id`/`infohash`,
/// optional `group`, `logo`, `tvg_id`.
pub fn channels_from_file(value: &toml::Value) -> anyhow::Result<Vec<Channel>> {
    let list = value.as_array().context("invalid setting `channels`: expected [[channels]] tables")?;
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let bad = |why: String| anyhow::anyhow!("invalid setting `channels` entry {}: {why}", i + 1);
            let t = c.as_table().ok_or_else(|| bad("not a table".into()))?;
            if let Some(k) = t.keys().find(|k| !CHANNEL_KEYS.contains(&k.as_str())) {
                return Err(bad(format!("unknown key `{k}`")));
            }
            let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
            let name = text("name").ok_or_else(|| bad("`name` is required".into()))?;
            let query: Vec<(String, String)> = ["id", "content_id", "infohash"]
                .iter()
                .filter_map(|k| text(k).map(|v| ((*k).to_owned(), v)))
                .collect();
            let key = ContentKey::from_query(&query).map_err(|e| bad(format!("{name}: {e}")))?;
            Ok(Channel { name, key, group: text("group"), logo: text("logo"), tvg_id: text("tvg_id") })
        })
        .collect()
}
