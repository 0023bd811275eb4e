//! Host bindings of `wit/` (the `plugin` world: every export). A component
//! that exports only some interfaces is driven through the per-interface
//! `GuestIndices`, so one set of bindings serves every kind of plugin.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // Calls are futures, so a time budget can end them wherever the plugin is.
    exports: { default: async },
});

pub use self::acemux::plugin::host::Level;
pub use self::acemux::plugin::metrics::{Metric, MetricKind};
pub use self::acemux::plugin::types::{Engine, KeyType, Request, Stream};
pub use self::exports::acemux::plugin::access::{Decision, Limits, Viewer as WitViewer};
pub use self::exports::acemux::plugin::channel_source::Channel as WitChannel;
pub use self::exports::acemux::plugin::events::{
    ChannelSwitch, EngineFailure, Event, Player, PlayerLeft, StreamEnded, StreamStats,
};
pub use self::exports::acemux::plugin::selector::{Candidate, Selection};
