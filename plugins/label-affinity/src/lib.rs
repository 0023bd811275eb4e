//! Prefers engines whose labels match the plugin's config, e.g.
//! `[config] labels = { region = "eu" }`; among matches, the least loaded.
//! Without a match it has no opinion (acemux's built-in rule decides).

use std::collections::BTreeMap;

use acemux_plugin_sdk::{Engine, Request, Selection, Selector, config, warn};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    /// Every label here must match.
    labels: BTreeMap<String, String>,
}

pub struct LabelAffinity;

impl Selector for LabelAffinity {
    fn select<'a>(_request: &Request, candidates: &'a [Engine]) -> Selection<'a> {
        let wanted = match config::<Config>() {
            Ok(c) => c.labels,
            Err(e) => {
                warn!("{e}");
                return Selection::NoOpinion;
            }
        };
        if wanted.is_empty() {
            return Selection::NoOpinion;
        }
        candidates
            .iter()
            .filter(|e| wanted.iter().all(|(k, v)| e.label(k) == Some(v.as_str())))
            .min_by_key(|e| (e.load(), !e.forwarded))
            .map_or(Selection::NoOpinion, Selection::Engine)
    }
}

acemux_plugin_sdk::export!(LabelAffinity: selector);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::{engine_with_labels, request, set_config};

    #[test]
    fn prefers_matching_labels_else_no_opinion() {
        set_config(r#"{"labels": {"region": "eu"}}"#);
        let engines = [
            engine_with_labels("us:1", 0, &[("region", "us")]),
            engine_with_labels("eu1:1", 2, &[("region", "eu")]),
            engine_with_labels("eu2:1", 1, &[("region", "eu")]),
        ];
        assert_eq!(LabelAffinity::select(&request("ab"), &engines), Selection::Engine(&engines[2]));
        assert_eq!(LabelAffinity::select(&request("ab"), &engines[..1]), Selection::NoOpinion);
        set_config("{}");
        assert_eq!(LabelAffinity::select(&request("ab"), &engines), Selection::NoOpinion);
    }
}
