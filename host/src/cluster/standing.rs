//! Whether this instance may still stream what it streams: its leases
//! last confirmed by Redis, and the contents it turned out to have lost.
//!
//! A process that was frozen (SIGSTOP, a VM paused, a stop-the-world
//! stall) longer than a lease wakes with leases that other instances may
//! have taken meanwhile, and with engine bytes waiting in its sockets. The
//! data path asks [`Standing::wait_confirmed`] before each chunk reaches a
//! ring: while the last keeper round completed less than a lease ago it
//! answers at once; after a freeze it waits for the round the keeper runs
//! on waking, which finds the lost contents before it confirms. Redis being unreachable
//! also completes a round: an instance alone serves on (local accounting).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

/// See the module docs.
pub(super) struct Standing {
    lease: Duration,
    /// Leases are known good until then (a keeper round's start + a lease).
    confirmed_until: watch::Sender<Instant>,
    /// Contents (their Redis keys) another instance holds while they run
    /// here, with the owner's base URL; taken out by the session that hands
    /// its players over.
    lost: Mutex<HashMap<String, String>>,
    /// `lost.len()`, read without the lock on every chunk.
    lost_count: AtomicUsize,
    /// Bumped whenever `lost` gains an entry.
    lost_changed: watch::Sender<u64>,
}

impl Standing {
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            confirmed_until: watch::Sender::new(Instant::now() + lease),
            lost: Mutex::new(HashMap::new()),
            lost_count: AtomicUsize::new(0),
            lost_changed: watch::Sender::new(0),
        }
    }

    /// A keeper round completed: renewed where Redis answered, or found
    /// Redis unreachable (local accounting).
    pub fn confirm(&self) {
        self.confirmed_until.send_replace(Instant::now() + self.lease);
    }

    /// Waits (at most a lease: a keeper that cannot complete a round must
    /// not stop every stream) until the leases are confirmed.
    pub async fn wait_confirmed(&self) -> bool {
        if *self.confirmed_until.borrow() > Instant::now() {
            return true;
        }
        let mut rx = self.confirmed_until.subscribe();
        tokio::time::timeout(self.lease, rx.wait_for(|until| *until > Instant::now())).await.is_ok()
    }

    /// `key` runs here but `owner` holds its lease.
    pub fn lose(&self, key: &str, owner_url: &str) {
        let mut lost = self.lost.lock();
        lost.insert(key.to_owned(), owner_url.to_owned());
        self.lost_count.store(lost.len(), Ordering::Relaxed);
        self.lost_changed.send_modify(|n| *n += 1);
    }

    /// The owner of `key` if it was lost (cheap when nothing was).
    pub fn lost_to(&self, key: &str) -> Option<String> {
        if self.lost_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.lost.lock().get(key).cloned()
    }

    /// Resolves with the owner's URL once `key` is lost.
    pub async fn until_lost(&self, key: &str) -> String {
        let mut changed = self.lost_changed.subscribe();
        loop {
            if let Some(owner) = self.lost_to(key) {
                return owner;
            }
            if changed.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The session of `key` acted on its loss (or ended).
    pub fn settle(&self, key: &str) {
        let mut lost = self.lost.lock();
        if lost.remove(key).is_some() {
            self.lost_count.store(lost.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stale_standing_waits_for_the_next_round() {
        let standing = Standing::new(Duration::from_secs(2));
        assert!(standing.wait_confirmed().await, "fresh at start");
        tokio::time::advance(Duration::from_secs(3)).await;
        let wait = standing.wait_confirmed();
        tokio::pin!(wait);
        assert!(wait.as_mut().now_or_never().is_none(), "stale: must wait for a round");
        standing.confirm();
        assert!(wait.await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_keeper_that_never_completes_a_round_does_not_stop_streams_for_good() {
        let standing = Standing::new(Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!standing.wait_confirmed().await, "gave up after a lease");
    }

    #[tokio::test]
    async fn a_lost_content_wakes_its_waiter_and_is_settled_once() {
        let standing = Standing::new(Duration::from_secs(2));
        assert_eq!(standing.lost_to("k"), None);
        let wait = standing.until_lost("k");
        tokio::pin!(wait);
        assert!(wait.as_mut().now_or_never().is_none());
        standing.lose("other", "http://b");
        assert!(wait.as_mut().now_or_never().is_none(), "another content's loss");
        standing.lose("k", "http://a");
        assert_eq!(wait.await, "http://a");
        standing.settle("k");
        assert_eq!(standing.lost_to("k"), None);
        assert_eq!(standing.lost_to("other").as_deref(), Some("http://b"));
    }
}
