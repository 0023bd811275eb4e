//! The orchestrator that manages engine containers: acemux learns engines
//! from it ([`discovery`]) and tells it which streams run where
//! ([`reporter`]). Both run beside the stream path and never delay a stream;
//! both exist only when `ORCHESTRATOR_URL` is set.

pub mod discovery;
pub mod reporter;

use reqwest::RequestBuilder;

/// Adds `Authorization: Bearer <API_KEY>` when a key is configured.
fn authorize(request: RequestBuilder, api_key: Option<&str>) -> RequestBuilder {
    match api_key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}
