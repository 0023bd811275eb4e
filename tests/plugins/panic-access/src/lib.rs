//! Panics on every access check (a trap: acemux must deny, not let in).
use acemux_plugin_sdk::{AccessCheck, Decision, Viewer};
pub struct PanicAccess;
impl AccessCheck for PanicAccess {
    fn check(viewer: &Viewer) -> Decision {
        panic!("panic-access asked about {}", viewer.content_key);
    }
}
acemux_plugin_sdk::export!(PanicAccess: access);
