//! Rendezvous (highest-random-weight) hashing of the content key over the
//! candidates: a content returns to the same engine (its cache is warm),
//! and when engines come and go only the contents of those engines move.

use acemux_plugin_sdk::{Engine, Request, Selection, Selector};

pub struct StickyEngine;

/// FNV-1a over content key and engine id: stable across builds and hosts.
fn weight(content: &str, engine: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in content.bytes().chain([0xFF]).chain(engine.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Selector for StickyEngine {
    fn select(request: &Request, candidates: &[Engine]) -> Selection {
        candidates
            .iter()
            .max_by_key(|e| weight(&request.content_key, &e.id))
            .map_or(Selection::NoOpinion, |e| Selection::Engine(e.id.clone()))
    }
}

acemux_plugin_sdk::export!(StickyEngine: selector);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::{engine, request};

    fn pick(key: &str, engines: &[Engine]) -> String {
        match StickyEngine::select(&request(key), engines) {
            Selection::Engine(id) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn same_content_same_engine_whatever_the_order() {
        let a = [engine("e1:1", 0), engine("e2:1", 2), engine("e3:1", 1)];
        let b = [engine("e3:1", 1), engine("e1:1", 0), engine("e2:1", 2)];
        for n in 0..50 {
            let key = format!("{n:040x}");
            assert_eq!(pick(&key, &a), pick(&key, &b));
        }
    }

    #[test]
    fn removing_an_engine_moves_only_its_contents() {
        let all = [engine("e1:1", 0), engine("e2:1", 0), engine("e3:1", 0), engine("e4:1", 0)];
        let without_e2: Vec<Engine> = all.iter().filter(|e| e.id != "e2:1").cloned().collect();
        let mut moved = 0;
        for n in 0..400 {
            let key = format!("{n:040x}");
            let before = pick(&key, &all);
            let after = pick(&key, &without_e2);
            if before != "e2:1" {
                assert_eq!(before, after, "a content not on the removed engine moved");
            } else {
                moved += 1;
            }
        }
        assert!(moved > 50 && moved < 150, "about a quarter should move: {moved}");
    }
}
