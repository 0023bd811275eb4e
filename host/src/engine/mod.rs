//! Everything about AceStream engines: talking to one ([`client`]),
//! knowing all of them and their load ([`pool`]), and choosing one for a
//! new stream ([`select`]).

pub mod client;
pub mod health;
pub mod pool;
pub mod select;
pub mod settings;
pub mod stats;

pub use client::{EngineClient, EngineError, EngineSession};
pub use pool::{Engine, EngineLease, EnginePool};
pub use select::{BuiltinSelector, EngineSelector, SelectError, Selection};
pub use settings::{EngineSetting, EngineSettings};
pub use stats::EngineStats;
