//! Events as plugin authors see them.

use crate::{PlayerKind, Stream};

/// Something that happened to a stream.
#[derive(Debug, Clone)]
pub enum Event {
    StreamStarted(Stream),
    /// `reason`: `normal`, `error`, `failed-to-start` or `stopped`.
    StreamEnded {
        stream: Stream,
        reason: String,
    },
    PlayerConnected {
        stream: Stream,
        client_address: Option<String>,
        /// A TS player or an HLS viewer.
        kind: PlayerKind,
        /// The user whose token it carried (a `[[users]]` name).
        user: Option<String>,
    },
    PlayerDisconnected {
        stream: Stream,
        client_address: Option<String>,
        kind: PlayerKind,
        user: Option<String>,
        /// Bytes sent; 0 for an HLS viewer (segments are counted per stream).
        bytes: u64,
        duration_ms: u64,
    },
    EngineSelected(Stream),
    EngineFailed {
        stream: Stream,
        engine_id: String,
        error: String,
    },
    Failover {
        stream: Stream,
        engine_id: String,
        error: String,
    },
    /// The engine's statistics of the stream, each time acemux reads them.
    StreamStats {
        stream: Stream,
        stats: StreamStats,
    },
    /// A channel moved to its next id (`stream` names the id after;
    /// `stream.channel` the channel).
    ChannelSwitched {
        stream: Stream,
        channel_name: String,
        from_id: String,
        to_id: String,
        /// `start-failed`, `upstream-failed`, `low-peers` or `busy`.
        reason: String,
        error: Option<String>,
        /// How long the id left is not tried again.
        backoff_ms: u64,
    },
}

/// What an engine says about a stream (each field as far as it says it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// `prebuf`, `dl`, … as the engine says.
    pub status: Option<String>,
    pub peers: Option<u64>,
    /// KB/s, as the engine counts.
    pub speed_down: Option<u64>,
    pub speed_up: Option<u64>,
    pub downloaded: Option<u64>,
    pub uploaded: Option<u64>,
}

impl Event {
    /// The stream the event is about.
    pub fn stream(&self) -> &Stream {
        match self {
            Event::StreamStarted(s) | Event::EngineSelected(s) => s,
            Event::StreamEnded { stream, .. }
            | Event::PlayerConnected { stream, .. }
            | Event::PlayerDisconnected { stream, .. }
            | Event::EngineFailed { stream, .. }
            | Event::Failover { stream, .. }
            | Event::StreamStats { stream, .. }
            | Event::ChannelSwitched { stream, .. } => stream,
        }
    }

    /// The event's name, as in the WIT (`stream-started`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Event::StreamStarted(_) => "stream-started",
            Event::StreamEnded { .. } => "stream-ended",
            Event::PlayerConnected { .. } => "player-connected",
            Event::PlayerDisconnected { .. } => "player-disconnected",
            Event::EngineSelected(_) => "engine-selected",
            Event::EngineFailed { .. } => "engine-failed",
            Event::Failover { .. } => "failover",
            Event::StreamStats { .. } => "stream-stats",
            Event::ChannelSwitched { .. } => "channel-switched",
        }
    }
}

/// Converts the generated event of one world's `events` interface.
#[doc(hidden)]
#[macro_export]
macro_rules! __convert_event {
    ($iface:ident, $event:expr) => {
        match $event {
            $iface::Event::StreamStarted(s) => $crate::Event::StreamStarted(s),
            $iface::Event::StreamEnded(e) => {
                $crate::Event::StreamEnded { stream: e.stream, reason: e.reason }
            }
            $iface::Event::PlayerConnected(p) => $crate::Event::PlayerConnected {
                stream: p.stream,
                client_address: p.client_address,
                kind: p.kind,
                user: p.user,
            },
            $iface::Event::PlayerDisconnected(p) => $crate::Event::PlayerDisconnected {
                stream: p.stream,
                client_address: p.client_address,
                kind: p.kind,
                user: p.user,
                bytes: p.bytes,
                duration_ms: p.duration_ms,
            },
            $iface::Event::EngineSelected(s) => $crate::Event::EngineSelected(s),
            $iface::Event::EngineFailed(f) => {
                $crate::Event::EngineFailed { stream: f.stream, engine_id: f.engine_id, error: f.error }
            }
            $iface::Event::Failover(f) => {
                $crate::Event::Failover { stream: f.stream, engine_id: f.engine_id, error: f.error }
            }
            $iface::Event::StreamStats(s) => $crate::Event::StreamStats {
                stream: s.stream,
                stats: $crate::StreamStats {
                    status: s.status,
                    peers: s.peers,
                    speed_down: s.speed_down,
                    speed_up: s.speed_up,
                    downloaded: s.downloaded,
                    uploaded: s.uploaded,
                },
            },
            $iface::Event::ChannelSwitched(c) => $crate::Event::ChannelSwitched {
                stream: c.stream,
                channel_name: c.channel_name,
                from_id: c.from_id,
                to_id: c.to_id,
                reason: c.reason,
                error: c.error,
                backoff_ms: c.backoff_ms,
            },
        }
    };
}

pub use crate::__convert_event as convert_event;
