//! Panics on a content whose key starts with `dead`; no opinion on the
//! others: a plugin that fails for a while and then works again.
use acemux_plugin_sdk::{Engine, Request, Selection, Selector};
pub struct MoodySelector;
impl Selector for MoodySelector {
    fn select<'a>(request: &Request, _candidates: &'a [Engine]) -> Selection<'a> {
        if request.content_key.starts_with("dead") {
            panic!("moody-selector will not select for {}", request.content_key);
        }
        Selection::NoOpinion
    }
}
acemux_plugin_sdk::export!(MoodySelector: selector);
