//! The engine list a selector instance keeps between calls.
//!
//! acemux gives an instance the engine list only when it changes
//! (`set-engines`) and, per selection, the candidates as positions in it
//! with their current load. This module keeps the list and hands
//! [`crate::Selector::select`] the candidates as a plain `&[Engine]`, with
//! no allocation per call: candidates are swapped to the front of the kept
//! list (in the order acemux gave them) and their load fields updated.

use std::cell::RefCell;

use crate::Engine;
use crate::bindings::selector_only::acemux::plugin::types::Candidate;

#[derive(Default)]
struct Kept {
    engines: Vec<Engine>,
    /// Where the engine that `set-engines` listed at `i` is now.
    position: Vec<usize>,
    /// Which listed engine is at each position.
    listed_at: Vec<usize>,
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Keeps `engines` for the selections to come.
pub fn set_engines(engines: Vec<Engine>) {
    KEPT.with_borrow_mut(|k| {
        k.position = (0..engines.len()).collect();
        k.listed_at = (0..engines.len()).collect();
        k.engines = engines;
    });
}

/// Calls `select` with the candidates as engines, in acemux's order, with
/// their current load. Positions that name no kept engine are skipped.
pub fn with_candidates<R>(candidates: &[Candidate], select: impl FnOnce(&[Engine]) -> R) -> R {
    KEPT.with_borrow_mut(|k| {
        let mut n = 0;
        for c in candidates {
            let listed = c.engine as usize;
            let Some(&at) = k.position.get(listed) else { continue };
            if at < n {
                // Named twice.
                continue;
            }
            let displaced = k.listed_at[n];
            k.engines.swap(n, at);
            k.listed_at.swap(n, at);
            k.position[listed] = n;
            k.position[displaced] = at;
            let e = &mut k.engines[n];
            e.healthy = c.healthy;
            e.active_streams = c.active_streams;
            e.pending_streams = c.pending_streams;
            e.capacity = c.capacity;
            n += 1;
        }
        select(&k.engines[..n])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::engine;

    fn candidate(engine: u32, active: u32) -> Candidate {
        Candidate { engine, healthy: true, active_streams: active, pending_streams: 0, capacity: 3 }
    }

    fn ids_and_load(candidates: &[Candidate]) -> Vec<(String, u32)> {
        with_candidates(candidates, |es| es.iter().map(|e| (e.id.clone(), e.active_streams)).collect())
    }

    #[test]
    fn candidates_come_in_acemux_order_with_their_load_whatever_came_before() {
        set_engines(vec![engine("a:1", 0), engine("b:1", 0), engine("c:1", 0), engine("d:1", 0)]);
        assert_eq!(ids_and_load(&[candidate(2, 1), candidate(0, 2)]), [("c:1".into(), 1), ("a:1".into(), 2)]);
        // The kept list was reordered; positions still name the same engines.
        assert_eq!(
            ids_and_load(&[candidate(3, 0), candidate(2, 5), candidate(1, 4), candidate(0, 0)]),
            [("d:1".into(), 0), ("c:1".into(), 5), ("b:1".into(), 4), ("a:1".into(), 0)]
        );
        assert_eq!(ids_and_load(&[candidate(1, 7), candidate(1, 7), candidate(9, 0)]), [("b:1".into(), 7)]);
        set_engines(vec![engine("z:1", 0)]);
        assert_eq!(ids_and_load(&[candidate(0, 1), candidate(1, 1)]), [("z:1".into(), 1)]);
    }
}
