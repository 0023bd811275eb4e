//! Periodically reads `GET {ORCHESTRATOR_URL}/engines` into the engine pool.
//!
//! The answer is a list (or `{"engines": [...]}`) of
//! `{"container_id", "host", "port", "labels"}`. Engines that disappear from
//! the list are drained: no new streams, running ones finish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::engine::EnginePool;
use crate::engine::EngineSetting;

#[derive(Deserialize)]
#[serde(untagged)]
enum Listing {
    Bare(Vec<ListedEngine>),
    Wrapped { engines: Vec<ListedEngine> },
}

#[derive(Deserialize)]
struct ListedEngine {
    host: String,
    port: u16,
    #[serde(default)]
    container_id: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, serde_json::Value>,
}

impl From<ListedEngine> for EngineSetting {
    fn from(e: ListedEngine) -> Self {
        let labels = e
            .labels
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        EngineSetting { host: e.host, port: e.port, labels, container_id: e.container_id }
    }
}

/// Reads the engine list once.
pub async fn fetch_engines(
    http: &reqwest::Client,
    base: &str,
    api_key: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Vec<EngineSetting>> {
    let request = super::authorize(http.get(format!("{base}/engines")), api_key).timeout(timeout);
    let response = request.send().await?.error_for_status()?;
    let listing: Listing = response.json().await?;
    let engines = match listing {
        Listing::Bare(v) | Listing::Wrapped { engines: v } => v,
    };
    Ok(engines.into_iter().map(EngineSetting::from).collect())
}

/// Refreshes the pool every `every` until `cancel`.
pub async fn run(
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    timeout: Duration,
    every: Duration,
    pool: Arc<EnginePool>,
    cancel: CancellationToken,
) {
    crate::periodic::every(every, cancel, || async {
        match fetch_engines(&http, &base, api_key.as_deref(), timeout).await {
            Ok(listed) => {
                let (added, drained) = pool.sync_discovered(&listed);
                if added + drained > 0 {
                    info!(listed = listed.len(), added, drained, "engine list refreshed");
                }
            }
            // Keep the engines we know; the orchestrator may be restarting.
            Err(e) => warn!(error = %e, "cannot read the orchestrator's engine list"),
        }
    })
    .await;
}
