//! Channel numbers that stay put. Plex, Jellyfin and HDHomeRun clients map
//! the guide and their favourites by number, so a channel keeps its number
//! across refreshes, across a source reordering its list, and across
//! restarts (the map is written to the state directory); a channel that
//! leaves and comes back gets its old number again.
//!
//! A channel that has no number yet takes, in order: the number its
//! `[[channels]]` table pins, the source's `tvg-chno` if free, else one
//! above the highest number ever given. Numbers of channels no longer
//! listed are not handed to others (until the map outgrows its bound).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::ContentKey;

/// The file in the state directory.
pub const FILE_NAME: &str = "channel-numbers.json";
/// Numbers remembered at most; past it, those of channels not listed now
/// are forgotten.
const MAX_REMEMBERED: usize = 100_000;
/// Highest number given (HDHomeRun clients take up to five digits).
const MAX_NUMBER: u32 = 99_999;

/// What a channel asks for.
pub struct Wanted<'a> {
    pub key: &'a ContentKey,
    /// Pinned by the operator: always this number.
    pub pinned: Option<u32>,
    /// Suggested by the source (`tvg-chno`).
    pub suggested: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    numbers: HashMap<String, u32>,
}

/// Numbers given so far.
#[derive(Debug, Default)]
pub struct Numbers {
    given: HashMap<String, u32>,
    /// Where they are kept, if anywhere.
    path: Option<PathBuf>,
}

fn identity(key: &ContentKey) -> String {
    format!("{}:{}", key.key_type.engine_param(), key.id)
}

impl Numbers {
    /// The numbers kept in `dir` (none yet if the file is missing). A file
    /// that cannot be read is moved aside (`….broken`) with a warning, so
    /// nothing is lost and acemux still starts. Blocking: call it off the
    /// runtime threads.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let Some(dir) = dir else { return Ok(Self::default()) };
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the state directory {} (--state-dir / ACEMUX_STATE_DIR): {e}",
                dir.display()
            )
        })?;
        let path = dir.join(FILE_NAME);
        let given = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StateFile>(&bytes) {
                Ok(file) => file.numbers.into_iter().filter(|(_, n)| (1..=MAX_NUMBER).contains(n)).collect(),
                Err(e) => {
                    let aside = path.with_extension("json.broken");
                    tracing::warn!(file = %path.display(), error = %e, aside = %aside.display(), "channel numbers unreadable, starting afresh");
                    let _ = std::fs::rename(&path, &aside);
                    HashMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        Ok(Self { given, path: Some(path) })
    }

    /// Numbers for `channels`, in their order; whether any number was
    /// given that was not before (then the map is worth writing).
    pub fn assign(&mut self, channels: &[Wanted<'_>]) -> (Vec<u32>, bool) {
        let mut taken: HashSet<u32> = HashSet::new();
        let mut out = vec![0u32; channels.len()];
        let mut changed = false;
        // Pinned numbers first, then numbers given before, then the rest.
        for (i, c) in channels.iter().enumerate() {
            if let Some(n) = c.pinned.filter(|n| taken.insert(*n)) {
                out[i] = n;
            }
        }
        for (i, c) in channels.iter().enumerate() {
            if out[i] == 0
                && let Some(&n) = self.given.get(&identity(c.key))
                && taken.insert(n)
            {
                out[i] = n;
            }
        }
        // Numbers some channel had, listed now or not: not suggested to another.
        let remembered: HashSet<u32> = self.given.values().copied().collect();
        let mut next = remembered.iter().chain(taken.iter()).copied().max().unwrap_or(0) + 1;
        for (i, c) in channels.iter().enumerate() {
            if out[i] != 0 {
                continue;
            }
            let suggested = c
                .suggested
                .filter(|n| (1..=MAX_NUMBER).contains(n) && !taken.contains(n) && !remembered.contains(n));
            let n = match suggested {
                Some(n) => n,
                None => {
                    while taken.contains(&next) {
                        next += 1;
                    }
                    next.min(MAX_NUMBER)
                }
            };
            taken.insert(n);
            out[i] = n;
        }
        for (c, n) in channels.iter().zip(&out) {
            if self.given.insert(identity(c.key), *n) != Some(*n) {
                changed = true;
            }
        }
        if self.given.len() > MAX_REMEMBERED {
            let listed: HashSet<String> = channels.iter().map(|c| identity(c.key)).collect();
            self.given.retain(|k, _| listed.contains(k));
        }
        (out, changed)
    }

    /// The map as its file holds it, and where to write it.
    pub fn to_write(&self) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.path.clone()?;
        let file = StateFile { version: 1, numbers: self.given.clone() };
        Some((path, serde_json::to_vec_pretty(&file).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::KeyType;

    fn key(n: u8) -> ContentKey {
        ContentKey::new(KeyType::ContentId, format!("{n:02x}{}", "0".repeat(38)))
    }

    fn wanted(keys: &[ContentKey]) -> Vec<Wanted<'_>> {
        keys.iter().map(|key| Wanted { key, pinned: None, suggested: None }).collect()
    }

    #[test]
    fn a_channel_keeps_its_number_when_the_list_changes_and_gets_it_back() {
        let mut numbers = Numbers::default();
        let (a, b, c) = (key(1), key(2), key(3));
        assert_eq!(numbers.assign(&wanted(&[a.clone(), b.clone()])).0, [1, 2]);
        // Reordered, one gone, one new: the new one does not take 1 or 2.
        assert_eq!(numbers.assign(&wanted(&[c.clone(), b.clone()])).0, [3, 2]);
        let (got, changed) = numbers.assign(&wanted(&[a.clone(), b.clone(), c.clone()]));
        assert_eq!((got, changed), (vec![1, 2, 3], false));
    }

    #[test]
    fn pinned_first_then_suggested_when_free() {
        let mut numbers = Numbers::default();
        let keys = [key(1), key(2), key(3)];
        let list = vec![
            Wanted { key: &keys[0], pinned: None, suggested: Some(7) },
            Wanted { key: &keys[1], pinned: Some(7), suggested: None },
            Wanted { key: &keys[2], pinned: None, suggested: Some(500) },
        ];
        assert_eq!(numbers.assign(&list).0, [8, 7, 500]);
    }

    #[test]
    fn numbers_survive_a_restart_and_a_broken_file_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("acemux-numbers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = [key(1), key(2)];
        let mut numbers = Numbers::load(Some(&dir)).unwrap();
        numbers.assign(&wanted(&keys));
        let (path, bytes) = numbers.to_write().unwrap();
        crate::channels::write_whole(&path, &bytes).unwrap();
        let mut again = Numbers::load(Some(&dir)).unwrap();
        assert_eq!(again.assign(&wanted(&[keys[1].clone()])).0, [2]);
        std::fs::write(&path, b"{not json").unwrap();
        let mut fresh = Numbers::load(Some(&dir)).unwrap();
        assert_eq!(fresh.assign(&wanted(&[keys[1].clone()])).0, [1]);
        assert!(dir.join("channel-numbers.json.broken").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
