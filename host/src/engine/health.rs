//! Probes every engine on an interval and records its health in the pool.
//!
//! An engine is unhealthy after `failures` failed probes in a row (or at
//! once when a start on it fails) and healthy again after one good probe.
//! Selection skips unhealthy engines.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{EngineClient, EngineError, EnginePool};

/// Probes all engines once.
pub async fn probe_all(pool: &EnginePool, client: &EngineClient, failures: u32) {
    let engines = pool.engines();
    let results = join_all(engines.iter().map(|e| client.probe_at(e.base_url()))).await;
    for (engine, result) in engines.iter().zip(results) {
        if let Err(EngineError::Local(e)) = &result {
            // Our own shortage (e.g. no file descriptor for the probe):
            // the engine's health is unknown, not bad.
            warn!(engine = %engine.id, error = %e, "engine probe skipped");
            continue;
        }
        let outcome = result.map_err(|e| e.to_string());
        let error = outcome.as_ref().err().cloned();
        if engine.record_probe(outcome, failures) {
            match error {
                None => info!(engine = %engine.id, "engine healthy again"),
                Some(e) => warn!(engine = %engine.id, error = %e, "engine unhealthy"),
            }
        }
    }
}

/// Probes every `every` until `cancel`.
pub async fn run(
    pool: Arc<EnginePool>,
    client: EngineClient,
    every: Duration,
    failures: u32,
    cancel: CancellationToken,
) {
    crate::periodic::every(every, cancel, || probe_all(&pool, &client, failures)).await;
}
