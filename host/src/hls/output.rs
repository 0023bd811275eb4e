//! One stream's HLS output: a segmenter following the ring, the window of
//! segments it cut, and the viewers fetching them.
//!
//! The output's task is one more reader of the session's ring (its own
//! cursor, like a player's), started by the first HLS viewer and ended when
//! the stream ends or no viewer has fetched a playlist for the viewer
//! timeout; its segments go with it. It starts at the oldest keyframe the
//! ring holds, so the first playlist is usually ready at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug};

use crate::events::{EventBus, PlayerKind, StreamEvent};
use crate::stream::ring::MediaRead;
use crate::stream::{PlayerSlot, Session, SessionState, StreamError};

use super::parts::Cutting;
use super::segmenter::Segmenter;
use super::settings::HlsSettings;
use super::viewers::{Departed, ViewerStats, Viewers};
use super::window::{Listing, PartState, Segment, SegmentWindow};

/// How often viewers' presence is checked.
const SWEEP: Duration = Duration::from_secs(1);
/// Empty sweeps in a row before the output retires (so a viewer that is
/// being added as the output starts is never raced).
const IDLE_SWEEPS: u32 = 2;
/// Starting "this far back" reaches the oldest chunk the ring holds.
const WHOLE_RING: Duration = Duration::from_secs(24 * 3600);

/// Served totals of one output.
#[derive(Debug, Default)]
pub struct OutputCounters {
    pub playlists: AtomicU64,
    pub segments_served: AtomicU64,
    /// Bytes of segments and parts served.
    pub segment_bytes_served: AtomicU64,
    pub parts_served: AtomicU64,
    pub segments_cut: AtomicU64,
    /// Times the segmenter fell behind the ring and lost data.
    pub lost: AtomicU64,
}

/// Served totals of every output since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct ServedTotals {
    pub playlists: AtomicU64,
    pub segments: AtomicU64,
    pub parts: AtomicU64,
    pub segment_bytes: AtomicU64,
}

/// A snapshot of [`ServedTotals`].
#[derive(Debug, Clone, Copy)]
pub struct ServedValues {
    pub playlists_served: u64,
    pub segments_served: u64,
    pub parts_served: u64,
    pub segment_bytes_served: u64,
}

impl ServedTotals {
    pub fn snapshot(&self) -> ServedValues {
        ServedValues {
            playlists_served: self.playlists.load(Ordering::Relaxed),
            segments_served: self.segments.load(Ordering::Relaxed),
            parts_served: self.parts.load(Ordering::Relaxed),
            segment_bytes_served: self.segment_bytes.load(Ordering::Relaxed),
        }
    }
}

/// What status shows of an output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputStats {
    pub viewers: usize,
    pub segments: usize,
    pub window_bytes: usize,
    pub target_duration: u64,
    pub newest_segment: Option<u64>,
    pub playlists_served: u64,
    pub segments_served: u64,
    pub parts_served: u64,
    pub segment_bytes_served: u64,
    pub segments_cut: u64,
    pub lost: u64,
}

/// Why a request found no segment to list.
#[derive(Debug)]
pub enum NoSegment {
    /// None within the wait.
    Timeout(Duration),
    /// The output or its stream ended meanwhile.
    Ended(StreamError),
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    segments: u64,
    /// Media cut so far, and the longest segment.
    media: Duration,
    longest: Duration,
    /// Number of the newest segment, and of the newest part (segment, index).
    last_segment: Option<u64>,
    last_part: Option<(u64, usize)>,
    /// When the newest segment was completed.
    last_segment_at: Option<std::time::Instant>,
    ended: bool,
}

/// Why a blocking playlist request is not answered with a playlist.
#[derive(Debug)]
pub enum Blocked {
    /// Asks for more than the server may wait for (RFC 8216bis: 400).
    TooFar,
    /// The viewer already has as many blocking requests waiting as it may.
    Busy,
    /// The asked part did not come within the wait (503).
    Timeout(Duration),
    Ended(StreamError),
}

/// A blocking request counted as waiting until it is dropped (answered,
/// or given up by its player).
struct WaitingRequest<'a> {
    viewers: &'a Mutex<Viewers>,
    token: &'a str,
}

impl Drop for WaitingRequest<'_> {
    fn drop(&mut self) {
        self.viewers.lock().end_wait(self.token);
    }
}

/// What a blocking playlist request waits for (`_HLS_msn`, `_HLS_part`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive {
    pub msn: u64,
    pub part: Option<usize>,
}

/// The least media a common player keeps buffered ahead before it pauses
/// to rebuffer: VLC 3's adaptive demuxer (its `DEFAULT_MIN_BUFFERING`).
/// Measured: VLC started on a playlist of two 4 s segments logged "PCR is
/// called too late" and rebuffered at every segment; on three, never.
const PLAYER_MIN_BUFFER: Duration = Duration::from_secs(6);

/// How much media a young stream's first playlist lists before a player is
/// answered (see `Progress::playable`).
pub(super) fn first_playlist_lead(target: Duration, longest: Duration) -> Duration {
    let segment = longest.max(target);
    (segment * 2).max(segment + PLAYER_MIN_BUFFER)
}

impl Progress {
    /// Whether a player can start without running dry. A player of a
    /// young stream starts at its first segment, so what is listed is all
    /// the lead it will ever have on the live edge; the next segment takes
    /// the longest segment's time to be cut, and a player looks for it only
    /// at its next playlist reload, up to a target duration later (ffmpeg
    /// reloads after the last segment's duration). Just before that reload
    /// its lead is what was listed less a segment, and it must not be under
    /// what the player keeps buffered. So: two segments or more, twice the
    /// longest segment of media (measured: with one and a half, mpv ran dry
    /// every 8–12 s), and a segment more than `PLAYER_MIN_BUFFER`.
    fn playable(&self, target: Duration) -> bool {
        self.segments >= 2 && self.media >= first_playlist_lead(target, self.longest)
    }
}

/// See the module docs.
pub struct HlsOutput {
    pub session: Arc<Session>,
    window: RwLock<SegmentWindow>,
    viewers: Mutex<Viewers>,
    progress: watch::Sender<Progress>,
    /// Counts every change to the part being cut (for requests streaming it).
    growth: watch::Sender<u64>,
    events: Arc<EventBus>,
    settings: HlsSettings,
    pub counters: OutputCounters,
    totals: Arc<ServedTotals>,
}

impl HlsOutput {
    pub fn new(
        session: Arc<Session>,
        events: Arc<EventBus>,
        settings: HlsSettings,
        totals: Arc<ServedTotals>,
    ) -> Self {
        Self {
            session,
            window: RwLock::new(SegmentWindow::new(settings.hls_window, settings.hls_segment)),
            viewers: Mutex::new(Viewers::default()),
            progress: watch::Sender::new(Progress::default()),
            growth: watch::Sender::new(0),
            events,
            settings,
            counters: OutputCounters::default(),
            totals,
        }
    }

    /// Adds a viewer holding `slot`; gives the slot back when the output
    /// has retired (the caller starts a new output).
    pub fn add_viewer(
        &self,
        token: String,
        slot: PlayerSlot,
        client: Option<SocketAddr>,
    ) -> Result<(), PlayerSlot> {
        let user = slot.user().cloned();
        self.viewers.lock().add(token, slot, client)?;
        self.events.emit(StreamEvent::PlayerConnected {
            stream: self.session.stream_ref(),
            engine: self.session.engine(),
            client,
            kind: PlayerKind::Hls,
            user,
        });
        debug!(?client, "HLS viewer joined");
        Ok(())
    }

    /// Marks the viewer with `token` present; false if it is unknown here.
    pub fn renew(&self, token: &str) -> bool {
        self.viewers.lock().renew(token)
    }

    /// Whether the output takes no new viewers (it is ending).
    pub fn is_retired(&self) -> bool {
        self.viewers.lock().is_retired()
    }

    /// Waits (at most `limit`) until the playlist lists enough media for a
    /// player to start and never run dry (see `Progress::playable`): a
    /// viewer of a content that was not running waits for it, a viewer of
    /// a running one finds it there. The waiting viewer (`token`) stays
    /// present meanwhile: the wait may be longer than the viewer timeout.
    ///
    /// A player that waited is answered half a segment after the segment
    /// that made the stream playable: it then reloads every target duration
    /// half-way between two segments' completions, never just before one
    /// (measured: answered at the completion, GStreamer's reloads missed the
    /// next segment by milliseconds and it ran dry 7 s in).
    pub async fn wait_until_playable(&self, limit: Duration, token: &str) -> Result<(), NoSegment> {
        let target = self.settings.hls_segment;
        if self.progress.borrow().playable(target) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + limit;
        match self.wait(limit, token, |p| p.playable(target)).await {
            Ok(()) => {
                let completed = self.progress.borrow().last_segment_at;
                if let Some(at) = completed {
                    let phase = tokio::time::Instant::from_std(at) + target / 2;
                    tokio::time::sleep_until(phase.min(deadline)).await;
                }
                Ok(())
            }
            Err(Blocked::Timeout(d)) => Err(NoSegment::Timeout(d)),
            Err(Blocked::Ended(e)) => Err(NoSegment::Ended(e)),
            Err(Blocked::TooFar | Blocked::Busy) => unreachable!("only directives are too far or busy"),
        }
    }

    /// A blocking playlist reload (RFC 8216bis 6.2.5.2): waits until the
    /// playlist holds segment `msn` (or a later one), or with a part, that
    /// part (or a later one); at most three target durations. A directive
    /// more than two segments or the advance part limit ahead is refused at
    /// once.
    pub async fn wait_for(&self, directive: Directive, token: &str) -> Result<(), Blocked> {
        let listing = self.listing();
        let newest = listing.newest_part();
        if directive.msn > listing.live_sequence + 1 {
            return Err(Blocked::TooFar);
        }
        if let (Some(part), Some((msn, index))) = (directive.part, newest) {
            let ahead = if directive.msn == msn { part.saturating_sub(index) } else { part + 1 };
            if directive.msn >= msn && ahead > self.advance_part_limit() {
                return Err(Blocked::TooFar);
            }
        }
        let limit = Duration::from_secs(3 * listing.target_duration);
        if !self.viewers.lock().begin_wait(token) {
            return Err(Blocked::Busy);
        }
        let _waiting = WaitingRequest { viewers: &self.viewers, token };
        self.wait(limit, token, |p| match directive.part {
            Some(part) => p.last_part.is_some_and(|last| last >= (directive.msn, part)),
            None => p.last_segment.is_some_and(|last| last >= directive.msn),
        })
        .await
    }

    /// Parts a blocking request may ask ahead of the newest (RFC 8216bis:
    /// three, or three seconds of parts shorter than a second).
    fn advance_part_limit(&self) -> usize {
        match self.settings.hls_part {
            Some(part) if part < Duration::from_secs(1) => (3.0 / part.as_secs_f64()).ceil() as usize,
            _ => 3,
        }
    }

    /// Waits until `ready` holds for the progress, renewing the viewer
    /// `token` every half viewer timeout.
    async fn wait(
        &self,
        limit: Duration,
        token: &str,
        ready: impl Fn(&Progress) -> bool,
    ) -> Result<(), Blocked> {
        let mut rx = self.progress.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        let renew_every = self.settings.hls_viewer_timeout / 2;
        loop {
            let until = deadline.min(tokio::time::Instant::now() + renew_every);
            let waited = tokio::time::timeout_at(until, rx.wait_for(|p| ready(p) || p.ended)).await;
            match waited {
                Ok(Ok(p)) if !p.ended => return Ok(()),
                Ok(_) => {
                    return Err(Blocked::Ended(match self.session.state() {
                        SessionState::Ended(_) => self.session.end_error(),
                        _ => StreamError::Stopped,
                    }));
                }
                Err(_) if until < deadline => {
                    self.renew(token);
                }
                Err(_) => return Err(Blocked::Timeout(limit)),
            }
        }
    }

    /// Part `index` of segment `sequence`, waiting (at most `limit`) while it
    /// is the next to be cut; of a part being cut, the slices past `have`.
    pub async fn part(&self, sequence: u64, index: usize, have: usize, limit: Duration) -> PartState {
        let mut growth = self.growth.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            growth.borrow_and_update();
            let state = self.window.read().part(sequence, index, have);
            match state {
                PartState::Next => {}
                PartState::Open(ref new) if new.is_empty() => {}
                other => return other,
            }
            match tokio::time::timeout_at(deadline, growth.changed()).await {
                Ok(Ok(())) => {}
                _ => return PartState::Missing,
            }
        }
    }

    /// The configured part target, if LL-HLS is on.
    pub fn part_target(&self) -> Option<Duration> {
        self.settings.hls_part
    }

    /// `#EXT-X-TARGETDURATION` now, seconds.
    pub fn target_duration(&self) -> u64 {
        self.window.read().target_duration()
    }

    pub fn listing(&self) -> Listing {
        self.window.read().listing()
    }

    /// Segment `sequence`, if still held.
    pub fn segment(&self, sequence: u64) -> Option<Arc<Segment>> {
        self.window.read().get(sequence)
    }

    /// Counts a media playlist response.
    pub fn playlist_served(&self) {
        self.counters.playlists.fetch_add(1, Ordering::Relaxed);
        self.totals.playlists.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a segment response (the stream's `bytes_out` too).
    pub fn served(&self, segment: &Segment) {
        self.counters.segments_served.fetch_add(1, Ordering::Relaxed);
        self.totals.segments.fetch_add(1, Ordering::Relaxed);
        self.bytes_served(segment.cut.bytes);
    }

    /// Counts a part response of `bytes` (the stream's `bytes_out` too).
    pub fn part_served(&self, bytes: usize) {
        self.counters.parts_served.fetch_add(1, Ordering::Relaxed);
        self.totals.parts.fetch_add(1, Ordering::Relaxed);
        self.bytes_served(bytes);
    }

    fn bytes_served(&self, bytes: usize) {
        let bytes = bytes as u64;
        self.counters.segment_bytes_served.fetch_add(bytes, Ordering::Relaxed);
        self.totals.segment_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.session.counters.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn viewers(&self) -> Vec<ViewerStats> {
        self.viewers.lock().stats()
    }

    pub fn stats(&self) -> OutputStats {
        let viewers = self.viewers.lock().len();
        let w = self.window.read();
        let c = &self.counters;
        OutputStats {
            viewers,
            segments: w.len(),
            window_bytes: w.bytes(),
            target_duration: w.target_duration(),
            newest_segment: w.newest(),
            playlists_served: c.playlists.load(Ordering::Relaxed),
            segments_served: c.segments_served.load(Ordering::Relaxed),
            parts_served: c.parts_served.load(Ordering::Relaxed),
            segment_bytes_served: c.segment_bytes_served.load(Ordering::Relaxed),
            segments_cut: c.segments_cut.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
        }
    }

    /// The output's task: cuts segments from the ring and sweeps viewers
    /// until the stream ends, no viewer is left, or `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let span = tracing::info_span!("hls", key = %self.session.key);
        async move {
            debug!("HLS output started");
            self.cut_segments(&stop).await;
            let departed = self.viewers.lock().retire();
            self.depart(departed);
            self.progress.send_modify(|p| p.ended = true);
            debug!("HLS output ended");
        }
        .instrument(span)
        .await
    }

    async fn cut_segments(&self, stop: &CancellationToken) {
        let ring = &self.session.ring;
        let mut head = ring.subscribe();
        let mut seq = ring.join(WHOLE_RING, true).seq;
        let mut segmenter = Segmenter::new(self.settings.hls_segment, self.settings.hls_part);
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle_sweeps = 0;
        loop {
            head.borrow_and_update();
            loop {
                match ring.read_media(seq) {
                    MediaRead::Chunk(chunk) => {
                        seq += 1;
                        self.take(segmenter.push(*chunk));
                    }
                    MediaRead::Lagged { .. } => {
                        self.counters.lost.fetch_add(1, Ordering::Relaxed);
                        self.take(segmenter.lost());
                        seq = ring.join(Duration::ZERO, true).seq;
                    }
                    MediaRead::Pending => break,
                    MediaRead::Closed => return,
                }
            }
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                _ = sweep.tick() => {
                    let departed = self.viewers.lock().expire(self.settings.hls_viewer_timeout);
                    self.depart(departed);
                    let mut viewers = self.viewers.lock();
                    idle_sweeps = if viewers.is_empty() { idle_sweeps + 1 } else { 0 };
                    if idle_sweeps >= IDLE_SWEEPS && viewers.retire_if_empty() {
                        return;
                    }
                }
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Takes in what the segmenter cut from one chunk, and wakes who waits
    /// for it.
    fn take(&self, cuttings: Vec<Cutting>) {
        if cuttings.is_empty() {
            return;
        }
        for cutting in cuttings {
            let mut window = self.window.write();
            match cutting {
                Cutting::Part(_) => {
                    let sequence = window.live_sequence();
                    window.apply(cutting);
                    let index = window.live_parts() - 1;
                    drop(window);
                    self.progress.send_modify(|p| p.last_part = Some((sequence, index)));
                }
                Cutting::Segment(ref cut) => {
                    let duration = cut.duration;
                    window.apply(cutting);
                    let sequence = window.newest();
                    drop(window);
                    self.counters.segments_cut.fetch_add(1, Ordering::Relaxed);
                    self.progress.send_modify(|p| {
                        p.segments += 1;
                        p.media += duration;
                        p.longest = p.longest.max(duration);
                        p.last_segment = sequence;
                        p.last_segment_at = Some(std::time::Instant::now());
                    });
                }
                other => window.apply(other),
            }
        }
        self.growth.send_modify(|n| *n += 1);
    }

    /// Announces viewers that left; their slots are released here.
    fn depart(&self, departed: Vec<Departed>) {
        for d in departed {
            debug!(client = ?d.stats.client, "HLS viewer left");
            self.events.emit(StreamEvent::PlayerDisconnected {
                stream: self.session.stream_ref(),
                engine: self.session.engine(),
                client: d.stats.client,
                kind: PlayerKind::Hls,
                user: d.stats.user.clone(),
                bytes: 0,
                duration: d.stats.since.elapsed(),
            });
        }
    }
}
