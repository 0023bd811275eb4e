//! The orchestrator that manages engine containers: acemux learns engines
//! from it ([`discovery`]) and tells it which streams run where
//! ([`reporter`]). Both run beside the stream path and never delay a stream;
//! both exist only when `ORCHESTRATOR_URL` is set.

pub mod discovery;
pub mod reporter;
pub mod settings;

use std::sync::atomic::AtomicU64;

use reqwest::RequestBuilder;

pub use settings::OrchestratorSettings;

/// Events delivered to the orchestrator and given up on, for `/metrics`.
#[derive(Debug, Default)]
pub struct Delivery {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

/// Adds `Authorization: Bearer <API_KEY>` when a key is configured.
fn authorize(request: RequestBuilder, api_key: Option<&str>) -> RequestBuilder {
    match api_key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}
