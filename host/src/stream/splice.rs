//! Where a channel's next id enters the ring: at its first video keyframe,
//! after its PAT and PMT, so a player reading across the switch decodes
//! the new id from the first byte it gets of it.
//!
//! An engine's playback starts at an arbitrary packet of the live stream:
//! frames that refer to pictures never sent, audio of a program whose PMT
//! the player has not seen. Passed on as they come, they are what makes
//! decoders print errors and show garbage at a switch (and what users of
//! other proxies report as "lost audio after failover"). The gate drops
//! the new id's packets until the first keyframe, then passes its tables
//! and everything from the keyframe on. Each packet of the new id that is
//! the first of its PID has its continuity counter discontinuity
//! announced: its adaptation field's discontinuity indicator is set where
//! it has one, else an adaptation-only packet with the indicator goes
//! before it, so decoders restart their counters and clocks instead of
//! flagging the new id's first frames as corrupt. Table PIDs the id before
//! also carried (PAT, PMT, SDT, EIT) instead continue its counters, for as
//! long as the new id plays: table parsers (VLC's libdvbpsi) report any
//! counter jump as an error, whatever the indicator says.
//!
//! A program without video is passed from its tables on; one whose
//! keyframe does not come within [`MAX_HELD_BACK`] bytes is passed as it
//! is (players must not wait for ever on a stream the scan misreads).

use std::collections::HashSet;

use acemux_ts::{PACKET_SIZE, pid};
use bytes::BytesMut;

use super::media::MediaScanner;

/// Bytes of the new id dropped at most while waiting for a keyframe
/// (about 16 s of a 2 Mbit/s stream).
pub const MAX_HELD_BACK: usize = 4 << 20;

/// PIDs whose first packet is marked at most (a program has a handful).
const MAX_MARKED_PIDS: usize = 64;

/// See the module docs.
#[derive(Debug, Default)]
pub struct SpliceGate {
    scanner: MediaScanner,
    dropped: usize,
    open: bool,
    /// PIDs whose first packet since the switch was marked.
    marked: HashSet<u16>,
    /// No more marking once every PID has been seen (or too many).
    marking_done: bool,
    /// Packets passed since the gate opened (marking ends after a while).
    passed: usize,
    /// The last counters of the id before, per table PID.
    before: Vec<(u16, u8)>,
    /// Per table PID continued: what is added to the new id's counters.
    shifts: Vec<(u16, u8)>,
}

/// Packets after the gate opens within which first packets are marked.
const MARK_WITHIN: usize = 5_000;

impl SpliceGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// A gate whose tables continue `before`, the last counters of the
    /// table PIDs of the id before (see the module docs).
    pub fn continuing(before: &[(u16, u8)]) -> Self {
        Self { before: before.to_vec(), ..Self::default() }
    }

    /// Bytes of the new id dropped before it was let in.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether the gate has nothing more to do (open, marking over, no
    /// table counters to continue).
    pub fn is_done(&self) -> bool {
        self.open && self.marking_done && self.shifts.is_empty()
    }

    /// Whether the new id is let in yet.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Leaves in `aligned` (whole packets) what of it is admitted. Once the
    /// new id is in and its first packets are marked, only table counters
    /// change, in place: no copy for as long as the id plays.
    pub fn admit(&mut self, aligned: &mut BytesMut) {
        if self.open && self.marking_done {
            self.continue_tables(aligned);
            return;
        }
        let mut out = BytesMut::with_capacity(aligned.len() + 4 * PACKET_SIZE);
        self.admit_into(aligned, &mut out);
        *aligned = out;
    }

    /// Continues the counters of the id before's table PIDs in `packets`.
    fn continue_tables(&mut self, packets: &mut [u8]) {
        if self.shifts.is_empty() && self.before.is_empty() {
            return;
        }
        for packet in packets.chunks_exact_mut(PACKET_SIZE) {
            if let Some(shift) = self.shift_of(pid(packet), packet[3] & 0x0f) {
                packet[3] = (packet[3] & 0xf0) | ((packet[3] + shift) & 0x0f);
            }
        }
    }

    /// Passes the admitted part of `aligned` into `out`.
    fn admit_into(&mut self, aligned: &[u8], out: &mut BytesMut) {
        if self.open {
            self.pass(aligned, out);
            return;
        }
        let media = self.scanner.scan(aligned);
        let start = match (&media.keyframes, self.scanner.has_video()) {
            (Some(keyframes), _) => Some((keyframes.first.psi.clone(), keyframes.first.at)),
            (None, Some(false)) => self.scanner.tables().map(|psi| (psi, 0)),
            _ if self.dropped + aligned.len() > MAX_HELD_BACK => {
                Some((self.scanner.tables().unwrap_or_default(), 0))
            }
            _ => None,
        };
        let Some((psi, at)) = start else {
            self.dropped += aligned.len();
            return;
        };
        self.dropped += at;
        self.open = true;
        self.pass(&psi, out);
        self.pass(&aligned[at..], out);
    }

    fn pass(&mut self, packets: &[u8], out: &mut BytesMut) {
        for packet in packets.chunks_exact(PACKET_SIZE) {
            self.passed += 1;
            let pid = pid(packet);
            if let Some(shift) = self.shift_of(pid, packet[3] & 0x0f) {
                let at = out.len();
                out.extend_from_slice(packet);
                out[at + 3] = (packet[3] & 0xf0) | ((packet[3] + shift) & 0x0f);
            } else if pid == 0x1fff || self.marking_done || !self.marked.insert(pid) {
                out.extend_from_slice(packet);
            } else {
                mark_discontinuity(packet, out);
            }
            if self.marked.len() >= MAX_MARKED_PIDS || self.passed >= MARK_WITHIN {
                self.marking_done = true;
            }
        }
    }
}

impl SpliceGate {
    /// What to add to the counter of a packet of `pid` (whose counter is
    /// `counter`) so it continues the id before's table, if it is one.
    fn shift_of(&mut self, pid: u16, counter: u8) -> Option<u8> {
        if let Some((_, shift)) = self.shifts.iter().find(|(p, _)| *p == pid) {
            return Some(*shift);
        }
        let (_, last) = *self.before.iter().find(|(p, _)| *p == pid)?;
        let shift = (last + 1).wrapping_sub(counter) & 0x0f;
        self.shifts.push((pid, shift));
        Some(shift)
    }
}

/// Writes `packet` with its discontinuity indicator set, or, without an
/// adaptation field to set it in, an adaptation-only packet with the
/// indicator before it (its continuity counter one before the packet's,
/// as a packet without payload does not count).
fn mark_discontinuity(packet: &[u8], out: &mut BytesMut) {
    let control = (packet[3] >> 4) & 0b11;
    let has_adaptation = control & 0b10 != 0;
    if has_adaptation && packet[4] > 0 {
        let at = out.len();
        out.extend_from_slice(packet);
        out[at + 5] |= 0x80;
        return;
    }
    let counter = packet[3] & 0x0f;
    let mut marker = [0xffu8; PACKET_SIZE];
    marker[0] = 0x47;
    marker[1] = packet[1] & 0x1f; // no error, no payload start, no priority
    marker[2] = packet[2];
    marker[3] = 0b0010_0000 | (counter.wrapping_sub(1) & 0x0f);
    marker[4] = (PACKET_SIZE - 5) as u8;
    marker[5] = 0x80;
    out.extend_from_slice(&marker);
    out.extend_from_slice(packet);
}

/// The marker [`mark_discontinuity`] writes, for tests.
#[cfg(test)]
fn is_marker(packet: &[u8]) -> bool {
    packet[3] & 0x30 == 0x20 && packet[4] == 183 && packet[5] == 0x80
}

#[cfg(test)]
mod tests {
    use acemux_ts::is_whole_packets;

    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/h264-aac.ts");

    fn through(gate: &mut SpliceGate, ts: &[u8], read: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in ts.chunks(read) {
            let mut aligned = BytesMut::from(piece);
            gate.admit(&mut aligned);
            out.extend_from_slice(&aligned);
        }
        out
    }

    #[test]
    fn lets_the_new_id_in_at_its_first_keyframe_after_its_tables_with_discontinuities_marked() {
        // Join the recording mid-way, as an engine's playback does.
        let middle = (FIXTURE.len() / 2) / PACKET_SIZE * PACKET_SIZE;
        let ts = &FIXTURE[middle..];
        let mut gate = SpliceGate::new();
        let out = through(&mut gate, ts, 7 * PACKET_SIZE);
        assert!(gate.is_open() && gate.dropped() > 0 && is_whole_packets(&out));
        // It starts with the PAT, then the PMT.
        let pid = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        let packets: Vec<&[u8]> = out.chunks(PACKET_SIZE).collect();
        let firsts: Vec<&[u8]> = packets.iter().copied().filter(|p| !is_marker(p)).take(3).collect();
        assert_eq!(pid(firsts[0]), 0);
        // Then a keyframe the scanner finds at once.
        let mut scanner = MediaScanner::new();
        let media = scanner.scan(&out);
        let first = media.keyframes.expect("a keyframe").first;
        assert!(first.at <= 6 * PACKET_SIZE, "keyframe at {}", first.at);
        // Every PID's first packet announces a discontinuity; later ones are as they came.
        let mut seen = HashSet::new();
        for p in &packets {
            let marked = is_marker(p) || (p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0);
            if seen.insert(pid(p)) {
                assert!(marked, "first packet of PID {} unmarked", pid(p));
            }
        }
        // Apart from markers and the tables in front, the packets are the recording's from the keyframe on.
        let original_from = middle + gate.dropped();
        let kept: Vec<&[u8]> = packets.iter().copied().filter(|p| !is_marker(p)).skip(2).collect();
        let original: Vec<&[u8]> = FIXTURE[original_from..].chunks(PACKET_SIZE).collect();
        assert_eq!(kept.len(), original.len());
        let unmarked = |p: &[u8]| {
            let mut p = p.to_vec();
            if p[3] & 0x20 != 0 && p[4] > 0 {
                p[5] &= 0x7f;
            }
            p
        };
        assert!(kept.iter().zip(&original).all(|(a, b)| unmarked(a) == unmarked(b)));
    }

    #[test]
    fn tables_continue_the_counters_of_the_id_before() {
        let middle = (FIXTURE.len() / 2) / PACKET_SIZE * PACKET_SIZE;
        let mut gate = SpliceGate::continuing(&[(0, 5)]);
        let out = through(&mut gate, &FIXTURE[middle..], 7 * PACKET_SIZE);
        let pat_counters: Vec<u8> =
            out.chunks(PACKET_SIZE).filter(|p| !is_marker(p) && pid(p) == 0).map(|p| p[3] & 0x0f).collect();
        assert!(pat_counters.len() > 3, "{pat_counters:?}");
        let expected: Vec<u8> = (0..pat_counters.len() as u8).map(|i| (6 + i) & 0x0f).collect();
        assert_eq!(pat_counters, expected, "the PAT continues from 5, no marker before it");
        assert!(!out.chunks(PACKET_SIZE).any(|p| is_marker(p) && pid(p) == 0));
        assert!(!gate.is_done(), "the counters are continued for as long as the id plays");
    }

    #[test]
    fn without_a_keyframe_it_passes_after_the_bound() {
        let mut gate = SpliceGate::new();
        let noise: Vec<u8> = (0..(MAX_HELD_BACK / PACKET_SIZE + 10))
            .flat_map(|i| {
                let mut p = [0u8; PACKET_SIZE];
                p[0] = 0x47;
                p[1] = 0x01;
                p[3] = 0x10 | (i as u8 & 0x0f);
                p
            })
            .collect();
        let out = through(&mut gate, &noise, 100 * PACKET_SIZE);
        assert!(gate.is_open() && !out.is_empty() && is_whole_packets(&out));
        assert!(gate.dropped() <= MAX_HELD_BACK);
    }
}
