//! What tests need from outside `cargo test`'s own build: the paths of
//! every plugin built for `wasm32-wasip2` by this crate's build script
//! (`acemux_test_artifacts::NULL_STRIP`, `TRAP_FILTER`, …), and a check
//! for the external programs some tests run ([`programs`]).

pub mod programs;

include!(concat!(env!("OUT_DIR"), "/wasm.rs"));
