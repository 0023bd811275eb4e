//! Plugin selectors in front of the built-in rule: the engine-selection
//! seam's second implementation.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::engine::pool::EngineView;
use crate::engine::select::{BuiltinSelector, EngineSelector, SelectRequest, Selection};

use super::address::address_text;
use super::bindings::{self, KeyType};
use super::candidates::Candidates;
use super::host::PluginHost;

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
            let set = self.host.current();
            // The request and candidates in WIT form, made for the first
            // selector that is asked (none when no selector is loaded).
            let mut asked = None;
            for plugin in set.plugins.iter() {
                if !(plugin.capabilities.selector && plugin.is_active()) {
                    continue;
                }
                let (wit_request, wit_candidates) =
                    asked.get_or_insert_with(|| (to_wit_request(request), Candidates::of(candidates)));
                match plugin.select(wit_request, wit_candidates).await {
                    Ok(Selection::Engine(id)) => {
                        tracing::debug!(plugin = &*plugin.name, engine = %id, "plugin chose the engine");
                        return Selection::Engine(id);
                    }
                    Ok(Selection::Refuse(reason)) => return Selection::Refuse(reason),
                    Ok(Selection::NoOpinion) | Err(_) => {}
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
        client_address: r.client.map(address_text),
        query: r.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        user: r.user.as_deref().map(str::to_owned),
    }
}

pub fn key_type(k: crate::content::KeyType) -> KeyType {
    match k {
        crate::content::KeyType::ContentId => KeyType::ContentId,
        crate::content::KeyType::Infohash => KeyType::Infohash,
        crate::content::KeyType::Url => KeyType::Url,
        crate::content::KeyType::Magnet => KeyType::Magnet,
        crate::content::KeyType::DirectUrl => KeyType::DirectUrl,
        crate::content::KeyType::Channel => KeyType::Channel,
    }
}
