//! The plugin's own metrics, on acemux's `/metrics` as
//! `acemux_plugin_<name>{plugin="<plugin>",…}`.
//!
//! Declare each metric once, as a `static`; acemux learns of it at its
//! first use:
//!
//! ```ignore
//! use acemux_plugin_sdk::metrics::{Counter, Histogram};
//!
//! static PICKS: Counter = Counter::new("picks_total", "Streams sent to each engine.", &["engine"]);
//! static BATCH: Histogram = Histogram::new("batch_packets", "Packets per batch.", &[], &[8.0, 64.0, 512.0]);
//!
//! PICKS.inc_with(&[&engine.id]);
//! BATCH.observe(batch.len() as f64);
//! ```
//!
//! The rules (names `[a-z][a-z0-9_]*`, a counter's ending in `_total`, at
//! most 8 labels, `max_series` label sets per plugin…) are in `wit/`. A
//! metric or a call that breaks them changes nothing and never fails the
//! plugin: acemux counts it (`/plugins` → `metrics.refused`, the last
//! reason with it) and `acemux plugin filter|select` prints it. A label
//! set is a series for as long as the plugin is loaded: label by what
//! has few values (an engine, a PID, a reason), never by a content id or
//! a player.
//!
//! In a plugin's native unit tests, values are kept in the process:
//! [`crate::testing::metric_value`] reads them.

#[cfg(target_arch = "wasm32")]
use std::collections::HashMap;
#[cfg(target_arch = "wasm32")]
use std::sync::{Mutex, OnceLock};

/// What kind of metric (the `metric-kind` of `wit/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Add,
    Set,
    Observe,
}

/// Series handles a metric remembers (acemux's own cap is lower unless
/// raised; past this the SDK asks acemux each time).
#[cfg(target_arch = "wasm32")]
const REMEMBERED: usize = 10_000;

/// A declared metric and, on wasm, the handles acemux gave for it.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    #[cfg(target_arch = "wasm32")]
    handle: OnceLock<Option<u32>>,
    #[cfg(target_arch = "wasm32")]
    series: Mutex<Option<HashMap<Vec<String>, u32>>>,
}

impl Family {
    const fn new(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            kind,
            labels,
            buckets,
            #[cfg(target_arch = "wasm32")]
            handle: OnceLock::new(),
            #[cfg(target_arch = "wasm32")]
            series: Mutex::new(None),
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn update(&self, values: &[&str], op: Op, value: f64) {
        use crate::bindings::selector_only::acemux::plugin::metrics as host;
        let Some(metric) = *self.handle.get_or_init(|| {
            let kind = match self.kind {
                Kind::Counter => host::MetricKind::Counter,
                Kind::Gauge => host::MetricKind::Gauge,
                Kind::Histogram => host::MetricKind::Histogram,
            };
            host::define(&host::Metric {
                name: self.name.to_owned(),
                help: self.help.to_owned(),
                kind,
                labels: self.labels.iter().map(|l| (*l).to_owned()).collect(),
                buckets: self.buckets.to_vec(),
            })
            .ok()
        }) else {
            return;
        };
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let known = self.series.lock().ok().and_then(|m| m.as_ref().and_then(|m| m.get(&key).copied()));
        let series = match known {
            Some(s) => s,
            None => match host::series(metric, &key) {
                Ok(s) => {
                    if let Ok(mut m) = self.series.lock() {
                        let m = m.get_or_insert_with(HashMap::new);
                        if m.len() < REMEMBERED {
                            m.insert(key, s);
                        }
                    }
                    s
                }
                // Refused (counted by acemux): nothing to update.
                Err(_) => return,
            },
        };
        let _ = match op {
            Op::Add => host::add(series, value),
            Op::Set => host::set(series, value),
            Op::Observe => host::observe(series, value),
        };
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn update(&self, values: &[&str], op: Op, value: f64) {
        assert_eq!(
            values.len(),
            self.labels.len(),
            "metric `{}` takes {} label values (acemux would refuse this call)",
            self.name,
            self.labels.len()
        );
        let _ = (self.help, self.buckets);
        crate::testing::record_metric(self.name, self.kind, values, op, value);
    }
}

/// Only goes up. Its name ends in `_total`.
pub struct Counter(Family);

impl Counter {
    /// `labels`: the names of its labels (`&[]` for none).
    pub const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self(Family::new(name, help, Kind::Counter, labels, &[]))
    }

    /// Adds one (a counter without labels).
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Adds `value`, not negative (a counter without labels).
    pub fn add(&self, value: f64) {
        self.0.update(&[], Op::Add, value);
    }

    /// Adds one to the series of these label values (one per label).
    pub fn inc_with(&self, values: &[&str]) {
        self.add_with(values, 1.0);
    }

    pub fn add_with(&self, values: &[&str], value: f64) {
        self.0.update(values, Op::Add, value);
    }
}

/// Goes up and down.
pub struct Gauge(Family);

impl Gauge {
    pub const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self(Family::new(name, help, Kind::Gauge, labels, &[]))
    }

    pub fn set(&self, value: f64) {
        self.0.update(&[], Op::Set, value);
    }

    pub fn add(&self, value: f64) {
        self.0.update(&[], Op::Add, value);
    }

    pub fn set_with(&self, values: &[&str], value: f64) {
        self.0.update(values, Op::Set, value);
    }

    pub fn add_with(&self, values: &[&str], value: f64) {
        self.0.update(values, Op::Add, value);
    }
}

/// Counts observations into buckets.
pub struct Histogram(Family);

impl Histogram {
    /// `buckets`: upper bounds, increasing (`&[]`: 0.005 to 10 seconds).
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self(Family::new(name, help, Kind::Histogram, labels, buckets))
    }

    pub fn observe(&self, value: f64) {
        self.0.update(&[], Op::Observe, value);
    }

    pub fn observe_with(&self, values: &[&str], value: f64) {
        self.0.update(values, Op::Observe, value);
    }
}
