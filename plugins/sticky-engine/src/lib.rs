//! Rendezvous (highest-random-weight) hashing of the content key over the
//! candidates: a content returns to the same engine (its cache is warm),
//! and when engines come and go only the contents of those engines move.

use acemux_plugin_sdk::{Engine, Request, Selection, Selector};

pub struct StickyEngine;

/// FNV-1a, fed byte by byte: stable across builds and hosts.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const START: Self = Self(0xcbf2_9ce4_8422_2325);

    fn feed(mut self, bytes: impl IntoIterator<Item = u8>) -> Self {
        for b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
}

impl Selector for StickyEngine {
    fn select<'a>(request: &Request, candidates: &'a [Engine]) -> Selection<'a> {
        // An engine's weight is FNV-1a of content key, 0xFF, engine id; the
        // content's part is the same for every engine, so it is fed once.
        let content = Fnv::START.feed(request.content_key.bytes().chain([0xFF]));
        candidates
            .iter()
            .max_by_key(|e| content.feed(e.id.bytes()).0)
            .map_or(Selection::NoOpinion, Selection::Engine)
    }
}

acemux_plugin_sdk::export!(StickyEngine: selector);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::{engine, request};

    fn pick(key: &str, engines: &[Engine]) -> String {
        match StickyEngine::select(&request(key), engines) {
            Selection::Engine(e) => e.id.clone(),
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

    /// The weight as first written (FNV-1a over the whole key, 0xFF and id
    /// at once): feeding the content once must not move any content.
    fn weight_as_first_written(content: &str, engine: &str) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in content.bytes().chain([0xFF]).chain(engine.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    #[test]
    fn choices_are_those_of_the_first_release() {
        let engines: Vec<Engine> = (0..8).map(|i| engine(&format!("10.0.0.{i}:6878"), 0)).collect();
        for n in 0..200 {
            let key = format!("{n:040x}");
            let expected = engines.iter().max_by_key(|e| weight_as_first_written(&key, &e.id)).unwrap();
            assert_eq!(pick(&key, &engines), expected.id);
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
