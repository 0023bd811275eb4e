//! The stream path's process-wide numbers for `/metrics`: counters of
//! streams that already ended (live sessions are summed at scrape time),
//! stream starts and ends, and time to first byte.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::CounterValues;
use crate::events::EndReason;

/// Upper bounds (seconds) of the time-to-first-byte buckets.
pub const TTFB_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A fixed-bucket histogram, updated without locks.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative; cumulated when rendered).
    buckets: [AtomicU64; TTFB_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = TTFB_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(bound, cumulative count)` per bucket, then the total count and sum (seconds).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0;
        let buckets = TTFB_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*b, cumulative)
            })
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, self.count.load(Ordering::Relaxed), sum)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct StreamTotals {
    ended_totals: Mutex<CounterValues>,
    pub streams_started: AtomicU64,
    ends: [AtomicU64; 4],
    /// Request to first stream byte, per player.
    pub time_to_first_byte: Histogram,
}

const END_REASONS: [EndReason; 4] =
    [EndReason::Normal, EndReason::Error, EndReason::FailedToStart, EndReason::Stopped];

impl StreamTotals {
    /// Folds an ended session's counters into the totals.
    pub fn session_ended(&self, counters: &CounterValues, reason: EndReason) {
        self.ended_totals.lock().add(counters);
        if let Some(i) = END_REASONS.iter().position(|r| *r == reason) {
            self.ends[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Totals of ended sessions.
    pub fn ended_totals(&self) -> CounterValues {
        *self.ended_totals.lock()
    }

    /// `(reason, count)` of ended streams.
    pub fn ends(&self) -> Vec<(EndReason, u64)> {
        END_REASONS.iter().zip(&self.ends).map(|(r, n)| (*r, n.load(Ordering::Relaxed))).collect()
    }
}
