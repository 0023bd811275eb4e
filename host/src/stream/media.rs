//! What a chunk holds for a decoder: where a new reader can start
//! decoding, what time the media says it is, and the tables in force.
//!
//! A player that joins a live stream at an arbitrary packet gets frames
//! that refer to pictures it never received, and has to wait for the next
//! PAT and PMT before it even knows the PIDs; decoders print errors and
//! show garbage until the next keyframe. The upstream task runs every chunk
//! through a [`MediaScanner`] before the ring, so the ring knows, per
//! chunk, the packets where a video keyframe starts (with its PTS) and the
//! PAT and PMT in force there. A joining player is then sent PAT, PMT and
//! the stream from a keyframe on, and decodes from its first byte; the HLS
//! segmenter cuts at the same points and times segments by the same PTS.
//!
//! The scan reads packet headers only, plus the first bytes of PES starts
//! on the timing PID: about 5 µs per 64 KiB chunk (`docs/benchmarks.md`).

use acemux_ts::access::{VideoStream, is_random_access};
use acemux_ts::clock::{clock_diff, pcr_90khz, pes_pts};
use acemux_ts::psi::{parse_pat, parse_pmt};
use acemux_ts::{PACKET_SIZE, Packet, packets};
use bytes::{Bytes, BytesMut};

/// A packet a player can start at, and what it must be sent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinPoint {
    /// Byte offset of the keyframe's first packet in its chunk.
    pub at: usize,
    /// The PAT and PMT packets in force at the keyframe, to send before it.
    pub psi: Bytes,
    /// The keyframe's presentation timestamp (90 kHz), when its PES has one.
    pub pts: Option<u64>,
}

/// The keyframes one chunk holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkKeyframes {
    /// The chunk's first keyframe (for a player joining before it).
    pub first: JoinPoint,
    /// The chunk's last keyframe (for a player joining after it).
    pub last: JoinPoint,
    pub count: usize,
}

/// The earliest and latest media timestamps a chunk carries (90 kHz):
/// the video PID's PTS, or the PCR when the program has no video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSpan {
    pub first: u64,
    pub last: u64,
}

/// What [`MediaScanner::scan`] found in one chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkMedia {
    pub keyframes: Option<ChunkKeyframes>,
    pub clock: Option<ClockSpan>,
    /// Byte offset of the chunk's last packet that starts a video PES (a
    /// frame): where a stream cut short loses its incomplete last frame.
    pub last_frame: Option<usize>,
    /// PAT + PMT in force at the chunk's end (shared until they change).
    pub psi: Option<Bytes>,
}

/// A PAT or PMT packet, kept to be sent again before a keyframe.
type PsiPacket = [u8; PACKET_SIZE];

/// The program map as far as the scan needs it.
#[derive(Debug, Clone, Copy)]
struct Pmt {
    packet: PsiPacket,
    video: Option<VideoStream>,
    pcr_pid: u16,
}

/// Follows a stream's PAT, PMT, video PID and clock across chunks. See the
/// module docs.
#[derive(Debug, Default)]
pub struct MediaScanner {
    /// The latest PAT packet, and the PMT PID of its first program.
    pat: Option<(PsiPacket, u16)>,
    /// The latest PMT packet of that program.
    pmt: Option<Pmt>,
    /// `pat` + `pmt` as one buffer, built when first needed after either
    /// changed and shared by every join point until the next change.
    psi: Option<Bytes>,
    /// The continuity counter of the last packet of each table PID (PAT,
    /// the PMT's, SDT/BAT, EIT) scanned: where a channel's next id
    /// continues them.
    table_counters: Vec<(u16, u8)>,
}

/// Table PIDs whose counters are followed besides the PMT's: PAT, SDT/BAT, EIT.
const TABLE_PIDS: [u16; 3] = [0, 0x11, 0x12];

impl MediaScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the stream's tables (a new upstream connection may carry a
    /// different program layout).
    pub fn reset(&mut self) {
        // The counters describe what the ring got last, whatever comes next.
        let table_counters = std::mem::take(&mut self.table_counters);
        *self = Self { table_counters, ..Self::default() };
    }

    /// Whether the program has video, once its PMT was read.
    pub fn has_video(&self) -> Option<bool> {
        self.pmt.as_ref().map(|p| p.video.is_some())
    }

    /// The video PID, once the PMT named one.
    pub fn video_pid(&self) -> Option<u16> {
        self.pmt.as_ref().and_then(|p| p.video).map(|v| v.pid)
    }

    /// The last continuity counter of each table PID scanned.
    pub fn table_counters(&self) -> &[(u16, u8)] {
        &self.table_counters
    }

    fn count_table_packet(&mut self, pid: u16, counter: u8) {
        if let Some(entry) = self.table_counters.iter_mut().find(|(p, _)| *p == pid) {
            entry.1 = counter;
        } else if self.table_counters.len() < 8 {
            self.table_counters.push((pid, counter));
        }
    }

    /// The PAT and PMT in force, once both were read.
    pub fn tables(&mut self) -> Option<Bytes> {
        self.psi()
    }

    /// What `chunk` (whole packets) holds.
    pub fn scan(&mut self, chunk: &[u8]) -> ChunkMedia {
        let mut found: Option<ChunkKeyframes> = None;
        let mut clock: Option<ClockSpan> = None;
        let mut last_frame = None;
        for (index, raw) in packets(chunk).enumerate() {
            let Some(packet) = Packet::new(raw) else { continue };
            let pid = packet.pid();
            if TABLE_PIDS.contains(&pid) || self.pat.is_some_and(|(_, pmt_pid)| pmt_pid == pid) {
                self.count_table_packet(pid, raw[3] & 0x0f);
            }
            if pid == 0 {
                self.on_pat(&packet);
                continue;
            }
            if self.pat.is_some_and(|(_, pmt_pid)| pmt_pid == pid) {
                self.on_pmt(&packet);
                continue;
            }
            let Some((video, pcr_pid)) = self.pmt.as_ref().map(|p| (p.video, p.pcr_pid)) else { continue };
            let time = match video {
                Some(video) if video.pid == pid => pes_pts(&packet),
                None if pcr_pid == pid => pcr_90khz(&packet),
                _ => None,
            };
            if let Some(t) = time {
                clock = Some(match clock {
                    None => ClockSpan { first: t, last: t },
                    Some(c) if clock_diff(t, c.last) > 0 => ClockSpan { last: t, ..c },
                    Some(c) => c,
                });
            }
            let Some(video) = video else { continue };
            if pid != video.pid || !packet.pusi() {
                continue;
            }
            last_frame = Some(index * PACKET_SIZE);
            if !is_random_access(&packet, video.codec) {
                continue;
            }
            let Some(psi) = self.psi() else { continue };
            let point = JoinPoint { at: index * PACKET_SIZE, psi, pts: time };
            match found.as_mut() {
                Some(f) => {
                    f.last = point;
                    f.count += 1;
                }
                None => found = Some(ChunkKeyframes { first: point.clone(), last: point, count: 1 }),
            }
        }
        ChunkMedia { keyframes: found, clock, last_frame, psi: self.psi() }
    }

    fn on_pat(&mut self, packet: &Packet<'_>) {
        let Some(programs) = parse_pat(packet) else { return };
        let Some(&(_, pmt_pid)) = programs.first() else { return };
        if self.pat.is_some_and(|(_, old)| old != pmt_pid) {
            self.pmt = None;
        }
        self.pat = Some((*packet.bytes(), pmt_pid));
        self.psi = None;
    }

    fn on_pmt(&mut self, packet: &Packet<'_>) {
        // A PMT too large for one packet is not followed: no keyframes are
        // reported and players get the plain join.
        let Some(map) = parse_pmt(packet) else { return };
        self.pmt = Some(Pmt { packet: *packet.bytes(), video: map.video(), pcr_pid: map.pcr_pid });
        self.psi = None;
    }

    fn psi(&mut self) -> Option<Bytes> {
        let (Some((pat, _)), Some(pmt)) = (&self.pat, &self.pmt) else { return None };
        let psi = self.psi.get_or_insert_with(|| {
            let mut psi = BytesMut::with_capacity(2 * PACKET_SIZE);
            psi.extend_from_slice(pat);
            psi.extend_from_slice(&pmt.packet);
            psi.freeze()
        });
        Some(psi.clone())
    }
}

#[cfg(test)]
mod tests {
    use acemux_ts::is_whole_packets;

    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/h264-aac.ts");
    const H265: &[u8] = include_bytes!("../../../tests/fixtures/h265.ts");
    const MPEG2: &[u8] = include_bytes!("../../../tests/fixtures/mpeg2.ts");
    const VIDEO_PID: u16 = 0x100;

    /// The recording with every random access indicator cleared, so only
    /// the pictures themselves tell where a keyframe is.
    fn without_indicator(ts: &[u8]) -> Vec<u8> {
        let mut stripped = ts.to_vec();
        for p in stripped.chunks_mut(PACKET_SIZE) {
            if p[3] & 0x20 != 0 && p[4] > 0 {
                p[5] &= !0x40;
            }
        }
        stripped
    }

    fn keyframe_offsets(ts: &[u8]) -> Vec<usize> {
        scan_all(ts, 16 * PACKET_SIZE).iter().map(|(base, k)| base + k.first.at).collect()
    }

    fn video_keyframes_by_indicator(ts: &[u8]) -> Vec<usize> {
        packets(ts)
            .enumerate()
            .filter(|(_, p)| {
                let p = Packet::new(p).unwrap();
                p.pid() == VIDEO_PID && p.random_access()
            })
            .map(|(i, _)| i * PACKET_SIZE)
            .collect()
    }

    fn scan_all(ts: &[u8], chunk: usize) -> Vec<(usize, ChunkKeyframes)> {
        let mut scanner = MediaScanner::new();
        ts.chunks(chunk)
            .enumerate()
            .filter_map(|(i, c)| scanner.scan(c).keyframes.map(|k| (i * chunk, k)))
            .collect()
    }

    #[test]
    fn finds_every_video_keyframe_of_a_real_stream_and_no_audio_frame() {
        let expected = video_keyframes_by_indicator(FIXTURE);
        assert_eq!(expected.len(), 12, "one keyframe per second in the fixture");
        // One chunk per keyframe at most with 16-packet chunks.
        let found = scan_all(FIXTURE, 16 * PACKET_SIZE);
        let starts: Vec<usize> = found.iter().map(|(base, k)| base + k.first.at).collect();
        assert_eq!(starts, expected);
        for (_, k) in &found {
            assert_eq!(k.count, 1);
            let psi: Vec<u16> = packets(&k.first.psi).map(acemux_ts::pid).collect();
            assert_eq!(psi, [0, 0x1000], "PAT then PMT");
        }
    }

    #[test]
    fn finds_h264_idr_pictures_without_the_indicator() {
        assert_eq!(keyframe_offsets(&without_indicator(FIXTURE)), video_keyframes_by_indicator(FIXTURE));
    }

    #[test]
    fn finds_h265_and_mpeg2_keyframes_with_and_without_the_indicator() {
        for (ts, keyframes) in [(H265, 3), (MPEG2, 5)] {
            let expected = video_keyframes_by_indicator(ts);
            assert_eq!(expected.len(), keyframes, "keyframes in the fixture");
            assert_eq!(keyframe_offsets(ts), expected);
            assert_eq!(keyframe_offsets(&without_indicator(ts)), expected);
        }
    }

    #[test]
    fn first_and_last_keyframe_of_a_large_chunk() {
        let expected = video_keyframes_by_indicator(FIXTURE);
        let found = scan_all(FIXTURE, FIXTURE.len());
        let (_, k) = &found[0];
        assert_eq!((k.first.at, k.last.at, k.count), (expected[0], expected[11], 12));
    }

    #[test]
    fn nothing_before_the_tables_are_known_and_nothing_in_other_streams() {
        let first_keyframe = video_keyframes_by_indicator(FIXTURE)[0];
        let mut scanner = MediaScanner::new();
        // The keyframe packet alone: no PAT/PMT seen yet.
        assert_eq!(scanner.scan(&FIXTURE[first_keyframe..first_keyframe + PACKET_SIZE]).keyframes, None);
        assert_eq!(scanner.scan(&acemux_ts::null_packets(10)).keyframes, None);
        assert!(scanner.scan(&FIXTURE[..first_keyframe + PACKET_SIZE]).keyframes.is_some());
        scanner.reset();
        assert_eq!(scanner.scan(&FIXTURE[first_keyframe..first_keyframe + PACKET_SIZE]).keyframes, None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The recording cut into arbitrary chunks of whole packets, with
        /// arbitrary bytes of arbitrary packets overwritten (the sync byte
        /// kept, as the aligner guarantees): the scanner never panics, and
        /// every join point it gives is a packet boundary inside its chunk
        /// with whole PAT+PMT packets to send first.
        #[test]
        fn join_points_are_packet_boundaries_whatever_the_stream_holds(
            chunk_packets in proptest::collection::vec(1usize..400, 1..40),
            damage in proptest::collection::vec((0usize..FIXTURE.len(), proptest::prelude::any::<u8>()), 0..200),
        ) {
            let mut ts = FIXTURE.to_vec();
            for (at, byte) in damage {
                if at % PACKET_SIZE != 0 {
                    ts[at] = byte;
                }
            }
            let mut scanner = MediaScanner::new();
            let mut from = 0;
            for n in chunk_packets.into_iter().cycle() {
                if from >= ts.len() {
                    break;
                }
                let chunk = &ts[from..(from + n * PACKET_SIZE).min(ts.len())];
                if let Some(k) = scanner.scan(chunk).keyframes {
                    for point in [&k.first, &k.last] {
                        proptest::prop_assert!(point.at % PACKET_SIZE == 0 && point.at < chunk.len());
                        proptest::prop_assert!(is_whole_packets(&point.psi) && !point.psi.is_empty());
                        proptest::prop_assert_eq!(acemux_ts::pid(&point.psi), 0, "PAT first");
                    }
                    proptest::prop_assert!(k.first.at <= k.last.at && k.count >= 1);
                }
                from += chunk.len();
            }
        }
    }
}
