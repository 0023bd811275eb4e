//! Settings of the channel list: the `[[channels]]` and `[[sources]]`
//! tables of the settings file, where channel numbers are kept, and the
//! programme guide announced beside them.

use anyhow::Context;
use serde::Serialize;

use crate::content::ContentKey;
use crate::values::{self, OrNone};

/// A channel the operator lists for playlists and tuner lineups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub name: String,
    /// Its preferred id.
    pub key: ContentKey,
    /// Its other ids, in order of preference: tried in turn when the ones
    /// before fail (see [`crate::stream::alternates`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<ContentKey>,
    /// What names the channel for good once it has alternates (its
    /// `[[channels]]` name, else the `tvg-id` or the source and name its
    /// alternates were merged by): its players' URLs are made from it.
    #[serde(skip)]
    pub identity: Option<std::sync::Arc<str>>,
    pub group: Option<String>,
    pub logo: Option<String>,
    pub tvg_id: Option<String>,
    /// The number the operator pins for it (`number` in `[[channels]]`);
    /// otherwise acemux gives one and keeps it (see [`super::numbers`]).
    /// Lists show the number given ([`super::Listed::number`]).
    #[serde(skip)]
    pub number: Option<u32>,
}

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct ChannelSettings {
    /// XMLTV guide announced in the playlist header (`url-tvg`) instead of
    /// acemux's own `/epg.xml`
    /// [default: none].
    #[arg(long, env = "ACEMUX_EPG_URL", default_value = "", hide_default_value = true, value_parser = values::empty_is_none(values::http_url))]
    pub epg_url: OrNone<String>,
    /// Directory where acemux keeps what must outlive a restart (channel
    /// numbers, each M3U source's last good list; without one they last
    /// only while acemux runs) [default: none].
    #[arg(long, env = "ACEMUX_STATE_DIR", default_value = "", hide_default_value = true, value_parser = values::path_or_none)]
    pub state_dir: OrNone<std::path::PathBuf>,
    /// The file's `[[channels]]` (see [`channels_from_file`]).
    #[arg(skip)]
    pub channels: Vec<Channel>,
    /// The file's `[[sources]]` (see [`super::source`]).
    #[arg(skip)]
    pub sources: Vec<super::source::Source>,
    /// The file's `[[guides]]` (see [`super::guide`]).
    #[arg(skip)]
    pub guides: Vec<super::guide::GuideSpec>,
}

/// Ids a channel carries at most (its preferred one and its alternates).
pub const MAX_IDS: usize = 16;

impl Channel {
    /// A channel with one id and nothing else known.
    pub fn new(name: String, key: ContentKey) -> Self {
        Self {
            name,
            key,
            alternates: Vec::new(),
            identity: None,
            group: None,
            logo: None,
            tvg_id: None,
            number: None,
        }
    }

    /// Every id, preferred first.
    pub fn ids(&self) -> impl Iterator<Item = &ContentKey> {
        std::iter::once(&self.key).chain(&self.alternates)
    }

    /// What players ask for the channel with: its id when it has one, the
    /// channel's own key (`?channel=`, `/channel/<key>/…`) when it has
    /// alternates, so the URL names the channel, not one of its ids.
    pub fn play_key(&self) -> ContentKey {
        match &self.identity {
            Some(identity) if !self.alternates.is_empty() => ContentKey::channel(identity),
            _ => self.key.clone(),
        }
    }

    /// Adds `key` as its last alternate, unless it has it or is full.
    pub fn add_alternate(&mut self, key: ContentKey) -> bool {
        if self.alternates.len() + 1 >= MAX_IDS || self.ids().any(|k| *k == key) {
            return false;
        }
        self.alternates.push(key);
        true
    }
}

/// File keys of a `[[channels]]` table.
const CHANNEL_KEYS: &[&str] =
    &["name", "id", "content_id", "infohash", "ids", "group", "logo", "tvg_id", "number"];

/// One entry of `ids`: a content id (40 hex, or `acestream://` and 40
/// hex), or an infohash written `infohash:` and 40 hex.
fn id_entry(entry: &toml::Value) -> Result<ContentKey, String> {
    let text = entry.as_str().ok_or_else(|| format!("`ids` entries are strings (got {entry})"))?;
    let (param, value) = match text.strip_prefix("infohash:") {
        Some(hash) => ("infohash", hash),
        None => ("content_id", text.strip_prefix("acestream://").unwrap_or(text)),
    };
    ContentKey::from_query(&[(param.to_owned(), value.to_owned())])
        .map_err(|e| format!("`ids` entry `{text}`: {e}"))
}

/// The file's `[[channels]]`: `name`, its id (`id`/`content_id`/`infohash`)
/// or ids in order of preference (`ids`, infohashes written
/// `infohash:<hex>`), optional `group`, `logo`, `tvg_id`, `number`
/// (1–99999).
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
            let mut ids = Vec::new();
            if !query.is_empty() || t.get("ids").is_none() {
                ids.push(ContentKey::from_query(&query).map_err(|e| bad(format!("{name}: {e}")))?);
            }
            if let Some(list) = t.get("ids") {
                let list = list.as_array().ok_or_else(|| {
                    bad(format!("{name}: `ids` must be a list of ids in order of preference"))
                })?;
                for entry in list {
                    let key = id_entry(entry).map_err(|e| bad(format!("{name}: {e}")))?;
                    if ids.contains(&key) {
                        return Err(bad(format!("{name}: the id {} is given twice", key.id)));
                    }
                    ids.push(key);
                }
            }
            if ids.is_empty() {
                return Err(bad(format!("{name}: `ids` is empty")));
            }
            if ids.len() > MAX_IDS {
                return Err(bad(format!("{name}: more than {MAX_IDS} ids")));
            }
            let key = ids.remove(0);
            let number = match t.get("number") {
                None => None,
                Some(toml::Value::Integer(n)) if (1..=99_999).contains(n) => Some(*n as u32),
                Some(other) => {
                    return Err(bad(format!(
                        "{name}: `number` must be a whole number from 1 to 99999 (got {other})"
                    )));
                }
            };
            Ok(Channel {
                identity: Some(format!("channel:{name}").into()),
                name,
                key,
                alternates: ids,
                group: text("group"),
                logo: text("logo"),
                tvg_id: text("tvg_id"),
                number,
            })
        })
        .collect()
}
