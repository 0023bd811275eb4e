//! A simulated AceStream engine.
//!
//! It speaks the engine HTTP API acemux relies on (start with
//! `format=json`, playback with optional redirect, stat, stop, version and
//! status) and serves valid MPEG-TS at a set bitrate: a synthetic program
//! whose packets tests can check one by one, or a recorded file ([`Media`])
//! for real decoders. Tests, the demo mode
//! and the load tool use it in place of a real engine; its knobs
//! ([`SimConfig`]) reproduce the failures real engines show, and its
//! [`Counters`] let tests prove how acemux talked to it.
//!
//! Like the real engine, a second start of the same content stops the
//! first playback session, so a proxy that opens two upstreams for one
//! content breaks its own players here too.

mod api;
mod counters;
mod engine;
mod media;
mod retime;
mod tsgen;

pub use counters::Counters;
pub use engine::{ContentBehaviour, Lie, SimConfig, SimEngine};
pub use media::Media;
pub use tsgen::{PMT_PID, TsGenerator, VIDEO_PID, video_counter};
