//! MPEG-TS packet helpers shared by the acemux host and the plugin SDK.
//!
//! The host's stream path and the SDK's plugin helpers both need to agree on
//! what a "whole packet" is, so the definitions live here once: the packet
//! size, the sync byte, the null packet, header accessors and the
//! [`Aligner`] that cuts an arbitrary byte stream into whole packets, and
//! the PSI and random-access parsing that tells where a decoder can start.
//!
//! Nothing here allocates per packet.

pub mod access;
mod aligner;
pub mod clock;
mod packet;
pub mod psi;

pub use aligner::{Aligner, AlignerStats};
pub use packet::{
    NULL_PACKET, NULL_PID, PACKET_SIZE, Packet, SYNC_BYTE, is_whole_packets, null_packets, packets, pid,
    set_continuity_counter,
};
