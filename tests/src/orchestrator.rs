//! A fake orchestrator: lists engines and records stream events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// One received event.
#[derive(Debug, Clone)]
pub struct Received {
    pub name: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State_ {
    events: Mutex<Vec<Received>>,
    engines: Mutex<Value>,
    delay: Mutex<Duration>,
    next_id: AtomicU64,
}

/// See the module docs. Dropping it stops the server.
pub struct FakeOrchestrator {
    pub addr: SocketAddr,
    state: Arc<State_>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeOrchestrator {
    pub async fn start() -> Self {
        let state = Arc::new(State_ { engines: Mutex::new(json!([])), ..Default::default() });
        let app = axum::Router::new()
            .route("/engines", get(engines))
            .route("/events/{name}", post(event))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `GET /engines` answers from now on.
    pub fn set_engines(&self, engines: Value) {
        *self.state.engines.lock() = engines;
    }

    /// How long every event post takes to answer from now on.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock() = delay;
    }

    pub fn events(&self) -> Vec<Received> {
        self.state.events.lock().clone()
    }

    pub fn named(&self, name: &str) -> Vec<Received> {
        self.events().into_iter().filter(|e| e.name == name).collect()
    }
}

impl Drop for FakeOrchestrator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn engines(State(s): State<Arc<State_>>) -> Json<Value> {
    Json(s.engines.lock().clone())
}

async fn event(
    State(s): State<Arc<State_>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let delay = *s.delay.lock();
    tokio::time::sleep(delay).await;
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    s.events.lock().push(Received { name: name.clone(), body, authorization });
    if name == "stream_started" {
        let id = s.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Json(json!({"id": format!("orch-{id}")}))
    } else {
        Json(json!({"ok": true}))
    }
}
