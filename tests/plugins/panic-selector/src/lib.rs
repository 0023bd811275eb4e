//! Panics on every selection.
use acemux_plugin_sdk::{Engine, Request, Selection, Selector};
pub struct PanicSelector;
impl Selector for PanicSelector {
    fn select<'a>(_: &Request, candidates: &'a [Engine]) -> Selection<'a> {
        panic!("panic-selector saw {} engines", candidates.len());
    }
}
acemux_plugin_sdk::export!(PanicSelector: selector);
