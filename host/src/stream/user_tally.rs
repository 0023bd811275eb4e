//! One user's players and streams, counted across every stream, against
//! the user's `max_players` and `max_streams` (see `crate::access`).
//!
//! The registry checks and counts under its own lock, so two players of
//! one user arriving at once cannot both take its last place. A stream
//! counts while the user has a player in it: a user who zaps away leaves
//! the old stream to its grace period and may start the next at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// How much one user may hold at once; none = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// Players (TS players and HLS viewers, over all streams).
    pub max_players: Option<usize>,
    /// Streams (contents or channels) with at least one of its players.
    pub max_streams: Option<usize>,
}

impl UserLimits {
    /// The tighter of each limit of the two.
    pub fn tightest(self, other: UserLimits) -> UserLimits {
        let min = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        UserLimits {
            max_players: min(self.max_players, other.max_players),
            max_streams: min(self.max_streams, other.max_streams),
        }
    }
}

/// A new player's user, and limits tighter than the user's own that hold
/// for this player (an access plugin's).
#[derive(Debug, Clone)]
pub struct UserPlayer {
    pub tally: Arc<UserTally>,
    pub tighter: UserLimits,
}

#[derive(Debug, Default)]
struct Held {
    limits: UserLimits,
    players: usize,
    /// Session id → the user's players in it.
    per_session: HashMap<u64, usize>,
}

/// See the module docs.
#[derive(Debug)]
pub struct UserTally {
    pub name: Arc<str>,
    held: Mutex<Held>,
    /// The user was removed or its token changed: its players end, and no
    /// new one is counted here.
    revoked: AtomicBool,
}

impl UserTally {
    pub fn new(name: &str, limits: UserLimits) -> Self {
        Self {
            name: Arc::from(name),
            held: Mutex::new(Held { limits, ..Held::default() }),
            revoked: AtomicBool::new(false),
        }
    }

    /// Ends the user's players (each at its next chunk) and refuses new ones.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    /// The user's players now.
    pub fn players(&self) -> usize {
        self.held.lock().players
    }

    /// The streams the user has players in now.
    pub fn streams(&self) -> usize {
        self.held.lock().per_session.len()
    }

    pub fn limits(&self) -> UserLimits {
        self.held.lock().limits
    }

    /// New limits (the users file changed): players over a lowered limit
    /// keep playing; the next one is refused.
    pub fn set_limits(&self, limits: UserLimits) {
        self.held.lock().limits = limits;
    }

    /// Why one more player in session `session` (a new session: `None`)
    /// would be over the user's limits, or `tighter` ones.
    pub(super) fn refusal(&self, session: Option<u64>, tighter: UserLimits) -> Option<String> {
        if self.is_revoked() {
            return Some(format!("{}'s access was withdrawn", self.name));
        }
        let held = self.held.lock();
        let limits = held.limits.tightest(tighter);
        if let Some(max) = limits.max_players
            && held.players >= max
        {
            return Some(format!("{} has {} players, the most allowed", self.name, held.players));
        }
        let new_stream = session.is_none_or(|id| !held.per_session.contains_key(&id));
        if let Some(max) = limits.max_streams
            && new_stream
            && held.per_session.len() >= max
        {
            return Some(format!(
                "{} plays {} streams, the most allowed; a stream it plays can still be joined",
                self.name,
                held.per_session.len()
            ));
        }
        None
    }

    pub(super) fn add(&self, session: u64) {
        let mut held = self.held.lock();
        held.players += 1;
        *held.per_session.entry(session).or_default() += 1;
    }

    pub(super) fn remove(&self, session: u64) {
        let mut held = self.held.lock();
        held.players = held.players.saturating_sub(1);
        if let Some(n) = held.per_session.get_mut(&session) {
            *n -= 1;
            if *n == 0 {
                held.per_session.remove(&session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_and_streams_are_limited_apart() {
        let tally = UserTally::new("ann", UserLimits { max_players: Some(3), max_streams: Some(1) });
        assert_eq!(tally.refusal(None, UserLimits::default()), None);
        tally.add(7);
        assert!(tally.refusal(None, UserLimits::default()).unwrap().contains("plays 1 streams"));
        assert_eq!(tally.refusal(Some(7), UserLimits::default()), None, "its own stream can be joined");
        tally.add(7);
        tally.add(7);
        assert!(tally.refusal(Some(7), UserLimits::default()).unwrap().contains("3 players"));
        tally.remove(7);
        tally.remove(7);
        tally.remove(7);
        assert_eq!((tally.players(), tally.streams()), (0, 0));
        assert_eq!(tally.refusal(Some(8), UserLimits::default()), None);
        let one = UserLimits { max_players: Some(1), max_streams: None };
        tally.add(8);
        assert!(tally.refusal(Some(8), one).unwrap().contains("1 players"), "a tighter limit holds");
        let looser = UserLimits { max_players: Some(9), max_streams: Some(9) };
        assert!(tally.refusal(None, looser).is_some(), "a looser one changes nothing");
    }
}
