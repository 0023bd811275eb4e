//! The engine list a selector instance keeps between calls.
//!
//! acemux gives an instance the engine list only when it changes
//! (`set-engines`) and, per selection, the candidates as positions in it
//! with their current load; the answer names an engine by its position
//! too. This module keeps the list, hands [`crate::Selector::select`] the
//! candidates as a plain `&[Engine]` with no allocation per call
//! (candidates are swapped to the front of the kept list, in the order
//! acemux gave them, and their load fields updated), and turns the engine
//! the selector answers back into its position.

use std::cell::RefCell;

use crate::bindings::selector_only::acemux::plugin::types::Engine as WitEngine;
use crate::bindings::selector_only::exports::acemux::plugin::selector::{
    Candidate as WitCandidate, Selection as WitSelection,
};
use crate::{Engine, Selection};

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
pub fn set_engines(engines: Vec<WitEngine>) {
    KEPT.with_borrow_mut(|k| {
        k.position = (0..engines.len()).collect();
        k.listed_at = (0..engines.len()).collect();
        k.engines = engines.into_iter().map(from_wit).collect();
    });
}

fn from_wit(e: WitEngine) -> Engine {
    Engine {
        id: e.id,
        host: e.host,
        port: e.port,
        labels: e.labels,
        forwarded: e.forwarded,
        healthy: true,
        active_streams: 0,
        pending_streams: 0,
        capacity: e.capacity,
    }
}

/// Calls `select` with the candidates as engines, in acemux's order, with
/// their current load, and answers acemux with the chosen engine's
/// position. Positions that name no kept engine are skipped.
pub fn choose(
    candidates: &[WitCandidate],
    select: impl for<'a> FnOnce(&'a [Engine]) -> Selection<'a>,
) -> WitSelection {
    KEPT.with_borrow_mut(|k| {
        let mut n = 0;
        for c in candidates {
            let listed = c.position as usize;
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
            e.active_streams = c.running;
            e.pending_streams = c.starting;
            n += 1;
        }
        let offered = &k.engines[..n];
        match select(offered) {
            Selection::Engine(chosen) => match offered.iter().position(|e| std::ptr::eq(e, chosen)) {
                Some(at) => WitSelection::Engine(k.listed_at[at] as u32),
                None => {
                    let id = &chosen.id;
                    crate::log(
                        crate::Level::Warn,
                        &format!("answered engine `{id}`, which is not one of the candidates given"),
                    );
                    // No position names it: acemux counts the call as failed.
                    WitSelection::Engine(u32::MAX)
                }
            },
            Selection::NoOpinion => WitSelection::NoOpinion,
            Selection::Refuse(reason) => WitSelection::Refuse(reason),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str) -> WitEngine {
        WitEngine {
            id: id.to_owned(),
            host: id.to_owned(),
            port: 1,
            labels: Vec::new(),
            forwarded: false,
            capacity: 3,
        }
    }

    /// acemux's candidates: (position, running streams) each.
    fn candidates(list: &[(u32, u32)]) -> Vec<WitCandidate> {
        list.iter().map(|&(position, running)| WitCandidate { position, running, starting: 0 }).collect()
    }

    /// What the selector saw, and the position answered for its first engine.
    fn seen(list: &[(u32, u32)]) -> (Vec<(String, u32)>, WitSelection) {
        let mut seen = Vec::new();
        let answer = choose(&candidates(list), |es| {
            seen = es.iter().map(|e| (e.id.clone(), e.active_streams)).collect();
            Selection::Engine(&es[0])
        });
        (seen, answer)
    }

    fn position(answer: WitSelection) -> u32 {
        match answer {
            WitSelection::Engine(p) => p,
            _ => panic!("no engine answered"),
        }
    }

    #[test]
    fn candidates_come_in_acemux_order_with_their_load_and_answers_name_listed_positions() {
        set_engines(vec![listed("a:1"), listed("b:1"), listed("c:1"), listed("d:1")]);
        let (engines, answer) = seen(&[(2, 1), (0, 2)]);
        assert_eq!(engines, [("c:1".into(), 1), ("a:1".into(), 2)]);
        assert_eq!(position(answer), 2);
        // The kept list was reordered; positions still name the same engines.
        let (engines, answer) = seen(&[(3, 0), (2, 5), (1, 4), (0, 0)]);
        assert_eq!(engines, [("d:1".into(), 0), ("c:1".into(), 5), ("b:1".into(), 4), ("a:1".into(), 0)]);
        assert_eq!(position(answer), 3);
        let (engines, answer) = seen(&[(1, 7), (1, 7), (9, 0)]);
        assert_eq!(engines, [("b:1".into(), 7)]);
        assert_eq!(position(answer), 1);
        set_engines(vec![listed("z:1")]);
        let (engines, answer) = seen(&[(0, 1), (1, 1)]);
        assert_eq!(engines, [("z:1".into(), 1)]);
        assert_eq!(position(answer), 0);
    }

    #[test]
    fn an_engine_that_is_no_candidate_gets_no_position() {
        set_engines(vec![listed("a:1"), listed("b:1")]);
        // Only an engine that outlives every call can be named besides the
        // candidates given.
        let copy: &'static Engine = Box::leak(Box::new(from_wit(listed("b:1"))));
        let answer = choose(&candidates(&[(1, 0)]), |_| Selection::Engine(copy));
        assert_eq!(position(answer), u32::MAX);
        let answer = choose(&candidates(&[(1, 0)]), |_| Selection::Refuse("no".into()));
        assert!(matches!(answer, WitSelection::Refuse(r) if r == "no"));
    }
}
