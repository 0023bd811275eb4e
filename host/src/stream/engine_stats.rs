//! Each stream's one poll of its engine's statistics (`stat_url`): peers,
//! speeds, the engine's state and live position, kept as the latest
//! answer on the session. Status, metrics, the dashboard and every
//! engine-API client's own `stat_url` read that one answer: clients polling
//! every second add no engine calls.
//!
//! The poll runs inside the session's task beside the upstream of the
//! engine it asks, so it ends with that upstream (a failover starts a new
//! one against the new engine) and never outlives its stream.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::debug;

use crate::engine::{EngineClient, EngineStats};

/// The latest statistics of a stream's engine.
#[derive(Debug, Clone)]
pub struct LatestStats {
    pub stats: EngineStats,
    /// When the engine answered.
    pub at: Instant,
}

/// Polls `stat_url` every `interval` into `latest`, telling `read` of
/// each answer, for ever (the caller drops it with the upstream it runs
/// beside). A failed poll keeps the last answer: its age tells how fresh
/// it is.
pub async fn poll(
    client: &EngineClient,
    stat_url: &str,
    interval: Duration,
    latest: &Mutex<Option<LatestStats>>,
    read: impl Fn(&EngineStats),
) -> Infallible {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match client.stat(stat_url).await {
            Ok(stats) => {
                read(&stats);
                *latest.lock() = Some(LatestStats { stats, at: Instant::now() });
            }
            Err(e) => debug!(error = %e, "engine statistics not read"),
        }
    }
}
