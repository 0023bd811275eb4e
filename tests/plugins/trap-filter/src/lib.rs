//! Panics (a trap) on every batch.
use acemux_plugin_sdk::{Batch, Filter, Stream};
pub struct TrapFilter;
impl Filter for TrapFilter {
    fn new(_: &Stream) -> Self {
        TrapFilter
    }
    fn process(&mut self, batch: &mut Batch) {
        panic!("trap-filter refuses {} packets", batch.len());
    }
}
acemux_plugin_sdk::export!(TrapFilter: filter);
