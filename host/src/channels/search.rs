//! A search source: channels from the engine's own search, asked of a
//! healthy engine of the pool (with that engine's access token, as the
//! engine-API search relay does).
//!
//! Each query and each category is one `/search` call grouped by channel
//! with its programme guide (`group_by_channels=1&show_epg=1`). A channel
//! plays its most available item that is not disabled; its availability,
//! the engine's status for it and its guide entries are kept. Answers are
//! hostile input like any list: results, items and guide entries are
//! bounded, and a result that names no valid infohash is skipped.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::Channel;
use super::catalog::SourceChannel;
use super::refresh::Helpers;
use super::source::Source;
use crate::content::{ContentKey, KeyType};

/// Results asked for per query (the engine's `page_size`).
const PAGE_SIZE: &str = "100";
/// Results read per answer, items per result, guide entries per channel.
const MAX_RESULTS: usize = 200;
const MAX_ITEMS: usize = 50;
const MAX_EPG: usize = 100;
/// Longest text kept (names, titles, icon URLs).
const MAX_TEXT: usize = 512;

/// What the engine's search says of a channel besides its name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchDetails {
    /// The played item's availability, 0–1.
    pub availability: Option<f64>,
    /// When the engine last measured it (unix seconds).
    pub availability_updated_at: Option<i64>,
    /// The engine's status code for the item (`2`: live with peers).
    pub status: Option<i64>,
    /// The channel's guide as the engine has it.
    #[serde(skip)]
    pub epg: Vec<SearchProgramme>,
}

/// One guide entry of a search result (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchProgramme {
    pub start: i64,
    pub stop: i64,
    pub title: String,
}

/// The source's channels, and how many its rules left out.
pub async fn channels(
    helpers: &Helpers,
    spec: &Source,
    queries: &[String],
    categories: &[String],
) -> anyhow::Result<(Vec<SourceChannel>, usize)> {
    let engine = helpers
        .pool
        .engines()
        .into_iter()
        .find(|e| e.is_healthy() && !e.is_draining())
        .ok_or_else(|| anyhow::anyhow!("no healthy engine to search with"))?;
    let base = engine.base_url();
    let asks = queries.iter().map(|q| ("query", q)).chain(categories.iter().map(|c| ("category", c)));
    let mut found = Vec::new();
    for (param, term) in asks {
        let params =
            [(param, term.as_str()), ("group_by_channels", "1"), ("show_epg", "1"), ("page_size", PAGE_SIZE)];
        let answer = helpers
            .client
            .service_call(&base, "/search", &params)
            .await
            .map_err(|e| anyhow::anyhow!("search for {param} `{term}`: {e}"))?;
        found.extend(read_answer(&answer));
    }
    Ok(spec.rules.apply(found))
}

fn text(value: &Value, key: &str) -> Option<String> {
    super::text::field(value.get(key)?.as_str()?, MAX_TEXT)
}

/// The channels of one answer (`{"results": [...], "total": N}`), grouped
/// or not.
pub fn read_answer(answer: &Value) -> Vec<SourceChannel> {
    let Some(results) = answer.get("results").and_then(Value::as_array) else { return Vec::new() };
    results.iter().take(MAX_RESULTS).filter_map(read_result).collect()
}

fn read_result(result: &Value) -> Option<SourceChannel> {
    // Grouped: {name, icon, epg, items}; ungrouped: the item itself.
    let items: Vec<&Value> = match result.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().take(MAX_ITEMS).collect(),
        None => vec![result],
    };
    let playable = |item: &&&Value| item.get("disabled").and_then(Value::as_bool) != Some(true);
    let availability =
        |item: &Value| item.get("availability").and_then(Value::as_f64).filter(|a| a.is_finite());
    let best = items
        .iter()
        .filter(playable)
        .filter(|item| item.get("infohash").and_then(Value::as_str).is_some_and(valid_infohash))
        .max_by(|a, b| availability(a).unwrap_or(0.0).total_cmp(&availability(b).unwrap_or(0.0)))?;
    let infohash = best.get("infohash")?.as_str()?;
    let name = text(result, "name").or_else(|| text(best, "name"))?;
    let group = best
        .get("categories")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(Value::as_str)
        .and_then(|c| super::text::field(c, 64));
    let epg = result
        .get("epg")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .take(MAX_EPG)
                .filter_map(|e| {
                    let start = e.get("start")?.as_i64()?;
                    let stop = e.get("stop")?.as_i64()?;
                    (stop > start).then(|| SearchProgramme {
                        start,
                        stop,
                        title: text(e, "name").unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let details = SearchDetails {
        availability: availability(best),
        availability_updated_at: best.get("availability_updated_at").and_then(Value::as_i64),
        status: best.get("status").and_then(Value::as_i64),
        epg,
    };
    Some(SourceChannel {
        channel: Channel {
            name,
            key: ContentKey::new(KeyType::Infohash, infohash.to_ascii_lowercase()),
            alternates: Vec::new(),
            identity: None,
            group,
            logo: text(result, "icon"),
            tvg_id: None,
            number: None,
        },
        suggested_number: None,
        search: Some(Arc::new(details)),
        source_name: None,
    })
}

fn valid_infohash(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89ABCDEF0123456789abcdef0123456789abcdef";

    #[test]
    fn a_grouped_result_plays_its_most_available_item_and_keeps_its_guide() {
        let answer = json!({"results": [
            {"name": "Sport 1", "icon": "http://i/s.png", "epg": [{"start": 100, "stop": 200, "name": "Match"}, {"start": 5, "stop": 1}],
             "items": [
                {"infohash": A, "availability": 0.4, "status": 2, "categories": ["sport"]},
                {"infohash": B, "availability": 0.9, "status": 2, "categories": ["sport"], "availability_updated_at": 7},
                {"infohash": "ff".repeat(20), "availability": 1.0, "disabled": true},
             ]},
            {"name": "Broken", "items": [{"infohash": "nothex"}]},
            {"infohash": A, "name": "Ungrouped", "availability": 0.5},
        ], "total": 3});
        let found = read_answer(&answer);
        assert_eq!(found.len(), 2, "the result without a valid infohash is skipped");
        let sport = &found[0];
        assert_eq!(sport.channel.key, ContentKey::new(KeyType::Infohash, B.to_ascii_lowercase()));
        assert_eq!(
            (sport.channel.group.as_deref(), sport.channel.logo.as_deref()),
            (Some("sport"), Some("http://i/s.png"))
        );
        let details = sport.search.as_deref().unwrap();
        assert_eq!(
            (details.availability, details.status, details.availability_updated_at),
            (Some(0.9), Some(2), Some(7))
        );
        assert_eq!(details.epg, [SearchProgramme { start: 100, stop: 200, title: "Match".into() }]);
        assert_eq!(found[1].channel.name, "Ungrouped");
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[0-9a-fA-F]{40}|[a-z ]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(
                    "results|items|infohash|name|icon|epg|start|stop|availability|disabled|categories|status",
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever JSON the engine sends, reading it never panics and
        /// gives only valid keys and bounded texts.
        #[test]
        fn any_answer_is_read_without_panic(results in json()) {
            let answer = json!({"results": results});
            for c in read_answer(&answer).iter().chain(read_answer(&json!({"results": [results]})).iter()) {
                proptest::prop_assert!(c.channel.key.id.len() == 40);
                proptest::prop_assert!(c.channel.name.len() <= MAX_TEXT);
            }
        }
    }
}
