//! The engines a selection chooses among, in the form selector plugins
//! take them: the engine list, lowered into an instance only when it
//! changed (its strings and labels were most of a call's cost), and each
//! candidate's load, lowered on every call (a few integers each).

use std::sync::OnceLock;

use crate::engine::pool::EngineView;

use super::bindings::{Candidate, Engine};

/// See the module docs.
pub struct Candidates<'a> {
    views: &'a [EngineView],
    /// The load of each engine, by position in the list.
    pub loads: Vec<Candidate>,
    /// The list, built the first time an instance needs it.
    engines: OnceLock<Vec<Engine>>,
}

impl<'a> Candidates<'a> {
    pub fn of(views: &'a [EngineView]) -> Self {
        let loads = views
            .iter()
            .enumerate()
            .map(|(i, e)| Candidate {
                engine: i as u32,
                healthy: e.healthy,
                active_streams: e.load.saturating_sub(e.pending) as u32,
                pending_streams: e.pending as u32,
                capacity: e.capacity as u32,
            })
            .collect();
        Self { views, loads, engines: OnceLock::new() }
    }

    /// The engines' serials, in list order: an instance given a list with
    /// these serials has this list already (a serial's id, address, labels
    /// and forwarded never change).
    pub fn serials(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.views.iter().map(|e| e.serial)
    }

    /// The engine list as the WIT `set-engines` takes it.
    pub fn engines(&self) -> &[Engine] {
        self.engines.get_or_init(|| self.views.iter().map(to_wit_engine).collect())
    }

    /// Whether `id` is one of the candidates.
    pub fn contains(&self, id: &str) -> bool {
        self.views.iter().any(|e| e.id == id)
    }
}

fn to_wit_engine(e: &EngineView) -> Engine {
    Engine {
        id: e.id.clone(),
        host: e.host.clone(),
        port: e.port,
        labels: e.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        forwarded: e.forwarded,
        healthy: e.healthy,
        active_streams: e.load.saturating_sub(e.pending) as u32,
        pending_streams: e.pending as u32,
        capacity: e.capacity as u32,
    }
}
