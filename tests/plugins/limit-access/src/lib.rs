//! Lets every player in, its user within one player (tighter limits).
use acemux_plugin_sdk::{AccessCheck, Decision, Limits, Viewer};
pub struct LimitAccess;
impl AccessCheck for LimitAccess {
    fn check(_: &Viewer) -> Decision {
        Decision::AllowWithin(Limits { max_players: Some(1), max_streams: None })
    }
}
acemux_plugin_sdk::export!(LimitAccess: access);
