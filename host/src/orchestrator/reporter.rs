//! Sends `stream_started` / `stream_ended` to the orchestrator.
//!
//! One task reads the event queue in order, so the orchestrator's stream id
//! from a start answer is known before the matching end is sent. Each post
//! is retried a few times with backoff; a post that still fails is counted
//! and dropped. The end event goes once per started stream. On shutdown the
//! queue is drained (bounded by the caller's timeout).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Delivery;
use crate::events::StreamEvent;

/// Attempts per event.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// See the module docs.
pub struct Reporter {
    pub http: reqwest::Client,
    pub base: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub delivery: Arc<Delivery>,
    /// acemux session id → the orchestrator's stream id.
    stream_ids: HashMap<u64, String>,
}

impl Reporter {
    pub fn new(
        http: reqwest::Client,
        base: String,
        api_key: Option<String>,
        timeout: Duration,
        delivery: Arc<Delivery>,
    ) -> Self {
        Self { http, base, api_key, timeout, delivery, stream_ids: HashMap::new() }
    }

    /// Delivers events until `cancel`, then drains what is queued.
    pub async fn run(mut self, mut events: mpsc::Receiver<Arc<StreamEvent>>, cancel: CancellationToken) {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = cancel.cancelled() => break,
            };
            match event {
                Some(event) => self.deliver(&event).await,
                None => return,
            }
        }
        events.close();
        while let Some(event) = events.recv().await {
            self.deliver(&event).await;
        }
    }

    async fn deliver(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Started { stream, engine, session } => {
                let label_id = format!("{}-{}", stream.key.id, stream.session_id);
                let body = json!({
                    "container_id": engine.container_id,
                    "engine": {"host": engine.host, "port": engine.port},
                    "stream": {"key_type": stream.key.key_type, "key": stream.key.name.as_deref().unwrap_or(&stream.key.id)},
                    "session": {
                        "playback_session_id": session.playback_session_id,
                        "stat_url": session.stat_url,
                        "command_url": session.command_url,
                        "is_live": session.is_live,
                    },
                    "labels": {"source": "proxy", "stream_id": label_id},
                });
                let answer = self.post("stream_started", &body).await;
                let id = answer
                    .as_ref()
                    .and_then(|a| a.get("id"))
                    .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_owned))
                    .unwrap_or(label_id);
                self.stream_ids.insert(stream.session_id, id);
            }
            StreamEvent::Ended { stream, engine, reason } => {
                let Some(stream_id) = self.stream_ids.remove(&stream.session_id) else {
                    return;
                };
                let body = json!({
                    "container_id": engine.as_ref().and_then(|e| e.container_id.clone()),
                    "stream_id": stream_id,
                    "reason": reason,
                });
                self.post("stream_ended", &body).await;
            }
            _ => {}
        }
    }

    /// Posts one event with retries; the answer's JSON on success.
    async fn post(&self, name: &str, body: &Value) -> Option<Value> {
        let url = format!("{}/events/{name}", self.base);
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let request = super::authorize(self.http.post(&url), self.api_key.as_deref())
                .json(body)
                .timeout(self.timeout);
            match request.send().await.and_then(reqwest::Response::error_for_status) {
                Ok(response) => {
                    self.delivery.sent.fetch_add(1, Ordering::Relaxed);
                    debug!(event = name, "orchestrator event delivered");
                    return Some(response.json().await.unwrap_or(Value::Null));
                }
                Err(e) if attempt < ATTEMPTS => {
                    debug!(event = name, attempt, error = %e, "orchestrator event failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    self.delivery.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(event = name, error = %e, "orchestrator event not delivered");
                }
            }
        }
        None
    }
}
