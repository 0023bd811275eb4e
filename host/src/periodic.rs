//! Background work on a fixed period, until cancelled: the shape of every
//! acemux housekeeping loop (health probes, engine discovery).

use std::future::Future;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Runs `work` now and then every `period` (a late run delays the next
/// rather than bunching up) until `cancel`.
pub async fn every<F, Fut>(period: Duration, cancel: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        work().await;
    }
}
