//! Allocates without bound on every batch.
use acemux_plugin_sdk::{Batch, Filter, Stream};
pub struct HogFilter(Vec<Vec<u8>>);
impl Filter for HogFilter {
    fn new(_: &Stream) -> Self {
        HogFilter(Vec::new())
    }
    fn process(&mut self, _batch: &mut Batch) {
        loop {
            self.0.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}
acemux_plugin_sdk::export!(HogFilter: filter);
