//! acemux answering as an AceStream engine: clients that speak the
//! engine's API (`getstream?format=json`, then `playback_url`, `stat_url`,
//! `command_url`) get the same answers an engine gives, and multiplexing
//! for free.
//!
//! A client's playback is one more kind of player of the shared stream:
//! [`clients`] keeps each one (its token, the session it holds, its bytes)
//! until it stops or goes away; its `playback_url` is an ordinary player of
//! the session, its `stat_url` reads the one engine-statistics poll of the
//! stream, and its stop ends only its own playback.

pub mod clients;
pub mod settings;

pub use clients::{ClientPlayback, ClientPlaybacks, PlaybackFormat};
pub use settings::EngineApiSettings;
