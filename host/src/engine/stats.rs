//! What an engine says about one of its playback sessions (`stat_url`):
//! its state, peers, speeds and live position.
//!
//! The answer is the engine's, so it is hostile input like any other: its
//! size is bounded before it is parsed, only the fields acemux knows are
//! kept, and each is checked for its type. The kept fields are what status,
//! metrics, the dashboard and engine-API clients' own `stat_url` show.

use serde::Serialize;
use serde_json::{Map, Value};

/// Largest stat answer read (a real one is well under 2 KiB).
pub const MAX_STAT_BYTES: usize = 64 << 10;

/// Fields of the engine's answer that are passed to engine-API clients as
/// they were (numbers and short strings only).
const PASSED_FIELDS: &[&str] = &[
    "status",
    "peers",
    "speed_down",
    "speed_up",
    "downloaded",
    "uploaded",
    "progress",
    "total_progress",
    "http_peers",
    "http_speed_down",
    "http_downloaded",
];

/// The `livepos` fields passed on (the live position of a live stream).
const LIVEPOS_FIELDS: &[&str] = &["pos", "first_ts", "last_ts", "live_first", "live_last", "buffer_pieces"];

/// Longest string value kept.
const MAX_TEXT: usize = 64;

/// One stat answer of an engine, as kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineStats {
    /// `prebuf`, `dl`, … as the engine says.
    pub status: Option<String>,
    pub peers: Option<u64>,
    /// KB/s, as the engine counts.
    pub speed_down: Option<u64>,
    pub speed_up: Option<u64>,
    pub downloaded: Option<u64>,
    pub uploaded: Option<u64>,
    /// The live position (`livepos.pos`), when the engine gives one.
    pub live_position: Option<i64>,
    /// The known fields as the engine gave them, for engine-API clients.
    #[serde(skip)]
    pub fields: Map<String, Value>,
}

impl EngineStats {
    /// Keeps what is known of the engine's `response` object; anything else
    /// (an empty object, as the first call may answer) is stats with no
    /// field.
    pub fn from_response(response: &Value) -> Self {
        let Some(object) = response.as_object() else { return Self::default() };
        let mut fields = Map::new();
        for name in PASSED_FIELDS {
            if let Some(value) = object.get(*name).and_then(scalar) {
                fields.insert((*name).to_owned(), value);
            }
        }
        if let Some(livepos) = object.get("livepos").and_then(Value::as_object) {
            let kept: Map<String, Value> = LIVEPOS_FIELDS
                .iter()
                .filter_map(|name| livepos.get(*name).and_then(scalar).map(|v| ((*name).to_owned(), v)))
                .collect();
            if !kept.is_empty() {
                fields.insert("livepos".into(), Value::Object(kept));
            }
        }
        let number = |name: &str| fields.get(name).and_then(as_count);
        Self {
            status: fields.get("status").and_then(Value::as_str).map(str::to_owned),
            peers: number("peers"),
            speed_down: number("speed_down"),
            speed_up: number("speed_up"),
            downloaded: number("downloaded"),
            uploaded: number("uploaded"),
            live_position: fields
                .get("livepos")
                .and_then(|l| l.get("pos"))
                .and_then(|p| p.as_i64().or_else(|| p.as_str()?.parse().ok())),
            fields,
        }
    }
}

/// A number, a short string or a boolean; nothing nested.
fn scalar(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) | Value::Bool(_) => Some(value.clone()),
        Value::String(s) if s.len() <= MAX_TEXT => Some(value.clone()),
        _ => None,
    }
}

/// A count the engine may give as a number or as digits in a string.
fn as_count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_the_known_fields_and_drops_the_rest() {
        let stats = EngineStats::from_response(&json!({
            "status": "dl", "peers": 12, "speed_down": 950, "speed_up": "40", "downloaded": 123456,
            "livepos": {"pos": "1700000000", "last_ts": 1700000003, "evil": {"deep": 1}},
            "playback_session_id": "secret-ish", "huge": "x".repeat(1000),
        }));
        assert_eq!(stats.status.as_deref(), Some("dl"));
        assert_eq!((stats.peers, stats.speed_down, stats.speed_up), (Some(12), Some(950), Some(40)));
        assert_eq!(stats.live_position, Some(1_700_000_000));
        assert!(!stats.fields.contains_key("huge") && !stats.fields.contains_key("playback_session_id"));
        assert_eq!(stats.fields["livepos"], json!({"pos": "1700000000", "last_ts": 1700000003}));
        assert_eq!(EngineStats::from_response(&json!({})), EngineStats::default());
        assert_eq!(EngineStats::from_response(&json!([1, 2])), EngineStats::default());
    }

    proptest::proptest! {
        /// Whatever JSON the engine sends, reading it never panics and
        /// keeps only scalars.
        #[test]
        fn any_answer_is_read_without_panic(text in "\\{(\"(status|peers|livepos|speed_down)\": ?(-?[0-9]{1,20}|\"[a-z0-9]{0,80}\"|\\{\\}|null|\\[\\]),? ?){0,4}\\}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let stats = EngineStats::from_response(&value);
                for (name, value) in &stats.fields {
                    proptest::prop_assert!(name == "livepos" || !value.is_object());
                }
            }
        }
    }
}
