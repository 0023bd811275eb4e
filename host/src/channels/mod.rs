//! The channels acemux offers players by name: what `/playlist.m3u`, the
//! HDHomeRun lineup and the dashboard list. Today the operator's own
//! `[[channels]]`; the guide players show beside them is announced by URL.
//! [`m3u`] reads the lists operators keep their channels in (the reader
//! M3U sources are built on).

pub mod m3u;
pub mod settings;

pub use settings::{Channel, ChannelSettings};
