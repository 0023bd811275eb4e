//! Constants and accessors for single 188-byte transport stream packets.

use bytes::Bytes;

/// Size of one MPEG-TS packet in bytes.
pub const PACKET_SIZE: usize = 188;
/// First byte of every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// PID of null (stuffing) packets; decoders ignore them.
pub const NULL_PID: u16 = 0x1FFF;

/// One null packet: header `47 1F FF 10` then 184 bytes of `FF`.
pub const NULL_PACKET: [u8; PACKET_SIZE] = {
    let mut p = [0xFFu8; PACKET_SIZE];
    p[0] = SYNC_BYTE;
    p[1] = 0x1F;
    p[2] = 0xFF;
    p[3] = 0x10;
    p
};

/// `count` null packets in one buffer, as sent while there is no real data.
pub fn null_packets(count: usize) -> Bytes {
    let mut v = Vec::with_capacity(count * PACKET_SIZE);
    for _ in 0..count {
        v.extend_from_slice(&NULL_PACKET);
    }
    Bytes::from(v)
}

/// The 13-bit PID of a packet (the caller guarantees `packet.len() >= 3`).
pub fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2])
}

/// Iterates the whole packets of a batch; a trailing partial packet is ignored.
pub fn packets(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    batch.chunks_exact(PACKET_SIZE)
}

/// True when `batch` is a non-negative number of whole packets, each starting
/// with the sync byte.
pub fn is_whole_packets(batch: &[u8]) -> bool {
    batch.len().is_multiple_of(PACKET_SIZE) && packets(batch).all(|p| p[0] == SYNC_BYTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_packet_has_null_pid() {
        assert_eq!(pid(&NULL_PACKET), NULL_PID);
        assert_eq!(&NULL_PACKET[..4], &[0x47, 0x1F, 0xFF, 0x10]);
        let batch = null_packets(3);
        assert_eq!(batch.len(), 3 * PACKET_SIZE);
        assert!(is_whole_packets(&batch));
    }

    #[test]
    fn whole_packets_rejects_partial_and_unsynced() {
        let mut b = null_packets(2).to_vec();
        assert!(is_whole_packets(&b));
        b[PACKET_SIZE] = 0;
        assert!(!is_whole_packets(&b));
        assert!(!is_whole_packets(&NULL_PACKET[..100]));
        assert!(is_whole_packets(&[]));
    }
}

/// A read-only view of one packet's header fields. Every accessor is safe
/// on any 188-byte input, including malformed packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a>(pub &'a [u8; PACKET_SIZE]);

impl<'a> Packet<'a> {
    /// Views `bytes` as a packet if it is exactly 188 bytes long.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.try_into().ok().map(Packet)
    }

    pub fn bytes(&self) -> &'a [u8; PACKET_SIZE] {
        self.0
    }

    pub fn is_synced(&self) -> bool {
        self.0[0] == SYNC_BYTE
    }

    pub fn pid(&self) -> u16 {
        pid(self.0)
    }

    pub fn is_null(&self) -> bool {
        self.pid() == NULL_PID
    }

    /// Payload unit start indicator: a PES packet or PSI section starts here.
    pub fn pusi(&self) -> bool {
        self.0[1] & 0x40 != 0
    }

    /// Transport scrambling control (0 = clear).
    pub fn scrambling(&self) -> u8 {
        self.0[3] >> 6
    }

    pub fn has_adaptation_field(&self) -> bool {
        self.0[3] & 0x20 != 0
    }

    pub fn has_payload(&self) -> bool {
        self.0[3] & 0x10 != 0
    }

    pub fn continuity_counter(&self) -> u8 {
        self.0[3] & 0x0F
    }

    /// The adaptation field after its length byte, if present and sane.
    pub fn adaptation_field(&self) -> Option<&'a [u8]> {
        if !self.has_adaptation_field() {
            return None;
        }
        let len = usize::from(self.0[4]);
        (len > 0 && 5 + len <= PACKET_SIZE).then(|| &self.0[5..5 + len])
    }

    /// The random access indicator (a decoder can start here).
    pub fn random_access(&self) -> bool {
        self.adaptation_field().is_some_and(|af| af[0] & 0x40 != 0)
    }

    /// The program clock reference in 27 MHz units, if the packet carries one.
    pub fn pcr(&self) -> Option<u64> {
        let af = self.adaptation_field()?;
        if af[0] & 0x10 == 0 || af.len() < 7 {
            return None;
        }
        let base = (u64::from(af[1]) << 25)
            | (u64::from(af[2]) << 17)
            | (u64::from(af[3]) << 9)
            | (u64::from(af[4]) << 1)
            | (u64::from(af[5]) >> 7);
        let ext = (u64::from(af[5] & 0x01) << 8) | u64::from(af[6]);
        Some(base * 300 + ext)
    }

    /// The payload (after header and adaptation field); empty if none.
    pub fn payload(&self) -> &'a [u8] {
        if !self.has_payload() {
            return &[];
        }
        let start = if self.has_adaptation_field() { 5 + usize::from(self.0[4]) } else { 4 };
        self.0.get(start..).unwrap_or(&[])
    }
}

/// Sets the continuity counter of a packet in place.
pub fn set_continuity_counter(packet: &mut [u8; PACKET_SIZE], cc: u8) {
    packet[3] = (packet[3] & 0xF0) | (cc & 0x0F);
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn reads_header_fields_and_pcr() {
        let mut p = [0xFFu8; PACKET_SIZE];
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x35]); // PUSI, PID 0x100, AF+payload, CC 5
        p[4] = 7; // adaptation field length
        p[5] = 0x50; // random access + PCR flag
        p[6..12].copy_from_slice(&[0x00, 0x00, 0x00, 0x01, 0x7E, 0x05]);
        let v = Packet::new(&p).unwrap();
        assert!(v.is_synced() && v.pusi() && v.random_access());
        assert_eq!(v.pid(), 0x100);
        assert_eq!(v.continuity_counter(), 5);
        assert_eq!(v.pcr(), Some(2 * 300 + 5));
        assert_eq!(v.payload().len(), PACKET_SIZE - 12);
        let mut q = p;
        set_continuity_counter(&mut q, 9);
        assert_eq!(Packet::new(&q).unwrap().continuity_counter(), 9);
    }

    #[test]
    fn malformed_packets_never_panic() {
        for b3 in 0..=255u8 {
            for b4 in [0u8, 1, 183, 184, 200, 255] {
                let mut p = [0u8; PACKET_SIZE];
                p[3] = b3;
                p[4] = b4;
                let v = Packet::new(&p).unwrap();
                let _ = (v.pcr(), v.payload(), v.random_access(), v.adaptation_field());
            }
        }
        assert!(Packet::new(&[0u8; 10]).is_none());
    }
}
