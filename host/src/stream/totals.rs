//! The stream path's process-wide numbers for `/metrics`: counters of
//! streams that already ended (live sessions are summed at scrape time),
//! stream starts and ends, time to first byte, and channels' switches
//! between their ids (how many, why, how long players went without data).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::CounterValues;
use super::alternates::SwitchReason;
use crate::events::EndReason;

/// Upper bounds (seconds) of the time-to-first-byte buckets.
pub const TTFB_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Upper bounds (seconds) of the buckets of players' wait at a channel switch.
pub const SWITCH_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];

/// A fixed-bucket histogram, updated without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; cumulated when rendered).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new(&TTFB_BUCKETS)
    }
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(bound, cumulative count)` per bucket, then the total count and sum (seconds).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0;
        let buckets = self
            .bounds
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
#[derive(Debug)]
pub struct StreamTotals {
    ended_totals: Mutex<CounterValues>,
    pub streams_started: AtomicU64,
    ends: [AtomicU64; 4],
    /// Request to first stream byte, per player.
    pub time_to_first_byte: Histogram,
    switches: [AtomicU64; 4],
    /// From the last data of a channel's id to the first of the next id.
    pub switch_wait: Histogram,
}

impl Default for StreamTotals {
    fn default() -> Self {
        Self {
            ended_totals: Mutex::default(),
            streams_started: AtomicU64::new(0),
            ends: Default::default(),
            time_to_first_byte: Histogram::default(),
            switches: Default::default(),
            switch_wait: Histogram::new(&SWITCH_BUCKETS),
        }
    }
}

const SWITCH_REASONS: [SwitchReason; 4] =
    [SwitchReason::StartFailed, SwitchReason::UpstreamFailed, SwitchReason::LowPeers, SwitchReason::Busy];

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

    pub fn channel_switched(&self, reason: SwitchReason) {
        if let Some(i) = SWITCH_REASONS.iter().position(|r| *r == reason) {
            self.switches[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(reason, count)` of channels' switches.
    pub fn channel_switches(&self) -> Vec<(SwitchReason, u64)> {
        SWITCH_REASONS.iter().zip(&self.switches).map(|(r, n)| (*r, n.load(Ordering::Relaxed))).collect()
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
