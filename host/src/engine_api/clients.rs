//! The engine-API playbacks acemux holds, by token.
//!
//! A token is 128 random bits in hex: it names the client's playback in
//! its three URLs, so knowing it is being that client. Each playback holds
//! a player slot on its stream from the `format=json` answer on, so the
//! stream waits for the client to start playing; it lets go when the
//! client stops (`command_url`), or when it has had no open `playback_url`
//! and no `stat_url` poll for the client timeout ([`ClientPlaybacks::sweep`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::stream::{PlayerSlot, Session};

/// What `playback_url` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackFormat {
    /// MPEG-TS (`/ace/getstream?format=json`).
    Ts,
    /// HLS (`/ace/manifest.m3u8?format=json`).
    Hls,
}

/// One client's playback. See the module docs.
pub struct ClientPlayback {
    pub token: String,
    pub session: Arc<Session>,
    pub format: PlaybackFormat,
    /// This playback's id in the engine's sense (40 hex, per client).
    pub playback_session_id: String,
    /// Bytes sent through this client's `playback_url`.
    pub bytes: AtomicU64,
    /// `playback_url` connections open now.
    pub open: AtomicUsize,
    pub created_at: Instant,
    last_seen: Mutex<Instant>,
    /// Ends this client's open playback connections when it stops.
    pub stopped: CancellationToken,
    /// Keeps the stream while the client is there, and counts the client
    /// as one of its players.
    slot: PlayerSlot,
}

impl ClientPlayback {
    /// A slot for one `playback_url` connection: the client is counted once.
    pub fn player_slot(&self) -> PlayerSlot {
        self.slot.companion()
    }

    /// A sign of life: a stat poll, a playback connection opened or closed.
    pub fn seen(&self) {
        *self.last_seen.lock() = Instant::now();
    }

    fn gone(&self, timeout: Duration, now: Instant) -> bool {
        self.open.load(Ordering::Relaxed) == 0
            && now.saturating_duration_since(*self.last_seen.lock()) > timeout
    }
}

/// Every engine-API playback. See the module docs.
pub struct ClientPlaybacks {
    by_token: Mutex<HashMap<String, Arc<ClientPlayback>>>,
    timeout: Duration,
    max: usize,
}

/// Why a playback was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("engine-API playbacks at their maximum ({0}); try again later")]
pub struct TooMany(pub usize);

impl ClientPlaybacks {
    pub fn new(timeout: Duration, max: usize) -> Arc<Self> {
        Arc::new(Self { by_token: Mutex::new(HashMap::new()), timeout, max })
    }

    /// A new client playback holding `slot` on its session.
    pub fn open(&self, slot: PlayerSlot, format: PlaybackFormat) -> Result<Arc<ClientPlayback>, TooMany> {
        let mut table = self.by_token.lock();
        if table.len() >= self.max {
            return Err(TooMany(self.max));
        }
        let now = Instant::now();
        let playback = Arc::new(ClientPlayback {
            token: random_hex(16),
            session: slot.session().clone(),
            format,
            playback_session_id: random_hex(20),
            bytes: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            created_at: now,
            last_seen: Mutex::new(now),
            stopped: CancellationToken::new(),
            slot,
        });
        table.insert(playback.token.clone(), playback.clone());
        Ok(playback)
    }

    /// The playback `token` names, while it lasts and its stream runs.
    pub fn get(&self, token: &str) -> Option<Arc<ClientPlayback>> {
        let playback = self.by_token.lock().get(token).cloned()?;
        if playback.session.state().is_ended() {
            self.stop(token);
            return None;
        }
        Some(playback)
    }

    /// Ends the playback `token` names; `false` if there is none.
    pub fn stop(&self, token: &str) -> bool {
        let removed = self.by_token.lock().remove(token);
        match removed {
            Some(playback) => {
                playback.stopped.cancel();
                true
            }
            None => false,
        }
    }

    /// Playbacks held now.
    pub fn len(&self) -> usize {
        self.by_token.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the playbacks whose client is gone or whose stream ended.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let gone: Vec<Arc<ClientPlayback>> = {
            let mut table = self.by_token.lock();
            let tokens: Vec<String> = table
                .iter()
                .filter(|(_, p)| p.gone(self.timeout, now) || p.session.state().is_ended())
                .map(|(t, _)| t.clone())
                .collect();
            tokens.iter().filter_map(|t| table.remove(t)).collect()
        };
        for playback in &gone {
            playback.stopped.cancel();
        }
        gone.len()
    }

    /// Sweeps once a second until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let ended = self.sweep();
                    if ended > 0 {
                        tracing::debug!(ended, "engine-API playbacks ended: their clients are gone");
                    }
                }
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Ends every playback (shutdown).
    pub fn clear(&self) {
        let all: Vec<Arc<ClientPlayback>> = self.by_token.lock().drain().map(|(_, p)| p).collect();
        for playback in all {
            playback.stopped.cancel();
        }
    }
}

fn random_hex(bytes: usize) -> String {
    use std::fmt::Write;
    (0..bytes).fold(String::with_capacity(bytes * 2), |mut s, _| {
        let _ = write!(s, "{:02x}", rand::random::<u8>());
        s
    })
}
