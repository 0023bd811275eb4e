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

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    use bytes::Bytes;

    use super::*;

    fn cut(secs: f64, discontinuity: bool) -> Cut {
        Cut {
            parts: vec![Bytes::from_static(&[0x47; 188])],
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
