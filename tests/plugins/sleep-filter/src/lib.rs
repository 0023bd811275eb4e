//! Sleeps `[config] sleep_ms` (default 4000) in every batch: the wait is in
//! WASI's clock poll, not in wasm code, so only a deadline on the whole
//! call can end it.
use acemux_plugin_sdk::{Batch, Filter, Stream, config};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    sleep_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { sleep_ms: 4000 }
    }
}

pub struct SleepFilter(u64);

impl Filter for SleepFilter {
    fn new(_: &Stream) -> Self {
        SleepFilter(config::<Config>().unwrap_or_default().sleep_ms)
    }

    fn process(&mut self, _: &mut Batch) {
        std::thread::sleep(std::time::Duration::from_millis(self.0));
    }
}
acemux_plugin_sdk::export!(SleepFilter: filter);
