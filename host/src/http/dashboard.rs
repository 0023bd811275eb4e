//! `GET /`: the dashboard, and `GET /assets/…`: its files.
//!
//! The page is plain HTML, CSS and JavaScript kept in `host/web/` and
//! embedded in the binary (no build step, no CDN at run time). It reads the
//! live feed (`/proxy/events`) and plays channels through acemux's own HLS
//! output (with the vendored hls.js where the browser has no native HLS).
//! `--dashboard off` turns it off.

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: LazyLock<String>,
}

macro_rules! asset {
    ($name:literal, $type:literal, $path:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!($path),
            etag: LazyLock::new(|| {
                let digest = Sha256::digest(include_bytes!($path));
                format!("\"{}\"", digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
            }),
        }
    };
}

static PAGE: Asset = asset!("index.html", "text/html; charset=utf-8", "../../web/index.html");
static ASSETS: [Asset; 3] = [
    asset!("dashboard.css", "text/css; charset=utf-8", "../../web/dashboard.css"),
    asset!("dashboard.js", "text/javascript; charset=utf-8", "../../web/dashboard.js"),
    asset!("hls.light.min.js", "text/javascript; charset=utf-8", "../../web/vendor/hls.js/hls.light.min.js"),
];

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag.as_str();
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // Revalidated every time (cheap: 304), so a new acemux serves its own page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    (h, asset.body).into_response()
}

/// Settings of the dashboard.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DashboardSettings {
    /// `on` or `off`: the web dashboard at `/`.
    #[arg(long, env = "ACEMUX_DASHBOARD", default_value = "on", action = clap::ArgAction::Set, value_parser = crate::values::on_off)]
    pub dashboard: bool,
}

fn enabled(app: &AppState) -> Result<(), ApiError> {
    if app.dashboard.dashboard {
        Ok(())
    } else {
        Err(ApiError::not_found("the dashboard is turned off (--dashboard / ACEMUX_DASHBOARD)"))
    }
}

pub async fn page(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    enabled(&app)?;
    let mut response = serve(&PAGE, &headers);
    // The page runs only its own scripts, talks only to acemux, and may
    // not be framed by another site.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: http: https:; media-src 'self' blob:; \
             worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    Ok(response)
}

pub async fn asset(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    enabled(&app)?;
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no dashboard asset `{name}`")))?;
    Ok(serve(asset, &headers))
}
