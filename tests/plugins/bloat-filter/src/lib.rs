//! Answers every batch repeated `[config] times` times (default 20): whole
//! packets, but far more of them than came in.
use acemux_plugin_sdk::{Batch, Filter, Stream, config};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    times: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { times: 20 }
    }
}

pub struct BloatFilter(usize);

impl Filter for BloatFilter {
    fn new(_: &Stream) -> Self {
        BloatFilter(config::<Config>().unwrap_or_default().times)
    }

    fn process(&mut self, batch: &mut Batch) {
        let once = batch.as_bytes().to_vec();
        for _ in 1..self.0 {
            for p in once.chunks_exact(188) {
                batch.push(p.try_into().expect("whole packets"));
            }
        }
    }
}
acemux_plugin_sdk::export!(BloatFilter: filter);
