//! Never returns from a batch.
use acemux_plugin_sdk::{Batch, Filter, Stream};
pub struct SpinFilter;
impl Filter for SpinFilter {
    fn new(_: &Stream) -> Self {
        SpinFilter
    }
    fn process(&mut self, batch: &mut Batch) {
        let mut n = batch.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(3).wrapping_add(1));
        }
    }
}
acemux_plugin_sdk::export!(SpinFilter: filter);
