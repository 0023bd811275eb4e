//! Partial segments (Low-Latency HLS): the segment being cut is handed out
//! in parts of about the part target as they complete, so a low-latency
//! player fetches media a part after acemux got it instead of a segment
//! after.
//!
//! A segment *is* its parts: the segmenter appends every slice of the
//! ring's chunks to the part being cut, and a segment's bytes are its
//! parts' slices one after another, so parts concatenate to exactly their
//! segment's bytes and nothing is copied. A part ends at a chunk boundary
//! (chunks end at frame boundaries) before it would grow past the part
//! target, or at a keyframe once it holds most of a target: the next part
//! then starts with PAT, PMT and the keyframe, and is independent (a
//! player can start at it). Part durations are measured on the media's
//! timestamps from the segment's start, so they add up to the segment's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::segmenter::Cut;

/// A part closes at a keyframe once it holds this share of the target
/// (RFC 8216bis: parts SHOULD be at least 85% of the part target).
const KEYFRAME_CLOSE_SHARE: f64 = 0.85;

/// A part closes before its data reaches this share of the target. A
/// chunk's timestamps say where its last frame starts, not where it ends,
/// and a keyframe may follow right after it: the margin keeps a part that
/// ends there within the target (RFC 8216bis: MUST) for frames up to a tenth
/// of the target long (40 ms frames and parts of 0.4 s or more).
const GROWTH_SHARE: f64 = 0.9;

/// A complete partial segment.
#[derive(Debug)]
pub struct Part {
    /// Slices of the ring's chunks (the first part of a segment, and a part
    /// starting at a keyframe, lead with the PAT and PMT).
    pub slices: Vec<Bytes>,
    pub bytes: usize,
    pub duration: Duration,
    /// Starts with PAT, PMT and a keyframe.
    pub independent: bool,
}

/// What cutting a chunk produced, in order.
#[derive(Debug)]
pub enum Cutting {
    /// Bytes for the part being cut (a part opens with its first bytes).
    Data(Bytes),
    /// The part being cut is complete: the `Data` since the previous part,
    /// unless the end of a timeline cut it short.
    Part(Arc<Part>),
    /// The segment being cut is complete: the `Part`s since the previous
    /// segment.
    Segment(Cut),
    /// The segment being cut held nothing decodable and is dropped; it had
    /// no complete part.
    Abandoned,
}

/// The parts of the segment being cut. Offsets are media time from the
/// segment's start.
#[derive(Debug)]
pub(super) struct PartCutter {
    /// The part target; `None` cuts a segment as one part.
    target: Option<Duration>,
    done: Vec<Arc<Part>>,
    open: Vec<Bytes>,
    open_bytes: usize,
    open_start: Duration,
    /// The latest media time the open part's data reaches.
    open_latest: Duration,
    open_independent: bool,
    /// The open part holds media, not only tables.
    open_has_media: bool,
    /// Slices of tables leading the open part.
    open_tables: usize,
    /// Where the open part's last video frame starts: slice, offset.
    last_frame: Option<(usize, usize)>,
}

impl PartCutter {
    pub fn new(target: Option<Duration>, independent: bool) -> Self {
        Self {
            target,
            done: Vec::new(),
            open: Vec::with_capacity(32),
            open_bytes: 0,
            open_start: Duration::ZERO,
            open_latest: Duration::ZERO,
            open_independent: independent,
            open_has_media: false,
            open_tables: 0,
            last_frame: None,
        }
    }

    /// Appends the tables that lead a part (not media).
    pub fn tables(&mut self, psi: Bytes, out: &mut Vec<Cutting>) {
        if !psi.is_empty() {
            self.open_bytes += psi.len();
            self.open_tables += 1;
            self.open.push(psi.clone());
            out.push(Cutting::Data(psi));
        }
    }

    /// Appends media spanning `start..end` (offsets), first closing the open
    /// part if it would grow past the target; `frame` is where the data's
    /// last video frame starts. A part closed early ends at the latest time
    /// its own data reaches (presentation times are reordered, so the next
    /// data may start later than that), which keeps it within the target.
    pub fn media(
        &mut self,
        data: Bytes,
        start: Duration,
        end: Duration,
        frame: Option<usize>,
        out: &mut Vec<Cutting>,
    ) {
        if data.is_empty() {
            return;
        }
        if let Some(target) = self.target
            && self.open_has_media
            && end.saturating_sub(self.open_start) > target.mul_f64(GROWTH_SHARE)
        {
            self.close(self.open_latest, out);
            self.open_independent = false;
        }
        self.open_latest = self.open_latest.max(start).max(end);
        if let Some(at) = frame.filter(|at| *at < data.len()) {
            self.last_frame = Some((self.open.len(), at));
        }
        self.open_bytes += data.len();
        self.open_has_media = true;
        self.open.push(data.clone());
        out.push(Cutting::Data(data));
    }

    /// A keyframe inside the segment at offset `at`, led by the tables
    /// `psi`: the open part closes there if it holds most of a target, and
    /// the next one starts with the tables (independent if there are any).
    pub fn keyframe(&mut self, at: Duration, psi: Bytes, out: &mut Vec<Cutting>) {
        let Some(target) = self.target else { return };
        if !self.open_has_media || at.saturating_sub(self.open_start) < target.mul_f64(KEYFRAME_CLOSE_SHARE) {
            return;
        }
        self.close(at, out);
        self.open_independent = !psi.is_empty();
        self.tables(psi, out);
    }

    /// Closes the open part at offset `end`.
    fn close(&mut self, end: Duration, out: &mut Vec<Cutting>) {
        let end = end.max(self.open_start);
        let part = Arc::new(Part {
            slices: std::mem::take(&mut self.open),
            bytes: std::mem::take(&mut self.open_bytes),
            duration: end - self.open_start,
            independent: self.open_independent,
        });
        self.open_start = end;
        self.open_latest = end;
        self.open_has_media = false;
        self.open_tables = 0;
        self.last_frame = None;
        out.push(Cutting::Part(part.clone()));
        self.done.push(part);
    }

    /// Drops the open part's last video frame and what follows it (the
    /// end of a timeline most likely cut it short). Bytes already handed
    /// out as `Data` are then missing from the part.
    pub fn drop_last_frame(&mut self) {
        let Some((slice, at)) = self.last_frame.take() else { return };
        self.open.truncate(slice + 1);
        self.open[slice].truncate(at);
        self.open.retain(|s| !s.is_empty());
        self.open_bytes = self.open.iter().map(Bytes::len).sum();
        // The open part may now hold only tables.
        self.open_tables = self.open_tables.min(self.open.len());
        self.open_has_media = self.open.len() > self.open_tables;
    }

    /// Whether the segment holds anything decodable.
    pub fn has_media(&self) -> bool {
        !self.done.is_empty() || self.open_has_media
    }

    /// Bytes of the segment so far.
    pub fn bytes(&self) -> usize {
        self.done.iter().map(|p| p.bytes).sum::<usize>() + self.open_bytes
    }

    /// Ends the segment at offset `end`: the open part becomes its last.
    pub fn finish(mut self, end: Duration, out: &mut Vec<Cutting>) -> Vec<Arc<Part>> {
        if !self.open.is_empty() {
            self.close(end, out);
        }
        self.done
    }
}
