//! Plugin selectors in front of the built-in rule: the engine-selection
//! seam's second implementation.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::engine::pool::EngineView;
use crate::engine::select::{BuiltinSelector, EngineSelector, SelectRequest, Selection};

use super::bindings::{self, KeyType};
use super::candidates::Candidates;
use super::host::PluginHost;
use super::plugin::Plugin;

/// Asks each active selector plugin in order; the first engine or refusal
/// wins; no opinion or a failure (including an engine id that is not a
/// candidate) falls through; the built-in rule decides last.
pub struct PluginSelector {
    pub host: Arc<PluginHost>,
}

impl EngineSelector for PluginSelector {
    fn select<'a>(
        &'a self,
        request: &'a SelectRequest,
        candidates: &'a [EngineView],
    ) -> BoxFuture<'a, Selection> {
        Box::pin(async move {
            let selectors: Vec<Arc<Plugin>> = (self.host.current().plugins.iter())
                .filter(|p| p.capabilities.selector && p.is_active())
                .cloned()
                .collect();
            if !selectors.is_empty() {
                let wit_request = to_wit_request(request);
                let candidates_for_plugins = Candidates::of(candidates);
                for plugin in selectors {
                    match plugin.select(&wit_request, &candidates_for_plugins).await {
                        Ok(bindings::Selection::Engine(id)) => {
                            tracing::debug!(plugin = &*plugin.name, engine = %id, "plugin chose the engine");
                            return Selection::Engine(id);
                        }
                        Ok(bindings::Selection::Refuse(reason)) => return Selection::Refuse(reason),
                        Ok(bindings::Selection::NoOpinion) | Err(_) => {}
                    }
                }
            }
            BuiltinSelector::choose(candidates)
        })
    }
}

fn to_wit_request(r: &SelectRequest) -> bindings::Request {
    let (content_key, key_type) = match &r.content {
        Some(k) => (k.id.clone(), key_type(k.key_type)),
        None => (String::new(), KeyType::ContentId),
    };
    bindings::Request {
        content_key,
        key_type,
        client_address: r.client.map(|a| a.to_string()),
        query: r.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

pub fn key_type(k: crate::content::KeyType) -> KeyType {
    match k {
        crate::content::KeyType::ContentId => KeyType::ContentId,
        crate::content::KeyType::Infohash => KeyType::Infohash,
    }
}
