//! The bounded buffer one stream shares with all of its players.
//!
//! The upstream task appends `Bytes` chunks of whole TS packets; every
//! player reads the same chunks through its own sequence number, so the
//! payload is never copied per player. Appending never waits for a reader:
//! the oldest chunks are evicted when the ring is over its byte budget or
//! older than the TTL, and a reader that asked for an evicted chunk learns it
//! lagged. The TTL is short (what joins and lagging players can use, a few
//! seconds), so a stream's memory follows its bitrate; but a chunk is never
//! evicted for age while it holds the keyframe a player joining at the
//! join-behind point starts at, so a long GOP keeps what a keyframe join
//! needs. Readers wait on a `watch` channel that the writer bumps once per
//! chunk, so a waiting player wakes only when there is data for it.
//!
//! Each chunk also carries what the upstream's scan found in it
//! ([`ChunkMedia`]: keyframes, timestamps, tables), so a new player can
//! start where a decoder can and the HLS segmenter can cut and time
//! segments, and which upstream connection delivered it (timestamps of two
//! connections are unrelated).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::watch;

use super::media::ChunkMedia;
use crate::zero_copy::pages::PageStore;

struct Chunk {
    data: Bytes,
    /// Absolute stream offset of the chunk's first byte.
    offset: u64,
    appended_at: Instant,
    /// `None` for keepalive null packets.
    media: Option<ChunkMedia>,
    connection: u64,
}

impl Chunk {
    fn keyframes(&self) -> Option<&super::media::ChunkKeyframes> {
        self.media.as_ref()?.keyframes.as_ref()
    }
}

struct RingInner {
    chunks: VecDeque<Chunk>,
    /// Sequence number of `chunks[0]`.
    first_seq: u64,
    /// Bytes held in `chunks`.
    bytes: usize,
    /// Bytes ever appended (the offset the next chunk gets).
    appended: u64,
    closed: bool,
}

impl RingInner {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.chunks.len() as u64
    }
}

/// What a reader gets for a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The chunk and its absolute stream offset.
    Chunk { data: Bytes, offset: u64 },
    /// The chunk was evicted; `oldest` is the oldest one still held.
    Lagged { oldest: u64 },
    /// Not written yet: wait for the next append.
    Pending,
    /// The stream has ended.
    Closed,
}

/// A chunk with everything the ring knows of it, for readers that cut the
/// stream (the HLS segmenter).
#[derive(Debug, Clone)]
pub struct MediaChunk {
    pub data: Bytes,
    /// `None` for keepalive null packets inserted while the engine was silent.
    pub media: Option<ChunkMedia>,
    /// Which upstream connection delivered the chunk (counts up).
    pub connection: u64,
    pub appended_at: Instant,
}

/// What [`Ring::read_media`] gets for a sequence number.
#[derive(Debug, Clone)]
pub enum MediaRead {
    Chunk(Box<MediaChunk>),
    Lagged { oldest: u64 },
    Pending,
    Closed,
}

/// Where a new reader starts, and what it is sent before that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The first chunk to read.
    pub seq: u64,
    /// Bytes at the front of chunk `seq` to leave out: the reader starts at
    /// a keyframe inside it.
    pub skip: usize,
    /// The PAT and PMT to send before chunk `seq` (a keyframe join).
    pub prefix: Option<Bytes>,
}

/// Buffer occupancy, for status and metrics.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RingStats {
    pub bytes: usize,
    pub capacity_bytes: usize,
    pub chunks: usize,
    pub packets: usize,
    /// Sequence number of the oldest chunk held (equals `next_seq` when empty).
    pub oldest_seq: u64,
    /// Sequence number the next append gets.
    pub next_seq: u64,
    pub appended_bytes: u64,
    /// Video keyframes in the buffer (where a new player can start).
    pub keyframes: usize,
    /// Age of the oldest chunk, seconds.
    pub span_seconds: f64,
    /// Whether chunks are kept in kernel pages players are sent from
    /// without a copy (see [`crate::zero_copy`]).
    pub kernel_pages: bool,
}

/// See the module docs.
pub struct Ring {
    inner: RwLock<RingInner>,
    /// Next sequence number; bumped on every append and on close.
    head: watch::Sender<u64>,
    capacity_bytes: usize,
    ttl: Duration,
    /// Keep, whatever its age, the newest keyframe at least this old.
    join_behind: Option<Duration>,
    /// Where chunks are kept when not on the heap (only the upstream task
    /// appends, so the lock is never contended).
    pages: Option<Mutex<PageStore>>,
}

impl Ring {
    /// A ring holding at most `capacity_bytes` (always at least the newest
    /// chunk) and nothing older than `ttl`.
    pub fn new(capacity_bytes: usize, ttl: Duration) -> Self {
        Self {
            inner: RwLock::new(RingInner {
                chunks: VecDeque::new(),
                first_seq: 0,
                bytes: 0,
                appended: 0,
                closed: false,
            }),
            head: watch::Sender::new(0),
            capacity_bytes,
            ttl,
            join_behind: None,
            pages: None,
        }
    }

    /// Keeps the chunks in kernel pages that players are sent from without
    /// a copy (see [`crate::zero_copy`]) when `enabled` and the kernel
    /// allows; on the heap otherwise.
    pub fn in_kernel_pages(mut self, enabled: bool) -> Self {
        if enabled {
            match PageStore::new() {
                Ok(store) => self.pages = Some(Mutex::new(store)),
                Err(e) => {
                    tracing::warn!(error = %e, "no memfd for the stream's buffer; it stays on the heap")
                }
            }
        }
        self
    }

    /// Also keeps, past the TTL (within the byte budget), the chunk with
    /// the newest keyframe at least `join_behind` old, so a player joining
    /// that far behind live can start at a keyframe.
    pub fn keeping_join_keyframe(mut self, join_behind: Duration) -> Self {
        self.join_behind = Some(join_behind);
        self
    }

    /// Whether the front chunk holds the keyframe a player joining at the
    /// join-behind point would start at (no later chunk has one that old).
    fn front_is_join_keyframe(&self, inner: &RingInner, now: Instant) -> bool {
        let Some(cutoff) = self.join_behind.and_then(|b| now.checked_sub(b)) else { return false };
        let front = &inner.chunks[0];
        if front.keyframes().is_none() || front.appended_at > cutoff {
            return false;
        }
        !inner.chunks.iter().skip(1).take_while(|c| c.appended_at <= cutoff).any(|c| c.keyframes().is_some())
    }

    /// Appends keepalive null packets (no media; see [`Ring::append_media`]).
    pub fn append(&self, data: Bytes) {
        self.push(data, None, 0);
    }

    /// Appends one chunk of the stream, what the scan found in it and the
    /// upstream connection it came on, and wakes waiting readers. Never
    /// blocks on readers.
    pub fn append_media(&self, data: Bytes, media: ChunkMedia, connection: u64) {
        self.push(data, Some(media), connection);
    }

    fn push(&self, data: Bytes, media: Option<ChunkMedia>, connection: u64) {
        if data.is_empty() {
            return;
        }
        let data = match &self.pages {
            Some(pages) => pages.lock().keep(data),
            None => data,
        };
        let now = Instant::now();
        let next = {
            let mut inner = self.inner.write();
            if inner.closed {
                return;
            }
            let offset = inner.appended;
            inner.appended += data.len() as u64;
            inner.bytes += data.len();
            inner.chunks.push_back(Chunk { data, offset, appended_at: now, media, connection });
            while inner.chunks.len() > 1 {
                let front = &inner.chunks[0];
                let over_budget = inner.bytes > self.capacity_bytes;
                let expired = now.duration_since(front.appended_at) > self.ttl
                    && !self.front_is_join_keyframe(&inner, now);
                if !over_budget && !expired {
                    break;
                }
                let len = front.data.len();
                inner.chunks.pop_front();
                inner.bytes -= len;
                inner.first_seq += 1;
            }
            inner.next_seq()
        };
        self.head.send_replace(next);
    }

    /// Ends the stream: every reader gets [`Read::Closed`] from now on.
    pub fn close(&self) {
        self.inner.write().closed = true;
        self.head.send_modify(|_| {});
    }

    /// The chunk with sequence number `seq`.
    pub fn read(&self, seq: u64) -> Read {
        let inner = self.inner.read();
        if inner.closed {
            return Read::Closed;
        }
        if seq < inner.first_seq {
            return Read::Lagged { oldest: inner.first_seq };
        }
        match inner.chunks.get((seq - inner.first_seq) as usize) {
            Some(c) => Read::Chunk { data: c.data.clone(), offset: c.offset },
            None => Read::Pending,
        }
    }

    /// The chunk with sequence number `seq` and what the ring knows of it.
    pub fn read_media(&self, seq: u64) -> MediaRead {
        let inner = self.inner.read();
        if inner.closed {
            return MediaRead::Closed;
        }
        if seq < inner.first_seq {
            return MediaRead::Lagged { oldest: inner.first_seq };
        }
        match inner.chunks.get((seq - inner.first_seq) as usize) {
            Some(c) => MediaRead::Chunk(Box::new(MediaChunk {
                data: c.data.clone(),
                media: c.media.clone(),
                connection: c.connection,
                appended_at: c.appended_at,
            })),
            None => MediaRead::Pending,
        }
    }

    /// Where a new reader starts. The plain point is the oldest chunk
    /// appended within `behind` of now (the newest chunk if none is that
    /// young; the next chunk if the ring is empty), so a new player gets up
    /// to `behind` of recent data at once instead of waiting. With
    /// `at_keyframe`, the reader starts instead at the newest keyframe up to
    /// the end of that chunk, or failing that at the oldest keyframe after
    /// it, with the PAT and PMT first; with no keyframe held, at the plain
    /// point.
    pub fn join(&self, behind: Duration, at_keyframe: bool) -> Join {
        let inner = self.inner.read();
        let plain = match Instant::now().checked_sub(behind) {
            Some(cutoff) => {
                let young = inner.chunks.partition_point(|c| c.appended_at < cutoff);
                young.min(inner.chunks.len().saturating_sub(1))
            }
            None => 0,
        };
        let split = (plain + 1).min(inner.chunks.len());
        let keyframe = if at_keyframe {
            let mut at_or_before = inner.chunks.range(..split).enumerate().rev();
            let mut after = inner.chunks.range(split..).enumerate().map(|(i, c)| (split + i, c));
            at_or_before
                .find_map(|(i, c)| c.keyframes().map(|k| (i, &k.last)))
                .or_else(|| after.find_map(|(i, c)| c.keyframes().map(|k| (i, &k.first))))
        } else {
            None
        };
        match keyframe {
            Some((index, point)) => {
                Join { seq: inner.first_seq + index as u64, skip: point.at, prefix: Some(point.psi.clone()) }
            }
            None => Join { seq: inner.first_seq + plain as u64, skip: 0, prefix: None },
        }
    }

    /// Absolute offset of the first byte of chunk `seq`, clamped to what the
    /// ring knows (for lag accounting).
    pub fn offset_of(&self, seq: u64) -> u64 {
        let inner = self.inner.read();
        match seq.checked_sub(inner.first_seq).and_then(|i| inner.chunks.get(i as usize)) {
            Some(c) => c.offset,
            None if seq < inner.first_seq => inner.chunks.front().map_or(inner.appended, |c| c.offset),
            None => inner.appended,
        }
    }

    /// A receiver that changes on every append and on close.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    pub fn stats(&self) -> RingStats {
        let inner = self.inner.read();
        RingStats {
            bytes: inner.bytes,
            capacity_bytes: self.capacity_bytes,
            chunks: inner.chunks.len(),
            packets: inner.bytes / acemux_ts::PACKET_SIZE,
            oldest_seq: inner.first_seq,
            next_seq: inner.next_seq(),
            appended_bytes: inner.appended,
            keyframes: inner.chunks.iter().filter_map(Chunk::keyframes).map(|k| k.count).sum(),
            span_seconds: inner.chunks.front().map_or(0.0, |c| c.appended_at.elapsed().as_secs_f64()),
            kernel_pages: self.pages.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(tag: u8, len: usize) -> Bytes {
        Bytes::from(vec![tag; len])
    }

    #[test]
    fn readers_share_chunks_and_see_eviction() {
        let ring = Ring::new(300, Duration::from_secs(60));
        ring.append(chunk(1, 100));
        ring.append(chunk(2, 100));
        let Read::Chunk { data: a, offset } = ring.read(0) else { panic!() };
        assert_eq!(offset, 0);
        let Read::Chunk { data: b, .. } = ring.read(0) else { panic!() };
        // Same allocation: no copy per reader.
        assert_eq!(a.as_ptr(), b.as_ptr());
        ring.append(chunk(3, 100));
        ring.append(chunk(4, 100));
        assert_eq!(ring.read(0), Read::Lagged { oldest: 1 });
        assert!(matches!(ring.read(3), Read::Chunk { offset: 300, .. }));
        assert_eq!(ring.read(4), Read::Pending);
        assert_eq!(ring.stats().bytes, 300);
        assert_eq!(ring.offset_of(0), 100);
        assert_eq!(ring.offset_of(9), 400);
    }

    #[test]
    fn keeps_newest_chunk_even_when_larger_than_budget() {
        let ring = Ring::new(10, Duration::from_secs(60));
        ring.append(chunk(1, 50));
        ring.append(chunk(2, 50));
        assert_eq!(ring.stats().chunks, 1);
        assert!(matches!(ring.read(1), Read::Chunk { .. }));
    }

    #[test]
    fn join_starts_behind_live() {
        let ring = Ring::new(1 << 20, Duration::from_secs(60));
        let plain = |behind| ring.join(behind, true).seq;
        assert_eq!(plain(Duration::from_secs(2)), 0);
        ring.append(chunk(1, 10));
        ring.append(chunk(2, 10));
        // Both chunks are younger than 2 s: start at the oldest.
        assert_eq!(plain(Duration::from_secs(2)), 0);
        // Nothing is younger than 0 s: start at the newest chunk.
        assert_eq!(plain(Duration::ZERO), 1);
    }

    fn keyframes(first: usize, last: usize, count: usize) -> ChunkMedia {
        use super::super::media::{ChunkKeyframes, JoinPoint};
        let psi = Bytes::from_static(b"psi");
        let keyframes = ChunkKeyframes {
            first: JoinPoint { at: first, psi: psi.clone(), pts: None },
            last: JoinPoint { at: last, psi: psi.clone(), pts: None },
            count,
        };
        ChunkMedia { keyframes: Some(keyframes), psi: Some(psi), ..ChunkMedia::default() }
    }

    #[test]
    fn join_prefers_the_newest_keyframe_up_to_the_join_point() {
        let ring = Ring::new(1 << 20, Duration::from_secs(60));
        ring.append(chunk(0, 1880));
        ring.append_media(chunk(1, 1880), keyframes(188, 940, 2), 1);
        ring.append(chunk(2, 1880));
        std::thread::sleep(Duration::from_millis(30));
        ring.append(chunk(3, 1880));
        ring.append_media(chunk(4, 1880), keyframes(376, 376, 1), 1);
        assert_eq!(ring.stats().keyframes, 3);
        // The plain point (chunk 3) comes after chunk 1's last keyframe.
        let join = ring.join(Duration::from_millis(20), true);
        assert_eq!((join.seq, join.skip), (1, 940));
        assert_eq!(join.prefix.as_deref(), Some(&b"psi"[..]));
        // Live (chunk 4): its own keyframe counts.
        assert_eq!(ring.join(Duration::ZERO, true).seq, 4);
        // Turned off: the plain point, nothing skipped or prepended.
        assert_eq!(ring.join(Duration::from_millis(20), false), Join { seq: 3, skip: 0, prefix: None });
    }

    #[test]
    fn join_takes_a_later_keyframe_when_none_is_older_and_plain_when_none_is_held() {
        let ring = Ring::new(1 << 20, Duration::from_secs(60));
        ring.append(chunk(0, 1880));
        ring.append(chunk(1, 1880));
        assert_eq!(ring.join(Duration::from_secs(5), true), Join { seq: 0, skip: 0, prefix: None });
        ring.append_media(chunk(2, 1880), keyframes(564, 1128, 2), 1);
        let join = ring.join(Duration::from_secs(5), true);
        assert_eq!((join.seq, join.skip), (2, 564));
    }

    #[test]
    fn a_short_ttl_keeps_the_keyframe_a_join_behind_live_starts_at() {
        let ring =
            Ring::new(1 << 20, Duration::from_millis(20)).keeping_join_keyframe(Duration::from_millis(10));
        ring.append_media(chunk(0, 1880), keyframes(0, 0, 1), 1);
        ring.append(chunk(1, 1880));
        std::thread::sleep(Duration::from_millis(40));
        ring.append(chunk(2, 1880));
        // Chunk 1 expired; chunk 0 too, but it holds the only keyframe old
        // enough for a join 10 ms behind.
        assert_eq!(ring.stats().oldest_seq, 0, "the join keyframe stays");
        assert_eq!(ring.join(Duration::from_millis(10), true).seq, 0);
        // A newer keyframe, once old enough, takes its place.
        ring.append_media(chunk(3, 1880), keyframes(0, 0, 1), 1);
        std::thread::sleep(Duration::from_millis(40));
        ring.append(chunk(4, 1880));
        assert_eq!(ring.stats().oldest_seq, 3, "everything before the newer keyframe left");
        // Without the anchor the TTL alone decides.
        let plain = Ring::new(1 << 20, Duration::from_millis(20));
        plain.append_media(chunk(0, 1880), keyframes(0, 0, 1), 1);
        std::thread::sleep(Duration::from_millis(40));
        plain.append(chunk(1, 1880));
        assert_eq!(plain.stats().oldest_seq, 1);
    }

    #[tokio::test]
    async fn close_wakes_readers() {
        let ring = std::sync::Arc::new(Ring::new(100, Duration::from_secs(60)));
        let mut rx = ring.subscribe();
        rx.borrow_and_update();
        let r = ring.clone();
        let waiter = tokio::spawn(async move {
            rx.changed().await.unwrap();
            r.read(0)
        });
        tokio::task::yield_now().await;
        ring.close();
        assert_eq!(waiter.await.unwrap(), Read::Closed);
    }
}
