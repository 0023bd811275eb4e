//! The simulated engine's state, knobs and server lifecycle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::counters::{Counters, LiveCounters};
use crate::media::Media;

/// Behaviour knobs. Changeable while the engine runs ([`SimEngine::configure`]);
/// a change applies to starts and playback connections made after it.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Stream bitrate in bits per second.
    pub bitrate_bps: u64,
    /// Time from start until the playback URL yields its first byte.
    pub prebuffer: Duration,
    /// Time the start call takes to answer.
    pub start_delay: Duration,
    /// Answer every start with this error (HTTP 200, `response: null`).
    pub start_error: Option<String>,
    /// Playback URL answers 302 to a second URL first.
    pub redirect: bool,
    /// The playback request's response headers come only when the first
    /// byte is due (after the prebuffer), as some engines do, rather than
    /// at once with the body following.
    pub late_headers: bool,
    /// Abort each playback connection after this many bytes.
    pub drop_after_bytes: Option<u64>,
    /// Apply `drop_after_bytes` to a playback's first connection only (one
    /// upstream reconnect, then a steady stream).
    pub drop_first_connection_only: bool,
    /// Stop sending (but keep the connection) after this many bytes.
    pub stall_after_bytes: Option<u64>,
    /// Health endpoints answer 500 when false.
    pub healthy: bool,
    /// Serve this recording (looped, from its start on every playback
    /// connection) instead of the synthetic counter stream.
    pub media: Option<Media>,
    /// How single contents behave, by the id a start names (lower case):
    /// dead ids, ids that stall, ids that lose their peers.
    pub contents: HashMap<String, ContentBehaviour>,
    /// How the engine lies about its streams, if it does.
    pub lie: Option<Lie>,
}

/// An engine that answers as if all were well and is not: what a proxy
/// meets from broken, overloaded or misconfigured engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// The start answers with a playback URL that answers 404.
    PlaybackNotFound,
    /// The playback URL answers 200 with an HTML page (a login or error
    /// page), then closes.
    Html,
    /// From `after` into a playback session, for `lasting`, the playback
    /// sends bytes that are no MPEG-TS (never a sync byte), then the
    /// stream again.
    Garbage { after: Duration, lasting: Duration },
    /// The playback URL answers its headers and then nothing, forever.
    Silent,
    /// The stat URL answers with malformed JSON.
    MalformedStat,
}

/// How one content behaves, beside the engine-wide knobs: what a channel
/// with several ids meets in the wild.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentBehaviour {
    /// Every start of it fails with this error (a dead id).
    pub start_error: Option<String>,
    /// Its playback stops sending this long after the engine session
    /// started (connections stay open: a stall, not a drop).
    pub stall_after: Option<Duration>,
    /// Peers its statistics report, instead of the usual 5–15.
    pub peers: Option<u64>,
    /// With recorded media, its playbacks start at this packet of the
    /// recording instead of its first (as a live stream is joined
    /// anywhere: mid-picture, before any PAT or PMT).
    pub start_at_packet: Option<usize>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bitrate_bps: 2_000_000,
            prebuffer: Duration::ZERO,
            start_delay: Duration::ZERO,
            start_error: None,
            redirect: false,
            late_headers: false,
            drop_after_bytes: None,
            drop_first_connection_only: false,
            stall_after_bytes: None,
            healthy: true,
            media: None,
            contents: HashMap::new(),
            lie: None,
        }
    }
}

/// One engine-side playback session, created by a start.
#[derive(Debug, Clone)]
pub(crate) struct Playback {
    pub infohash: String,
    pub started_at: Instant,
    /// Cancelled by stop, by a second start of the same content, or by kill.
    pub cancel: CancellationToken,
    pub bytes_sent: Arc<std::sync::atomic::AtomicU64>,
    /// Playback connections made so far.
    pub connections: Arc<std::sync::atomic::AtomicU64>,
    /// How its content behaves.
    pub behaviour: ContentBehaviour,
}

/// Shared by every request handler.
#[derive(Debug)]
pub(crate) struct SimState {
    pub config: Mutex<SimConfig>,
    pub counters: LiveCounters,
    /// Playback sessions by token.
    pub playbacks: Mutex<HashMap<String, Playback>>,
    /// The query of each start, sorted by parameter, the latest last (at
    /// most [`KEPT_START_QUERIES`]).
    pub start_queries: Mutex<Vec<Vec<(String, String)>>>,
    /// Reference point of every content's live position.
    pub epoch: Instant,
    /// Cancelled by [`SimEngine::kill`]: ends every playback at once.
    pub killed: CancellationToken,
    pub addr: SocketAddr,
}

/// Start queries remembered.
pub(crate) const KEPT_START_QUERIES: usize = 64;

/// A running simulated engine. Dropping it kills it.
pub struct SimEngine {
    state: Arc<SimState>,
    task: tokio::task::JoinHandle<()>,
}

impl SimEngine {
    /// Starts an engine on a free loopback port.
    pub async fn start(config: SimConfig) -> anyhow::Result<Self> {
        Self::bind("127.0.0.1:0".parse()?, config).await
    }

    /// Starts an engine on `addr`.
    pub async fn bind(addr: SocketAddr, config: SimConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            config: Mutex::new(config),
            counters: LiveCounters::default(),
            playbacks: Mutex::new(HashMap::new()),
            start_queries: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            killed: CancellationToken::new(),
            addr,
        });
        let app = crate::api::router(state.clone());
        let killed = state.killed.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(killed.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "simulated engine server ended");
            }
        });
        Ok(Self { state, task })
    }

    /// Address the engine listens on.
    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// `host:port` as acemux's `--engine` takes it.
    pub fn endpoint(&self) -> String {
        self.state.addr.to_string()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.state.counters.snapshot()
    }

    /// Changes the behaviour knobs.
    pub fn configure(&self, change: impl FnOnce(&mut SimConfig)) {
        change(&mut self.state.config.lock());
    }

    /// The queries the latest starts came with (parameters sorted by name,
    /// `pid` and `format` left out), oldest first.
    pub fn start_queries(&self) -> Vec<Vec<(String, String)>> {
        self.state.start_queries.lock().clone()
    }

    /// Playback sessions the engine holds right now (started, not stopped).
    pub fn live_sessions(&self) -> usize {
        self.state.playbacks.lock().len()
    }

    /// The infohash of each playback session the engine holds right now
    /// (one entry per session: a content twice means two sessions).
    pub fn live_contents(&self) -> Vec<String> {
        self.state.playbacks.lock().values().map(|p| p.infohash.clone()).collect()
    }

    /// Dies like a crashed engine: stops accepting connections and aborts
    /// every playback connection.
    pub fn kill(&self) {
        self.state.killed.cancel();
        for (_, p) in self.state.playbacks.lock().drain() {
            p.cancel.cancel();
        }
    }

    /// Waits until the server task has ended (after [`SimEngine::kill`]).
    pub async fn wait_stopped(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimEngine {
    fn drop(&mut self) {
        self.kill();
        self.task.abort();
    }
}

/// Turns any content key into a stable 40-hex infohash (content ids and
/// infohashes are both 40 hex characters; a real engine resolves one to the
/// other, the simulation derives it).
pub(crate) fn infohash_of(key_type: &str, key: &str) -> String {
    if key_type == "infohash" {
        return key.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(40);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u8..3 {
        for b in key.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}
