//! Who may watch: decided at the front door, before any stream starts.
//!
//! With `--player-access open` (the default) anyone who reaches acemux
//! may watch, as before. With `token`, every player request — streams,
//! HLS playlists and segments, playlists, the tuner lineup — carries one of
//! the `[[users]]` tokens: players cannot send headers, so it rides in the
//! URL, as `?token=` or as a path prefix `/t/<token>/…` (which relative
//! HLS URLs keep). A missing token is 401, a wrong one 403; an address
//! that sent [`AccessSettings::token_failures`] wrong or missing tokens in
//! a burst gets 429 with `Retry-After` until its allowance refills (one
//! more a minute per failure allowed), whatever it sends. Tokens are
//! compared in constant time and never logged or shown: status, events
//! and metrics name the user.

pub mod plugin_check;
pub mod settings;
pub mod users;
pub mod users_file;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use serde::Serialize;

pub use settings::{AccessSettings, OnPluginFailure, PlayerAccess};
pub use users::User;

/// Addresses held as limited at most (the oldest are forgotten first).
const MAX_LIMITED: usize = 100_000;

/// Why a player request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error(
        "this acemux needs a user's token: add `?token=<token>` to the URL, or put `/t/<token>` before its path"
    )]
    Missing,
    #[error("unknown token")]
    Wrong,
    #[error("too many wrong tokens from this address; try again in {} s", .0.as_secs().max(1))]
    Limited(Duration),
}

/// Who a request is.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The user whose token it carries (none in open mode without one).
    pub user: Option<Arc<User>>,
    /// The token as the request carried it, for the URLs acemux gives back
    /// (playlists, HLS): never logged or shown.
    pub token: Option<String>,
    /// Limits tighter than the user's own for this player (an access
    /// plugin's answer).
    pub tighter: crate::stream::UserLimits,
}

impl Viewer {
    /// The name of its user.
    pub fn user_name(&self) -> Option<Arc<str>> {
        self.user.as_ref().map(|u| u.tally.name.clone())
    }

    /// The player's user, to attach players with (counted and limited).
    pub fn tally(&self) -> Option<crate::stream::UserPlayer> {
        self.user
            .as_ref()
            .map(|u| crate::stream::UserPlayer { tally: u.tally.clone(), tighter: self.tighter })
    }
}

/// See the module docs.
pub struct Access {
    mode: PlayerAccess,
    /// What a failing access plugin means (see [`plugin_check`]).
    pub on_plugin_failure: OnPluginFailure,
    /// Every user now: the settings file's, then the users file's.
    users: ArcSwap<Vec<Arc<User>>>,
    /// The settings file's users (they stay whatever the users file says).
    fixed: Vec<Arc<User>>,
    /// The users file, when there is one, and how its last read went.
    file: Option<Mutex<UsersFileState>>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses refused until the instant given.
    limited: Mutex<std::collections::HashMap<IpAddr, Instant>>,
    /// Requests refused for a missing or wrong token.
    pub refused_total: AtomicU64,
    /// Requests refused because their address was limited.
    pub limited_total: AtomicU64,
}

/// What status shows of the users file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsersFileState {
    pub path: std::path::PathBuf,
    /// Users it gave at its last good read.
    pub users: usize,
    /// Why its last read failed (its last good users stay).
    pub error: Option<String>,
}

/// What status shows of one user (never its token).
#[derive(Debug, Clone, Serialize)]
pub struct UserState {
    pub name: String,
    pub players: usize,
    pub streams: usize,
    pub max_players: Option<usize>,
    pub max_streams: Option<usize>,
    pub groups: Option<Arc<[String]>>,
}

impl Access {
    pub fn new(settings: AccessSettings) -> Self {
        let burst = NonZeroU32::new(settings.token_failures).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(Duration::from_secs(60) / burst.get())
            .unwrap_or_else(|| Quota::per_minute(burst))
            .allow_burst(burst);
        let fixed: Vec<Arc<User>> = settings.users.into_iter().map(Arc::new).collect();
        let from_file: Vec<Arc<User>> = settings.file_users.into_iter().map(Arc::new).collect();
        let file = settings
            .users_file
            .0
            .map(|path| Mutex::new(UsersFileState { path, users: from_file.len(), error: None }));
        Self {
            mode: settings.player_access,
            on_plugin_failure: settings.access_plugin_failure,
            users: ArcSwap::from_pointee(fixed.iter().chain(&from_file).cloned().collect()),
            fixed,
            file,
            failures: RateLimiter::keyed(quota),
            limited: Mutex::default(),
            refused_total: AtomicU64::new(0),
            limited_total: AtomicU64::new(0),
        }
    }

    pub fn mode(&self) -> PlayerAccess {
        self.mode
    }

    /// The users now (what metrics may label by: their names only).
    pub fn users(&self) -> Arc<Vec<Arc<User>>> {
        self.users.load_full()
    }

    /// Every user's players and limits, for status.
    pub fn user_states(&self) -> Vec<UserState> {
        self.users
            .load()
            .iter()
            .map(|u| {
                let limits = u.tally.limits();
                UserState {
                    name: u.name.clone(),
                    players: u.tally.players(),
                    streams: u.tally.streams(),
                    max_players: limits.max_players,
                    max_streams: limits.max_streams,
                    groups: u.groups.clone(),
                }
            })
            .collect()
    }

    /// How the users file's last read went, when there is one.
    pub fn users_file(&self) -> Option<UsersFileState> {
        self.file.as_ref().map(|f| f.lock().clone())
    }

    /// The users file gave `users`: they replace its previous ones. A user
    /// whose name and token stay keeps its players and counts (with the
    /// file's limits and groups now); a user removed or given another
    /// token is revoked (its players end). A name the settings file has
    /// too refuses the whole read.
    pub fn replace_file_users(&self, users: Vec<User>) {
        if let Some(u) = users.iter().find(|u| self.fixed.iter().any(|f| f.name == u.name)) {
            return self.file_failed(format!("user `{}` is in the settings file too", u.name));
        }
        let old = self.users.load_full();
        let old_from_file = old.iter().filter(|u| !self.fixed.iter().any(|f| Arc::ptr_eq(f, u)));
        let mut carried = Vec::new();
        let users: Vec<Arc<User>> = users
            .into_iter()
            .map(|mut user| {
                if let Some(same) = old.iter().find(|o| o.name == user.name && o.same_token(&user)) {
                    same.tally.set_limits(user.tally.limits());
                    user.tally = same.tally.clone();
                    carried.push(same.tally.clone());
                }
                Arc::new(user)
            })
            .collect();
        for gone in old_from_file.filter(|o| !carried.iter().any(|t| Arc::ptr_eq(t, &o.tally))) {
            tracing::info!(user = %gone.name, "user removed or given another token: its players end");
            gone.tally.revoke();
        }
        let count = users.len();
        self.users.store(Arc::new(self.fixed.iter().cloned().chain(users).collect()));
        tracing::info!(users = count, "users file read");
        if let Some(file) = &self.file {
            let mut state = file.lock();
            state.users = count;
            state.error = None;
        }
    }

    /// The users file could not be read: its last good users stay.
    pub fn file_failed(&self, error: String) {
        tracing::warn!(%error, "users file not taken; its last good users stay");
        if let Some(file) = &self.file {
            file.lock().error = Some(error);
        }
    }

    /// Decides a player request carrying `token` from `address`.
    pub fn admit(&self, token: Option<&str>, address: Option<IpAddr>) -> Result<Viewer, AccessError> {
        let now = Instant::now();
        if let Some(ip) = address
            && let Some(until) = self.limited.lock().get(&ip).copied().filter(|until| *until > now)
        {
            self.limited_total.fetch_add(1, Ordering::Relaxed);
            return Err(AccessError::Limited(until - now));
        }
        let user = token.and_then(|t| self.users.load().iter().find(|u| u.holds(t)).cloned());
        let refusal = match (self.mode, token, &user) {
            (_, Some(_), Some(_)) | (PlayerAccess::Open, None, _) => None,
            (PlayerAccess::Open, Some(_), None) | (PlayerAccess::Token, Some(_), None) => {
                Some(AccessError::Wrong)
            }
            (PlayerAccess::Token, None, _) => Some(AccessError::Missing),
        };
        match refusal {
            None => Ok(Viewer { user, token: token.map(str::to_owned), ..Viewer::default() }),
            Some(refusal) => Err(self.refuse(refusal, address, now)),
        }
    }

    /// Decides an Xtream Codes login: a user's `name` and token (the
    /// app's "password"). In open mode a name no user has is anyone.
    pub fn admit_named(
        &self,
        name: &str,
        token: &str,
        address: Option<IpAddr>,
    ) -> Result<Viewer, AccessError> {
        if self.mode == PlayerAccess::Open && !self.users.load().iter().any(|u| u.name == name) {
            return Ok(Viewer::default());
        }
        let viewer = self.admit(Some(token), address)?;
        if viewer.user.as_ref().is_some_and(|u| u.name == name) {
            return Ok(viewer);
        }
        Err(self.refuse(AccessError::Wrong, address, Instant::now()))
    }

    /// Counts a refusal from `address`: the refusal, or past the address's
    /// burst, its limit.
    fn refuse(&self, refusal: AccessError, address: Option<IpAddr>, now: Instant) -> AccessError {
        if let Some(wait) = address.and_then(|ip| self.count_failure(ip, now)) {
            self.limited_total.fetch_add(1, Ordering::Relaxed);
            return AccessError::Limited(wait);
        }
        self.refused_total.fetch_add(1, Ordering::Relaxed);
        refusal
    }

    /// A failure from `ip`: past its burst it is limited until its
    /// allowance refills; how long, then.
    fn count_failure(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let Err(not_until) = self.failures.check_key(&ip) else { return None };
        let wait = not_until.wait_time_from(governor::clock::Clock::now(self.failures.clock()));
        let wait = wait.max(Duration::from_secs(1));
        let mut limited = self.limited.lock();
        if limited.len() >= MAX_LIMITED {
            limited.retain(|_, until| *until > now);
            if limited.len() >= MAX_LIMITED {
                limited.clear();
            }
        }
        limited.insert(ip, now + wait);
        drop(limited);
        // The limiter's own table keeps a cell per address it saw.
        if self.failures.len() > MAX_LIMITED {
            self.failures.retain_recent();
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(mode: PlayerAccess) -> Access {
        let value: toml::Value =
            toml::from_str("[[users]]\nname = \"ann\"\ntoken = \"open-sesame-1\"\n").unwrap();
        let users = users::users_from_file(&value["users"]).unwrap();
        Access::new(AccessSettings {
            player_access: mode,
            token_failures: 3,
            access_plugin_failure: OnPluginFailure::Deny,
            users,
            users_file: crate::values::OrNone(None),
            file_users: Vec::new(),
        })
    }

    #[test]
    fn token_mode_names_the_user_and_limits_an_address_after_its_burst() {
        let a = access(PlayerAccess::Token);
        let (bad, good): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(a.admit(Some("open-sesame-1"), Some(good)).unwrap().user.unwrap().name, "ann");
        assert_eq!(a.admit(None, Some(bad)).unwrap_err(), AccessError::Missing);
        assert_eq!(a.admit(Some("nope"), Some(bad)).unwrap_err(), AccessError::Wrong);
        assert_eq!(a.admit(Some("nope"), Some(bad)).unwrap_err(), AccessError::Wrong);
        // The burst of 3 is spent: the next failure limits the address,
        // and then even the right token is refused from it.
        assert!(matches!(a.admit(Some("nope"), Some(bad)), Err(AccessError::Limited(_))));
        assert!(matches!(a.admit(Some("open-sesame-1"), Some(bad)), Err(AccessError::Limited(_))));
        assert!(a.admit(Some("open-sesame-1"), Some(good)).is_ok(), "another address still plays");
        assert_eq!(a.limited_total.load(Ordering::Relaxed), 2);
        assert_eq!(a.refused_total.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn an_xtream_login_needs_the_name_and_token_of_one_user() {
        let a = access(PlayerAccess::Token);
        assert_eq!(a.admit_named("ann", "open-sesame-1", None).unwrap().user.unwrap().name, "ann");
        assert_eq!(a.admit_named("bob", "open-sesame-1", None).unwrap_err(), AccessError::Wrong);
        assert_eq!(a.admit_named("ann", "open-sesame-2", None).unwrap_err(), AccessError::Wrong);
        let open = access(PlayerAccess::Open);
        assert!(open.admit_named("anyone", "anything", None).unwrap().user.is_none(), "open: anyone");
        assert_eq!(open.admit_named("ann", "open-sesame-2", None).unwrap_err(), AccessError::Wrong);
    }

    #[test]
    fn open_mode_lets_anyone_in_but_not_a_wrong_token() {
        let a = access(PlayerAccess::Open);
        assert!(a.admit(None, None).unwrap().user.is_none());
        assert_eq!(a.admit(Some("open-sesame-1"), None).unwrap().user.unwrap().name, "ann");
        assert_eq!(a.admit(Some("wrong-token"), None).unwrap_err(), AccessError::Wrong);
    }
}
