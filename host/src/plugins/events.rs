//! Carries acemux's stream events to event plugins, in WIT form.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{EndReason, EngineRef};
use crate::events::{PlayerKind, StreamEvent, StreamRef};

use super::address::address_text;
use super::bindings::acemux::plugin::types::PlayerKind as WitPlayerKind;
use super::bindings::{
    ChannelSwitch, EngineFailure, Event, Player, PlayerLeft, Stream, StreamEnded, StreamStats,
};
use super::host::PluginHost;
use super::select::key_type;

fn stream(s: &StreamRef, engine: Option<&EngineRef>) -> Stream {
    Stream {
        content_key: s.key.id.clone(),
        key_type: key_type(s.key.key_type),
        engine_id: engine.map(|e| e.id.clone()),
        channel: s.channel.as_ref().map(|c| c.id.clone()),
    }
}

pub fn player_kind(kind: PlayerKind) -> WitPlayerKind {
    match kind {
        PlayerKind::Ts => WitPlayerKind::Ts,
        PlayerKind::Hls => WitPlayerKind::Hls,
    }
}

/// The WIT event for one of acemux's.
pub fn to_wit(event: &StreamEvent) -> Event {
    match event {
        StreamEvent::Started { stream: s, engine, .. } => Event::StreamStarted(stream(s, Some(engine))),
        StreamEvent::Ended { stream: s, engine, reason } => Event::StreamEnded(StreamEnded {
            stream: stream(s, engine.as_ref()),
            reason: match reason {
                EndReason::Normal => "normal",
                EndReason::Error => "error",
                EndReason::FailedToStart => "failed-to-start",
                EndReason::Stopped => "stopped",
            }
            .into(),
        }),
        StreamEvent::EngineSelected { stream: s, engine } => Event::EngineSelected(stream(s, Some(engine))),
        StreamEvent::EngineFailed { stream: s, engine, error } => Event::EngineFailed(EngineFailure {
            stream: stream(s, Some(engine)),
            engine_id: engine.id.clone(),
            error: error.clone(),
        }),
        StreamEvent::Failover { stream: s, from, error } => Event::Failover(EngineFailure {
            stream: stream(s, Some(from)),
            engine_id: from.id.clone(),
            error: error.clone(),
        }),
        StreamEvent::Stats { stream: s, engine, stats } => Event::StreamStats(StreamStats {
            stream: stream(s, engine.as_ref()),
            status: stats.status.clone(),
            peers: stats.peers,
            speed_down: stats.speed_down,
            speed_up: stats.speed_up,
            downloaded: stats.downloaded,
            uploaded: stats.uploaded,
        }),
        StreamEvent::ChannelSwitched { stream: s, channel, switch } => {
            Event::ChannelSwitched(ChannelSwitch {
                stream: stream(s, None),
                channel_name: channel.clone(),
                from_id: switch.from.clone(),
                to_id: switch.to.clone(),
                reason: switch.reason.as_str().replace('_', "-"),
                error: switch.error.clone(),
                backoff_ms: (switch.backoff_s * 1000.0) as u64,
            })
        }
        StreamEvent::PlayerConnected { stream: s, engine, client, kind, user } => {
            Event::PlayerConnected(Player {
                stream: stream(s, engine.as_ref()),
                client_address: client.map(address_text),
                kind: player_kind(*kind),
                user: user.as_deref().map(str::to_owned),
            })
        }
        StreamEvent::PlayerDisconnected { stream: s, engine, client, kind, user, bytes, duration } => {
            Event::PlayerDisconnected(PlayerLeft {
                stream: stream(s, engine.as_ref()),
                client_address: client.map(address_text),
                kind: player_kind(*kind),
                user: user.as_deref().map(str::to_owned),
                bytes: *bytes,
                duration_ms: duration.as_millis() as u64,
            })
        }
    }
}

/// Forwards events from acemux's bus to the plugins' queues until `stop`.
pub async fn forward(
    host: Arc<PluginHost>,
    mut rx: mpsc::Receiver<Arc<StreamEvent>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            e = rx.recv() => match e {
                Some(e) => host.dispatch(to_wit(&e)),
                None => return,
            },
            _ = stop.cancelled() => return,
        }
    }
}
