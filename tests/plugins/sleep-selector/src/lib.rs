//! Sleeps `[config] sleep_ms` (default an hour) in every selection, then
//! has no opinion: the wait is in WASI's clock poll, not in wasm code.
use acemux_plugin_sdk::{Engine, Request, Selection, Selector, config};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    sleep_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { sleep_ms: 3_600_000 }
    }
}

pub struct SleepSelector;

impl Selector for SleepSelector {
    fn select<'a>(_: &Request, _: &'a [Engine]) -> Selection<'a> {
        let ms = config::<Config>().unwrap_or_default().sleep_ms;
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Selection::NoOpinion
    }
}
acemux_plugin_sdk::export!(SleepSelector: selector);
