//! `GET /ace/getstream?id=…`: attach the player to the content's stream
//! and stream the ring to it.

use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::content::ContentKey;
use crate::engine::select::SelectRequest;
use crate::engine_api::PlaybackFormat;
use crate::events::PlayerKind;
use crate::stream::Player;

use super::cluster::{Lookup, to_owner};
use super::viewer::{Groups, PathToken, admit, ask_plugins};
use super::{ApiError, AppState, Connection};

/// The query's parameters in order, repeats kept (so `?id=A&id=B` can be
/// refused rather than one of them silently chosen).
pub(super) type QueryParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(super) fn query(params: QueryParams) -> Result<Vec<(String, String)>, ApiError> {
    params.map(|Query(q)| q).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))
}

/// Headers of every stream response: live MPEG-TS, never cached, no ranges.
pub(super) fn stream_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    h
}

/// A live stream's response: its headers, and a body that ends when the
/// connection closes. It is answered as HTTP/1.0 so the body goes out as
/// it is, not in chunked framing: a chunk header between every two buffer
/// chunks would cost a send call each, and split the zero-copy path's one
/// `sendfile` per chunk in two (see `crate::zero_copy`). An endless body
/// gains nothing from HTTP/1.1's framing or keep-alive.
pub(super) fn stream_response(body: Body) -> Response {
    let mut response = (stream_headers(), body).into_response();
    *response.version_mut() = axum::http::Version::HTTP_10;
    response
}

pub async fn getstream(
    State(app): State<AppState>,
    conn: Option<Extension<Connection>>,
    path_token: Option<Extension<PathToken>>,
    uri: Uri,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Response, ApiError> {
    stream(app, conn, path_token, query(params)?, &uri, &headers).await
}

/// The URL forms other proxies' playlists carry: `/pid/<id>/<name>.ts`,
/// `/content_id/<id>/<name>.ts`, `/infohash/<infohash>/<name>.ts`, and
/// acemux's `/channel/<key>/<name>.ts` of a channel with alternates. They
/// reach the same sessions as the query forms.
pub async fn path_form(
    State(app): State<AppState>,
    conn: Option<Extension<Connection>>,
    path_token: Option<Extension<PathToken>>,
    uri: Uri,
    headers: HeaderMap,
    Path((form, id, _name)): Path<(String, String, String)>,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let mut query = path_query(&form, id)?;
    query.extend(self::query(params)?.into_iter().filter(|(k, _)| k == "token"));
    stream(app, conn, path_token, query, &uri, &headers).await
}

/// `HEAD` on a path form: headers only, no engine session.
pub async fn path_form_head(
    Path((form, id, _name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    ContentKey::from_query(&path_query(&form, id)?)?;
    Ok((stream_headers(), Body::empty()).into_response())
}

fn path_query(form: &str, id: String) -> Result<Vec<(String, String)>, ApiError> {
    let param = match form {
        "pid" | "content_id" => "content_id",
        "infohash" => "infohash",
        "channel" => "channel",
        _ => return Err(ApiError::not_found("no such endpoint")),
    };
    Ok(vec![(param.to_owned(), id)])
}

pub(super) async fn stream(
    app: AppState,
    conn: Option<Extension<Connection>>,
    path_token: Option<Extension<PathToken>>,
    query: Vec<(String, String)>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let requested_at = std::time::Instant::now();
    let json = super::engine_api::wants_json(&query);
    let mut viewer = match admit(&app, conn.as_deref(), path_token.as_deref(), &query) {
        Ok(viewer) => viewer,
        Err(e) if json => return Ok(super::engine_api::refusal(e)),
        Err(e) => return Err(e),
    };
    let key = match ContentKey::from_query(&query) {
        Ok(key) => key,
        Err(e) if json => return Ok(super::engine_api::refusal(e.into())),
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = Groups::of(&viewer).may_play(&app, &key) {
        return if json { Ok(super::engine_api::refusal(e)) } else { Err(e) };
    }
    if let Some(elsewhere) = to_owner(&app, &key, Lookup::Claim, uri, headers).await {
        return Ok(elsewhere);
    }
    let client = conn.as_ref().map(|c| c.peer);
    let request = SelectRequest::of_player(key.clone(), client, query, viewer.user_name());
    if let Err(e) = ask_plugins(&app, &mut viewer, &request, PlayerKind::Ts).await {
        return if json { Ok(super::engine_api::refusal(e)) } else { Err(e) };
    }
    if json {
        let user = viewer.tally();
        return Ok(
            super::engine_api::open(&app, key, request, PlaybackFormat::Ts, headers, user.as_ref()).await
        );
    }
    let slot = app.registry.attach(key, request, viewer.tally().as_ref())?;
    slot.session().wait_ready().await?;
    let player =
        Player::new(slot, client, &app.registry.context().stream, conn.map(|c| c.write_timed_out.clone()));
    let totals = app.registry.context().totals.clone();
    let mut first = true;
    let body = player.into_stream().inspect(move |_| {
        if std::mem::take(&mut first) {
            totals.time_to_first_byte.observe(requested_at.elapsed());
        }
    });
    Ok(stream_response(Body::from_stream(body)))
}

/// Probes get the stream's headers without starting anything.
pub async fn head(params: QueryParams) -> Result<Response, ApiError> {
    ContentKey::from_query(&query(params)?)?;
    Ok((stream_headers(), Body::empty()).into_response())
}
