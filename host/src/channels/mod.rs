//! The channels acemux offers players by name: what `/playlist.m3u`, the
//! HDHomeRun lineup and the dashboard list. Today the operator's own
//! `[[channels]]`; the guide players show beside them is announced by URL.

pub mod settings;

pub use settings::{Channel, ChannelSettings};
