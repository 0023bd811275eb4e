//! A users file (`--users-file`): `[[users]]` tables in a file of their
//! own, which the operator (or a script) edits while acemux runs. It is
//! read at start (a bad file stops acemux, naming the setting) and again
//! whenever it changes (checked every [`CHECK_EVERY`]): a bad file then
//! keeps the last good users and is shown in status and the log.
//!
//! A user whose token and name stay keeps its players and counts (its
//! limits and groups follow the file); a user removed, or given another
//! token, loses its players at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::Access;
use super::users::{User, users_from_file};

/// How often the file's size and modification time are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Largest users file read.
const MAX_BYTES: u64 = 4 << 20;

/// What tells one version of the file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// The stamp of `path` now.
pub fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp { modified: meta.modified().ok(), len: meta.len() })
}

/// The users of the file at `path`. Blocking.
pub fn read(path: &Path) -> anyhow::Result<Vec<User>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES + 1), &mut text)
        .with_context(|| format!("cannot read {} (UTF-8 text)", path.display()))?;
    if text.len() as u64 > MAX_BYTES {
        anyhow::bail!("{} is larger than {} MiB", path.display(), MAX_BYTES >> 20);
    }
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    if let Some(key) = table.keys().find(|k| *k != "users") {
        anyhow::bail!("{}: unknown key `{key}` (a users file holds only [[users]] tables)", path.display());
    }
    match table.get("users") {
        Some(value) => users_from_file(value).with_context(|| path.display().to_string()),
        None => Ok(Vec::new()),
    }
}

/// Re-reads the users file of `access` whenever it changes, until `stop`.
pub async fn watch(access: Arc<Access>, path: PathBuf, stop: CancellationToken) {
    let path = Arc::new(path);
    let mut last = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || stamp(&path).ok()).await.ok().flatten()
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        let path = path.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let seen = stamp(&path).ok();
            (seen != last).then(|| (seen, read(&path)))
        });
        match checked.await {
            Ok(None) => {}
            Ok(Some((seen, read))) => {
                last = seen;
                match read {
                    Ok(users) => access.replace_file_users(users),
                    Err(e) => access.file_failed(format!("{e:#}")),
                }
            }
            Err(e) => access.file_failed(format!("the read failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_file_holds_users_only_and_its_mistakes_are_named() {
        let dir = std::env::temp_dir().join(format!("acemux-users-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.toml");
        std::fs::write(&path, "[[users]]\nname = \"ann\"\ntoken = \"open-sesame-1\"\nmax_streams = 2\n")
            .unwrap();
        let users = read(&path).unwrap();
        assert_eq!((users[0].name.as_str(), users[0].tally.limits().max_streams), ("ann", Some(2)));
        std::fs::write(&path, "").unwrap();
        assert!(read(&path).unwrap().is_empty(), "an empty file: no users");
        for (text, why) in [
            ("player_access = \"open\"\n", "unknown key `player_access`"),
            ("[[users]]\nname = \"ann\"\n", "exactly one of `token`"),
            ("[[users", "not TOML"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", read(&path).unwrap_err());
            assert!(err.contains(why) && err.contains("users.toml"), "{text}: {err}");
        }
        std::fs::write(&path, vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
        assert!(format!("{:#}", read(&path).unwrap_err()).contains("larger than"));
        assert!(format!("{:#}", read(&dir.join("none.toml")).unwrap_err()).contains("cannot open"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
