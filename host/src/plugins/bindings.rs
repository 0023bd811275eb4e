//! Host bindings of `wit/` (the `plugin` world: every export). A component
//! that exports only some interfaces is driven through the per-interface
//! `GuestIndices`, so one set of bindings serves every kind of plugin.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use acemux::plugin::host::Level;
pub use acemux::plugin::types::{Engine, KeyType, Request, Stream};
pub use exports::acemux::plugin::events::{EngineFailure, Event, Player, PlayerLeft, StreamEnded};
pub use exports::acemux::plugin::selector::Selection;
