//! The engines a selection chooses among, in the form selector plugins
//! take them: the engine list, lowered into an instance only when it
//! changed (its strings and labels were most of a call's cost), and each
//! candidate's position and load, a record of three numbers, on every call.

use std::sync::OnceLock;

use crate::engine::pool::EngineView;

use super::bindings::{Candidate, Engine};

/// See the module docs.
pub struct Candidates<'a> {
    views: &'a [EngineView],
    /// Per engine in list order: its position, running and starting streams.
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
                position: i as u32,
                running: e.load.saturating_sub(e.pending) as u32,
                starting: e.pending as u32,
            })
            .collect();
        Self { views, loads, engines: OnceLock::new() }
    }

    /// The engines' serials, in list order: an instance given a list with
    /// these serials has this list already (a serial's id, address, labels,
    /// forwarded and capacity never change).
    pub fn serials(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.views.iter().map(|e| e.serial)
    }

    /// The engine list as the WIT `set-engines` takes it.
    pub fn engines(&self) -> &[Engine] {
        self.engines.get_or_init(|| self.views.iter().map(to_wit_engine).collect())
    }

    /// How many there are.
    pub fn count(&self) -> usize {
        self.views.len()
    }

    /// The id of the engine at `position` in the list, if there is one.
    pub fn id_at(&self, position: u32) -> Option<&str> {
        self.views.get(position as usize).map(|e| e.id.as_str())
    }
}

fn to_wit_engine(e: &EngineView) -> Engine {
    Engine {
        id: e.id.clone(),
        host: e.host.clone(),
        port: e.port,
        labels: e.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        forwarded: e.forwarded,
        capacity: e.capacity as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(i: u64, load: usize, pending: usize) -> EngineView {
        EngineView {
            serial: 100 + i,
            id: format!("10.0.0.{i}:6878"),
            host: format!("10.0.0.{i}"),
            port: 6878,
            labels: [("region".to_string(), "eu".to_string())].into_iter().collect(),
            container_id: None,
            forwarded: i == 1,
            healthy: true,
            draining: false,
            load,
            load_elsewhere: 0,
            pending,
            capacity: 5,
            last_error: None,
        }
    }

    #[test]
    fn each_candidate_crosses_as_its_position_running_and_starting_streams() {
        let views = [view(0, 3, 1), view(1, 0, 0), view(2, 2, 2)];
        let c = Candidates::of(&views);
        let loads: Vec<(u32, u32, u32)> =
            c.loads.iter().map(|l| (l.position, l.running, l.starting)).collect();
        assert_eq!(loads, [(0, 2, 1), (1, 0, 0), (2, 0, 2)]);
        assert_eq!(c.serials().collect::<Vec<_>>(), [100, 101, 102]);
        assert_eq!((c.id_at(2), c.id_at(3), c.count()), (Some("10.0.0.2:6878"), None, 3));
        let listed = &c.engines()[1];
        assert_eq!(
            (listed.id.as_str(), listed.port, listed.forwarded, listed.capacity),
            ("10.0.0.1:6878", 6878, true, 5)
        );
        assert_eq!(listed.labels, [("region".to_string(), "eu".to_string())]);
    }
}
