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
