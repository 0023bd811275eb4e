//! What the simulated engine has been asked to do, readable by tests.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Live counters; [`Counters`] is a snapshot.
#[derive(Debug, Default)]
pub(crate) struct LiveCounters {
    pub starts: AtomicU64,
    pub failed_starts: AtomicU64,
    pub playback_connections: AtomicU64,
    pub open_playbacks: AtomicU64,
    pub stops: AtomicU64,
    pub superseded: AtomicU64,
    pub peak_sessions: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub status_calls: AtomicU64,
    pub stat_calls: AtomicU64,
    pub searches: AtomicU64,
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Successful `getstream?format=json` starts.
    pub starts: u64,
    /// Starts answered with an error.
    pub failed_starts: u64,
    /// Connections to a playback URL that got a stream.
    pub playback_connections: u64,
    /// Playback connections open right now.
    pub open_playbacks: u64,
    /// Stop commands for a known session.
    pub stops: u64,
    /// Sessions ended because the same content was started again.
    pub superseded: u64,
    /// Most playback sessions held at once (what a per-engine cap limits).
    pub peak_sessions: u64,
    /// TS bytes written to playback connections.
    pub bytes_sent: u64,
    /// Health (`get_status` / `get_version`) calls.
    pub status_calls: u64,
    /// Stat URL calls.
    pub stat_calls: u64,
    /// Search calls (`/server/api?method=search`, `/search`).
    pub searches: u64,
}

impl LiveCounters {
    pub fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            starts: get(&self.starts),
            failed_starts: get(&self.failed_starts),
            playback_connections: get(&self.playback_connections),
            open_playbacks: get(&self.open_playbacks),
            stops: get(&self.stops),
            superseded: get(&self.superseded),
            peak_sessions: get(&self.peak_sessions),
            bytes_sent: get(&self.bytes_sent),
            status_calls: get(&self.status_calls),
            stat_calls: get(&self.stat_calls),
            searches: get(&self.searches),
        }
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
