//! The admin token: who may stop streams, and who sees identifying status.
//!
//! When `ACEMUX_ADMIN_TOKEN` is set, a request proves it with
//! `Authorization: Bearer <token>` (the scheme in any case, RFC 9110
//! §11.1). Tokens are compared in constant time over their SHA-256
//! digests, so neither the content nor the length of the expected token
//! leaks through timing. Without a token set, every caller counts as admin
//! (bind acemux to a private address then).

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No token is set, or the request carries the right one.
    Admin,
    /// A token is set and the request carries none.
    Anonymous,
    /// A token is set and the request carries another.
    WrongToken,
}

impl Caller {
    pub fn of(app: &AppState, headers: &HeaderMap) -> Self {
        let Some(expected) = app.front.admin_token.as_deref() else {
            return Caller::Admin;
        };
        match bearer_token(headers) {
            None => Caller::Anonymous,
            Some(given) if same_secret(given, expected) => Caller::Admin,
            Some(_) => Caller::WrongToken,
        }
    }

    /// Refuses the request unless the caller is admin: 401 without a
    /// token, 403 with a wrong one.
    pub fn require_admin(self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Anonymous => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "admin token required (Authorization: Bearer …)",
            )),
            Caller::WrongToken => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "wrong admin token")),
        }
    }
}

/// The credentials of an `Authorization: Bearer …` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn same_secret(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        h
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret ", "BeArEr s3cret"] {
            assert_eq!(bearer_token(&headers(value)), Some("s3cret"), "{value}");
        }
        assert_eq!(bearer_token(&headers("Basic czNjcmV0")), None);
        assert_eq!(bearer_token(&headers("Bearers3cret")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("s3cret ", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }
}
