//! HLS URLs: `/ace/manifest.m3u8?id=…` (the engine's own HLS URL, so
//! users only change host and port), `/hls/<id>/index.m3u8`, and under
//! `/hls/<id>/` the viewer's media playlist (`live.m3u8?viewer=…`) and the
//! segments (`<n>.ts`).
//!
//! Playlists are never cached (each is a viewer's own); segments are the
//! same URL for every viewer and never change, so a cache in front may keep
//! them. Every answer carries CORS headers so a page on another origin can
//! play the stream.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::access::Viewer;
use crate::content::{ContentKey, KeyType};
use crate::engine::select::SelectRequest;
use crate::engine_api::PlaybackFormat;
use crate::events::PlayerKind;
use crate::hls::{Blocked, Directive, HlsOutput, NoSegment, playlist};

use super::cluster::{Lookup, to_owner};
use super::getstream::{QueryParams, query};
use super::viewer::{Door, Groups, PathToken, admit, ask_plugins, base_for};
use super::{ApiError, AppState, Connection};

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// Longest viewer token accepted (acemux gives out 32 hex digits).
const MAX_TOKEN: usize = 64;

/// The headers every HLS answer carries.
pub(super) fn cors(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("content-length, etag"));
}

fn playlist_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    cors(&mut h);
    h
}

/// An error answer with the CORS headers, so a page sees the JSON.
pub(super) fn error(e: impl Into<ApiError>) -> Response {
    let mut response = e.into().into_response();
    cors(response.headers_mut());
    response
}

/// `GET /ace/manifest.m3u8?id=|content_id=|infohash=`: the master playlist.
pub async fn manifest(
    State(app): State<AppState>,
    method: Method,
    conn: Option<Extension<Connection>>,
    path_token: Option<Extension<PathToken>>,
    uri: Uri,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    let opened = async {
        let q = query(params)?;
        let viewer = admit(&app, conn.as_deref(), path_token.as_deref(), &q)?;
        let key = ContentKey::from_query(&q)?;
        Groups::of(&viewer).may_play(&app, &key)?;
        let variant =
            variant_url(&viewer, path_token.is_some(), &key.id, format!("../hls/{}/live.m3u8", key.id));
        Ok::<_, ApiError>((key, variant, q, viewer))
    };
    match opened.await {
        Ok((key, variant, q, mut viewer)) => {
            if method != Method::HEAD
                && let Some(elsewhere) = to_owner(&app, &key, Lookup::Claim, &uri, &headers).await
            {
                return elsewhere;
            }
            if method != Method::HEAD && super::engine_api::wants_json(&q) {
                let client = conn.map(|c| c.peer);
                let request = SelectRequest::of_player(key.clone(), client, q, viewer.user_name());
                if let Err(e) = ask_plugins(&app, &mut viewer, &request, PlayerKind::Hls).await {
                    return super::engine_api::refusal(e);
                }
                let user = viewer.tally();
                let format = PlaybackFormat::Hls;
                return super::engine_api::open(&app, key, request, format, &headers, user.as_ref()).await;
            }
            master(app, method, conn, key, &variant, q, viewer).await
        }
        Err(e) if wants_json_raw(&uri) => super::engine_api::refusal(e),
        Err(e) => error(e),
    }
}

/// Where a master playlist sends its viewer: `relative` (so a token in
/// the path prefix stays on every URL the player derives), unless the
/// token came in the query: then into the path prefix, as segment URLs
/// are relative and would drop a query.
fn variant_url(viewer: &Viewer, token_in_path: bool, id: &str, relative: String) -> String {
    match &viewer.token {
        Some(_) if !token_in_path => absolute_variant_url(viewer, id),
        _ => relative,
    }
}

/// A viewer's media playlist URL from the server's root, with its token
/// (if any) as the path prefix.
fn absolute_variant_url(viewer: &Viewer, id: &str) -> String {
    format!("{}/hls/{id}/live.m3u8", base_for("", viewer))
}

/// A master playlist of `key` for `viewer`, asked at a URL that has no
/// place for HLS's relative URLs (the Xtream Codes API's stream URLs): its
/// variant URL is absolute, with the viewer's token as its path prefix.
pub(super) async fn master_for(
    app: AppState,
    method: Method,
    conn: Option<Extension<Connection>>,
    viewer: &Viewer,
    key: ContentKey,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    if let Err(e) = Groups::of(viewer).may_play(&app, &key) {
        return error(e);
    }
    if method != Method::HEAD
        && let Some(elsewhere) = to_owner(&app, &key, Lookup::Claim, uri, headers).await
    {
        return elsewhere;
    }
    let variant = absolute_variant_url(viewer, &key.id);
    let q = key.engine_query().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    master(app, method, conn, key, &variant, q, viewer.clone()).await
}

/// `format=json` in a query that may not have parsed.
fn wants_json_raw(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("format=json")))
}

/// `GET /hls/{id}/{file}`: `index.m3u8` (master playlist), `live.m3u8`
/// (the viewer's media playlist), `<n>.ts` (a segment).
pub async fn file(
    State(app): State<AppState>,
    method: Method,
    door: Door,
    Path((id, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Door { conn, path_token } = door;
    let token: Vec<(String, String)> =
        q.get("token").map(|t| ("token".to_owned(), t.clone())).into_iter().collect();
    let viewer = match admit(&app, conn.as_ref(), path_token.as_ref(), &token) {
        Ok(viewer) => viewer,
        Err(e) => return error(e),
    };
    let conn = conn.map(Extension);
    // A running content is found under either key type; a new one starts
    // as a content id, as `/ace/getstream?id=` does.
    let key = match ContentKey::parse(KeyType::ContentId, "id", &id) {
        Ok(key) => key,
        Err(e) => return error(e),
    };
    if method != Method::HEAD && app.registry.find(&key.id).is_none() {
        // In a cluster, another instance may stream it: a master playlist
        // starts it (claim); a viewer's playlist or segment only follows.
        let lookup = if file == "index.m3u8" { Lookup::Claim } else { Lookup::Follow };
        if let Some(elsewhere) = to_owner(&app, &key, lookup, &uri, &headers).await {
            return elsewhere;
        }
    }
    match file.as_str() {
        "index.m3u8" => {
            if let Err(e) = Groups::of(&viewer).may_play(&app, &key) {
                return error(e);
            }
            let key = app.registry.find(&key.id).map_or(key, |s| s.key.clone());
            let q = key.engine_query().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            let variant = variant_url(&viewer, path_token.is_some(), &key.id, "live.m3u8".to_owned());
            master(app, method, conn, key, &variant, q, viewer).await
        }
        "live.m3u8" => match q.get("viewer").map(String::as_str) {
            // Tokens are ours (32 hex digits); anything else is refused
            // before it can become a viewer entry.
            Some(t) if t.is_empty() || t.len() > MAX_TOKEN || !t.bytes().all(|b| b.is_ascii_hexdigit()) => {
                error(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_viewer",
                    format!(
                        "`viewer` must be the hexadecimal token a master playlist gave (at most {MAX_TOKEN} digits)"
                    ),
                ))
            }
            token => match directive(&q) {
                Ok(directive) => media(app, method, conn, &key.id, token, viewer.tally(), directive).await,
                Err(e) => error(e),
            },
        },
        name => match super::hls_files::serve(&app, &method, &key.id, name, &headers).await {
            Some(response) => response,
            None => error(ApiError::not_found(format!(
                "no HLS file `{name}` (index.m3u8, live.m3u8, <n>.ts or <n>.<part>.ts)"
            ))),
        },
    }
}

/// `OPTIONS` on HLS URLs: the CORS preflight.
pub async fn preflight() -> Response {
    let mut h = HeaderMap::new();
    cors(&mut h);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    (StatusCode::NO_CONTENT, h).into_response()
}

/// The master playlist: a new viewer of `key` (the stream started if
/// nobody watches), sent on to its own media playlist at `variant`.
async fn master(
    app: AppState,
    method: Method,
    conn: Option<Extension<Connection>>,
    key: ContentKey,
    variant: &str,
    query: Vec<(String, String)>,
    mut viewer: Viewer,
) -> Response {
    if method == Method::HEAD {
        // Probes get the headers without starting anything.
        return (playlist_headers(), Body::empty()).into_response();
    }
    let client = conn.map(|c| c.peer);
    let request = SelectRequest::of_player(key.clone(), client, query, viewer.user_name());
    if let Err(e) = ask_plugins(&app, &mut viewer, &request, PlayerKind::Hls).await {
        return error(e);
    }
    let viewing = match app.hls.open(key, request, client, viewer.tally()).await {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    if let Err(e) = wait_until_playable(&app, &viewing.output, &viewing.token).await {
        return error(e);
    }
    viewing.output.renew(&viewing.token);
    let body = playlist::master(&viewing.output.listing(), &format!("{variant}?viewer={}", viewing.token));
    (playlist_headers(), body).into_response()
}

/// The delivery directives of a blocking playlist reload (RFC 8216bis
/// 6.2.5.2): `_HLS_msn`, and `_HLS_part` with it.
fn directive(q: &HashMap<String, String>) -> Result<Option<Directive>, ApiError> {
    let number = |name: &str| {
        q.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_directive",
                        format!("`{name}` must be a whole number"),
                    )
                })
            })
            .transpose()
    };
    match (number("_HLS_msn")?, number("_HLS_part")?) {
        (None, None) => Ok(None),
        (None, Some(_)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_directive", "`_HLS_part` needs `_HLS_msn`"))
        }
        (Some(msn), part) => {
            Ok(Some(Directive { msn, part: part.map(|p| usize::try_from(p).unwrap_or(usize::MAX)) }))
        }
    }
}

/// The viewer's media playlist; fetching it keeps the viewer present. With
/// a directive (and parts cut), it is answered when the playlist holds what
/// the directive asks for.
async fn media(
    app: AppState,
    method: Method,
    conn: Option<Extension<Connection>>,
    id: &str,
    token: Option<&str>,
    user: Option<crate::stream::UserPlayer>,
    directive: Option<Directive>,
) -> Response {
    if method == Method::HEAD {
        return (playlist_headers(), Body::empty()).into_response();
    }
    let Some(session) = app.registry.find(id) else {
        return error(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_running",
            format!("no stream of `{id}` is running (open its master playlist to start it)"),
        ));
    };
    let client = conn.map(|c| c.peer);
    let viewing = match app.hls.renew(&session, token, client, user) {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    let output = &viewing.output;
    let mut headers = playlist_headers();
    match directive.filter(|_| output.part_target().is_some()) {
        Some(directive) => {
            if let Err(e) = output.wait_for(directive, &viewing.token).await {
                return error(blocked(e));
            }
            // The answer to a directive never changes: a cache may keep it
            // (its URL holds the directive) while the segment is listed.
            let max_age = output.target_duration() * 6;
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
                headers.insert(header::CACHE_CONTROL, v);
            }
        }
        None => {
            if let Err(e) = wait_until_playable(&app, output, &viewing.token).await {
                return error(e);
            }
        }
    }
    output.renew(&viewing.token);
    output.playlist_served();
    (headers, playlist::media(&output.listing(), output.part_target())).into_response()
}

fn blocked(e: Blocked) -> ApiError {
    match e {
        Blocked::TooFar => ApiError::new(
            StatusCode::BAD_REQUEST,
            "directive_too_far",
            "`_HLS_msn`/`_HLS_part` ask for more than two segments or the advance part limit ahead",
        ),
        Blocked::Busy => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_waiting",
            format!(
                "this viewer already has {} blocking playlist requests waiting",
                crate::hls::MAX_WAITING_PER_VIEWER
            ),
        ),
        Blocked::Timeout(d) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "part_not_cut",
            format!("the asked segment or part was not cut within {d:?} (three target durations)"),
        ),
        Blocked::Ended(e) => e.into(),
    }
}

async fn wait_until_playable(app: &AppState, output: &HlsOutput, viewer: &str) -> Result<(), ApiError> {
    output.wait_until_playable(app.hls.first_segment_wait(), viewer).await.map_err(|e| match e {
        NoSegment::Timeout(d) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "no_segment",
            format!("no HLS segment could be cut within {d:?} (is the stream sending data?)"),
        ),
        NoSegment::Ended(e) => e.into(),
    })
}
