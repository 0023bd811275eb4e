//! The content a player asks for, and how the engine is to send it.
//!
//! Engines name content by content id (`id`, `content_id`), infohash, a
//! transport file's URL (`url`), a magnet link (`magnet`) or `direct_url`;
//! parameters such as `transcode_audio` change what the engine sends. A
//! [`ContentKey`] is all of that, validated: the identity of a stream
//! session. Two requests share a session when their keys are equal, so a
//! player asking for transcoded audio never shares the plain stream, while
//! per-player parameters (`pid`, `sid`, `format`, `_`, `callback`) never
//! split one. Ids are normalised to lower case so that two spellings of one
//! content reach one session.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// How the engine is asked for the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    ContentId,
    Infohash,
    /// A transport file (`.acelive`, `.torrent`) by URL.
    Url,
    /// A magnet link.
    Magnet,
    /// A direct URL some front ends send.
    DirectUrl,
    /// A channel of acemux's list with several ids (alternates): the key
    /// of the one session that plays whichever of them works. Never sent
    /// to an engine: the session asks engines for the id it plays.
    Channel,
}

impl KeyType {
    /// The engine's query parameter for this key type.
    pub fn engine_param(self) -> &'static str {
        match self {
            KeyType::ContentId => "content_id",
            KeyType::Infohash => "infohash",
            KeyType::Url => "url",
            KeyType::Magnet => "magnet",
            KeyType::DirectUrl => "direct_url",
            KeyType::Channel => "channel",
        }
    }
}

/// Parameters that change what the engine sends: passed to the engine and
/// part of the key.
pub const OUTPUT_PARAMS: &[&str] = &[
    "transcode_audio",
    "transcode_mp3",
    "transcode_ac3",
    "preferred_audio_language",
    "file_indexes",
    "_idx",
    "quality",
    "start_from",
];

/// Longest name (URL, magnet) and longest output parameter value accepted.
pub const MAX_NAME: usize = 2048;
pub const MAX_OUTPUT_VALUE: usize = 64;

/// A validated content key; the identity of a stream session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ContentKey {
    pub key_type: KeyType,
    /// 40 lower-case hex characters: the content id or infohash; for a
    /// content named otherwise (a URL, a magnet) or asked for with output
    /// parameters, acemux's id of the whole key (what its URLs, status and
    /// metrics name it by).
    pub id: String,
    /// What the engine is asked for, when `id` is not it: the URL or
    /// magnet as given, or the content id or infohash of a key with output
    /// parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Arc<str>>,
    /// Output parameters, sorted by name.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub output: Arc<[(String, String)]>,
}

impl fmt::Display for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Why a request does not name a content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentKeyError {
    #[error(
        "missing content: give one of `id`, `content_id`, `infohash`, `url`, `magnet`, `direct_url` or `channel`"
    )]
    Missing,
    #[error(
        "give exactly one of `id`, `content_id`, `infohash`, `url`, `magnet`, `direct_url` or `channel` (got {0})"
    )]
    Ambiguous(String),
    #[error("`{param}` must be 40 hexadecimal characters (got {len} characters)")]
    Malformed { param: &'static str, len: usize },
    #[error("`{param}`: {why}")]
    Invalid { param: &'static str, why: String },
}

/// The parameters that name content, in the engine's order of precedence.
const NAMES: &[(&str, KeyType)] = &[
    ("id", KeyType::ContentId),
    ("content_id", KeyType::ContentId),
    ("infohash", KeyType::Infohash),
    ("url", KeyType::Url),
    ("magnet", KeyType::Magnet),
    ("direct_url", KeyType::DirectUrl),
    ("channel", KeyType::Channel),
];

impl ContentKey {
    /// A content id or infohash key without output parameters (`id`
    /// already validated, lower case).
    pub fn new(key_type: KeyType, id: impl Into<String>) -> Self {
        Self { key_type, id: id.into(), name: None, output: Arc::from([]) }
    }

    /// Reads the key from a `getstream` query's parameters: exactly one
    /// name of the content, given once (a repeated parameter is as
    /// ambiguous as two different ones: which value a proxy or player
    /// would use differs), and the output parameters. Other parameters
    /// neither reach the engine nor split a session.
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ContentKeyError> {
        let given: Vec<(&'static str, KeyType, &String)> = query
            .iter()
            .filter_map(|(k, v)| NAMES.iter().find(|(p, _)| p == k).map(|(p, t)| (*p, *t, v)))
            .collect();
        let (param, key_type, value) = match given.as_slice() {
            [] => return Err(ContentKeyError::Missing),
            [one] => *one,
            many => {
                return Err(ContentKeyError::Ambiguous(
                    many.iter().map(|(p, _, _)| format!("`{p}`")).collect::<Vec<_>>().join(", "),
                ));
            }
        };
        let mut output: Vec<(String, String)> = Vec::new();
        for (k, v) in query {
            let Some(name) = OUTPUT_PARAMS.iter().find(|p| *p == k) else { continue };
            if output.iter().any(|(o, _)| o == name) {
                return Err(ContentKeyError::Ambiguous(format!("`{name}`, `{name}`")));
            }
            let printable = v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.,:".contains(&b));
            if v.len() > MAX_OUTPUT_VALUE || !printable {
                return Err(ContentKeyError::Invalid {
                    param: name,
                    why: format!("at most {MAX_OUTPUT_VALUE} letters, digits or `-_.,:`"),
                });
            }
            output.push(((*name).to_owned(), v.clone()));
        }
        output.sort();
        if key_type == KeyType::Channel && !output.is_empty() {
            return Err(ContentKeyError::Invalid {
                param: "channel",
                why: "a channel plays its ids as they are: no output parameters".into(),
            });
        }
        let base = match key_type {
            KeyType::ContentId | KeyType::Infohash | KeyType::Channel => Self::parse(key_type, param, value)?,
            KeyType::Url | KeyType::DirectUrl => Self::named(key_type, url(param, value)?),
            KeyType::Magnet => Self::named(key_type, magnet(value)?),
        };
        Ok(base.with_output(output))
    }

    /// Validates one 40-hex key.
    pub fn parse(key_type: KeyType, param: &'static str, value: &str) -> Result<Self, ContentKeyError> {
        if value.len() != 40 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ContentKeyError::Malformed { param, len: value.chars().count() });
        }
        Ok(Self::new(key_type, value.to_ascii_lowercase()))
    }

    /// A content named by URL or magnet: its id is derived from the name.
    fn named(key_type: KeyType, name: &str) -> Self {
        Self {
            key_type,
            id: derived_id(key_type, name, &[]),
            name: Some(Arc::from(name)),
            output: Arc::from([]),
        }
    }

    /// This content with `output` parameters: a key of its own.
    fn with_output(self, output: Vec<(String, String)>) -> Self {
        if output.is_empty() {
            return self;
        }
        let name = self.name.clone().unwrap_or_else(|| Arc::from(self.id.as_str()));
        Self {
            id: derived_id(self.key_type, &name, &output),
            name: Some(name),
            output: Arc::from(output),
            ..self
        }
    }

    /// The key of the channel known as `identity` (see
    /// [`crate::channels::Channel::identity`]): the same for the same
    /// identity, in every process and after every restart, so a player's
    /// saved URL keeps naming the channel whatever ids it has by then.
    pub fn channel(identity: &str) -> Self {
        Self::new(KeyType::Channel, derived_id(KeyType::Channel, identity, &[]))
    }

    /// The same content and output named by its infohash (what an engine
    /// revealed), so requests by infohash join this key's session.
    pub fn with_infohash(&self, infohash: &str) -> Self {
        Self::new(KeyType::Infohash, infohash.to_ascii_lowercase()).with_output(self.output.to_vec())
    }

    /// What the engine is asked with: the name and the output parameters.
    pub fn engine_query(&self) -> Vec<(&'static str, &str)> {
        let mut query = vec![(self.key_type.engine_param(), self.name.as_deref().unwrap_or(&self.id))];
        for (k, v) in self.output.iter() {
            if let Some(name) = OUTPUT_PARAMS.iter().find(|p| *p == k) {
                query.push((name, v));
            }
        }
        query
    }

    /// Whether this is a plain content id or infohash (no other name, no
    /// output parameters): the keys whose id is the content's own.
    pub fn is_plain(&self) -> bool {
        self.name.is_none()
    }
}

/// acemux's 40-hex id of a key that is not a plain id.
fn derived_id(key_type: KeyType, name: &str, output: &[(String, String)]) -> String {
    let mut hash = Sha256::new();
    hash.update(key_type.engine_param());
    hash.update([0]);
    hash.update(name);
    for (k, v) in output {
        hash.update([0]);
        hash.update(k);
        hash.update([b'=']);
        hash.update(v);
    }
    hash.finalize()[..20].iter().map(|b| format!("{b:02x}")).collect()
}

/// An http(s) URL of printable ASCII, at most [`MAX_NAME`] bytes.
fn url<'a>(param: &'static str, value: &'a str) -> Result<&'a str, ContentKeyError> {
    let invalid = |why: &str| ContentKeyError::Invalid { param, why: why.to_owned() };
    if value.len() > MAX_NAME {
        return Err(invalid(&format!("longer than {MAX_NAME} bytes")));
    }
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(invalid("must be an http:// or https:// URL"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) || value.len() <= "https://".len() {
        return Err(invalid("must be an http:// or https:// URL without spaces or control characters"));
    }
    Ok(value)
}

/// A magnet link with a BitTorrent info hash (`xt=urn:btih:` and 40 hex
/// or 32 base32 characters), at most [`MAX_NAME`] bytes.
fn magnet(value: &str) -> Result<&str, ContentKeyError> {
    let invalid = |why: &str| ContentKeyError::Invalid { param: "magnet", why: why.to_owned() };
    if value.len() > MAX_NAME {
        return Err(invalid(&format!("longer than {MAX_NAME} bytes")));
    }
    let query = value.strip_prefix("magnet:?").ok_or_else(|| invalid("must start with `magnet:?`"))?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("must not contain spaces or control characters"));
    }
    let btih = query.split('&').filter_map(|p| p.strip_prefix("xt=urn:btih:")).next();
    let valid = btih.is_some_and(|h| {
        (h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            || (h.len() == 32 && h.bytes().all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b)))
    });
    if !valid {
        return Err(invalid("needs `xt=urn:btih:` with a 40-hex or 32-base32 info hash"));
    }
    Ok(value)
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

    #[test]
    fn urls_and_magnets_name_content_and_are_checked() {
        let url = ContentKey::from_query(&q(&[("url", "http://lists.example/x.acelive")])).unwrap();
        assert_eq!(
            (url.key_type, url.id.len(), url.name.as_deref()),
            (KeyType::Url, 40, Some("http://lists.example/x.acelive"))
        );
        assert_eq!(url.engine_query(), [("url", "http://lists.example/x.acelive")]);
        let magnet = format!("magnet:?xt=urn:btih:{HEX}&dn=x");
        let m = ContentKey::from_query(&q(&[("magnet", &magnet)])).unwrap();
        assert_eq!(m.key_type, KeyType::Magnet);
        assert_ne!(m.id, url.id);
        let base32 = "magnet:?xt=urn:btih:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        assert!(ContentKey::from_query(&q(&[("magnet", base32)])).is_ok());
        for (param, bad) in [
            ("url", "ftp://x/y"),
            ("url", "http://a b"),
            ("url", "http://"),
            ("magnet", "magnet:?dn=nohash"),
            ("magnet", "magnet:?xt=urn:btih:abc"),
            ("magnet", "http://x"),
        ] {
            assert!(
                matches!(ContentKey::from_query(&q(&[(param, bad)])), Err(ContentKeyError::Invalid { .. })),
                "{bad}"
            );
        }
        let long = format!("http://x/{}", "a".repeat(MAX_NAME));
        assert!(ContentKey::from_query(&q(&[("url", &long)])).is_err());
        assert!(matches!(
            ContentKey::from_query(&q(&[("url", "http://x/y"), ("id", HEX)])),
            Err(ContentKeyError::Ambiguous(_))
        ));
    }

    #[test]
    fn output_parameters_make_a_key_of_their_own_and_player_ones_do_not() {
        let plain =
            ContentKey::from_query(&q(&[("id", HEX), ("pid", "1"), ("format", "json"), ("_", "9")])).unwrap();
        assert_eq!(plain, ContentKey::from_query(&q(&[("id", HEX), ("pid", "2"), ("sid", "x")])).unwrap());
        assert!(plain.is_plain() && plain.id == HEX.to_ascii_lowercase());
        let audio = ContentKey::from_query(&q(&[("id", HEX), ("transcode_audio", "1")])).unwrap();
        assert_ne!(audio, plain);
        assert_ne!(audio.id, plain.id);
        assert_eq!(audio.engine_query(), [("content_id", plain.id.as_str()), ("transcode_audio", "1")]);
        // The order they come in does not matter.
        let a = ContentKey::from_query(&q(&[("id", HEX), ("transcode_mp3", "1"), ("_idx", "0")])).unwrap();
        let b = ContentKey::from_query(&q(&[("_idx", "0"), ("transcode_mp3", "1"), ("id", HEX)])).unwrap();
        assert_eq!(a, b);
        // Its infohash name keeps the output.
        let ih = "ab".repeat(20);
        assert_eq!(
            audio.with_infohash(&ih),
            ContentKey::from_query(&q(&[("infohash", &ih), ("transcode_audio", "1")])).unwrap()
        );
        assert_eq!(plain.with_infohash(&ih), ContentKey::new(KeyType::Infohash, ih.clone()));
        assert!(ContentKey::from_query(&q(&[("id", HEX), ("quality", "a b")])).is_err());
        assert!(ContentKey::from_query(&q(&[("id", HEX), ("quality", "1"), ("quality", "2")])).is_err());
    }

    proptest::proptest! {
        /// Any query naming content in any way, with any output parameters,
        /// gives a key whose id is 40 lower-case hex, or an error; never a
        /// panic.
        #[test]
        fn any_name_and_parameters_give_a_key_or_an_error(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["url", "magnet", "direct_url", "infohash", "transcode_audio", "_idx", "pid", "quality"]),
                    "(https?://|magnet:\\?xt=urn:btih:)?[ -~]{0,60}|[0-9a-f]{40}",
                ),
                0..5,
            ),
        ) {
            let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Ok(key) = ContentKey::from_query(&pairs) {
                proptest::prop_assert!(key.id.len() == 40 && key.id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                let query = key.engine_query();
                proptest::prop_assert!(query[0].1.len() <= MAX_NAME);
                proptest::prop_assert!(query.iter().all(|(k, _)| *k != "pid"));
            }
        }

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
                Err(ContentKeyError::Invalid { .. }) => proptest::prop_assert!(false, "no output parameter given"),
            }
        }
    }
}
