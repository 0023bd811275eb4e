//! WebAssembly component plugins: engine selectors, TS filters and event
//! hooks that operators drop into a directory, hot-reloaded, sandboxed.

pub mod access;
pub mod address;
pub mod bindings;
pub mod cache;
pub mod candidates;
pub mod contract;
pub mod filter;
pub mod harness;
pub mod host;
pub mod host_settings;
pub mod limits;
pub mod metrics;
pub mod metrics_text;
pub mod plugin;
pub mod recovery;
pub mod runtime;
pub mod select;
pub mod settings;
pub mod signature;
pub mod stats;
mod tiering;
pub mod watch;

pub use filter::FilterChain;
pub use host::PluginHost;
pub use host_settings::PluginHostSettings;
pub use select::PluginSelector;
pub mod events;
