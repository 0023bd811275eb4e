//! Passes everything through (the trait's default).
use acemux_plugin_sdk::{Filter, Stream};
pub struct PassFilter;
impl Filter for PassFilter {
    fn new(_: &Stream) -> Self {
        PassFilter
    }
}
acemux_plugin_sdk::export!(PassFilter: filter);
