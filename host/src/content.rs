//! The content a player asks for: a content id or an infohash.
//!
//! Both are 40 hex characters. The key is normalised to lower case so that
//! two spellings of one content reach one stream session.

use std::fmt;

use serde::Serialize;

/// How the engine is asked for the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    ContentId,
    Infohash,
}

impl KeyType {
    /// The engine's query parameter for this key type.
    pub fn engine_param(self) -> &'static str {
        match self {
            KeyType::ContentId => "content_id",
            KeyType::Infohash => "infohash",
        }
    }
}

/// A validated content key; the identity of a stream session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ContentKey {
    pub key_type: KeyType,
    /// 40 lower-case hex characters.
    pub id: String,
}

impl fmt::Display for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Why a request does not name a content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentKeyError {
    #[error("missing content: give one of `id`, `content_id` or `infohash`")]
    Missing,
    #[error("give exactly one of `id`, `content_id` or `infohash` (got {0})")]
    Ambiguous(String),
    #[error("`{param}` must be 40 hexadecimal characters (got {len} characters)")]
    Malformed { param: &'static str, len: usize },
}

impl ContentKey {
    /// Reads the key from a `getstream` query's parameters, in order:
    /// exactly one of `id`, `content_id` (both content ids) or `infohash`,
    /// given once. A repeated parameter is as ambiguous as two different
    /// ones (which value a proxy or player would use differs).
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ContentKeyError> {
        let given: Vec<(&'static str, &String)> = query
            .iter()
            .filter_map(|(k, v)| {
                ["id", "content_id", "infohash"].into_iter().find(|p| p == k).map(|p| (p, v))
            })
            .collect();
        match given.as_slice() {
            [] => Err(ContentKeyError::Missing),
            [(param, value)] => {
                let key_type = if *param == "infohash" { KeyType::Infohash } else { KeyType::ContentId };
                Self::parse(key_type, param, value)
            }
            many => Err(ContentKeyError::Ambiguous(
                many.iter().map(|(p, _)| format!("`{p}`")).collect::<Vec<_>>().join(", "),
            )),
        }
    }

    /// Validates one 40-hex key.
    pub fn parse(key_type: KeyType, param: &'static str, value: &str) -> Result<Self, ContentKeyError> {
        if value.len() != 40 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ContentKeyError::Malformed { param, len: value.chars().count() });
        }
        Ok(Self { key_type, id: value.to_ascii_lowercase() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const HEX: &str = "0123456789ABCDEF0123456789abcdef01234567";

    #[test]
    fn accepts_each_parameter_once() {
        let k = ContentKey::from_query(&q(&[("id", HEX)])).unwrap();
        assert_eq!(k.key_type, KeyType::ContentId);
        assert_eq!(k.id, HEX.to_ascii_lowercase());
        assert_eq!(ContentKey::from_query(&q(&[("content_id", HEX)])).unwrap(), k);
        let ih = ContentKey::from_query(&q(&[("infohash", HEX)])).unwrap();
        assert_eq!(ih.key_type, KeyType::Infohash);
    }

    #[test]
    fn refuses_missing_ambiguous_and_malformed() {
        assert_eq!(ContentKey::from_query(&q(&[])), Err(ContentKeyError::Missing));
        assert!(matches!(
            ContentKey::from_query(&q(&[("id", HEX), ("infohash", HEX)])),
            Err(ContentKeyError::Ambiguous(_))
        ));
        assert_eq!(
            ContentKey::from_query(&q(&[("id", HEX), ("id", HEX)])),
            Err(ContentKeyError::Ambiguous("`id`, `id`".into()))
        );
        assert!(matches!(
            ContentKey::from_query(&q(&[("id", "abc")])),
            Err(ContentKeyError::Malformed { param: "id", len: 3 })
        ));
        let not_hex = "g".repeat(40);
        assert!(ContentKey::from_query(&q(&[("id", &not_hex)])).is_err());
    }

    proptest::proptest! {
        /// Any query (keys near the real ones, any values) either names one
        /// valid key or is refused; it never panics.
        #[test]
        fn any_query_gives_one_valid_key_or_an_error(
            pairs in proptest::collection::vec(
                (proptest::sample::select(vec!["id", "content_id", "infohash", "ID", "x"]), "[0-9a-fA-F]{40}|.{0,50}"),
                0..4,
            ),
        ) {
            let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let named = pairs.iter().filter(|(k, _)| ["id", "content_id", "infohash"].contains(&k.as_str())).count();
            match ContentKey::from_query(&pairs) {
                Ok(key) => {
                    proptest::prop_assert_eq!(named, 1);
                    proptest::prop_assert!(key.id.len() == 40 && key.id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                }
                Err(ContentKeyError::Missing) => proptest::prop_assert_eq!(named, 0),
                Err(ContentKeyError::Ambiguous(_)) => proptest::prop_assert!(named > 1),
                Err(ContentKeyError::Malformed { .. }) => proptest::prop_assert_eq!(named, 1),
            }
        }
    }
}
