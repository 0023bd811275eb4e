//! Answers `nowhere:1`, which is never a candidate.
use acemux_plugin_sdk::{Engine, Request, Selection, Selector};
pub struct LiarSelector;
impl Selector for LiarSelector {
    fn select(_: &Request, _: &[Engine]) -> Selection {
        Selection::Engine("nowhere:1".into())
    }
}
acemux_plugin_sdk::export!(LiarSelector: selector);
