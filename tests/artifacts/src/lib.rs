//! Paths of every plugin built for `wasm32-wasip2` by this crate's build
//! script: `acemux_test_artifacts::NULL_STRIP`, `TRAP_FILTER`, …

include!(concat!(env!("OUT_DIR"), "/wasm.rs"));
