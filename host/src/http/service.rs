//! The engine's service endpoints on acemux, for clients that probe or
//! search through "the engine": `/webui/api/service` (`get_version`),
//! `/server/api` (`get_status`, `get_api_access_token`, `search`,
//! `get_media_files`) and the newer `/search`.
//!
//! These answer `{"result": …, "error": …}` as engines do, with JSONP when
//! asked (`callback=`). `get_version` reports the engine API acemux speaks
//! (the version its answers follow, so clients choose `pid` over `sid`);
//! `get_status` reports acemux's own health. Search and media files are
//! answered by a healthy engine of the pool: acemux gets that engine's
//! access token itself, so clients need none (any token they send is
//! accepted and not passed on).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::engine::EngineError;

use super::AppState;

/// The engine API version acemux's answers follow (an engine of this
/// version answers the same shapes), and its code as `get_version` gives it.
const ENGINE_API_VERSION: &str = "3.1.70";
const ENGINE_API_CODE: u64 = 3_017_000;

/// Longest JSONP callback name accepted.
const MAX_CALLBACK: usize = 64;

/// Query parameters passed to an engine's search, and their longest value.
const SEARCH_PARAMS: &[&str] =
    &["query", "category", "page", "page_size", "group_by_channels", "show_epg", "infohash", "api_version"];
const MAX_PARAM: usize = 256;

/// `{"result": result, "error": error}`, as JSON or JSONP.
fn result(
    query: &HashMap<String, String>,
    status: StatusCode,
    result: Value,
    error: Option<&str>,
) -> Response {
    let body = json!({"result": result, "error": error});
    match query.get("callback") {
        None => (status, axum::Json(body)).into_response(),
        Some(name) if is_callback_name(name) => {
            let text = format!("{name}({body});");
            let mut response = (status, text).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/javascript; charset=utf-8"));
            response
        }
        Some(_) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"result": null, "error": "`callback` must be a JavaScript name", "code": "bad_callback"})),
        )
            .into_response(),
    }
}

/// A JavaScript identifier, possibly dotted (`jQuery123.cb`): nothing a
/// page could be made to run besides the call.
fn is_callback_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CALLBACK
        && name.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

fn unknown_method(query: &HashMap<String, String>) -> Response {
    result(query, StatusCode::OK, Value::Null, Some("unknown method"))
}

/// `GET /webui/api/service?method=get_version`.
pub async fn service(Query(query): Query<HashMap<String, String>>) -> Response {
    match query.get("method").map(String::as_str) {
        Some("get_version") => result(
            &query,
            StatusCode::OK,
            json!({
                "code": ENGINE_API_CODE,
                "platform": std::env::consts::OS,
                "version": ENGINE_API_VERSION,
                "acemux": crate::plugins::contract::ACEMUX_VERSION,
            }),
            None,
        ),
        _ => unknown_method(&query),
    }
}

/// `GET /server/api?method=…`.
pub async fn server_api(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query.get("method").map(String::as_str) {
        Some("get_status") => {
            let pool = app.registry.context().pool.views();
            let healthy = pool.iter().filter(|e| e.healthy).count();
            result(
                &query,
                StatusCode::OK,
                json!({
                    "playlist_loaded": true,
                    "engines": pool.len(),
                    "engines_healthy": healthy,
                    "streams": app.registry.sessions().len(),
                }),
                None,
            )
        }
        // Clients need no token of their own: acemux gets each engine's.
        Some("get_api_access_token") => result(&query, StatusCode::OK, json!({"token": "acemux"}), None),
        Some("search") => relay(&app, &query, "/server/api", "search").await,
        Some("get_media_files") => relay(&app, &query, "/server/api", "get_media_files").await,
        _ => unknown_method(&query),
    }
}

/// `GET /search?query=…`: the engine's newer search.
pub async fn search(State(app): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    relay(&app, &query, "/search", "search").await
}

/// Asks a healthy engine of the pool (with its own access token) and
/// passes its `result` and `error` on.
async fn relay(app: &AppState, query: &HashMap<String, String>, path: &str, method: &str) -> Response {
    let mut params: Vec<(&str, &str)> = Vec::new();
    for name in SEARCH_PARAMS {
        if let Some(value) = query.get(*name) {
            if value.len() > MAX_PARAM {
                let why = format!("`{name}` is longer than {MAX_PARAM} characters");
                return result(query, StatusCode::BAD_REQUEST, Value::Null, Some(&why));
            }
            params.push((name, value));
        }
    }
    if path == "/server/api" {
        params.push(("method", method));
    }
    let ctx = app.registry.context();
    let Some(engine) = ctx.pool.engines().into_iter().find(|e| e.is_healthy() && !e.is_draining()) else {
        return result(query, StatusCode::SERVICE_UNAVAILABLE, Value::Null, Some("no engines available"));
    };
    match ctx.client.service_call(&engine.base_url(), path, &params).await {
        Ok(answer) => result(query, StatusCode::OK, answer, None),
        Err(EngineError::Refused(message)) => result(query, StatusCode::OK, Value::Null, Some(&message)),
        Err(e) => result(query, StatusCode::BAD_GATEWAY, Value::Null, Some(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_names_are_plain_javascript_names() {
        for ok in ["cb", "jQuery1234_5678", "a.b.c", "$x", "_"] {
            assert!(is_callback_name(ok), "{ok}");
        }
        for bad in ["", "alert(1)", "a;b", "1a", "a..b", "a b", "<script>", &"x".repeat(65)] {
            assert!(!is_callback_name(bad), "{bad}");
        }
    }
}
