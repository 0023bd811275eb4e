//! A plugin's streak of failures, its disabling, and its way back.
//!
//! After `max_failures` failed calls in a row a plugin is disabled. With
//! `recover = true` (the default) it is tried again after `recover_after`;
//! that trial is one call: a failure is a relapse, disabling it again for
//! twice the wait before (at most `recover_max`), a right answer ends the
//! episode. The relapse count is forgotten once the plugin has answered
//! rightly for `recover_max` after its last trial began. With `recover =
//! false` a disabled plugin stays off until its file or settings change
//! (which loads it afresh, at once). Checking costs one atomic load while
//! the plugin is active.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

/// When and how a disabled plugin is tried again (from its settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPolicy {
    pub max_failures: u32,
    /// `None`: never (`recover = false`).
    pub first_wait: Option<Duration>,
    pub max_wait: Duration,
}

/// What `/plugins` shows of a plugin's recovery.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecoveryView {
    /// Times it was disabled again on a trial after a wait.
    pub relapses: u32,
    /// When it will be tried again (Unix seconds), while disabled.
    pub retry_at: Option<f64>,
    /// Trials so far.
    pub retries: u32,
}

#[derive(Debug, Default)]
struct Episode {
    relapses: u32,
    retries: u32,
    /// While disabled with a retry due: when (monotonic, and wall clock
    /// for display).
    retry_at: Option<(Instant, SystemTime)>,
    /// When the last trial began (until the relapse count is forgotten).
    trial_since: Option<Instant>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Recovery {
    policy: RecoveryPolicy,
    disabled: AtomicBool,
    failures_in_a_row: AtomicU32,
    episode: Mutex<Episode>,
}

/// What a failure did to the plugin.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still active: failures in a row so far.
    Counted(u32),
    /// Disabled now; tried again after the wait, if any.
    Disabled { in_a_row: u32, retry_in: Option<Duration>, relapses: u32 },
    /// Already disabled.
    AlreadyDisabled,
}

impl Recovery {
    pub fn new(policy: RecoveryPolicy) -> Self {
        Self {
            policy,
            disabled: AtomicBool::new(false),
            failures_in_a_row: AtomicU32::new(0),
            episode: Mutex::new(Episode::default()),
        }
    }

    /// Whether calls are refused now. A due retry turns the plugin back on
    /// for a trial of one call.
    pub fn is_disabled(&self) -> bool {
        if !self.disabled.load(Ordering::Relaxed) {
            return false;
        }
        let mut episode = self.episode.lock();
        match episode.retry_at {
            Some((at, _)) if Instant::now() >= at => {
                episode.retry_at = None;
                episode.retries += 1;
                episode.trial_since = Some(Instant::now());
                // One more failure disables it again.
                self.failures_in_a_row.store(self.policy.max_failures.saturating_sub(1), Ordering::Relaxed);
                self.disabled.store(false, Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    /// A failed call.
    pub fn failed(&self) -> AfterFailure {
        let n = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if n < self.policy.max_failures {
            return AfterFailure::Counted(n);
        }
        if self.disabled.swap(true, Ordering::Relaxed) {
            return AfterFailure::AlreadyDisabled;
        }
        let mut episode = self.episode.lock();
        if episode.trial_since.take().is_some() {
            episode.relapses += 1;
        }
        let retry_in = self.policy.first_wait.map(|first| {
            let doubled = first.saturating_mul(1u32 << episode.relapses.min(20));
            doubled.min(self.policy.max_wait)
        });
        episode.retry_at = retry_in.map(|wait| (Instant::now() + wait, SystemTime::now() + wait));
        AfterFailure::Disabled { in_a_row: n, retry_in, relapses: episode.relapses }
    }

    /// A right answer: the streak ends; a trial long enough ago has held.
    pub fn succeeded(&self) {
        self.failures_in_a_row.store(0, Ordering::Relaxed);
        if self.policy.first_wait.is_none() {
            return;
        }
        let mut episode = self.episode.lock();
        if episode.trial_since.is_some_and(|since| since.elapsed() >= self.policy.max_wait) {
            episode.trial_since = None;
            episode.relapses = 0;
        }
    }

    pub fn view(&self) -> RecoveryView {
        let episode = self.episode.lock();
        let unix = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        RecoveryView {
            relapses: episode.relapses,
            retry_at: episode
                .retry_at
                .filter(|_| self.disabled.load(Ordering::Relaxed))
                .map(|(_, at)| unix(at)),
            retries: episode.retries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(first_ms: Option<u64>) -> RecoveryPolicy {
        RecoveryPolicy {
            max_failures: 2,
            first_wait: first_ms.map(Duration::from_millis),
            max_wait: Duration::from_millis(40),
        }
    }

    #[test]
    fn disabled_after_max_failures_then_retried_with_a_doubling_wait_up_to_the_cap() {
        let r = Recovery::new(policy(Some(10)));
        assert_eq!(r.failed(), AfterFailure::Counted(1));
        let first = r.failed();
        assert_eq!(
            first,
            AfterFailure::Disabled { in_a_row: 2, retry_in: Some(Duration::from_millis(10)), relapses: 0 }
        );
        assert!(r.is_disabled());
        assert!(r.view().retry_at.is_some());
        std::thread::sleep(Duration::from_millis(12));
        assert!(!r.is_disabled(), "retried after the first wait");
        assert_eq!(r.view().retries, 1);
        // The trial fails: a relapse, twice the wait.
        assert_eq!(
            r.failed(),
            AfterFailure::Disabled { in_a_row: 2, retry_in: Some(Duration::from_millis(20)), relapses: 1 }
        );
        std::thread::sleep(Duration::from_millis(22));
        assert!(!r.is_disabled());
        assert_eq!(
            r.failed(),
            AfterFailure::Disabled { in_a_row: 2, retry_in: Some(Duration::from_millis(40)), relapses: 2 }
        );
        std::thread::sleep(Duration::from_millis(42));
        assert!(!r.is_disabled());
        // Capped at 40 ms.
        assert_eq!(
            r.failed(),
            AfterFailure::Disabled { in_a_row: 2, retry_in: Some(Duration::from_millis(40)), relapses: 3 }
        );
    }

    #[test]
    fn a_trial_that_holds_for_the_cap_forgets_the_relapses() {
        let r = Recovery::new(policy(Some(1)));
        r.failed();
        r.failed();
        std::thread::sleep(Duration::from_millis(2));
        assert!(!r.is_disabled());
        r.failed();
        std::thread::sleep(Duration::from_millis(3));
        assert!(!r.is_disabled());
        assert_eq!(r.view().relapses, 1);
        r.succeeded();
        assert_eq!(r.view().relapses, 1, "too soon to forget");
        std::thread::sleep(Duration::from_millis(41));
        r.succeeded();
        assert_eq!(r.view().relapses, 0);
        assert_eq!(r.failed(), AfterFailure::Counted(1), "a fresh streak");
    }

    #[test]
    fn without_recovery_a_disabled_plugin_stays_off() {
        let r = Recovery::new(policy(None));
        r.failed();
        assert_eq!(r.failed(), AfterFailure::Disabled { in_a_row: 2, retry_in: None, relapses: 0 });
        std::thread::sleep(Duration::from_millis(5));
        assert!(r.is_disabled());
        assert_eq!(r.view().retry_at, None);
        assert_eq!(r.failed(), AfterFailure::AlreadyDisabled);
    }
}
