//! The sliding window of a stream's HLS segments: numbering, what a
//! playlist lists, and what is still served after it slid out.
//!
//! A segment's number never changes meaning: numbers count up from a
//! process-wide floor taken from the clock, so a stream that is stopped and
//! started again (or a viewer that reloads across that) never meets an old
//! number with new content, and a cache in front never serves a stale one.
//! A segment that slid out of the playlist stays fetchable for
//! [`KEPT_AFTER_LISTING`] more segments, for viewers that fetched the
//! playlist just before it slid.
//!
//! The window also holds the segment being cut: its complete parts (listed
//! for low-latency players under the number the segment will get) and the
//! data of the part being cut (streamed to a player that asked for it
//! ahead, as `EXT-X-PRELOAD-HINT` invites).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::parts::{Cutting, Part};
use super::segmenter::Cut;

/// Segments still served after they left the playlist.
pub const KEPT_AFTER_LISTING: usize = 3;

/// The highest segment number handed out in this process.
static LAST_NUMBER: AtomicU64 = AtomicU64::new(0);

/// The first number of a new window: past every number this process used,
/// and past the clock's seconds (so numbers keep growing across restarts of
/// acemux too, as long as segments are at least a second long).
fn first_number() -> u64 {
    let clock = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    clock.max(LAST_NUMBER.load(Ordering::Relaxed) + 1)
}

/// One numbered segment.
#[derive(Debug)]
pub struct Segment {
    pub sequence: u64,
    pub cut: Cut,
}

/// What a media playlist shows, taken under the window's lock.
#[derive(Debug, Clone)]
pub struct Listing {
    pub target_duration: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: Vec<Arc<Segment>>,
    /// The segment being cut: its number and complete parts.
    pub live_sequence: u64,
    pub live_parts: Vec<Arc<Part>>,
}

impl Listing {
    /// The newest complete part listed: segment number and part index.
    pub fn newest_part(&self) -> Option<(u64, usize)> {
        match self.live_parts.len() {
            0 => self.segments.last().map(|s| (s.sequence, s.cut.parts.len().saturating_sub(1))),
            n => Some((self.live_sequence, n - 1)),
        }
    }
}

/// The segment being cut.
#[derive(Debug, Default)]
struct LiveSegment {
    parts: Vec<Arc<Part>>,
    /// Data of the part being cut.
    open: Vec<Bytes>,
}

/// Where a part stands, for a request that may be ahead of the cutting.
#[derive(Debug)]
pub enum PartState {
    /// Complete.
    Done(Arc<Part>),
    /// Being cut: its data so far, past the slices the caller has.
    Open(Vec<Bytes>),
    /// Not begun, but next to be cut.
    Next,
    /// Gone, never to be, or too far ahead.
    Missing,
}

/// See the module docs.
#[derive(Debug)]
pub struct SegmentWindow {
    segments: VecDeque<Arc<Segment>>,
    listed: usize,
    next_number: u64,
    /// Discontinuity tags on segments dropped from `segments`.
    discontinuities_dropped: u64,
    /// Whole seconds every listed segment fits in (never decreases).
    target_duration: u64,
    bytes: usize,
    live: LiveSegment,
}

impl SegmentWindow {
    /// A window listing `listed` segments, `target` long each.
    pub fn new(listed: usize, target: Duration) -> Self {
        Self {
            segments: VecDeque::with_capacity(listed + KEPT_AFTER_LISTING + 1),
            listed,
            next_number: first_number(),
            discontinuities_dropped: 0,
            target_duration: target.as_secs_f64().ceil() as u64,
            bytes: 0,
            live: LiveSegment::default(),
        }
    }

    /// Takes in what the segmenter cut.
    pub fn apply(&mut self, cutting: Cutting) {
        match cutting {
            Cutting::Data(data) => self.live.open.push(data),
            Cutting::Part(part) => {
                self.live.open.clear();
                self.live.parts.push(part);
            }
            Cutting::Segment(cut) => {
                self.live = LiveSegment::default();
                self.push(cut);
            }
            Cutting::Abandoned => self.live = LiveSegment::default(),
        }
    }

    /// Complete parts of the segment being cut.
    pub fn live_parts(&self) -> usize {
        self.live.parts.len()
    }

    /// Number the segment being cut will get.
    pub fn live_sequence(&self) -> u64 {
        self.next_number
    }

    /// Part `index` of segment `sequence`; of a part being cut, the slices
    /// past the first `have`.
    pub fn part(&self, sequence: u64, index: usize, have: usize) -> PartState {
        if sequence == self.next_number {
            return match self.live.parts.get(index) {
                Some(part) => PartState::Done(part.clone()),
                None if index == self.live.parts.len() && !self.live.open.is_empty() => {
                    PartState::Open(self.live.open.get(have..).unwrap_or_default().to_vec())
                }
                None if index == self.live.parts.len() => PartState::Next,
                None => PartState::Missing,
            };
        }
        match self.get(sequence).and_then(|s| s.cut.parts.get(index).cloned()) {
            Some(part) => PartState::Done(part),
            None => PartState::Missing,
        }
    }

    /// Numbers `cut` and adds it at the live end.
    pub fn push(&mut self, cut: Cut) -> Arc<Segment> {
        let sequence = self.next_number;
        self.next_number += 1;
        LAST_NUMBER.fetch_max(sequence, Ordering::Relaxed);
        // RFC 8216: every EXTINF, rounded to the nearest integer, at most
        // the target duration.
        self.target_duration = self.target_duration.max(cut.duration.as_secs_f64().round() as u64).max(1);
        let segment = Arc::new(Segment { sequence, cut });
        self.bytes += segment.cut.bytes;
        self.segments.push_back(segment.clone());
        while self.segments.len() > self.listed + KEPT_AFTER_LISTING {
            if let Some(old) = self.segments.pop_front() {
                self.bytes -= old.cut.bytes;
                self.discontinuities_dropped += u64::from(old.cut.discontinuity);
            }
        }
        segment
    }

    /// The segments a playlist lists now.
    pub fn listing(&self) -> Listing {
        let skip = self.segments.len().saturating_sub(self.listed);
        let before = self.segments.iter().take(skip).filter(|s| s.cut.discontinuity).count() as u64;
        let segments: Vec<Arc<Segment>> = self.segments.iter().skip(skip).cloned().collect();
        Listing {
            target_duration: self.target_duration,
            media_sequence: segments.first().map_or(self.next_number, |s| s.sequence),
            discontinuity_sequence: self.discontinuities_dropped + before,
            segments,
            live_sequence: self.next_number,
            live_parts: self.live.parts.clone(),
        }
    }

    /// Segment `sequence`, if still held.
    pub fn get(&self, sequence: u64) -> Option<Arc<Segment>> {
        let first = self.segments.front()?.sequence;
        self.segments.get(usize::try_from(sequence.checked_sub(first)?).ok()?).cloned()
    }

    /// Segments held (listed or kept).
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Payload bytes the held segments reference (mostly shared with the
    /// ring while it still holds them).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// Number of the newest segment.
    pub fn newest(&self) -> Option<u64> {
        self.segments.back().map(|s| s.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(secs: f64, discontinuity: bool) -> Cut {
        let part = Part {
            slices: vec![Bytes::from_static(&[0x47; 188])],
            bytes: 188,
            duration: Duration::from_secs_f64(secs),
            independent: true,
        };
        Cut {
            parts: vec![Arc::new(part)],
            bytes: 188,
            duration: Duration::from_secs_f64(secs),
            independent: true,
            discontinuity,
            program_date_time: SystemTime::now(),
        }
    }

    #[test]
    fn slides_keeps_recent_segments_and_counts_discontinuities_that_left() {
        let mut w = SegmentWindow::new(3, Duration::from_secs(4));
        let first = w.push(cut(4.0, false)).sequence;
        w.push(cut(4.0, true));
        for _ in 0..3 {
            w.push(cut(4.0, false));
        }
        let l = w.listing();
        assert_eq!(l.segments.len(), 3);
        assert_eq!(l.media_sequence, first + 2);
        assert_eq!(l.discontinuity_sequence, 1, "the tagged segment slid out");
        // Slid out but still served.
        assert!(w.get(first).is_some() && w.get(first + 1).is_some());
        for _ in 0..KEPT_AFTER_LISTING {
            w.push(cut(4.0, false));
        }
        assert!(w.get(first).is_none());
        assert_eq!(w.listing().discontinuity_sequence, 1, "counted once, also after being dropped");
        assert_eq!(w.len(), 3 + KEPT_AFTER_LISTING);
        assert_eq!(w.bytes(), 188 * w.len());
    }

    #[test]
    fn target_duration_covers_every_segment_and_numbers_never_repeat() {
        let mut a = SegmentWindow::new(3, Duration::from_secs(4));
        assert_eq!(a.target_duration(), 4);
        a.push(cut(4.4, false));
        assert_eq!(a.target_duration(), 4);
        a.push(cut(6.6, false));
        assert_eq!(a.target_duration(), 7);
        a.push(cut(2.0, false));
        assert_eq!(a.target_duration(), 7, "never decreases");
        let b = SegmentWindow::new(3, Duration::from_secs(4));
        assert!(b.listing().media_sequence > a.newest().unwrap(), "a new window starts past the old numbers");
    }
}
