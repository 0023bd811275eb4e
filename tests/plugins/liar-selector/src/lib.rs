//! Answers `nowhere:1`, which is never a candidate.
use std::sync::LazyLock;

use acemux_plugin_sdk::{Engine, Request, Selection, Selector};

static NOWHERE: LazyLock<Engine> = LazyLock::new(|| Engine {
    id: "nowhere:1".into(),
    host: "nowhere".into(),
    port: 1,
    labels: Vec::new(),
    forwarded: false,
    healthy: true,
    active_streams: 0,
    pending_streams: 0,
    capacity: 1,
});

pub struct LiarSelector;
impl Selector for LiarSelector {
    fn select<'a>(_: &Request, _: &'a [Engine]) -> Selection<'a> {
        Selection::Engine(&NOWHERE)
    }
}
acemux_plugin_sdk::export!(LiarSelector: selector);
