//! HLS viewers: players that hold no connection, present while they keep
//! fetching their playlist.
//!
//! Each viewer has a token (given out in its master playlist's media URL),
//! so two viewers behind one address stay apart. A viewer holds a
//! [`PlayerSlot`] like a TS player does, so the session counts it, and its
//! grace period starts only when the last TS player and the last HLS viewer
//! are gone. Segment URLs carry no token: they are the same for everyone,
//! so a cache in front can serve them to all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::stream::PlayerSlot;

/// What status shows of one viewer.
#[derive(Debug, Clone)]
pub struct ViewerStats {
    pub id: u64,
    pub client: Option<SocketAddr>,
    /// The user whose token it carried.
    pub user: Option<std::sync::Arc<str>>,
    pub since: Instant,
    pub last_seen: Instant,
    pub playlists: u64,
}

/// A viewer that left; its slot is released when this is dropped.
pub struct Departed {
    pub stats: ViewerStats,
    _slot: PlayerSlot,
}

struct Viewer {
    slot: PlayerSlot,
    stats: ViewerStats,
    /// Blocking playlist requests of this viewer now waiting.
    waiting: usize,
}

/// Blocking playlist requests one viewer may have waiting at once (a player
/// has one; a second covers one it gave up on that the server has not
/// noticed yet).
pub const MAX_WAITING_PER_VIEWER: usize = 2;

/// The viewers of one stream's HLS output.
#[derive(Default)]
pub struct Viewers {
    by_token: HashMap<String, Viewer>,
    /// No viewer may join any more: the output is shutting down.
    retired: bool,
    next_id: u64,
}

/// A fresh unguessable viewer token.
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Viewers {
    /// Adds a viewer holding `slot`; gives the slot back if the output is
    /// retired (the caller then starts a new one).
    pub fn add(
        &mut self,
        token: String,
        slot: PlayerSlot,
        client: Option<SocketAddr>,
    ) -> Result<ViewerStats, PlayerSlot> {
        if self.retired {
            return Err(slot);
        }
        self.next_id += 1;
        let now = Instant::now();
        let user = slot.user().cloned();
        let stats = ViewerStats { id: self.next_id, client, user, since: now, last_seen: now, playlists: 0 };
        self.by_token.insert(token, Viewer { slot, stats: stats.clone(), waiting: 0 });
        Ok(stats)
    }

    /// Marks the viewer with `token` present now; false if unknown.
    pub fn renew(&mut self, token: &str) -> bool {
        match self.by_token.get_mut(token) {
            Some(v) => {
                v.stats.last_seen = Instant::now();
                v.stats.playlists += 1;
                true
            }
            None => false,
        }
    }

    /// Counts a blocking request of the viewer with `token` as waiting;
    /// false if it has as many as it may (or is unknown).
    pub fn begin_wait(&mut self, token: &str) -> bool {
        match self.by_token.get_mut(token) {
            Some(v) if v.waiting < MAX_WAITING_PER_VIEWER => {
                v.waiting += 1;
                true
            }
            _ => false,
        }
    }

    /// A blocking request of the viewer with `token` stopped waiting.
    pub fn end_wait(&mut self, token: &str) {
        if let Some(v) = self.by_token.get_mut(token) {
            v.waiting = v.waiting.saturating_sub(1);
        }
    }

    /// Removes the viewers not seen for `timeout`.
    pub fn expire(&mut self, timeout: Duration) -> Vec<Departed> {
        let gone: Vec<String> = self
            .by_token
            .iter()
            .filter(|(_, v)| v.stats.last_seen.elapsed() >= timeout)
            .map(|(t, _)| t.clone())
            .collect();
        gone.iter().filter_map(|t| self.by_token.remove(t)).map(Viewer::depart).collect()
    }

    /// Refuses new viewers from now on if there is none; true if retired.
    pub fn retire_if_empty(&mut self) -> bool {
        self.retired |= self.by_token.is_empty();
        self.retired
    }

    /// Refuses new viewers and removes every one.
    pub fn retire(&mut self) -> Vec<Departed> {
        self.retired = true;
        self.by_token.drain().map(|(_, v)| v.depart()).collect()
    }

    pub fn is_retired(&self) -> bool {
        self.retired
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    pub fn stats(&self) -> Vec<ViewerStats> {
        let mut v: Vec<ViewerStats> = self.by_token.values().map(|v| v.stats.clone()).collect();
        v.sort_by_key(|s| s.id);
        v
    }
}

impl Viewer {
    fn depart(self) -> Departed {
        Departed { stats: self.stats, _slot: self.slot }
    }
}
