//! Answers every batch with 100 bytes: not whole packets.
use acemux_plugin_sdk::{Batch, Filter, Stream};
pub struct BrokenFilter;
impl Filter for BrokenFilter {
    fn new(_: &Stream) -> Self {
        BrokenFilter
    }
    fn process(&mut self, batch: &mut Batch) {
        *batch = Batch::from_bytes(vec![0x47; 100]);
    }
}
acemux_plugin_sdk::export!(BrokenFilter: filter);
