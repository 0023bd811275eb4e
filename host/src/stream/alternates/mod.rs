//! A channel with several ids (alternates) outlives each of them: one
//! session, keyed by the channel, plays its ids in turn.
//!
//! The session plays one id at a time (one engine session per channel).
//! When that id fails to start, fails for good after the engine retries
//! and engine failover, or (a setting) keeps too few peers, the channel
//! moves to the next id while its players stay connected and get
//! keepalive packets. An id that failed is left for a backoff that grows
//! with each failure in a row (`--channel-retry-after`, capped at
//! `--channel-retry-max`) and forgotten once it carries the stream again;
//! the next id is the most preferred one not left, or, when every id is
//! left, the one whose backoff ends first. [`Alternates`] is that choice
//! and the channel's history; the session does the playing.

pub mod play;
pub mod settings;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

pub use settings::AlternatesSettings;

use crate::content::ContentKey;
pub use crate::events::{Switch, SwitchReason};

/// Switches kept in a channel's history.
const HISTORY: usize = 32;

/// Where the registry finds a channel's ids (the channel list).
pub trait ChannelDirectory: Send + Sync {
    /// The ids of the channel players ask for by `channel` (a
    /// [`crate::content::KeyType::Channel`] key), if there is one.
    fn plan(&self, channel: &ContentKey) -> Option<ChannelPlan>;
}

/// A channel's name and ids, preferred first, as the list had them when
/// its session started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPlan {
    pub name: String,
    pub ids: Vec<ContentKey>,
}

/// One id of a channel as status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IdStatus {
    pub id: String,
    pub playing: bool,
    /// Failures in a row (0 once it carried the stream again).
    pub failures: u32,
    /// Seconds until it may be tried again, while it is left.
    pub retry_in_s: Option<f64>,
    pub last_error: Option<String>,
}

/// A channel's state, for status.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    pub name: String,
    pub playing: String,
    pub ids: Vec<IdStatus>,
    pub switches: u64,
    /// The latest switches, oldest first.
    pub history: Vec<Switch>,
}

#[derive(Debug)]
struct IdSlot {
    key: ContentKey,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Alternates {
    name: String,
    ids: Vec<IdSlot>,
    current: usize,
    history: VecDeque<Switch>,
    switches: u64,
}

impl Alternates {
    /// Starts on the preferred id. `plan.ids` is not empty.
    pub fn new(plan: ChannelPlan) -> Self {
        let ids = plan
            .ids
            .into_iter()
            .map(|key| IdSlot { key, failures: 0, retry_at: None, last_error: None })
            .collect();
        Self { name: plan.name, ids, current: 0, history: VecDeque::new(), switches: 0 }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id played now.
    pub fn playing(&self) -> &ContentKey {
        &self.ids[self.current].key
    }

    /// Whether there is another id to move to.
    pub fn has_others(&self) -> bool {
        self.ids.len() > 1
    }

    /// Whether every id failed since it last carried the stream.
    pub fn all_failed(&self) -> bool {
        self.ids.iter().all(|id| id.failures > 0)
    }

    /// The id played now carried the stream: its failures are forgotten.
    pub fn carried(&mut self) {
        let id = &mut self.ids[self.current];
        id.failures = 0;
        id.retry_at = None;
    }

    /// The id played now failed for `reason`: it is left for its backoff
    /// (none for [`SwitchReason::Busy`]: it is not the id's fault) and the
    /// channel moves to the next id. Returns the switch and when the next
    /// id may be started (now, unless every id is left).
    pub fn fail(
        &mut self,
        reason: SwitchReason,
        error: Option<String>,
        settings: &AlternatesSettings,
        now: Instant,
    ) -> (Switch, Instant) {
        let from = self.current;
        let backoff = {
            let id = &mut self.ids[from];
            id.failures += 1;
            id.last_error.clone_from(&error);
            let backoff =
                if reason == SwitchReason::Busy { Duration::ZERO } else { settings.backoff(id.failures) };
            id.retry_at = Some(now + backoff);
            backoff
        };
        let next = self.choose(from, now);
        let start_at = self.ids[next].retry_at.filter(|at| *at > now).unwrap_or(now);
        self.current = next;
        self.switches += 1;
        let switch = Switch {
            at: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64(),
            from: self.ids[from].key.id.clone(),
            to: self.ids[next].key.id.clone(),
            reason,
            error,
            backoff_s: backoff.as_secs_f64(),
            wait_s: None,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(switch.clone());
        (switch, start_at)
    }

    /// The id switched to delivered its first data `wait` after the last
    /// data of the stream before it.
    pub fn record_wait(&mut self, wait: Duration) {
        if let Some(last) = self.history.back_mut() {
            last.wait_s.get_or_insert(wait.as_secs_f64());
        }
    }

    /// The most preferred id not left at `now` other than `from`, else
    /// the one whose backoff ends first (`from` only if it is alone).
    fn choose(&self, from: usize, now: Instant) -> usize {
        let free = |i: &usize| *i != from && self.ids[*i].retry_at.is_none_or(|at| at <= now);
        if let Some(i) = (0..self.ids.len()).find(free) {
            return i;
        }
        (0..self.ids.len())
            .filter(|i| *i != from || self.ids.len() == 1)
            .min_by_key(|i| self.ids[*i].retry_at.unwrap_or(now))
            .unwrap_or(from)
    }

    pub fn status(&self, now: Instant) -> ChannelStatus {
        ChannelStatus {
            name: self.name.clone(),
            playing: self.playing().id.clone(),
            ids: self
                .ids
                .iter()
                .enumerate()
                .map(|(i, id)| IdStatus {
                    id: id.key.id.clone(),
                    playing: i == self.current,
                    failures: id.failures,
                    retry_in_s: id.retry_at.filter(|at| *at > now).map(|at| (at - now).as_secs_f64()),
                    last_error: id.last_error.clone(),
                })
                .collect(),
            switches: self.switches,
            history: self.history.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::KeyType;

    fn plan(n: usize) -> ChannelPlan {
        ChannelPlan {
            name: "C".into(),
            ids: (0..n).map(|i| ContentKey::new(KeyType::ContentId, format!("{i:040}"))).collect(),
        }
    }

    fn settings() -> AlternatesSettings {
        AlternatesSettings {
            channel_retry_after: Duration::from_secs(10),
            channel_retry_max: Duration::from_secs(60),
            channel_min_peers: crate::values::OrNone(None),
            channel_low_peers_for: Duration::from_secs(60),
        }
    }

    #[test]
    fn moves_to_the_most_preferred_id_not_left_and_backs_off_growing_and_capped() {
        let (s, t0) = (settings(), Instant::now());
        let mut a = Alternates::new(plan(3));
        let (switch, at) = a.fail(SwitchReason::StartFailed, Some("dead".into()), &s, t0);
        assert_eq!((switch.to.as_str(), at, switch.backoff_s), (format!("{:040}", 1).as_str(), t0, 10.0));
        // id 1 fails: id 0 is still left, so id 2.
        let (switch, _) = a.fail(SwitchReason::UpstreamFailed, None, &s, t0 + Duration::from_secs(1));
        assert_eq!(switch.to, format!("{:040}", 2));
        // id 2 fails too: every id is left; the one whose backoff ends first (id 0, at t0+10 s).
        let (switch, at) = a.fail(SwitchReason::StartFailed, None, &s, t0 + Duration::from_secs(2));
        assert_eq!((switch.to, at), (format!("{:040}", 0), t0 + Duration::from_secs(10)));
        assert!(a.all_failed());
        // id 0 fails again: 20 s; then 40, then capped at 60.
        let mut now = t0 + Duration::from_secs(10);
        let mut backoffs = Vec::new();
        for _ in 0..3 {
            let (switch, at) = a.fail(SwitchReason::StartFailed, None, &s, now);
            if switch.from == format!("{:040}", 0) {
                backoffs.push(switch.backoff_s);
            }
            now = at;
            while a.playing().id != format!("{:040}", 0) {
                let (_, at) = a.fail(SwitchReason::StartFailed, None, &s, now);
                now = at;
            }
        }
        assert_eq!(backoffs, vec![20.0, 40.0, 60.0]);
        // Carrying the stream forgets the failures.
        a.carried();
        assert!(!a.all_failed());
        assert_eq!(a.status(now).ids[0].failures, 0);
    }

    #[test]
    fn a_busy_id_is_not_left_and_the_history_is_bounded() {
        let (s, t0) = (settings(), Instant::now());
        let mut a = Alternates::new(plan(2));
        for i in 0..100 {
            let (_, at) = a.fail(SwitchReason::Busy, None, &s, t0 + Duration::from_secs(i));
            assert_eq!(at, t0 + Duration::from_secs(i));
        }
        let status = a.status(t0);
        assert_eq!((status.switches, status.history.len()), (100, HISTORY));
    }

    #[test]
    fn a_single_id_is_retried_after_its_backoff() {
        let (s, t0) = (settings(), Instant::now());
        let mut a = Alternates::new(plan(1));
        let (switch, at) = a.fail(SwitchReason::StartFailed, None, &s, t0);
        assert_eq!((switch.from, switch.to), (format!("{:040}", 0), format!("{:040}", 0)));
        assert_eq!(at, t0 + Duration::from_secs(10));
    }
}
