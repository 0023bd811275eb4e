//! One stream's lifecycle: choose an engine, start it, keep the upstream
//! running (reconnect, fail over), and end it when the last player has been
//! gone for the grace period, when asked to stop, or when it fails.
//!
//! ```text
//! Starting ─▶ Prebuffering ─▶ Live ⇄ Recovering ─▶ Ended(reason)
//! ```
//!
//! Exactly one task runs a session ([`Session::run`]); players never touch
//! the upstream, they only read the ring and hold a [`PlayerSlot`] that
//! counts them.
//!
//! [`PlayerSlot`]: super::player::PlayerSlot

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use crate::content::ContentKey;
use crate::engine::select::SelectRequest;
use crate::engine::{EngineError, EngineSession, SelectError};
use crate::events::{EndReason, EngineRef, EventBus, StreamEvent, StreamRef};

use super::alternates::{Alternates, ChannelPlan, ChannelStatus};
use super::counters::SessionCounters;
use super::engine_stats::LatestStats;
use super::player::PlayerStats;
use super::registry::Registry;
use super::ring::Ring;

/// Where a session is in its life. Players wait while it is `Starting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum SessionState {
    /// Choosing an engine and asking it to start.
    Starting,
    /// The engine accepted; no data yet (players get keepalive packets).
    Prebuffering,
    /// Data is flowing.
    Live,
    /// Reconnecting or failing over (players get keepalive packets).
    Recovering,
    /// Over; the ring is closed.
    Ended(EndReason),
}

impl SessionState {
    pub fn is_ended(&self) -> bool {
        matches!(self, SessionState::Ended(_))
    }
}

/// Why a player cannot be served a stream; the HTTP layer maps it to a
/// status code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no data from the engine within the init timeout ({0:?})")]
    InitTimeout(Duration),
    #[error("upstream lost: {0}")]
    UpstreamLost(String),
    #[error("stream stopped")]
    Stopped,
    #[error("acemux is shutting down")]
    ShuttingDown,
    /// The player's user has as many players as it may.
    #[error("{0}")]
    UserLimit(String),
    /// A `channel` key no channel of the list has (any more).
    #[error("no channel of the list has this key (the list may have changed: fetch the playlist again)")]
    UnknownChannel,
    /// A configured limit (streams or players) is reached.
    #[error("{0}")]
    Limit(String),
}

/// Descriptive state that changes rarely.
#[derive(Debug)]
pub struct SessionInfo {
    pub engine: Option<EngineRef>,
    pub engine_session: Option<EngineSession>,
    pub created_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub error: Option<String>,
    /// Why the session ended, if it failed; what late waiters are told.
    pub failure: Option<StreamError>,
    /// When the player count last dropped to zero.
    pub idle_since: Option<Instant>,
    /// `Started` was emitted, so `Ended` is owed.
    pub announced: bool,
    /// The base URL of the instance whose stream of this content the
    /// session reads, while another instance owns it (see
    /// [`super::follow`]).
    pub following: Option<String>,
}

/// One content's stream, shared by all its players. See the module docs.
pub struct Session {
    /// Unique per process; tells a session from its successor for the same key.
    pub id: u64,
    pub key: ContentKey,
    pub ring: Ring,
    pub counters: SessionCounters,
    pub info: Mutex<SessionInfo>,
    /// Players currently attached (waiting or streaming).
    pub(super) players_count: watch::Sender<usize>,
    /// Players currently streaming, for status.
    pub(super) players: Mutex<HashMap<u64, Arc<PlayerStats>>>,
    state: watch::Sender<SessionState>,
    /// Cancelled to stop the stream on purpose.
    cancel: CancellationToken,
    /// What the first player asked with; given to engine selectors.
    pub(super) select_request: SelectRequest,
    /// Where this stream's events go.
    pub(super) events: Arc<EventBus>,
    /// Upstream connections opened so far, over every engine.
    connections: AtomicU64,
    /// The latest statistics of the engine carrying the stream (none until
    /// its first answer, and again after a failover).
    pub engine_stats: Mutex<Option<LatestStats>>,
    /// A channel's ids and which it plays (see [`super::alternates`]);
    /// none for a content asked for by its own id.
    pub channel: Option<Mutex<Alternates>>,
    /// When real data last reached the ring (how long a switch left
    /// players without data is measured from it).
    pub(super) last_data: Mutex<Option<Instant>>,
    /// The last continuity counters of the table PIDs that reached the
    /// ring, for a channel's next id to continue (see [`super::splice`]).
    pub(super) table_counters: Mutex<Vec<(u16, u8)>>,
    /// The filter plugins the stream's batches go through, in order.
    pub filter_chain: Mutex<Vec<Arc<str>>>,
}

impl Session {
    pub(super) fn new(
        id: u64,
        key: ContentKey,
        ring: Ring,
        cancel: CancellationToken,
        select_request: SelectRequest,
        events: Arc<EventBus>,
        channel: Option<ChannelPlan>,
    ) -> Self {
        Self {
            id,
            key,
            ring,
            counters: SessionCounters::default(),
            info: Mutex::new(SessionInfo {
                engine: None,
                engine_session: None,
                created_at: SystemTime::now(),
                started_at: None,
                error: None,
                failure: None,
                idle_since: None,
                announced: false,
                following: None,
            }),
            engine_stats: Mutex::new(None),
            players_count: watch::Sender::new(0),
            players: Mutex::new(HashMap::new()),
            state: watch::Sender::new(SessionState::Starting),
            cancel,
            select_request,
            events,
            connections: AtomicU64::new(0),
            channel: channel.map(|plan| Mutex::new(Alternates::new(plan))),
            last_data: Mutex::new(None),
            table_counters: Mutex::new(Vec::new()),
            filter_chain: Mutex::new(Vec::new()),
        }
    }

    /// The id on the engine now: the content's key, or the id its channel plays.
    pub fn playing(&self) -> ContentKey {
        match &self.channel {
            Some(channel) => channel.lock().playing().clone(),
            None => self.key.clone(),
        }
    }

    /// The channel's ids, history and backoffs, for a channel's session.
    pub fn channel_status(&self) -> Option<ChannelStatus> {
        self.channel.as_ref().map(|c| c.lock().status(Instant::now()))
    }

    /// Numbers a new upstream connection (1, 2, …): chunks of different
    /// connections carry unrelated timestamps.
    pub(super) fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether the session reads another instance's stream of its content
    /// (that instance holds the content's lease; this one holds no engine).
    pub fn is_following(&self) -> bool {
        self.info.lock().following.is_some()
    }

    /// The engine the stream runs on now.
    pub fn engine(&self) -> Option<EngineRef> {
        self.info.lock().engine.clone()
    }

    pub fn state(&self) -> SessionState {
        self.state.borrow().clone()
    }

    pub fn player_count(&self) -> usize {
        *self.players_count.borrow()
    }

    /// Stats of the players streaming now.
    pub fn player_stats(&self) -> Vec<Arc<PlayerStats>> {
        self.players.lock().values().cloned().collect()
    }

    /// Asks the session to end with reason `stopped`.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// The stream as events name it: the id on the engine, and the
    /// channel when it is a channel's.
    pub fn stream_ref(&self) -> StreamRef {
        StreamRef {
            session_id: self.id,
            key: self.playing(),
            channel: self.channel.as_ref().map(|_| self.key.clone()),
        }
    }

    /// Waits until the engine accepted the start (or the session failed).
    pub async fn wait_ready(&self) -> Result<(), StreamError> {
        let mut rx = self.state.subscribe();
        let state = rx
            .wait_for(|s| *s != SessionState::Starting)
            .await
            .map(|s| s.clone())
            .unwrap_or(SessionState::Ended(EndReason::Stopped));
        match state {
            SessionState::Ended(_) => Err(self.end_error()),
            _ => Ok(()),
        }
    }

    /// Why the session ended (what a reader arriving late is told).
    pub fn end_error(&self) -> StreamError {
        self.info.lock().failure.clone().unwrap_or(StreamError::Stopped)
    }

    pub(super) fn set_state(&self, state: SessionState) {
        self.state.send_if_modified(|s| {
            // An ended session stays ended.
            if *s == state || matches!(s, SessionState::Ended(_)) {
                return false;
            }
            *s = state;
            true
        });
    }

    /// The session's one task: runs until the stream ends, then cleans up.
    pub(super) async fn run(self: Arc<Self>, registry: Arc<Registry>) {
        let span = tracing::info_span!("stream", key = %self.key, engine = tracing::field::Empty);
        async move {
            info!("stream session created");
            let run = async {
                tokio::select! {
                    ended = self.pump(&registry) => ended,
                    reason = self.lifecycle(&registry) => (reason, None),
                }
            };
            // A bug anywhere below must still end the stream properly:
            // players told, engine stopped, registry cleaned.
            let (reason, error) = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(ended) => ended,
                Err(_) => {
                    tracing::error!("stream session task panicked; ending the stream");
                    (EndReason::Error, Some(StreamError::UpstreamLost("internal error".into())))
                }
            };
            self.finish(&registry, reason, error).await;
        }
        .instrument(span)
        .await
    }

    /// Ends the stream: out of the registry, ring closed, engine stopped.
    async fn finish(&self, registry: &Registry, reason: EndReason, error: Option<StreamError>) {
        registry.remove(&self.key, self.id);
        let ctx = registry.context();
        if let Some(cluster) = &ctx.cluster {
            cluster.settle(&self.key);
        }
        let error_text = error.as_ref().map(ToString::to_string);
        let (engine_session, engine, announced) = {
            let mut info = self.info.lock();
            if error_text.is_some() {
                info.error = error_text.clone();
                info.failure = error.clone();
            }
            (info.engine_session.take(), info.engine.clone(), info.announced)
        };
        self.set_state(SessionState::Ended(reason));
        self.ring.close();
        ctx.totals.session_ended(&self.counters.snapshot(), reason);
        if announced {
            ctx.events.emit(StreamEvent::Ended { stream: self.stream_ref(), engine, reason });
        }
        if let Some(es) = engine_session {
            ctx.stop_engine_session(es).await;
        }
        match error_text {
            Some(e) => warn!(?reason, error = %e, "stream session ended"),
            None => info!(?reason, "stream session ended"),
        }
    }

    /// Ends when the last player has been gone for the grace period (and
    /// the registry agreed no one attached meanwhile), or when stopped.
    async fn lifecycle(&self, registry: &Registry) -> EndReason {
        let grace = registry.context().stream.grace_period;
        let mut count = self.players_count.subscribe();
        loop {
            tokio::select! {
                _ = count.wait_for(|n| *n == 0) => {}
                _ = self.cancel.cancelled() => return EndReason::Stopped,
            }
            self.info.lock().idle_since = Some(Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(grace) => {
                    if registry.retire_if_idle(self) {
                        return EndReason::Normal;
                    }
                }
                _ = count.wait_for(|n| *n > 0) => {}
                _ = self.cancel.cancelled() => return EndReason::Stopped,
            }
            self.info.lock().idle_since = None;
        }
    }
}
