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

use crate::cluster::SlotAnswer;
use crate::content::ContentKey;
use crate::engine::select::SelectRequest;
use crate::engine::{EngineError, EngineSession, SelectError};
use crate::events::{EndReason, EngineRef, EventBus, StreamEvent, StreamRef};

use super::alternates::play::IdEnd;
use super::alternates::{Alternates, ChannelPlan, ChannelStatus};
use super::counters::SessionCounters;
use super::engine_stats::{self, LatestStats};
use super::follow::{Followed, lease_lost, slot_revoked};
use super::player::PlayerStats;
use super::registry::Registry;
use super::ring::Ring;
use super::upstream::{Upstream, UpstreamEnd};

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

/// How long a stream every engine failed waits before trying them again.
const EXHAUSTED_WAIT: Duration = Duration::from_secs(1);

/// What ends a session's time on an engine besides its upstream.
enum Interrupt {
    LowPeers,
    /// Another instance holds the content's lease.
    LeaseLost,
    /// The engine is over its cap across the cluster without this stream.
    SlotRevoked,
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
    select_request: SelectRequest,
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

    /// fails for good.
    pub(in crate::stream) async fn pump_id(
        &self,
        registry: &Registry,
        key: &ContentKey,
        spliced: bool,
        counted: &mut bool,
    ) -> IdEnd {
        let ctx = registry.context();
        let request = SelectRequest { content: Some(key.clone()), ..self.select_request.clone() };
        // Engines that failed this stream in the current failover episode.
        let mut excluded: Vec<String> = Vec::new();
        // Engines at their cap over the whole cluster when last asked.
        let mut full_elsewhere: Vec<String> = Vec::new();
        let mut delivered = false;
        let mut carried_once = false;
        // When every engine had failed this stream in a row.
        let mut exhausted_since: Option<Instant> = None;
        loop {
            // In a cluster: no engine session from a lease this instance may
            // have lost while frozen, none at all from one it lost.
            if let Some(cluster) = &ctx.cluster {
                cluster.wait_confirmed().await;
                if let Some(owner) = cluster.lost_to(&self.key) {
                    match self.follow_owner(registry, owner).await {
                        Followed::Reclaimed => {
                            excluded.clear();
                            full_elsewhere.clear();
                        }
                        Followed::Failed(error) => {
                            return IdEnd {
                                delivered,
                                ..IdEnd::content_failed(EndReason::Error, Some(error))
                            };
                        }
                    }
                }
            }
            let fail_reason = if delivered { EndReason::Error } else { EndReason::FailedToStart };
            let leave_out = [excluded.as_slice(), full_elsewhere.as_slice()].concat();
            let mut lease = match ctx.pool.reserve(ctx.selector.as_ref(), &request, &leave_out).await {
                Ok(lease) => lease,
                Err(_) if excluded.is_empty() && !full_elsewhere.is_empty() => {
                    let capacity = ctx.pool.capacity();
                    return IdEnd::engines_at_fault(
                        fail_reason,
                        Some(SelectError::AtCapacity(capacity).into()),
                    );
                }
                Err(e) if excluded.is_empty() => return IdEnd::engines_at_fault(fail_reason, Some(e.into())),
                Err(_)
                    if delivered
                        && ctx.cluster.is_some()
                        && self.channel.is_none()
                        && self.player_count() > 0
                        && {
                            let since = *exhausted_since.get_or_insert_with(Instant::now);
                            since.elapsed() < ctx.stream.init_timeout
                        } =>
                {
                    // Every engine failed this stream in a row. In a cluster
                    // whose Redis is unreachable, instances that start the
                    // same content on the same engines end each other's
                    // sessions: while players stay, try them all again, for
                    // at most an init timeout from the first time (a content
                    // that stalls everywhere still ends).
                    self.set_state(SessionState::Recovering);
                    super::upstream::keep_alive_for(self, ctx, EXHAUSTED_WAIT).await;
                    excluded.clear();
                    full_elsewhere.clear();
                    continue;
                }
                // Failing over and no engine left: the last upstream error
                // says more than "no engines".
                Err(_) => {
                    let error = self.info.lock().error.clone().map(StreamError::UpstreamLost);
                    return IdEnd {
                        delivered,
                        carried: carried_once,
                        ..IdEnd::content_failed(fail_reason, error)
                    };
                }
            };
            let engine = lease.engine().clone();
            // In a cluster the engine's cap counts every instance's streams.
            let cluster_slot = match &ctx.cluster {
                None => None,
                Some(cluster) => match cluster.take_slot(&engine, ctx.pool.capacity()).await {
                    SlotAnswer::Taken(slot) => Some(slot),
                    SlotAnswer::Full => {
                        info!(engine = %engine.id, "engine full with other instances' streams; choosing again");
                        full_elsewhere.push(engine.id.clone());
                        continue;
                    }
                },
            };
            tracing::Span::current().record("engine", engine.id.as_str());
            if !excluded.is_empty() {
                self.counters.failovers.fetch_add(1, Ordering::Relaxed);
            }
            {
                let mut info = self.info.lock();
                info.engine = Some(EngineRef {
                    id: engine.id.clone(),
                    host: engine.host.clone(),
                    port: engine.port,
                    container_id: engine.container_id.clone(),
                });
                info.engine_session = None;
            }
            if let Some(engine) = self.engine() {
                ctx.events.emit(StreamEvent::EngineSelected { stream: self.stream_ref(), engine });
            }
            let started = registry.start_on_engine(engine.base_url(), key.clone()).await;
            let es = match started {
                Ok(es) => es,
                Err(EngineError::Refused(msg)) => {
                    // The engine works; the content does not. Another engine
                    // would say the same.
                    return IdEnd {
                        delivered,
                        carried: carried_once,
                        ..IdEnd::content_failed(fail_reason, Some(EngineError::Refused(msg).into()))
                    };
                }
                Err(EngineError::Local(msg)) => {
                    // acemux is out of descriptors or buffers: the engine
                    // is not to blame, and no other engine would fare better.
                    warn!(error = %msg, "cannot reach the engine: out of local resources");
                    return IdEnd::engines_at_fault(fail_reason, Some(EngineError::Local(msg).into()));
                }
                Err(e) => {
                    warn!(error = %e, "engine start failed");
                    if let Some(engine) = self.engine() {
                        let error = e.to_string();
                        ctx.events.emit(StreamEvent::EngineFailed {
                            stream: self.stream_ref(),
                            engine,
                            error,
                        });
                    }
                    engine.set_health(false, Some(e.to_string()));
                    excluded.push(engine.id.clone());
                    self.info.lock().error = Some(e.to_string());
                    if !delivered && ctx.pool.engines().iter().all(|x| excluded.contains(&x.id)) {
                        return IdEnd::content_failed(fail_reason, Some(e.into()));
                    }
                    continue;
                }
            };
            lease.mark_started();
            if let Some(slot) = &cluster_slot {
                slot.engine_session(&es.command_url);
            }
            info!(playback = %es.playback_url, "engine accepted the stream");
            if let Some(infohash) = es.infohash.as_ref().filter(|_| self.channel.is_none()) {
                registry.learn_infohash(self, infohash);
            }
            let first_start = {
                let mut info = self.info.lock();
                info.engine_session = Some(es.clone());
                !std::mem::replace(&mut info.announced, true)
            };
            if !std::mem::replace(counted, true) {
                ctx.totals.streams_started.fetch_add(1, Ordering::Relaxed);
            }
            if first_start && let Some(engine) = self.engine() {
                ctx.events.emit(StreamEvent::Started {
                    stream: self.stream_ref(),
                    engine,
                    session: es.clone(),
                });
            }
            if self.state() == SessionState::Starting {
                self.set_state(SessionState::Prebuffering);
            }
            let mut upstream = Upstream::new(self, ctx);
            if spliced {
                upstream = upstream.spliced();
            }
            let end = tokio::select! {
                end = upstream.run(&es.playback_url) => Ok(end),
                never = engine_stats::poll(&ctx.client, &es.stat_url, ctx.engine_stat_interval, &self.engine_stats, |stats| {
                    let engine = self.engine();
                    ctx.events.emit(StreamEvent::Stats { stream: self.stream_ref(), engine, stats: stats.clone() });
                }) => match never {},
                () = self.low_peers(ctx) => Err(Interrupt::LowPeers),
                _ = lease_lost(ctx, &self.key) => Err(Interrupt::LeaseLost),
                () = slot_revoked(cluster_slot.as_ref()) => Err(Interrupt::SlotRevoked),
            };
            *self.engine_stats.lock() = None;
            let carried = upstream.carried();
            carried_once |= carried;
            delivered |= upstream.delivered();
            if !upstream.table_counters().is_empty() {
                *self.table_counters.lock() = upstream.table_counters().to_vec();
            }
            drop(upstream);
            // This engine is done with the stream: stop its session in the
            // background and fail over. A channel waits for the stop (one
            // engine round trip): its next id may start on the same engine,
            // and a channel holds one engine session at a time.
            let engine_session = self.info.lock().engine_session.take();
            if let Some(es) = engine_session {
                let stopped = registry.spawn_engine_stop(es);
                if self.channel.is_some() {
                    let _ = stopped.await;
                }
            }
            match end {
                // Followed from the top of the loop, with the slot given back.
                Err(Interrupt::LeaseLost) => self.set_state(SessionState::Recovering),
                Err(Interrupt::SlotRevoked) => {
                    full_elsewhere.push(engine.id.clone());
                    self.set_state(SessionState::Recovering);
                }
                Err(Interrupt::LowPeers) => {
                    let error = StreamError::UpstreamLost("too few peers".into());
                    let reason = if delivered { EndReason::Error } else { EndReason::FailedToStart };
                    return IdEnd {
                        delivered,
                        carried: carried_once,
                        low_peers: true,
                        ..IdEnd::content_failed(reason, Some(error))
                    };
                }
                Ok(UpstreamEnd::InitTimeout(d)) => {
                    let error = Some(StreamError::InitTimeout(d));
                    return IdEnd { delivered, ..IdEnd::content_failed(EndReason::FailedToStart, error) };
                }
                Ok(UpstreamEnd::Failed(e)) => {
                    warn!(error = %e, "upstream failed on this engine; failing over");
                    if let Some(from) = self.engine() {
                        ctx.events.emit(StreamEvent::Failover {
                            stream: self.stream_ref(),
                            from,
                            error: e.clone(),
                        });
                    }
                    self.info.lock().error = Some(e);
                    if carried {
                        // The stream ran here: a new episode. Engines it
                        // left before may be back (health decides), and a
                        // long-lived stream must not run out of engines.
                        // (Engines that only answer and stall stay left.)
                        excluded.clear();
                        full_elsewhere.clear();
                    }
                    excluded.push(engine.id.clone());
                    self.set_state(SessionState::Recovering);
                }
            }
        }
    }
}
