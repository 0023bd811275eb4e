//! Reads one engine session's playback URL into the ring.
//!
//! The bytes go through the [`Aligner`] (whole, sync-checked packets; reset
//! on every reconnect) into a chunk buffer that is handed to the ring when it
//! reaches the chunk size or has waited `chunk_max_delay`. Large chunks keep
//! the per-player cost down (one socket write per chunk per player). While
//! the engine sends nothing, null packets go into the ring every
//! `keepalive_interval` so players do not give up. Each chunk is scanned
//! for keyframes after the filters (what players get is what is indexed).
//! Nothing here waits for a player.
//!
//! The ring gets whole video frames: a chunk handed over ends before the
//! packet that starts the last video PES in it (the rest waits for the
//! next chunk), so when a connection ends mid-frame the incomplete frame
//! is dropped instead of reaching players, whose decoders would otherwise
//! report a broken picture at every reconnect, failover or switch of ids.
//! A frame larger than a chunk is handed over as it comes.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use acemux_ts::{Aligner, AlignerStats, null_packets};
use bytes::{Bytes, BytesMut};
use tokio::time::sleep_until;
use tracing::{debug, info};

use super::media::MediaScanner;
use super::registry::StreamContext;
use super::session::{Session, SessionState};
use super::splice::SpliceGate;
use crate::plugins::FilterChain;

/// Null packets per keepalive batch (one 1316-byte batch, as UDP TS uses).
const KEEPALIVE_PACKETS: usize = 7;
static KEEPALIVE: LazyLock<Bytes> = LazyLock::new(|| null_packets(KEEPALIVE_PACKETS));

/// One batch of keepalive null packets (shared).
pub(super) fn keepalive_packets() -> Bytes {
    KEEPALIVE.clone()
}
/// Waits `wait` with no upstream, keeping players alive with null packets.
pub(super) async fn keep_alive_for(session: &Session, ctx: &StreamContext, wait: Duration) {
    let until = Instant::now() + wait;
    loop {
        session.ring.append(KEEPALIVE.clone());
        session.counters.keepalives.fetch_add(1, Ordering::Relaxed);
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(ctx.stream.keepalive_interval.min(left)).await;
    }
}

/// Longest wait between reconnects, however many retries.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// How the upstream on one engine ended.
#[derive(Debug)]
pub(crate) enum UpstreamEnd {
    /// No data at all within the init timeout.
    InitTimeout(Duration),
    /// Retries on this engine exhausted; the last error.
    Failed(String),
}

/// See the module docs.
pub(crate) struct Upstream<'a> {
    session: &'a Session,
    ctx: &'a StreamContext,
    aligner: Aligner,
    /// Aligned packets not yet in the ring: one allocation of exactly a
    /// chunk, which becomes the ring's chunk. (Letting the aligner write
    /// into it directly grew it by doubling: a 64 KiB chunk then held a
    /// 128 KiB allocation, of which ~80 KB was touched.)
    pending: BytesMut,
    /// What the aligner made of the last read, copied into `pending`;
    /// kept between reads for its allocation.
    aligned: BytesMut,
    /// When the oldest byte of `pending` arrived.
    pending_since: Option<Instant>,
    last_append: Instant,
    /// Real data reached the ring from this engine.
    delivered: bool,
    /// Some connection to this engine carried data for longer than the
    /// connection timeout (the engine worked, not just answered).
    carried: bool,
    /// When real data first and last reached the ring on the current connection.
    data_window: Option<(Instant, Instant)>,
    /// Aligner counters already added to the session's counters.
    recorded: AlignerStats,
    /// Filter plugins, run on each chunk before the ring.
    filters: Option<FilterChain>,
    scanner: MediaScanner,
    /// The session-wide number of the connection being read (0 before the first).
    connection: u64,
    /// Holds a channel's next id back until its first keyframe (see
    /// [`SpliceGate`]); none once it is through, and for a stream's first id.
    gate: Option<SpliceGate>,
    /// For a channel's next id: when the id before last delivered data.
    switched_from: Option<Instant>,
    /// Reads another acemux instance's stream of the content (see
    /// [`super::follow`]), not an engine's.
    following: bool,
    /// The plugin set the session's `filter_chain` was last published from.
    chain_generation: u64,
}

impl<'a> Upstream<'a> {
    pub fn new(session: &'a Session, ctx: &'a StreamContext) -> Self {
        let mut upstream = Self {
            session,
            ctx,
            aligner: Aligner::new(),
            pending: BytesMut::with_capacity(ctx.stream.chunk_bytes),
            aligned: BytesMut::new(),
            pending_since: None,
            last_append: Instant::now(),
            delivered: false,
            carried: false,
            data_window: None,
            recorded: AlignerStats::default(),
            filters: ctx.plugins.as_ref().map(|host| {
                let engine_id = session.engine().map(|e| e.id);
                FilterChain::new(host.clone(), wit_stream(session, engine_id))
            }),
            scanner: MediaScanner::new(),
            connection: 0,
            gate: None,
            switched_from: None,
            following: false,
            chain_generation: u64::MAX,
        };
        // Players waiting since the engine accepted get bytes right away.
        upstream.keepalive();
        upstream
    }

    /// An upstream of a channel's next id, let into the ring from its
    /// first keyframe (see [`SpliceGate`]).
    pub fn spliced(mut self) -> Self {
        self.gate = Some(SpliceGate::continuing(&self.session.table_counters.lock()));
        self.switched_from = *self.session.last_data.lock();
        self
    }

    /// An upstream from the instance that owns the content: asked for as an
    /// instance asks (so the owner serves it and never hands it on), and
    /// not filtered again (the owner's filters ran). It is not held back
    /// for a keyframe: the owner's answer starts at one where it knows one,
    /// as any player's does.
    pub fn following(mut self) -> Self {
        self.switched_from = *self.session.last_data.lock();
        self.filters = None;
        self.following = true;
        self
    }

    /// The last continuity counters of the table PIDs that reached the ring.
    pub fn table_counters(&self) -> &[(u16, u8)] {
        self.scanner.table_counters()
    }

    pub fn delivered(&self) -> bool {
        self.delivered
    }

    /// Whether the engine carried the stream (data for longer than the
    /// connection timeout on one connection) before it failed.
    pub fn carried(&self) -> bool {
        self.carried
    }

    /// Reads `playback_url`, reconnecting with backoff, until the retries
    /// are exhausted or no data arrived within the init timeout.
    pub async fn run(&mut self, playback_url: &str) -> UpstreamEnd {
        let settings = &self.ctx.stream;
        let accepted_at = Instant::now();
        let mut failures = 0u32;
        loop {
            let mut stable = false;
            // Some engines answer the playback request only after their
            // prebuffer: wait for headers as long as for the first data,
            // and keep players alive meanwhile.
            let header_wait = if self.delivered {
                self.ctx.engine_timeout
            } else {
                (accepted_at + settings.init_timeout).saturating_duration_since(Instant::now())
            };
            let ctx = self.ctx;
            let forwarded = self.following.then_some((crate::cluster::FORWARDED, "1"));
            let opened =
                self.keepalive_during(ctx.client.open_playback(playback_url, header_wait, forwarded)).await;
            let error = match opened {
                Ok(response) => {
                    // A new connection starts at an arbitrary byte, maybe
                    // with another program layout.
                    self.aligner.reset();
                    self.scanner.reset();
                    self.connection = self.session.next_connection();
                    let connected_at = Instant::now();
                    let end = self.read_body(response, accepted_at).await;
                    // Only a connection that carried data for longer than the
                    // stall window earns a fresh set of retries; one that
                    // keeps failing soon after connecting counts as failing,
                    // so a flapping engine is left.
                    stable = self.data_span_since(connected_at) >= self.ctx.engine_timeout;
                    self.carried |= stable;
                    match end {
                        ReadEnd::InitTimeout => return UpstreamEnd::InitTimeout(settings.init_timeout),
                        ReadEnd::Lost(e) => e,
                    }
                }
                Err(e) => e.to_string(),
            };
            self.flush_at_end().await;
            self.record_aligner();
            if stable {
                failures = 0;
            }
            failures += 1;
            if failures > settings.max_retries {
                return UpstreamEnd::Failed(error);
            }
            if !self.delivered && accepted_at.elapsed() >= settings.init_timeout {
                return UpstreamEnd::InitTimeout(settings.init_timeout);
            }
            self.session.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            if self.session.state() == SessionState::Live {
                self.session.set_state(SessionState::Recovering);
            }
            let wait = settings.retry_wait.saturating_mul(1 << (failures - 1).min(16)).min(MAX_RETRY_WAIT);
            info!(error = %error, attempt = failures, ?wait, "upstream lost; reconnecting");
            self.idle(wait).await;
        }
    }

    /// Reads one connection's body until it ends, errs or stalls.
    async fn read_body(&mut self, mut response: reqwest::Response, accepted_at: Instant) -> ReadEnd {
        let settings = &self.ctx.stream;
        // Stalls are judged by whole packets, not bytes: an engine that
        // sends what is no MPEG-TS (garbage, a page) has stalled too.
        let mut last_packets = Instant::now();
        let mut bytes_meanwhile = false;
        loop {
            let stall_at = if self.delivered {
                last_packets + self.ctx.engine_timeout
            } else {
                accepted_at + settings.init_timeout
            };
            let flush_at = self.pending_since.map(|t| t + settings.chunk_max_delay);
            let keepalive_at = self.last_append + settings.keepalive_interval;
            tokio::select! {
                biased;
                read = response.chunk() => match read {
                    Ok(Some(bytes)) => {
                        if self.push(&bytes).await {
                            last_packets = Instant::now();
                            bytes_meanwhile = false;
                        } else {
                            bytes_meanwhile = true;
                        }
                    }
                    Ok(None) => return ReadEnd::Lost("engine closed the stream".into()),
                    Err(e) => return ReadEnd::Lost(format!("read error: {e}")),
                },
                _ = sleep_until(flush_at.unwrap_or(stall_at).into()), if flush_at.is_some() => self.flush().await,
                _ = sleep_until(keepalive_at.into()) => self.keepalive(),
                _ = sleep_until(stall_at.into()) => {
                    return if self.delivered && bytes_meanwhile {
                        ReadEnd::Lost(format!("bytes but no MPEG-TS packets for {:?}", self.ctx.engine_timeout))
                    } else if self.delivered {
                        ReadEnd::Lost(format!("no data for {:?}", self.ctx.engine_timeout))
                    } else {
                        ReadEnd::InitTimeout
                    };
                }
            }
        }
    }

    /// How long data kept flowing on the connection opened at `connected_at`.
    fn data_span_since(&mut self, connected_at: Instant) -> Duration {
        match self.data_window.take() {
            Some((first, last)) if first >= connected_at => last - first,
            _ => Duration::ZERO,
        }
    }

    /// Aligns `bytes` into chunks; whether they held any whole packet.
    async fn push(&mut self, bytes: &[u8]) -> bool {
        self.session.counters.upstream_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let arrived = Instant::now();
        let mut aligned = std::mem::take(&mut self.aligned);
        aligned.clear();
        self.aligner.push(bytes, &mut aligned);
        let packets = !aligned.is_empty();
        if let Some(gate) = self.gate.as_mut() {
            let was_open = gate.is_open();
            gate.admit(&mut aligned);
            if !was_open && gate.is_open() {
                info!(dropped = gate.dropped(), "next id let in at its first keyframe");
            }
            if gate.is_done() {
                self.gate = None;
            }
        }
        if !aligned.is_empty() && self.pending_since.is_none() {
            self.pending_since = Some(arrived);
        }
        let chunk = self.ctx.stream.chunk_bytes;
        let mut rest = &aligned[..];
        while !rest.is_empty() {
            let take = (chunk - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == chunk {
                let full = self.take_whole_frames().unwrap_or_else(|| self.take_pending());
                self.append(full).await;
                // What is left came in this read (the buffer held less
                // than a chunk before it): its wait starts now, not when
                // the chunk just appended started. Timing it from the old
                // start flushed a partial chunk behind almost every full one.
                self.pending_since = Some(arrived);
            }
        }
        if self.pending.is_empty() {
            self.pending_since = None;
        }
        self.aligned = aligned;
        packets
    }

    /// Hands the whole frames of the aligned packets not yet in the ring
    /// to the ring; a frame still arriving waits (another
    /// `chunk_max_delay`) for its end.
    async fn flush(&mut self) {
        if let Some(frames) = self.take_whole_frames() {
            self.append(frames).await;
        } else if self.frame_cut().is_none() && !self.pending.is_empty() {
            let chunk = self.take_pending();
            self.append(chunk).await;
        }
        self.pending_since = (!self.pending.is_empty()).then(Instant::now);
    }

    /// The connection ended: whole frames to the ring, the incomplete
    /// last frame dropped.
    async fn flush_at_end(&mut self) {
        if let Some(cut) = self.frame_cut() {
            let dropped = self.pending.len() - cut;
            self.pending.truncate(cut);
            debug!(dropped, "the incomplete last frame of the connection dropped");
        }
        if !self.pending.is_empty() {
            let chunk = self.take_pending();
            self.append(chunk).await;
        }
        self.pending_since = None;
    }

    /// Where the last video frame that starts in `pending` starts, when
    /// the video PID is known and a frame starts there.
    fn frame_cut(&self) -> Option<usize> {
        let video = self.scanner.video_pid()?;
        self.pending
            .chunks_exact(acemux_ts::PACKET_SIZE)
            .rposition(|p| p[1] & 0x40 != 0 && acemux_ts::pid(p) == video)
            .map(|i| i * acemux_ts::PACKET_SIZE)
    }

    /// The packets of `pending` before its last frame start, as a chunk
    /// (the frame stays in `pending`); none if there are none.
    fn take_whole_frames(&mut self) -> Option<Bytes> {
        let cut = self.frame_cut().filter(|cut| *cut > 0)?;
        let rest = self.pending.split_off(cut);
        let mut next = BytesMut::with_capacity(self.ctx.stream.chunk_bytes);
        next.extend_from_slice(&rest);
        Some(std::mem::replace(&mut self.pending, next).freeze())
    }

    /// The chunk buffer as a chunk, and a new one of the chunk size in its place.
    fn take_pending(&mut self) -> Bytes {
        std::mem::replace(&mut self.pending, BytesMut::with_capacity(self.ctx.stream.chunk_bytes)).freeze()
    }

    async fn append(&mut self, chunk: Bytes) {
        // In a cluster, nothing reaches players from a lease this instance
        // may have lost while it was frozen; nothing at all from one it lost.
        if let Some(cluster) = &self.ctx.cluster
            && !self.following
        {
            cluster.wait_confirmed().await;
            if cluster.lost_to(&self.session.key).is_some() {
                return;
            }
        }
        // Filters run once per stream, before the ring: every player shares
        // the result. A batch a filter empties is simply not appended.
        let chunk = match self.filters.as_mut() {
            Some(chain) => {
                let processed = chain.process(chunk).await;
                let (generation, names) = chain.names();
                if generation != self.chain_generation {
                    self.chain_generation = generation;
                    *self.session.filter_chain.lock() = names;
                }
                match processed {
                    Some(c) => c,
                    None => return,
                }
            }
            None => chunk,
        };
        let media = self.scanner.scan(&chunk);
        self.session.ring.append_media(chunk, media, self.connection);
        self.last_append = Instant::now();
        let now = self.last_append;
        *self.session.last_data.lock() = Some(now);
        if let Some(from) = self.switched_from.take() {
            let wait = now - from;
            self.ctx.totals.switch_wait.observe(wait);
            if let Some(channel) = &self.session.channel {
                channel.lock().record_wait(wait);
            }
            info!(?wait, "next id delivers");
        }
        self.data_window = Some(self.data_window.map_or((now, now), |(first, _)| (first, now)));
        if !self.delivered {
            self.delivered = true;
            let mut info = self.session.info.lock();
            info.started_at.get_or_insert_with(SystemTime::now);
            drop(info);
            debug!("first data from the engine");
        }
        if self.session.state() != SessionState::Live {
            self.session.set_state(SessionState::Live);
        }
    }

    /// Null packets into the ring, so players see bytes while the engine
    /// prebuffers or while reconnecting.
    fn keepalive(&mut self) {
        self.session.ring.append(KEEPALIVE.clone());
        self.session.counters.keepalives.fetch_add(1, Ordering::Relaxed);
        self.last_append = Instant::now();
    }

    /// Waits `wait` while keeping players alive.
    async fn idle(&mut self, wait: Duration) {
        self.keepalive_during(tokio::time::sleep(wait)).await;
    }

    /// Awaits `work` while keeping players alive.
    async fn keepalive_during<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let keepalive_at = self.last_append + self.ctx.stream.keepalive_interval;
            tokio::select! {
                out = &mut work => return out,
                _ = sleep_until(keepalive_at.into()) => self.keepalive(),
            }
        }
    }

    fn record_aligner(&mut self) {
        let stats = self.aligner.stats();
        let c = &self.session.counters;
        c.discarded_bytes.fetch_add(stats.discarded_bytes - self.recorded.discarded_bytes, Ordering::Relaxed);
        c.sync_losses.fetch_add(stats.sync_losses - self.recorded.sync_losses, Ordering::Relaxed);
        self.recorded = stats;
    }
}

/// The stream as filter plugins see it.
fn wit_stream(session: &Session, engine_id: Option<String>) -> crate::plugins::bindings::Stream {
    let playing = session.playing();
    crate::plugins::bindings::Stream {
        content_key: playing.id.clone(),
        key_type: crate::plugins::select::key_type(playing.key_type),
        engine_id,
        channel: session.channel.as_ref().map(|_| session.key.id.clone()),
    }
}

enum ReadEnd {
    InitTimeout,
    Lost(String),
}
