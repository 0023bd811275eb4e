//! Cuts an arbitrary byte stream into whole, sync-checked TS packets.
//!
//! Upstream reads end anywhere, engines send garbage now and then, and every
//! reconnect starts at an arbitrary byte. The aligner carries the partial
//! packet over between reads, emits a packet only once the sync byte of the
//! packet after it has been seen (so a short packet never gets through), and
//! after a loss of sync looks for three sync bytes 188 bytes apart before it
//! trusts the stream again.

use bytes::{Buf, BytesMut};

use crate::packet::{PACKET_SIZE, SYNC_BYTE};

/// Consecutive sync bytes required to (re)gain sync.
const SYNC_CONFIRMATIONS: usize = 3;
/// Bytes needed to test one candidate sync position.
const SYNC_WINDOW: usize = (SYNC_CONFIRMATIONS - 1) * PACKET_SIZE + 1;

/// What the aligner has seen since it was created.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AlignerStats {
    /// Whole packets emitted.
    pub packets: u64,
    /// Bytes thrown away while looking for sync or on reset.
    pub discarded_bytes: u64,
    /// Times sync was lost after having been found.
    pub sync_losses: u64,
}

/// Turns a byte stream into whole 188-byte packets. See the module docs.
#[derive(Debug, Default)]
pub struct Aligner {
    /// Bytes received but not yet emitted: less than two packets once synced.
    pending: BytesMut,
    synced: bool,
    stats: AlignerStats,
}

impl Aligner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters since creation.
    pub fn stats(&self) -> AlignerStats {
        self.stats
    }

    /// Forgets the partial packet and the sync position: call after every
    /// (re)connect, since a new connection starts at an arbitrary byte.
    pub fn reset(&mut self) {
        self.stats.discarded_bytes += self.pending.len() as u64;
        self.pending.clear();
        self.synced = false;
    }

    /// Feeds `input` and appends every packet that is now known to be whole
    /// to `out`. Never writes a partial packet to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut BytesMut) {
        self.pending.extend_from_slice(input);
        loop {
            if self.synced {
                let run = self.synced_run();
                if run > 0 {
                    out.extend_from_slice(&self.pending[..run * PACKET_SIZE]);
                    self.pending.advance(run * PACKET_SIZE);
                    self.stats.packets += run as u64;
                    continue;
                }
                // Not even one packet confirmed: either we wait for the next
                // packet's sync byte, or the stream is out of sync.
                let waiting =
                    self.pending.len() <= PACKET_SIZE && self.pending.first().is_none_or(|&b| b == SYNC_BYTE);
                if waiting {
                    return;
                }
                self.synced = false;
                self.stats.sync_losses += 1;
            }
            if !self.find_sync() {
                return;
            }
        }
    }

    /// Number of leading packets whose own sync byte and the next packet's
    /// sync byte are both in place.
    fn synced_run(&self) -> usize {
        let buf = &self.pending[..];
        let mut n = 0;
        while (n + 1) * PACKET_SIZE < buf.len()
            && buf[n * PACKET_SIZE] == SYNC_BYTE
            && buf[(n + 1) * PACKET_SIZE] == SYNC_BYTE
        {
            n += 1;
        }
        n
    }

    /// Discards bytes up to the first position with enough sync bytes in a
    /// row. Returns true when sync was found.
    fn find_sync(&mut self) -> bool {
        let buf = &self.pending[..];
        if buf.len() < SYNC_WINDOW {
            return false;
        }
        let candidates = buf.len() - SYNC_WINDOW + 1;
        let found =
            (0..candidates).find(|&i| (0..SYNC_CONFIRMATIONS).all(|k| buf[i + k * PACKET_SIZE] == SYNC_BYTE));
        let discard = found.unwrap_or(candidates);
        self.stats.discarded_bytes += discard as u64;
        self.pending.advance(discard);
        self.synced = found.is_some();
        self.synced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::is_whole_packets;

    /// Packets whose bytes after the header are all `tag`, so tests can tell
    /// them apart.
    fn packet(tag: u8) -> Vec<u8> {
        let mut p = vec![tag; PACKET_SIZE];
        p[0] = SYNC_BYTE;
        p[1] = 0x01;
        p[2] = tag;
        p
    }

    fn stream(tags: impl IntoIterator<Item = u8>) -> Vec<u8> {
        tags.into_iter().flat_map(packet).collect()
    }

    fn run(aligner: &mut Aligner, input: &[u8], step: usize) -> Vec<u8> {
        let mut out = BytesMut::new();
        for piece in input.chunks(step) {
            aligner.push(piece, &mut out);
        }
        out.to_vec()
    }

    #[test]
    fn passes_aligned_stream_whole_in_any_read_size() {
        let input = stream(1..=20);
        for step in [1, 7, 187, 188, 189, 500, 4096] {
            let mut a = Aligner::new();
            let out = run(&mut a, &input, step);
            // The last packet waits for the next packet's sync byte.
            assert_eq!(out, input[..19 * PACKET_SIZE], "step {step}");
            assert_eq!(a.stats().discarded_bytes, 0);
        }
    }

    #[test]
    fn skips_leading_garbage_and_resyncs() {
        let mut input = vec![0x47, 0x00, 0x12, 0x47, 0x99];
        input.extend(stream(1..=10));
        let mut a = Aligner::new();
        let out = run(&mut a, &input, 64);
        assert!(is_whole_packets(&out));
        assert_eq!(out, stream(1..=9));
        assert_eq!(a.stats().discarded_bytes, 5);
    }

    #[test]
    fn drops_short_packet_after_mid_stream_garbage() {
        let mut input = stream(1..=5);
        // A packet cut short, then the stream goes on.
        input.extend_from_slice(&packet(6)[..100]);
        input.extend(stream(7..=12));
        let mut a = Aligner::new();
        let out = run(&mut a, &input, 33);
        assert!(is_whole_packets(&out));
        let tags: Vec<u8> = out.chunks(PACKET_SIZE).map(|p| p[2]).collect();
        // Packet 5 is confirmed by the cut packet's sync byte; 6 is dropped.
        assert_eq!(tags, vec![1, 2, 3, 4, 5, 7, 8, 9, 10, 11]);
        assert_eq!(a.stats().sync_losses, 1);
    }

    #[test]
    fn reset_forgets_partial_packet() {
        let input = stream(1..=4);
        let mut a = Aligner::new();
        let mut out = BytesMut::new();
        a.push(&input[..3 * PACKET_SIZE + 50], &mut out);
        a.reset();
        a.push(&stream(10..=14), &mut out);
        assert!(is_whole_packets(&out));
        let tags: Vec<u8> = out.chunks(PACKET_SIZE).map(|p| p[2]).collect();
        // Packet 3 was confirmed by packet 4's sync byte before the reset.
        assert_eq!(tags, vec![1, 2, 3, 10, 11, 12, 13]);
        assert_eq!(a.stats().discarded_bytes, 50);
    }

    #[test]
    fn never_panics_or_emits_partial_on_noise() {
        let mut seed = 0x1234_5678u32;
        let mut a = Aligner::new();
        let mut out = BytesMut::new();
        for round in 0..200 {
            let len = (round * 37) % 700;
            let noise: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    if seed.is_multiple_of(5) { SYNC_BYTE } else { seed as u8 }
                })
                .collect();
            a.push(&noise, &mut out);
            assert_eq!(out.len() % PACKET_SIZE, 0);
        }
        assert!(is_whole_packets(&out));
    }
}
