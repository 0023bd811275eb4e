//! Reading the JSON list into channels; entries without a name or a
//! valid 40-hex id are skipped and counted.

use acemux_plugin_sdk::{Channel, KeyType};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    List(Vec<serde_json::Value>),
    Wrapped { channels: Vec<serde_json::Value> },
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    #[serde(alias = "content_id")]
    id: Option<String>,
    infohash: Option<String>,
    group: Option<String>,
    logo: Option<String>,
    tvg_id: Option<String>,
    number: Option<u32>,
}

/// The channels of a list, and how many entries were skipped.
pub fn read(body: &[u8]) -> Result<(Vec<Channel>, usize), String> {
    let document: Document =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON list of channels: {e}"))?;
    let entries = match document {
        Document::List(entries) | Document::Wrapped { channels: entries } => entries,
    };
    let total = entries.len();
    let channels: Vec<Channel> =
        entries.into_iter().filter_map(|e| channel(serde_json::from_value(e).ok()?)).collect();
    let skipped = total - channels.len();
    Ok((channels, skipped))
}

fn channel(e: Entry) -> Option<Channel> {
    let hex = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (id, key_type) = match (e.id, e.infohash) {
        (Some(id), _) if hex(&id) => (id, KeyType::ContentId),
        (None, Some(h)) if hex(&h) => (h, KeyType::Infohash),
        _ => return None,
    };
    let name = e.name.trim().to_owned();
    (!name.is_empty()).then_some(Channel {
        name,
        id: id.to_ascii_lowercase(),
        key_type,
        group: e.group,
        logo: e.logo,
        tvg_id: e.tvg_id,
        number: e.number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_shapes_and_skips_what_names_nothing() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        let list = format!(
            r#"[{{"name": "A", "id": "{a}", "group": "G", "number": 7}}, {{"name": "B", "infohash": "{}"}},
               {{"name": "", "id": "{a}"}}, {{"name": "C", "id": "short"}}, {{"nothing": 1}}]"#,
            a.to_uppercase()
        );
        let (channels, skipped) = read(list.as_bytes()).unwrap();
        assert_eq!((channels.len(), skipped), (2, 3));
        assert_eq!((channels[0].group.as_deref(), channels[0].number), (Some("G"), Some(7)));
        assert_eq!((channels[1].key_type, channels[1].id.as_str()), (KeyType::Infohash, a));
        let (wrapped, _) =
            read(format!(r#"{{"channels": [{{"name": "A", "content_id": "{a}"}}]}}"#).as_bytes()).unwrap();
        assert_eq!(wrapped.len(), 1);
        assert!(read(b"<html>").is_err());
    }
}
