//! SDK for acemux plugins.
//!
//! For now it re-exports the MPEG-TS helpers the host itself uses
//! ([`ts`]), so a plugin and the host agree on what a whole packet is. The
//! plugin traits and the export macro arrive with the plugin runtime.

pub use acemux_ts as ts;
