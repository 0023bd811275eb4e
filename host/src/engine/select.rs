//! The engine-selection seam.
//!
//! A selector looks at a new stream's request and the engines that could
//! take it and answers one engine, no opinion, or a refusal. The built-in
//! rule is one implementation; plugin selectors are others, asked first.

use std::collections::HashMap;
use std::net::SocketAddr;

use futures_util::future::BoxFuture;

use crate::content::ContentKey;

use super::pool::EngineView;

/// What a selector knows about the stream being placed.
#[derive(Debug, Clone, Default)]
pub struct SelectRequest {
    pub content: Option<ContentKey>,
    pub client: Option<SocketAddr>,
    /// The player's query, its token left out.
    pub query: HashMap<String, String>,
    /// The user whose token the player carried.
    pub user: Option<std::sync::Arc<str>>,
}

impl SelectRequest {
    /// A player's request for `content`: its query without its token,
    /// which selectors, events and the orchestrator never see.
    pub fn of_player(
        content: ContentKey,
        client: Option<SocketAddr>,
        query: impl IntoIterator<Item = (String, String)>,
        user: Option<std::sync::Arc<str>>,
    ) -> Self {
        let query = query.into_iter().filter(|(k, _)| k != "token").collect();
        Self { content: Some(content), client, query, user }
    }
}

/// A selector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Use the engine with this id.
    Engine(String),
    /// Let the next selector decide.
    NoOpinion,
    /// Refuse the stream, with the reason the player is told.
    Refuse(String),
}

/// Why no engine could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no engines available")]
    NoEngines,
    #[error("all engines at capacity ({0} per engine)")]
    AtCapacity(usize),
    #[error("stream refused: {0}")]
    Refused(String),
    #[error("selector chose unknown engine `{0}`")]
    UnknownEngine(String),
}

/// Chooses an engine among `candidates` (healthy, not draining, below
/// capacity; never empty). Async, because a plugin selector may take up to
/// its time budget; a stream being stopped drops the future.
pub trait EngineSelector: Send + Sync {
    fn select<'a>(
        &'a self,
        request: &'a SelectRequest,
        candidates: &'a [EngineView],
    ) -> BoxFuture<'a, Selection>;
}

/// The rule the original proxy settled on: least loaded first (pending
/// streams included); among equals, forwarded engines first; then by id so
/// the choice is stable.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinSelector;

impl BuiltinSelector {
    pub fn choose(candidates: &[EngineView]) -> Selection {
        candidates
            .iter()
            .min_by(|a, b| {
                a.load.cmp(&b.load).then(b.forwarded.cmp(&a.forwarded)).then_with(|| a.id.cmp(&b.id))
            })
            .map_or(Selection::NoOpinion, |e| Selection::Engine(e.id.clone()))
    }
}

impl EngineSelector for BuiltinSelector {
    fn select<'a>(
        &'a self,
        _request: &'a SelectRequest,
        candidates: &'a [EngineView],
    ) -> BoxFuture<'a, Selection> {
        Box::pin(std::future::ready(Self::choose(candidates)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, load: usize, forwarded: bool) -> EngineView {
        EngineView {
            serial: 0,
            id: id.into(),
            host: "h".into(),
            port: 1,
            labels: Default::default(),
            container_id: None,
            forwarded,
            healthy: true,
            draining: false,
            load,
            load_elsewhere: 0,
            pending: 0,
            capacity: 3,
            last_error: None,
        }
    }

    #[test]
    fn least_loaded_then_forwarded() {
        let c = [view("a", 1, false), view("b", 0, false), view("c", 0, true)];
        assert_eq!(BuiltinSelector::choose(&c), Selection::Engine("c".into()));
        let c = [view("a", 0, false), view("c", 1, true)];
        assert_eq!(BuiltinSelector::choose(&c), Selection::Engine("a".into()));
    }
}
