//! Things that happen to streams, delivered to whoever listens (the
//! orchestrator client; plugin event hooks) off the stream path.
//!
//! Each consumer has its own bounded queue. Emitting never waits: when a
//! consumer's queue is full the event is dropped for that consumer and
//! counted, so a slow consumer can never delay a stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::content::ContentKey;
use crate::engine::{EngineSession, EngineStats};

/// Why a stream ended (the orchestrator's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The last player left and the grace period passed.
    Normal,
    /// The upstream failed for good.
    Error,
    /// The stream never delivered data.
    FailedToStart,
    /// Stopped on purpose (admin request or shutdown).
    Stopped,
}

/// Why a channel left an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchReason {
    /// It did not start: the engine refused it, sent nothing within the
    /// init timeout, or no engine could start it.
    StartFailed,
    /// It played, then its upstream failed past the reconnects and the
    /// engine failover.
    UpstreamFailed,
    /// Its peers stayed under `--channel-min-peers`.
    LowPeers,
    /// Another stream here plays it (players asked for the id itself).
    Busy,
}

impl SwitchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::StartFailed => "start_failed",
            SwitchReason::UpstreamFailed => "upstream_failed",
            SwitchReason::LowPeers => "low_peers",
            SwitchReason::Busy => "busy",
        }
    }
}

/// One switch of a channel between its ids (see
/// `crate::stream::alternates`), for status, the dashboard and events.
#[derive(Debug, Clone, Serialize)]
pub struct Switch {
    /// Unix time, seconds.
    pub at: f64,
    pub from: String,
    pub to: String,
    pub reason: SwitchReason,
    pub error: Option<String>,
    /// How long `from` is left before it is tried again.
    pub backoff_s: f64,
    /// How long players went without data: from the last data of the id
    /// before to the first of the one after (once it came).
    pub wait_s: Option<f64>,
}

/// The engine a session runs on, for status and events.
#[derive(Debug, Clone, Serialize)]
pub struct EngineRef {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub container_id: Option<String>,
}

/// Which stream an event is about.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRef {
    /// acemux's id of the stream session (unique per process).
    pub session_id: u64,
    /// The content on the engine (for a channel, the id it plays).
    pub key: ContentKey,
    /// The channel's key, for a channel's stream.
    pub channel: Option<ContentKey>,
}

/// How a player receives the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayerKind {
    /// One endless MPEG-TS response (`/ace/getstream` and the path forms).
    Ts,
    /// An HLS viewer: fetches playlists and segments, holds no connection.
    Hls,
}

/// See the module docs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The first engine accepted the stream (once per stream).
    Started { stream: StreamRef, engine: EngineRef, session: EngineSession },
    /// A channel moved to its next id (`stream` names the id after).
    ChannelSwitched { stream: StreamRef, channel: String, switch: Switch },
    /// The stream moved off a failing engine.
    Failover { stream: StreamRef, from: EngineRef, error: String },
    /// The stream ended (once per stream that started).
    Ended { stream: StreamRef, engine: Option<EngineRef>, reason: EndReason },
    /// An engine was chosen for the stream (first start or failover).
    EngineSelected { stream: StreamRef, engine: EngineRef },
    /// Starting on an engine failed.
    EngineFailed { stream: StreamRef, engine: EngineRef, error: String },
    /// The engine's statistics of the stream were read (every
    /// `--engine-stat-interval` while it runs).
    Stats { stream: StreamRef, engine: Option<EngineRef>, stats: EngineStats },
    PlayerConnected {
        stream: StreamRef,
        engine: Option<EngineRef>,
        client: Option<SocketAddr>,
        kind: PlayerKind,
        /// The user whose token the player carried.
        user: Option<Arc<str>>,
    },
    PlayerDisconnected {
        stream: StreamRef,
        engine: Option<EngineRef>,
        client: Option<SocketAddr>,
        kind: PlayerKind,
        user: Option<Arc<str>>,
        /// Bytes sent to the player; 0 for an HLS viewer (segments are
        /// shared URLs fetched without the viewer's token, so their bytes
        /// are counted per stream, not per viewer).
        bytes: u64,
        duration: Duration,
    },
}

struct Sink {
    name: &'static str,
    tx: mpsc::Sender<Arc<StreamEvent>>,
    dropped: AtomicU64,
}

/// Fans events out to the consumers' queues. See the module docs.
#[derive(Default)]
pub struct EventBus {
    sinks: Vec<Sink>,
}

impl EventBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a consumer with a queue of `capacity` events.
    pub fn subscribe(&mut self, name: &'static str, capacity: usize) -> mpsc::Receiver<Arc<StreamEvent>> {
        let (tx, rx) = mpsc::channel(capacity);
        self.sinks.push(Sink { name, tx, dropped: AtomicU64::new(0) });
        rx
    }

    /// Queues `event` for every consumer; never waits.
    pub fn emit(&self, event: StreamEvent) {
        if self.sinks.is_empty() {
            return;
        }
        let event = Arc::new(event);
        for sink in &self.sinks {
            if sink.tx.try_send(event.clone()).is_err() {
                sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Events dropped per consumer because its queue was full or closed.
    pub fn dropped(&self) -> Vec<(&'static str, u64)> {
        self.sinks.iter().map(|s| (s.name, s.dropped.load(Ordering::Relaxed))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::KeyType;

    fn ended() -> StreamEvent {
        StreamEvent::Ended {
            stream: StreamRef { session_id: 1, key: ContentKey::new(KeyType::Infohash, "a"), channel: None },
            engine: None,
            reason: EndReason::Normal,
        }
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts_without_waiting() {
        let mut bus = EventBus::new();
        let mut rx = bus.subscribe("test", 2);
        for _ in 0..5 {
            bus.emit(ended());
        }
        assert_eq!(bus.dropped(), vec![("test", 3)]);
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_some());
        assert!(rx.try_recv().is_err());
    }
}
