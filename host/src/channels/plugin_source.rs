//! A plugin source: channels from a channel-source plugin of the plugin
//! directory, asked on each refresh. Its answer is hostile input like any
//! list: entries whose id is not 40 hex characters, or that name content
//! by another key type than content id or infohash, or have no name, are
//! skipped and counted; names and texts are bounded; at most
//! [`m3u::MAX_ENTRIES`](super::m3u::MAX_ENTRIES) are kept. A trap, a
//! timeout or the plugin's own error keeps the last good channels.

use std::sync::Arc;

use super::Channel;
use super::catalog::SourceChannel;
use super::m3u::MAX_ENTRIES;
use super::source::Source;
use crate::content::{ContentKey, KeyType};
use crate::plugins::PluginHost;
use crate::plugins::bindings::{KeyType as WitKeyType, WitChannel};

/// Longest name or text kept.
const MAX_TEXT: usize = 512;

/// The channels of plugin `name`, with the entries skipped and those its
/// rules left out.
pub async fn channels(
    host: Option<&Arc<PluginHost>>,
    name: &str,
    spec: &Source,
) -> anyhow::Result<(Vec<SourceChannel>, usize, usize)> {
    let host = host.ok_or_else(|| anyhow::anyhow!("plugins are off (--plugins none)"))?;
    let set = host.current();
    let plugin = set
        .plugins
        .iter()
        .find(|p| &*p.name == name && p.capabilities.channel_source)
        .ok_or_else(|| anyhow::anyhow!("no channel-source plugin named `{name}` is loaded"))?
        .clone();
    let answer = plugin.channels(&spec.name).await.map_err(|e| anyhow::anyhow!("plugin `{name}`: {e}"))?;
    let given = answer.map_err(|e: String| anyhow::anyhow!("plugin `{name}` says: {}", bounded(&e)))?;
    let total = given.len();
    let read: Vec<SourceChannel> = given.into_iter().take(MAX_ENTRIES).filter_map(read_channel).collect();
    let skipped = total - read.len();
    let (kept, excluded) = spec.rules.apply(read);
    Ok((kept, skipped, excluded))
}

fn bounded(text: &str) -> String {
    super::text::field(text, MAX_TEXT).unwrap_or_default()
}

fn text(value: Option<String>) -> Option<String> {
    super::text::field(&value?, MAX_TEXT)
}

fn read_channel(c: WitChannel) -> Option<SourceChannel> {
    let (key_type, param) = match c.key_type {
        WitKeyType::ContentId => (KeyType::ContentId, "content_id"),
        WitKeyType::Infohash => (KeyType::Infohash, "infohash"),
        _ => return None,
    };
    let key = ContentKey::parse(key_type, param, &c.id).ok()?;
    let name = text(Some(c.name))?;
    Some(SourceChannel {
        channel: Channel {
            name: name.clone(),
            key,
            alternates: Vec::new(),
            identity: None,
            group: text(c.group),
            logo: text(c.logo),
            tvg_id: text(c.tvg_id),
            number: None,
        },
        suggested_number: c.number,
        search: None,
        source_name: Some(name),
    })
}
