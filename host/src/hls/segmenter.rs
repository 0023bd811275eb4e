//! Cuts a stream's chunks into HLS segments, without copying a byte.
//!
//! The segmenter reads the ring like a player does and decides where each
//! segment starts and how long it is; a segment is a list of `Bytes` slices
//! of the ring's chunks (plus the shared PAT+PMT before its keyframe), so it
//! outlives the ring's eviction of those chunks at no copying cost. The
//! slices are grouped in parts as they come (see [`super::parts`]).
//!
//! - A segment starts at a video keyframe, with the PAT and PMT in force
//!   there, so it decodes on its own. It ends at the first keyframe at
//!   least the target length after its start, measured on the media's own
//!   timestamps (the keyframes' PTS). A GOP longer than the target makes
//!   longer segments; it is never cut mid-GOP.
//! - A stream with no recognisable keyframe (after [`KEYFRAME_WAIT`] target
//!   lengths of media) is cut at chunk boundaries by its clock instead, each
//!   segment still led by PAT and PMT; such segments are not independent.
//! - A new upstream connection (reconnect or failover) or a jump of the
//!   media clock ends the segment being cut, and the next one is marked as a
//!   discontinuity (its timestamps are unrelated to the previous ones). The
//!   ended segment loses its last video frame, which the lost connection
//!   most likely cut short (a decoder would report a broken picture),
//!   unless a complete part already holds it.
//! - Keepalive null packets (inserted while the engine is silent) are left out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use acemux_ts::clock::{CLOCK_HZ, clock_diff};
use bytes::Bytes;

use super::parts::{Cutting, Part, PartCutter};
use crate::stream::media::ChunkMedia;
use crate::stream::ring::MediaChunk;

/// Target lengths of media to wait for a first keyframe before cutting by
/// time.
pub const KEYFRAME_WAIT: u32 = 3;
/// A segment grows to at most this many target lengths while no keyframe
/// comes (a broken encoder), then is cut at a chunk boundary.
pub const MAX_TARGETS_PER_SEGMENT: u32 = 10;
/// A media clock step back of more than this (ticks) is a discontinuity.
const MAX_STEP_BACK: i64 = CLOCK_HZ as i64;
/// A media clock step forward of more than this (seconds) is a
/// discontinuity, if also more than [`KEYFRAME_WAIT`] target lengths.
const MAX_STEP_FORWARD_SECS: u64 = 10;

/// A finished segment, before the window numbers it.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Its parts; their slices one after another are the segment (PAT+PMT
    /// when known, then the media, as slices of the ring's chunks).
    pub parts: Vec<Arc<Part>>,
    pub bytes: usize,
    /// Media time covered (from timestamps; arrival time only for a stream
    /// that carries none).
    pub duration: Duration,
    /// Starts with PAT, PMT and a keyframe.
    pub independent: bool,
    /// Follows a break in the media timeline (`#EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// Wall-clock time of the segment's first frame.
    pub program_date_time: SystemTime,
}

impl Cut {
    /// The segment's bytes, as shared slices in order.
    pub fn slices(&self) -> impl Iterator<Item = &Bytes> {
        self.parts.iter().flat_map(|p| p.slices.iter())
    }
}

/// The segment being cut.
struct Building {
    parts: PartCutter,
    /// Media time of its first byte (keyframe PTS, or the chunk's clock).
    start: Option<u64>,
    /// Latest media time seen in it.
    latest: Option<u64>,
    /// Arrival of its first chunk (for streams without timestamps).
    arrived: Instant,
    latest_arrival: Instant,
    independent: bool,
    discontinuity: bool,
    program_date_time: SystemTime,
}

impl Building {
    /// Media time from the segment's start to `at` (a clock value, or the
    /// arrival time when either end has no clock).
    fn elapsed(&self, at: Option<u64>, arrived: Instant) -> Duration {
        match (self.start, at) {
            (Some(start), Some(at)) => ticks(clock_diff(at, start)),
            _ => arrived.saturating_duration_since(self.arrived),
        }
    }
}

fn ticks(t: i64) -> Duration {
    Duration::from_micros(u64::try_from(t).unwrap_or(0) * 1_000_000 / CLOCK_HZ)
}

/// See the module docs.
pub struct Segmenter {
    target: Duration,
    /// Part target (LL-HLS); `None` cuts each segment as one part.
    part_target: Option<Duration>,
    building: Option<Building>,
    /// Connection number of the chunks being cut.
    connection: u64,
    /// Whether this connection's stream showed a keyframe yet.
    keyframes_seen: bool,
    /// Media time (or arrival) of the first chunk of this connection, to
    /// know when to stop waiting for a keyframe.
    connection_start: Option<(Option<u64>, Instant)>,
    /// Latest media time of this connection.
    clock: Option<u64>,
    /// The next segment follows a break.
    break_pending: bool,
    /// Wall-clock time of the next segment's start, continuing the previous
    /// segment's (program date-times follow the media clock between breaks).
    next_date_time: Option<SystemTime>,
}

impl Segmenter {
    pub fn new(target: Duration, part_target: Option<Duration>) -> Self {
        Self {
            target,
            part_target,
            building: None,
            connection: 0,
            keyframes_seen: false,
            connection_start: None,
            clock: None,
            break_pending: false,
            next_date_time: None,
        }
    }

    /// Feeds one chunk; returns what it cut, in order: data for the part
    /// being cut, parts and segments completed.
    pub fn push(&mut self, chunk: MediaChunk) -> Vec<Cutting> {
        let mut out = Vec::new();
        let Some(media) = chunk.media else { return out };
        let arrived = chunk.appended_at;
        if chunk.connection != self.connection {
            if self.connection != 0 {
                self.break_timeline(&mut out);
            }
            self.connection = chunk.connection;
            self.keyframes_seen = false;
            self.connection_start = None;
            self.clock = None;
        }
        if let (Some(span), Some(last)) = (media.clock, self.clock) {
            let step = clock_diff(span.first, last);
            let forward_limit = (MAX_STEP_FORWARD_SECS * CLOCK_HZ)
                .max(u64::from(KEYFRAME_WAIT) * self.target.as_millis() as u64 * CLOCK_HZ / 1000);
            if step < -MAX_STEP_BACK || step > forward_limit as i64 {
                self.break_timeline(&mut out);
                self.keyframes_seen = false;
                self.connection_start = None;
            }
        }
        let start = *self.connection_start.get_or_insert((media.clock.map(|c| c.first), arrived));
        self.keyframes_seen |= media.keyframes.is_some();

        let data = chunk.data;
        let first = media.clock.map(|c| c.first);
        let mut from = 0;
        // Media time where the data from `from` on starts.
        let mut from_time = first;
        if let Some(k) = &media.keyframes {
            let mut points = vec![&k.first];
            if k.count > 1 && k.last.at > k.first.at {
                points.push(&k.last);
            }
            for point in points {
                match &mut self.building {
                    None => {
                        self.begin(point.psi.clone(), point.pts, arrived, true, &mut out);
                        from = point.at;
                        from_time = point.pts;
                    }
                    Some(b) if b.elapsed(point.pts, arrived) >= self.target => {
                        let (s, e) = (b.elapsed(from_time, arrived), b.elapsed(point.pts, arrived));
                        b.parts.media(data.slice(from..point.at), s, e, None, &mut out);
                        self.finish(point.pts, arrived, &mut out);
                        self.begin(point.psi.clone(), point.pts, arrived, true, &mut out);
                        from = point.at;
                        from_time = point.pts;
                    }
                    Some(b) => {
                        // A keyframe inside the segment may start a part.
                        let (s, e) = (b.elapsed(from_time, arrived), b.elapsed(point.pts, arrived));
                        b.parts.media(data.slice(from..point.at), s, e, None, &mut out);
                        from = point.at;
                        from_time = point.pts;
                        b.parts.keyframe(e, point.psi.clone(), &mut out);
                    }
                }
            }
        } else {
            let now = media.clock.map(|c| c.first);
            match &self.building {
                None if !self.keyframes_seen && self.waited(start, now, arrived) => {
                    self.begin_at_boundary(&media, arrived, &mut out);
                }
                None => return out,
                Some(b) => {
                    let limit =
                        if self.keyframes_seen { self.target * MAX_TARGETS_PER_SEGMENT } else { self.target };
                    if b.elapsed(now, arrived) >= limit {
                        self.finish(now, arrived, &mut out);
                        self.begin_at_boundary(&media, arrived, &mut out);
                    }
                }
            }
        }
        if let Some(b) = &mut self.building {
            let frame = media.last_frame.filter(|at| *at >= from && *at < data.len()).map(|at| at - from);
            let end = media.clock.map(|c| c.last);
            let (s, e) = (b.elapsed(from_time, arrived), b.elapsed(end, arrived));
            b.parts.media(data.slice(from..), s, e.max(s), frame, &mut out);
            b.latest_arrival = arrived;
            if let Some(span) = media.clock {
                b.latest = Some(match b.latest {
                    Some(l) if clock_diff(span.last, l) <= 0 => l,
                    _ => span.last,
                });
            }
        }
        if let Some(span) = media.clock {
            self.clock = Some(match self.clock {
                Some(c) if clock_diff(span.last, c) <= 0 => c,
                _ => span.last,
            });
        }
        out
    }

    /// Data was lost (the reader fell behind the ring): the segment being
    /// cut ends where its data ends, and the next one follows a break.
    pub fn lost(&mut self) -> Vec<Cutting> {
        let mut out = Vec::new();
        self.break_timeline(&mut out);
        self.keyframes_seen = false;
        self.connection_start = None;
        self.clock = None;
        out
    }

    /// Whether this connection has waited long enough for a keyframe.
    fn waited(&self, start: (Option<u64>, Instant), now: Option<u64>, arrived: Instant) -> bool {
        let waited = match (start.0, now) {
            (Some(s), Some(n)) => ticks(clock_diff(n, s)),
            _ => arrived.saturating_duration_since(start.1),
        };
        waited >= self.target * KEYFRAME_WAIT
    }

    fn begin_at_boundary(&mut self, media: &ChunkMedia, arrived: Instant, out: &mut Vec<Cutting>) {
        let psi = media.psi.clone().unwrap_or_default();
        self.begin(psi, media.clock.map(|c| c.first), arrived, false, out);
    }

    fn begin(
        &mut self,
        psi: Bytes,
        start: Option<u64>,
        arrived: Instant,
        keyframe: bool,
        out: &mut Vec<Cutting>,
    ) {
        let program_date_time = self.next_date_time.take().unwrap_or_else(|| {
            SystemTime::now().checked_sub(arrived.elapsed()).unwrap_or_else(SystemTime::now)
        });
        let independent = keyframe && !psi.is_empty();
        let mut parts = PartCutter::new(self.part_target, independent);
        parts.tables(psi, out);
        self.building = Some(Building {
            parts,
            start,
            latest: start,
            arrived,
            latest_arrival: arrived,
            independent,
            discontinuity: std::mem::take(&mut self.break_pending),
            program_date_time,
        });
    }

    /// Closes the segment being cut at media time `end`.
    fn finish(&mut self, end: Option<u64>, arrived: Instant, out: &mut Vec<Cutting>) {
        let Some(b) = self.building.take() else { return };
        let duration = b.elapsed(end, arrived);
        self.next_date_time = Some(b.program_date_time + duration);
        let bytes = b.parts.bytes();
        let parts = b.parts.finish(duration, out);
        out.push(Cutting::Segment(Cut {
            parts,
            bytes,
            duration,
            independent: b.independent,
            discontinuity: b.discontinuity,
            program_date_time: b.program_date_time,
        }));
    }

    /// The timeline breaks here: the segment being cut ends at the last
    /// media time it holds, and the next one is a discontinuity.
    fn break_timeline(&mut self, out: &mut Vec<Cutting>) {
        if let Some(mut b) = self.building.take() {
            // The segment now ends where its last frame started.
            let (end, arrived) = (b.latest, b.latest_arrival);
            b.parts.drop_last_frame();
            if b.parts.has_media() {
                self.building = Some(b);
                self.finish(end, arrived, out);
            } else {
                out.push(Cutting::Abandoned);
            }
        }
        self.break_pending = true;
        self.next_date_time = None;
    }
}

#[cfg(test)]
mod tests {
    use acemux_ts::access::is_random_access;
    use acemux_ts::clock::pes_pts;
    use acemux_ts::{PACKET_SIZE, Packet, packets};

    use super::*;
    use crate::stream::media::MediaScanner;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/h264-aac.ts");

    /// The fixture cut into ring chunks of `packets` packets, scanned as the
    /// upstream does, on connection `connection`.
    fn chunks(ts: &[u8], packets: usize, connection: u64) -> Vec<MediaChunk> {
        let mut scanner = MediaScanner::new();
        ts.chunks(packets * PACKET_SIZE)
            .map(|c| {
                let data = Bytes::copy_from_slice(c);
                MediaChunk { media: Some(scanner.scan(&data)), data, connection, appended_at: Instant::now() }
            })
            .collect()
    }

    fn joined(cut: &Cut) -> Vec<u8> {
        cut.slices().flat_map(|s| s.iter().copied()).collect()
    }

    /// The segments cutting `chunks` finishes.
    fn segments(segmenter: &mut Segmenter, chunks: Vec<MediaChunk>) -> Vec<Cut> {
        chunks
            .into_iter()
            .flat_map(|c| segmenter.push(c))
            .filter_map(|c| match c {
                Cutting::Segment(cut) => Some(cut),
                _ => None,
            })
            .collect()
    }

    fn first_video_pts(ts: &[u8]) -> Option<u64> {
        packets(ts).filter_map(Packet::new).filter(|p| p.pid() == 0x100).find_map(|p| pes_pts(&p))
    }

    #[test]
    fn cuts_at_keyframes_every_target_with_pat_pmt_first_and_pts_durations() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), None);
        let cuts = segments(&mut segmenter, chunks(FIXTURE, 100, 1));
        // 12 one-second GOPs: segments of 2 s from the first keyframe, the
        // last GOPs still being cut.
        assert_eq!(cuts.len(), 5);
        for cut in &cuts {
            assert_eq!(cut.duration, Duration::from_secs(2));
            assert!(cut.independent && !cut.discontinuity);
            let bytes = joined(cut);
            assert_eq!(bytes.len(), cut.bytes);
            let pids: Vec<u16> = packets(&bytes).take(3).map(acemux_ts::pid).collect();
            assert_eq!(pids, [0, 0x1000, 0x100], "PAT, PMT, then video");
            let third = Packet::new(&bytes[2 * PACKET_SIZE..3 * PACKET_SIZE]).unwrap();
            assert!(is_random_access(&third, acemux_ts::access::VideoCodec::H264));
        }
        // Program date-times follow the media clock.
        for pair in cuts.windows(2) {
            assert_eq!(
                pair[1].program_date_time.duration_since(pair[0].program_date_time).unwrap(),
                pair[0].duration
            );
        }
        // No byte copied: every media part points into a chunk the ring holds.
        let pts: Vec<u64> = cuts.iter().map(|c| first_video_pts(&joined(c)).unwrap()).collect();
        for pair in pts.windows(2) {
            assert_eq!(clock_diff(pair[1], pair[0]), 2 * 90_000);
        }
    }

    #[test]
    fn a_gop_longer_than_the_target_makes_a_longer_segment() {
        let mut segmenter = Segmenter::new(Duration::from_millis(1500), None);
        let cuts = segments(&mut segmenter, chunks(FIXTURE, 50, 1));
        assert!(cuts.iter().all(|c| c.duration == Duration::from_secs(2)), "never cut mid-GOP");
    }

    #[test]
    fn a_new_connection_ends_the_segment_and_marks_a_discontinuity() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), None);
        let half = FIXTURE.len() / PACKET_SIZE / 2 * PACKET_SIZE;
        let mut cuts = segments(&mut segmenter, chunks(&FIXTURE[..half], 100, 1));
        let before = cuts.len();
        cuts.extend(segments(&mut segmenter, chunks(FIXTURE, 100, 2)));
        // The segment open at the break was closed before its last video
        // frame (most likely cut short); it lasts until the latest
        // presentation time it saw.
        let closed = &cuts[before];
        assert!(!closed.discontinuity);
        let video_pts = |ts: &[u8]| -> Vec<u64> {
            packets(ts)
                .filter_map(Packet::new)
                .filter(|p| p.pid() == 0x100)
                .filter_map(|p| pes_pts(&p))
                .collect()
        };
        let sent = video_pts(&FIXTURE[..half]);
        let kept = video_pts(&joined(closed));
        assert!(!kept.contains(sent.last().unwrap()), "the last frame is left out");
        assert_eq!(kept.len(), sent.iter().filter(|p| **p >= kept[0]).count() - 1);
        let latest = sent.iter().copied().filter(|p| *p >= kept[0]).max().unwrap();
        assert_eq!(closed.duration, ticks(clock_diff(latest, kept[0])));
        let after = &cuts[before + 1];
        assert!(after.discontinuity && after.independent);
        assert!(cuts[before + 2..].iter().all(|c| !c.discontinuity));
    }

    #[test]
    fn keepalive_chunks_are_left_out() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), None);
        let mut cuts = Vec::new();
        for (i, chunk) in chunks(FIXTURE, 100, 1).into_iter().enumerate() {
            cuts.extend(segments(&mut segmenter, vec![chunk]));
            if i % 3 == 0 {
                let keepalive = MediaChunk {
                    data: acemux_ts::null_packets(7),
                    media: None,
                    connection: 0,
                    appended_at: Instant::now(),
                };
                cuts.extend(segments(&mut segmenter, vec![keepalive]));
            }
        }
        assert_eq!(cuts.len(), 5);
        for cut in &cuts {
            assert!(packets(&joined(cut)).all(|p| acemux_ts::pid(p) != acemux_ts::NULL_PID));
        }
    }

    #[test]
    fn a_stream_without_keyframes_is_cut_by_its_clock() {
        // The recording with its video declared as private data in the
        // PMT: no keyframe is recognised, and the PCR times the stream.
        let mut ts = FIXTURE.to_vec();
        for p in ts.chunks_mut(PACKET_SIZE) {
            if acemux_ts::pid(p) == 0x1000 {
                let at = p.windows(3).position(|w| w == [0x1B, 0xE1, 0x00]).expect("H.264 entry in the PMT");
                p[at] = 0x06;
            }
        }
        let mut segmenter = Segmenter::new(Duration::from_secs(2), None);
        let cuts = segments(&mut segmenter, chunks(&ts, 20, 1));
        assert!(!cuts.is_empty(), "cut by time");
        for cut in &cuts {
            assert!(!cut.independent);
            let d = cut.duration.as_secs_f64();
            assert!((2.0..2.5).contains(&d), "duration {d}");
            let pids: Vec<u16> = packets(&joined(cut)).take(2).map(acemux_ts::pid).collect();
            assert_eq!(pids, [0, 0x1000], "PAT and PMT first");
        }
    }

    #[test]
    fn parts_follow_the_data_and_concatenate_to_their_segment() {
        let target = Duration::from_millis(400);
        let mut segmenter = Segmenter::new(Duration::from_secs(2), Some(target));
        let (mut streamed, mut parts, mut cuts) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in chunks(FIXTURE, 20, 1) {
            for c in segmenter.push(chunk) {
                match c {
                    Cutting::Data(d) => streamed.extend_from_slice(&d),
                    Cutting::Part(p) => {
                        // What was handed out as data is the part.
                        let bytes: Vec<u8> = p.slices.concat();
                        assert_eq!(bytes, std::mem::take(&mut streamed));
                        assert_eq!(bytes.len(), p.bytes);
                        parts.push(p);
                    }
                    Cutting::Segment(cut) => {
                        let listed: Vec<_> = std::mem::take(&mut parts);
                        assert_eq!(cut.parts.len(), listed.len());
                        assert!(cut.parts.iter().zip(&listed).all(|(a, b)| Arc::ptr_eq(a, b)));
                        cuts.push(cut);
                    }
                    Cutting::Abandoned => panic!("nothing to abandon"),
                }
            }
        }
        assert_eq!(cuts.len(), 5);
        for cut in &cuts {
            assert!(cut.parts.len() >= 4, "{} parts", cut.parts.len());
            let sum: Duration = cut.parts.iter().map(|p| p.duration).sum();
            assert_eq!(sum, cut.duration, "part durations add up to the segment's");
            for part in &cut.parts {
                assert!(part.duration <= target, "{:?}", part.duration);
                let bytes = part.slices.concat();
                let pids: Vec<u16> = packets(&bytes).take(3).map(acemux_ts::pid).collect();
                if part.independent {
                    assert_eq!(pids, [0, 0x1000, 0x100], "an independent part leads with PAT, PMT, video");
                    let third = Packet::new(&bytes[2 * PACKET_SIZE..3 * PACKET_SIZE]).unwrap();
                    assert!(is_random_access(&third, acemux_ts::access::VideoCodec::H264));
                }
            }
            assert!(cut.parts[0].independent);
            // One-second GOPs: a part starts at every keyframe.
            assert_eq!(cut.parts.iter().filter(|p| p.independent).count(), 2);
        }
    }

    #[test]
    fn a_break_cuts_only_the_open_part_short() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), Some(Duration::from_millis(400)));
        let half = FIXTURE.len() / PACKET_SIZE / 2 * PACKET_SIZE;
        let mut done = Vec::new();
        for chunk in chunks(&FIXTURE[..half], 20, 1).into_iter().chain(chunks(FIXTURE, 20, 2)) {
            for c in segmenter.push(chunk) {
                match c {
                    Cutting::Part(p) => done.push(p),
                    Cutting::Segment(cut) => {
                        assert!(cut.parts.iter().zip(&done).all(|(a, b)| Arc::ptr_eq(a, b)));
                        assert_eq!(cut.parts.len(), done.len());
                        assert_eq!(joined(&cut).len(), cut.bytes);
                        done.clear();
                    }
                    _ => {}
                }
            }
        }
    }
}
