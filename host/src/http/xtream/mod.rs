//! The Xtream Codes API, which IPTV apps (TiviMate, IPTV Smarters, Kodi's
//! and smart TVs' players) sign in with instead of a bare M3U URL: a
//! user's name and token are the app's username and password.
//!
//! - `/player_api.php`: the account, and with `action=` the live
//!   categories, streams and short guide ([`api`]);
//! - `/get.php`: the user's channels as M3U, `/xmltv.php`: the guide
//!   ([`lists`]);
//! - `/live/<username>/<password>/<stream_id>.ts|.m3u8`: a channel,
//!   played as `/ace/getstream` and `/ace/manifest.m3u8` play it.
//!
//! A stream id is the channel's number (kept across restarts, so what an
//! app saved stays right); a category id is derived from the group's name.
//! Field names and JSON types follow what public implementations of the
//! API serve and the apps parse (numbers as strings where they do).
//! Credentials are checked like any token (constant time, the wrong-token
//! limit per address); in open mode a name that is no user's is anyone.

mod api;
mod lists;

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub use api::player_api;
pub use lists::{get_php, xmltv_php};

use super::viewer::{Groups, PATH_SEGMENT};
use super::{ApiError, AppState, Connection};
use crate::access::Viewer;
use crate::channels::catalog::{Listed, Listing};

/// Longest username or password read.
const MAX_CREDENTIAL: usize = 256;

/// A signed-in app: who it is, and its credentials as it sent them (for
/// the URLs acemux gives back; never logged or shown).
pub struct Login {
    pub viewer: Viewer,
    pub username: String,
    pub password: String,
}

impl Login {
    /// Checks `username` and `password` of a query.
    fn check(
        app: &AppState,
        conn: Option<&Connection>,
        q: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
        Self::of(app, conn, get("username"), get("password"))
    }

    fn of(
        app: &AppState,
        conn: Option<&Connection>,
        username: &str,
        password: &str,
    ) -> Result<Self, ApiError> {
        if username.is_empty() || password.is_empty() {
            return Err(crate::access::AccessError::Missing.into());
        }
        if username.len() > MAX_CREDENTIAL || password.len() > MAX_CREDENTIAL {
            return Err(crate::access::AccessError::Wrong.into());
        }
        let viewer = app.access.admit_named(username, password, conn.map(|c| c.peer.ip()))?;
        Ok(Self { viewer, username: username.to_owned(), password: password.to_owned() })
    }

    /// The channels the user sees, in the list's order.
    fn channels<'l>(&self, listing: &'l Listing) -> impl Iterator<Item = &'l Listed> {
        let groups = Groups::of(&self.viewer);
        listing.channels.iter().filter(move |l| groups.sees(&l.channel))
    }

    /// The user's channel whose stream id (its number) is `stream_id`.
    fn stream<'l>(&self, listing: &'l Listing, stream_id: &str) -> Option<&'l Listed> {
        let number = stream_id.parse::<u32>().ok()?;
        self.channels(listing).find(|l| l.number == number)
    }

    /// `<base>/live/<username>/<password>/<stream_id>.<extension>`.
    fn live_url(&self, base: &str, stream_id: u32, extension: &str) -> String {
        let segment = |s: &str| percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string();
        format!("{base}/live/{}/{}/{stream_id}.{extension}", segment(&self.username), segment(&self.password))
    }

    /// `username=…&password=…` for URLs acemux gives back.
    fn query(&self) -> String {
        let part = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!("username={}&password={}", part(&self.username), part(&self.password))
    }
}

/// A group's category id: stable for its name (apps keep it), as digits.
fn category_id(group: Option<&str>) -> String {
    match group {
        None => "0".into(),
        Some(name) => {
            let digest = Sha256::digest(name.as_bytes());
            (u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> 1).max(1).to_string()
        }
    }
}

/// What an app calls a channel without a group.
const NO_GROUP: &str = "Other";

/// `GET|HEAD /live/{username}/{password}/{stream_id}.ts|.m3u8`.
pub async fn live(
    State(app): State<AppState>,
    method: Method,
    conn: Option<Extension<Connection>>,
    Path((username, password, file)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let login = match Login::of(&app, conn.as_deref(), &username, &password) {
        Ok(login) => login,
        Err(e) => return e.into_response(),
    };
    let (number, hls) = match file.rsplit_once('.') {
        Some((n, "ts")) | Some((n, "mpegts")) => (n, false),
        Some((n, "m3u8")) => (n, true),
        None => (file.as_str(), false),
        Some(_) => {
            return ApiError::not_found("a live stream is `<stream_id>.ts` or `<stream_id>.m3u8`")
                .into_response();
        }
    };
    let listing = app.channels.current();
    let Some(listed) = login.stream(&listing, number) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_stream",
            format!("no stream `{number}` for this user"),
        )
        .into_response();
    };
    let key = listed.channel.play_key();
    if hls {
        return super::hls::master_for(app, method, conn, &login.viewer, key, &uri, &headers).await;
    }
    if method == Method::HEAD {
        return (super::getstream::stream_headers(), Body::empty()).into_response();
    }
    let mut query = vec![(key.key_type.engine_param().to_owned(), key.id.clone())];
    if let Some(token) = &login.viewer.token {
        query.push(("token".to_owned(), token.clone()));
    }
    match super::getstream::stream(app, conn, None, query, &uri, &headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The account answer's `user_info` of `login`, or its refusal.
fn user_info(login: &Login) -> serde_json::Value {
    let user = login.viewer.user.as_ref();
    let tally = user.map(|u| &u.tally);
    serde_json::json!({
        "username": login.username,
        "password": login.password,
        "message": "",
        "auth": 1,
        "status": "Active",
        // Never expires.
        "exp_date": null,
        "is_trial": "0",
        "active_cons": tally.map_or(0, |t| t.players()).to_string(),
        "created_at": "0",
        // `0` is unlimited, as the panels write it.
        "max_connections": tally.and_then(|t| t.limits().max_players).unwrap_or(0).to_string(),
        "allowed_output_formats": ["m3u8", "ts"],
    })
}
