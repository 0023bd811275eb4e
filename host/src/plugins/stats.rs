//! Per-plugin call statistics for `/plugins`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

/// How many recent call durations the p99 is computed over.
const RECENT: usize = 1024;

#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub events_dropped: AtomicU64,
    total_nanos: AtomicU64,
    recent_nanos: Mutex<VecDeque<u64>>,
}

/// A snapshot.
#[derive(Debug, Serialize)]
pub struct StatsView {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub events_dropped: u64,
    pub mean_call_us: f64,
    pub p99_call_us: f64,
}

impl PluginStats {
    pub fn record(&self, took: Duration) {
        let nanos = took.as_nanos() as u64;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        let mut recent = self.recent_nanos.lock();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(nanos);
    }

    pub fn view(&self) -> StatsView {
        let calls = self.calls.load(Ordering::Relaxed);
        let mut recent: Vec<u64> = self.recent_nanos.lock().iter().copied().collect();
        recent.sort_unstable();
        let p99 = recent.get((recent.len() as f64 * 0.99) as usize).or(recent.last()).copied().unwrap_or(0);
        StatsView {
            calls,
            errors: self.errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            mean_call_us: if calls == 0 {
                0.0
            } else {
                self.total_nanos.load(Ordering::Relaxed) as f64 / calls as f64 / 1e3
            },
            p99_call_us: p99 as f64 / 1e3,
        }
    }
}
