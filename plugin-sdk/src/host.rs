//! What the host gives a plugin: logging and configuration. On a native
//! target (a plugin's own unit tests) logs go to stderr and the
//! configuration comes from [`crate::testing::set_config`].

use serde::de::DeserializeOwned;

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Logs through acemux's log, tagged with the plugin's name.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::selector_only::acemux::plugin::host::{Level as L, log};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[plugin {level:?}] {message}");
}

/// The plugin's configuration (the `[config]` table of its TOML file) as
/// JSON text.
pub fn config_json() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::selector_only::acemux::plugin::host::config()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::config_for_tests()
    }
}

/// The plugin's configuration, typed. Fields missing from the file take
/// serde's defaults (`#[serde(default)]`).
pub fn config<T: DeserializeOwned>() -> Result<T, String> {
    serde_json::from_str(&config_json()).map_err(|e| format!("plugin config: {e}"))
}

/// Makes a panic's message reach acemux's log before the trap.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| log(Level::Error, &format!("panic: {info}"))));
    });
}

/// `info!("…", args)`: log at a level through the host.
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log($crate::Level::Trace, &format!($($t)*)) }; }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log($crate::Level::Debug, &format!($($t)*)) }; }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log($crate::Level::Info, &format!($($t)*)) }; }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log($crate::Level::Warn, &format!($($t)*)) }; }
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log($crate::Level::Error, &format!($($t)*)) }; }
