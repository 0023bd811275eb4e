//! The access check of player requests (see [`crate::access`]): the token
//! comes from the path prefix `/t/<token>/…`, which the connection loop
//! takes off before routing ([`take_path_token`]), or from `?token=`; the
//! URLs acemux gives back carry it the way it came.

use axum::http::Uri;

use crate::access::Viewer;

use super::{ApiError, AppState, Connection};

/// What a token keeps unescaped in a path segment: RFC 3986's unreserved.
pub(super) const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The token a request carried as a path prefix.
#[derive(Debug, Clone)]
pub struct PathToken(pub String);

/// A request's connection and path token, as one extractor.
pub struct Door {
    pub conn: Option<Connection>,
    pub path_token: Option<PathToken>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Door {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            conn: parts.extensions.get::<Connection>().cloned(),
            path_token: parts.extensions.get::<PathToken>().cloned(),
        })
    }
}

/// Takes `/t/<token>` off the front of `uri`'s path: the token and the
/// path without it. None when the path has no such prefix.
pub fn take_path_token(uri: &Uri) -> Option<(PathToken, Uri)> {
    let rest = uri.path().strip_prefix("/t/")?;
    let (token, path) = rest.split_once('/')?;
    if token.is_empty() || token.len() > crate::access::users::MAX_TOKEN {
        return None;
    }
    let token = percent_encoding::percent_decode_str(token).decode_utf8().ok()?.into_owned();
    let mut parts = uri.clone().into_parts();
    let path_and_query = match uri.query() {
        Some(q) => format!("/{path}?{q}"),
        None => format!("/{path}"),
    };
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Some((PathToken(token), Uri::from_parts(parts).ok()?))
}

/// Decides a player request: its token from the path prefix, else from
/// the query's `token`.
pub fn admit(
    app: &AppState,
    conn: Option<&Connection>,
    path_token: Option<&PathToken>,
    query: &[(String, String)],
) -> Result<Viewer, ApiError> {
    let token = path_token
        .map(|t| t.0.as_str())
        .or_else(|| query.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()));
    Ok(app.access.admit(token, conn.map(|c| c.peer.ip()))?)
}

/// A new player of `request` asks the access plugins (see
/// [`crate::access::plugin_check`]): refused, or let in within the limits
/// they set (which become `viewer`'s).
pub async fn ask_plugins(
    app: &AppState,
    viewer: &mut Viewer,
    request: &crate::engine::select::SelectRequest,
    kind: crate::events::PlayerKind,
) -> Result<(), ApiError> {
    if !app.plugins.as_ref().is_some_and(|p| p.checks_access()) {
        return Ok(());
    }
    let listing = app.channels.current();
    let channel = request.content.as_ref().and_then(|key| listing.playing(key).next());
    let player = crate::access::plugin_check::NewPlayer {
        request,
        kind,
        channel: channel.map(|l| (l.channel.name.as_str(), l.channel.group.as_deref())),
    };
    let on_failure = app.access.on_plugin_failure;
    Ok(crate::access::plugin_check::consult(app.plugins.as_ref(), on_failure, viewer, player).await?)
}

/// The base of the URLs a list (playlist, lineup, `/channels.json`, the
/// guide) gives its caller, as an extractor that checks the caller's
/// token first: acemux's base URL, with the caller's token in the path
/// prefix when it carried one.
pub struct ListBase(pub String, pub Groups);

/// The channel groups a caller sees and plays: all, or its user's.
#[derive(Debug, Clone, Default)]
pub struct Groups(Option<std::sync::Arc<[String]>>);

impl Groups {
    pub fn of(viewer: &Viewer) -> Self {
        Self(viewer.user.as_ref().and_then(|u| u.groups.clone()))
    }

    /// Whether the caller sees `channel` (a channel without a group is
    /// seen only by callers who see every group).
    pub fn sees(&self, channel: &crate::channels::Channel) -> bool {
        match &self.0 {
            None => true,
            Some(groups) => channel.group.as_ref().is_some_and(|g| groups.contains(g)),
        }
    }

    /// Refuses `key` unless it is (an id of) a listed channel the caller sees.
    pub fn may_play(&self, app: &AppState, key: &crate::content::ContentKey) -> Result<(), ApiError> {
        if self.0.is_none() {
            return Ok(());
        }
        if app.channels.current().playing(key).any(|l| self.sees(&l.channel)) {
            return Ok(());
        }
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "not_in_groups",
            "this user may play only the channels of its groups",
        ))
    }
}

impl axum::extract::FromRequestParts<AppState> for ListBase {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let query = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| q)
            .unwrap_or_default();
        let token: Vec<(String, String)> = query.into_iter().filter(|(k, _)| k == "token").collect();
        let viewer =
            admit(app, parts.extensions.get::<Connection>(), parts.extensions.get::<PathToken>(), &token)?;
        Ok(Self(base_for(&super::playlist::base_url(app, &parts.headers), &viewer), Groups::of(&viewer)))
    }
}

/// `base` as the viewer's URLs start: with `/t/<token>` when it has one.
pub fn base_for(base: &str, viewer: &Viewer) -> String {
    match &viewer.token {
        Some(token) => {
            let token: String = percent_encoding::utf8_percent_encode(token, PATH_SEGMENT).collect();
            format!("{base}/t/{token}")
        }
        None => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_comes_off_and_the_query_stays() {
        let uri: Uri = "/t/open%20sesame/ace/getstream?id=ab".parse().unwrap();
        let (token, rest) = take_path_token(&uri).unwrap();
        assert_eq!((token.0.as_str(), rest.to_string().as_str()), ("open sesame", "/ace/getstream?id=ab"));
        assert!(take_path_token(&"/t//x".parse().unwrap()).is_none());
        assert!(take_path_token(&"/t/only".parse().unwrap()).is_none());
        assert!(take_path_token(&"/ace/getstream".parse().unwrap()).is_none());
    }
}
