//! The operator's `[[users]]`: a name (shown in status and metrics), a
//! token (never shown), given as is or as its SHA-256, and how many
//! players the user may have at once.
//!
//! ```toml
//! [[users]]
//! name = "grandma"
//! token = "a-long-random-string"
//! max_players = 2                      # players at once, over all streams
//! max_streams = 1                      # streams (contents) at once
//! groups = ["News", "Kids"]            # sees and plays only these
//! [[users]]
//! name = "tom"
//! token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::stream::{UserLimits, UserTally};

/// Users listed at most.
pub const MAX_USERS: usize = 1000;
/// Shortest token accepted (a guessable token is no lock).
pub const MIN_TOKEN: usize = 12;
/// Longest token (and name) accepted.
pub const MAX_TOKEN: usize = 256;

/// One user. `Debug` shows the name only.
#[derive(Clone)]
pub struct User {
    pub name: String,
    token_sha256: [u8; 32],
    /// Its players and streams now, and how many it may have
    /// (`max_players`, `max_streams`).
    pub tally: Arc<UserTally>,
    /// The channel groups it sees and plays (`groups`); none = all.
    pub groups: Option<Arc<[String]>>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User").field("name", &self.name).finish_non_exhaustive()
    }
}

impl User {
    /// Whether `token` is this user's, in constant time (over digests, so
    /// neither the token nor its length leaks through timing).
    pub fn holds(&self, token: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(given.ct_eq(&self.token_sha256))
    }

    /// Whether `other` has this user's token.
    pub fn same_token(&self, other: &User) -> bool {
        bool::from(other.token_sha256.ct_eq(&self.token_sha256))
    }
}

/// File keys of a `[[users]]` table.
const USER_KEYS: &[&str] = &["name", "token", "token_sha256", "max_players", "max_streams", "groups"];

/// Groups one user may be given at most.
const MAX_GROUPS: usize = 100;

/// The file's `[[users]]`.
pub fn users_from_file(value: &toml::Value) -> anyhow::Result<Vec<User>> {
    crate::values::named_tables(value, "users", MAX_USERS, user_from_table, |u| &u.name)
}

fn user_from_table(value: &toml::Value) -> Result<User, String> {
    let table = value.as_table().ok_or("not a table")?;
    if let Some(k) = table.keys().find(|k| !USER_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` (known: {})", USER_KEYS.join(", ")));
    }
    let text = |k: &str| match table.get(k) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{k}` must be a string (got {})", other.type_str())),
    };
    let name = text("name")?.ok_or("`name` is required")?;
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if name.is_empty() || name.len() > 64 || !printable(&name) {
        return Err("`name` must be 1 to 64 printable characters without spaces".into());
    }
    let token_sha256 = match (text("token")?, text("token_sha256")?) {
        (Some(token), None) => {
            if token.len() < MIN_TOKEN || token.len() > MAX_TOKEN || !printable(&token) || token.contains('/')
            {
                return Err(format!(
                    "{name}: `token` must be {MIN_TOKEN} to {MAX_TOKEN} printable characters, without spaces or `/`"
                ));
            }
            Sha256::digest(token.as_bytes()).into()
        }
        (None, Some(hex)) => {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect();
            bytes
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("{name}: `token_sha256` must be 64 hexadecimal characters"))?
        }
        _ => return Err(format!("{name}: give exactly one of `token` and `token_sha256`")),
    };
    let limit = |key: &str| match table.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if (1..=10_000).contains(n) => Ok(Some(*n as usize)),
        Some(other) => Err(format!("{name}: `{key}` must be a whole number from 1 to 10000 (got {other})")),
    };
    let limits = UserLimits { max_players: limit("max_players")?, max_streams: limit("max_streams")? };
    let groups = match table.get("groups") {
        None => None,
        Some(toml::Value::Array(list)) if list.len() <= MAX_GROUPS => {
            let names: Option<Vec<String>> = list.iter().map(|g| g.as_str().map(str::to_owned)).collect();
            Some(Arc::from(names.ok_or_else(|| format!("{name}: `groups` must be a list of group names"))?))
        }
        Some(_) => {
            return Err(format!("{name}: `groups` must be a list of at most {MAX_GROUPS} group names"));
        }
    };
    let tally = Arc::new(UserTally::new(&name, limits));
    Ok(User { name, token_sha256, tally, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<User>, String> {
        let value: toml::Value = toml::from_str(text).unwrap();
        users_from_file(&value["users"]).map_err(|e| e.to_string())
    }

    #[test]
    fn a_token_or_its_digest_and_every_mistake_named() {
        let users = read(
            "[[users]]\nname = \"a\"\ntoken = \"open-sesame-1\"\n[[users]]\nname = \"b\"\n\
             token_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n",
        )
        .unwrap();
        assert!(users[0].holds("open-sesame-1") && !users[0].holds("open-sesame-2") && !users[0].holds(""));
        assert!(users[1].holds("test"), "the digest of `test`");
        assert!(!format!("{users:?}").contains("sesame"));
        for (text, why) in [
            ("[[users]]\nname = \"a\"\n", "exactly one of `token` and `token_sha256`"),
            ("[[users]]\nname = \"a\"\ntoken = \"short\"\n", "12 to 256"),
            ("[[users]]\nname = \"a\"\ntoken = \"with/slash/inside\"\n", "without spaces or `/`"),
            ("[[users]]\nname = \"a\"\ntoken_sha256 = \"abc\"\n", "64 hexadecimal"),
            ("[[users]]\ntoken = \"open-sesame-1\"\n", "`name` is required"),
            ("[[users]]\nname = \"a\"\ntoken = \"open-sesame-1\"\npassword = 1\n", "unknown key `password`"),
            ("[[users]]\nname = \"a\"\ntoken = \"open-sesame-1\"\nmax_players = 0\n", "from 1 to 10000"),
            (
                "[[users]]\nname = \"a\"\ntoken = \"open-sesame-1\"\nmax_streams = \"2\"\n",
                "`max_streams` must be",
            ),
            ("[[users]]\nname = \"a\"\ntoken = \"open-sesame-1\"\ngroups = [1]\n", "list of group names"),
            (
                "[[users]]\nname = \"a\"\ntoken = \"open-sesame-1\"\n[[users]]\nname = \"a\"\ntoken = \"open-sesame-2\"\n",
                "used twice",
            ),
        ] {
            let err = read(text).unwrap_err();
            assert!(err.contains("`users` entry") && err.contains(why), "{text}: {err}");
        }
    }
}
