//! Sending a request for a content another instance streams to that
//! instance: a `307` to the same path and query on it, or (with
//! `--cluster-forward proxy`) its answer passed through, so a load balancer
//! that does not hash on the content still gives one engine session per
//! content.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use crate::cluster::{ClusterForward, FORWARDED, Owner};
use crate::content::ContentKey;

use super::{ApiError, AppState};

/// Headers of the owner's answer that a proxied answer keeps.
const KEPT: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CACHE_CONTROL,
    header::ETAG,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
];

/// How a request may be handed on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A request that starts the content: take its lease unless another
    /// instance holds it.
    Claim,
    /// A request that only follows a running content (an HLS viewer's
    /// playlist or segment): only look who holds it.
    Follow,
}

/// The answer for a content another instance streams, or `None` to serve
/// it here (alone, already streaming here, Redis unreachable, or a request
/// another instance already handed on).
pub async fn to_owner(
    app: &AppState,
    key: &ContentKey,
    lookup: Lookup,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    let cluster = app.cluster.as_ref()?;
    if headers.contains_key(&FORWARDED) || app.registry.contains(key) {
        return None;
    }
    let owner = match lookup {
        Lookup::Claim => cluster.claim(key).await,
        Lookup::Follow => cluster.owner_of(key).await,
    };
    let Owner::There(base) = owner else { return None };
    let target = format!("{base}{}", uri.path_and_query().map_or("/", |p| p.as_str()));
    tracing::debug!(content = %key, owner = %base, "content streams on another instance");
    Some(match app.cluster_settings.cluster_forward {
        ClusterForward::Redirect => {
            cluster.counters.redirects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut h = HeaderMap::new();
            match HeaderValue::from_str(&target) {
                Ok(location) => h.insert(header::LOCATION, location),
                Err(_) => return None,
            };
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            (StatusCode::TEMPORARY_REDIRECT, h).into_response()
        }
        ClusterForward::Proxy => {
            cluster.counters.proxied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            proxy(cluster.forward_client(), &target, headers).await
        }
    })
}

/// Fetches `target` from the owner and passes its answer through, body
/// streamed as it arrives.
async fn proxy(client: &reqwest::Client, target: &str, headers: &HeaderMap) -> Response {
    let mut request = client.get(target).header(&FORWARDED, "1");
    if let Some(etag) = headers.get(header::IF_NONE_MATCH) {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "owner_unreachable",
                format!("the instance streaming this content did not answer: {e}"),
            )
            .into_response();
        }
    };
    let mut h = HeaderMap::new();
    for name in KEPT {
        if let Some(v) = answer.headers().get(&name) {
            h.insert(name, v.clone());
        }
    }
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other));
    (status, h, body).into_response()
}
