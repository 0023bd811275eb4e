//! How a channel's session plays its ids in turn: each id through the
//! session's engine failover ([`Session::pump_id`]), then, when the id
//! failed (not acemux or its engines), the next one chosen by
//! [`super::Alternates`], with players kept on keepalive between them.
//! A content asked for by its own id goes through the same loop once.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::events::{EndReason, StreamEvent};
use crate::stream::registry::{Registry, StreamContext};
use crate::stream::session::{Session, SessionState, StreamError};

use super::SwitchReason;

/// How playing one id ended.
pub(in crate::stream) struct IdEnd {
    pub(in crate::stream) reason: EndReason,
    pub(in crate::stream) error: Option<StreamError>,
    /// Whether another id could do better: the id failed, not acemux or
    /// its engines (no engine free, out of local resources).
    pub(in crate::stream) content_failed: bool,
    /// Data of this id reached the ring.
    pub(in crate::stream) delivered: bool,
    /// It carried the stream (data for longer than the connection timeout).
    pub(in crate::stream) carried: bool,
    pub(in crate::stream) low_peers: bool,
}

impl IdEnd {
    pub(in crate::stream) fn engines_at_fault(reason: EndReason, error: Option<StreamError>) -> Self {
        Self { reason, error, content_failed: false, delivered: false, carried: false, low_peers: false }
    }

    pub(in crate::stream) fn content_failed(reason: EndReason, error: Option<StreamError>) -> Self {
        Self { content_failed: true, ..Self::engines_at_fault(reason, error) }
    }
}

impl Session {
    /// Plays the content, or the channel's ids in turn, until it fails
    /// for good. Only returns on failure.
    pub(in crate::stream) async fn pump(&self, registry: &Registry) -> (EndReason, Option<StreamError>) {
        let ctx = registry.context();
        // Some id delivered data in this session: from then on a channel
        // keeps trying its ids while players stay, and the next id is
        // spliced in at a keyframe.
        let mut delivered_before = false;
        let mut counted = false;
        loop {
            let key = self.playing();
            let busy = self.channel.is_some() && !registry.play_id(self, &key);
            let end = if busy {
                IdEnd::content_failed(EndReason::FailedToStart, None)
            } else {
                let end = self.pump_id(registry, &key, delivered_before, &mut counted).await;
                registry.leave_id(self, &key);
                end
            };
            delivered_before |= end.delivered;
            let Some(channel) = &self.channel else { return (end.reason, end.error) };
            if !end.content_failed {
                return (end.reason, end.error);
            }
            self.end_id(ctx, end.reason);
            let reason = match () {
                _ if busy => SwitchReason::Busy,
                _ if end.low_peers => SwitchReason::LowPeers,
                _ if end.delivered => SwitchReason::UpstreamFailed,
                _ => SwitchReason::StartFailed,
            };
            let error = end.error.as_ref().map(ToString::to_string);
            let (switch, start_at) = {
                let mut alternates = channel.lock();
                if end.carried {
                    alternates.carried();
                }
                let (switch, start_at) =
                    alternates.fail(reason, error.clone(), &ctx.alternates, Instant::now());
                // A channel that never played ends like a dead id once
                // each of its ids failed; one that played keeps trying
                // while its players stay.
                if !delivered_before && alternates.all_failed() {
                    drop(alternates);
                    let error = end.error.or_else(|| error.map(StreamError::UpstreamLost));
                    return (EndReason::FailedToStart, error);
                }
                (switch, start_at)
            };
            ctx.totals.channel_switched(reason);
            warn!(
                from = %switch.from, to = %switch.to, reason = reason.as_str(), error = ?switch.error,
                backoff = ?Duration::from_secs_f64(switch.backoff_s), "channel moves to its next id"
            );
            ctx.events.emit(StreamEvent::ChannelSwitched {
                stream: self.stream_ref(),
                channel: channel.lock().name().to_owned(),
                switch: switch.clone(),
            });
            if self.state() != SessionState::Starting {
                self.set_state(SessionState::Recovering);
            }
            self.keepalive_until(start_at, ctx).await;
        }
    }

    /// A channel leaves the id it played: `Ended` is owed for it if it
    /// started (the orchestrator hears each id's start and end).
    fn end_id(&self, ctx: &StreamContext, reason: EndReason) {
        let (engine, announced) = {
            let mut info = self.info.lock();
            (info.engine.clone(), std::mem::replace(&mut info.announced, false))
        };
        if announced {
            ctx.events.emit(StreamEvent::Ended { stream: self.stream_ref(), engine, reason });
        }
    }

    /// Keeps players alive (null packets) until `at`.
    async fn keepalive_until(&self, at: Instant, ctx: &StreamContext) {
        while Instant::now() < at {
            if self.state() != SessionState::Starting {
                self.ring.append(crate::stream::upstream::keepalive_packets());
                self.counters.keepalives.fetch_add(1, Ordering::Relaxed);
            }
            let next = (Instant::now() + ctx.stream.keepalive_interval).min(at);
            tokio::time::sleep_until(next.into()).await;
        }
    }

    /// Resolves once the engine has reported fewer peers than
    /// `--channel-min-peers` for `--channel-low-peers-for`; never without
    /// the setting or another id to move to.
    pub(in crate::stream) async fn low_peers(&self, ctx: &StreamContext) {
        let settings = &ctx.alternates;
        let watch = self.channel.as_ref().is_some_and(|c| c.lock().has_others());
        let Some(min) = settings.channel_min_peers.get().filter(|_| watch) else {
            return std::future::pending().await;
        };
        let mut low_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(ctx.engine_stat_interval).await;
            let peers = self.engine_stats.lock().as_ref().and_then(|s| s.stats.peers);
            match peers {
                Some(peers) if (peers as usize) < min => {
                    let since = *low_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= settings.channel_low_peers_for {
                        warn!(peers, min, "too few peers for too long");
                        return;
                    }
                }
                Some(_) => low_since = None,
                None => {}
            }
        }
    }
}
