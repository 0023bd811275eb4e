//! A batch of whole TS packets, as a filter sees it.

use acemux_ts::{PACKET_SIZE, packets};

pub use acemux_ts::Packet;

/// Whole 188-byte packets; the filter changes them in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    bytes: Vec<u8>,
}

impl Batch {
    /// Wraps bytes from acemux (always whole packets).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// A batch made of these packets (handy in tests).
    pub fn from_packets<'a>(list: impl IntoIterator<Item = &'a [u8; PACKET_SIZE]>) -> Self {
        Self { bytes: list.into_iter().flatten().copied().collect() }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.bytes.len() / PACKET_SIZE
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packets, in order.
    pub fn packets(&self) -> impl Iterator<Item = Packet<'_>> {
        packets(&self.bytes).filter_map(Packet::new)
    }

    /// The packets, in order, to change in place.
    pub fn packets_mut(&mut self) -> impl Iterator<Item = &mut [u8; PACKET_SIZE]> {
        self.bytes.chunks_exact_mut(PACKET_SIZE).filter_map(|p| p.try_into().ok())
    }

    /// Keeps only the packets for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(Packet<'_>) -> bool) {
        let mut write = 0;
        for read in (0..self.bytes.len() / PACKET_SIZE).map(|i| i * PACKET_SIZE) {
            let packet: &[u8; PACKET_SIZE] =
                self.bytes[read..read + PACKET_SIZE].try_into().expect("whole packet");
            if keep(Packet(packet)) {
                if read != write {
                    self.bytes.copy_within(read..read + PACKET_SIZE, write);
                }
                write += PACKET_SIZE;
            }
        }
        self.bytes.truncate(write);
    }

    /// Appends a packet.
    pub fn push(&mut self, packet: &[u8; PACKET_SIZE]) {
        self.bytes.extend_from_slice(packet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_ts::NULL_PACKET;

    #[test]
    fn retain_keeps_order_and_whole_packets() {
        let mut video = NULL_PACKET;
        video[1] = 0x01;
        video[2] = 0x00;
        let mut b = Batch::from_packets([&video, &NULL_PACKET, &video, &NULL_PACKET]);
        b.retain(|p| !p.is_null());
        assert_eq!(b.len(), 2);
        assert!(b.packets().all(|p| p.pid() == 0x100));
        b.push(&NULL_PACKET);
        assert_eq!(b.as_bytes().len(), 3 * PACKET_SIZE);
    }
}
