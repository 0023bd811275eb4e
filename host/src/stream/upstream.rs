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
use crate::plugins::FilterChain;

/// Null packets per keepalive batch (one 1316-byte batch, as UDP TS uses).
const KEEPALIVE_PACKETS: usize = 7;
static KEEPALIVE: LazyLock<Bytes> = LazyLock::new(|| null_packets(KEEPALIVE_PACKETS));
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
        };
        // Players waiting since the engine accepted get bytes right away.
        upstream.keepalive();
        upstream
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
            let opened = self.keepalive_during(ctx.client.open_playback(playback_url, header_wait)).await;
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
            self.flush().await;
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
        let mut last_bytes = Instant::now();
        loop {
            let stall_at = if self.delivered {
                last_bytes + self.ctx.engine_timeout
            } else {
                accepted_at + settings.init_timeout
            };
            let flush_at = self.pending_since.map(|t| t + settings.chunk_max_delay);
            let keepalive_at = self.last_append + settings.keepalive_interval;
            tokio::select! {
                biased;
                read = response.chunk() => match read {
                    Ok(Some(bytes)) => {
                        last_bytes = Instant::now();
                        self.push(&bytes).await;
                    }
                    Ok(None) => return ReadEnd::Lost("engine closed the stream".into()),
                    Err(e) => return ReadEnd::Lost(format!("read error: {e}")),
                },
                _ = sleep_until(flush_at.unwrap_or(stall_at).into()), if flush_at.is_some() => self.flush().await,
                _ = sleep_until(keepalive_at.into()) => self.keepalive(),
                _ = sleep_until(stall_at.into()) => {
                    return if self.delivered {
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

    async fn push(&mut self, bytes: &[u8]) {
        self.session.counters.upstream_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let arrived = Instant::now();
        let mut aligned = std::mem::take(&mut self.aligned);
        aligned.clear();
        self.aligner.push(bytes, &mut aligned);
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
                let full = self.take_pending();
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
    }

    /// Hands every aligned packet not yet in the ring to the ring.
    async fn flush(&mut self) {
        if !self.pending.is_empty() {
            let chunk = self.take_pending();
            self.append(chunk).await;
        }
        self.pending_since = None;
    }

    /// The chunk buffer as a chunk, and a new one of the chunk size in its place.
    fn take_pending(&mut self) -> Bytes {
        std::mem::replace(&mut self.pending, BytesMut::with_capacity(self.ctx.stream.chunk_bytes)).freeze()
    }

    async fn append(&mut self, chunk: Bytes) {
        // Filters run once per stream, before the ring: every player shares
        // the result. A batch a filter empties is simply not appended.
        let chunk = match self.filters.as_mut() {
            Some(chain) => match chain.process(chunk).await {
                Some(c) => c,
                None => return,
            },
            None => chunk,
        };
        let media = self.scanner.scan(&chunk);
        self.session.ring.append_media(chunk, media, self.connection);
        self.last_append = Instant::now();
        let now = self.last_append;
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
    crate::plugins::bindings::Stream {
        content_key: session.key.id.clone(),
        key_type: crate::plugins::select::key_type(session.key.key_type),
        engine_id,
    }
}

enum ReadEnd {
    InitTimeout,
    Lost(String),
}
