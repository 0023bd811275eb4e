//! One id's time on the engines: choose an engine (under the cluster's
//! caps), start the id there, read its playback into the ring, and fail
//! over to the next engine until the id plays, fails for good, or another
//! instance turns out to own the content (then follow its stream, see
//! [`super::follow`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::cluster::SlotAnswer;
use crate::content::ContentKey;
use crate::engine::select::SelectRequest;
use crate::engine::{EngineError, SelectError};
use crate::events::{EndReason, EngineRef, StreamEvent};

use super::alternates::play::IdEnd;
use super::engine_stats;
use super::follow::{Followed, lease_lost, slot_revoked};
use super::registry::Registry;
use super::session::{Session, SessionState, StreamError};
use super::upstream::{Upstream, UpstreamEnd};

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

impl Session {
    /// Plays `key` on the engines until it fails for good.
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
