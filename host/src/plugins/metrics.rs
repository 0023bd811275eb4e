//! The metrics plugins define through the `metrics` host interface.
//!
//! A plugin's metrics are kept under its name, not its loaded version, so
//! they outlive a reload with the same declarations (and a tier swap) the
//! way a service's metrics outlive nothing less than a restart. Everything
//! a plugin defines ends up in every scrape of `/metrics`, and plugins are
//! untrusted: names and labels are checked when a metric is declared,
//! label sets are capped per plugin, and a call outside the bounds is
//! refused with an error (counted, logged sparingly) without failing the
//! plugin. [`MetricsRegistry::snapshot`] is what `/metrics` publishes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::bindings::{Metric as WitMetric, MetricKind};

/// Metrics one plugin may declare (replaced ones not counted).
pub const MAX_METRICS: usize = 64;
/// Labels one metric may take.
pub const MAX_LABELS: usize = 8;
/// Longest metric or label name.
pub const MAX_NAME_BYTES: usize = 64;
pub const MAX_HELP_BYTES: usize = 200;
pub const MAX_LABEL_VALUE_BYTES: usize = 128;
/// Bucket bounds one histogram may have.
pub const MAX_BUCKETS: usize = 20;
/// Prometheus's default buckets, for a histogram that names none.
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// What published names start with.
pub const PREFIX: &str = "acemux_plugin_";
/// Series handles a plugin may have been given in all (those of replaced
/// metrics included), as a multiple of its cap: bounds what reloads that
/// change declarations leave behind.
const HANDLES_PER_CAP: usize = 4;

/// A metric as declared, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    pub labels: Vec<String>,
    /// Histograms only: upper bounds, increasing.
    pub buckets: Vec<f64>,
}

impl Declaration {
    /// Checks a plugin's declaration against the rules `wit/` states.
    pub fn check(m: WitMetric) -> Result<Self, String> {
        check_name(&m.name, "metric name")?;
        let suffix = |s: &str| m.name.ends_with(s);
        match m.kind {
            MetricKind::Counter if !suffix("_total") => {
                return Err(format!("counter `{}`: a counter's name ends in `_total`", m.name));
            }
            MetricKind::Histogram if ["_total", "_sum", "_count"].into_iter().any(suffix) => {
                return Err(format!(
                    "histogram `{}`: a histogram's name does not end in `_total`, `_sum` or `_count`",
                    m.name
                ));
            }
            _ if suffix("_bucket") => {
                return Err(format!("`{}`: no metric's name ends in `_bucket`", m.name));
            }
            _ => {}
        }
        if m.help.len() > MAX_HELP_BYTES {
            return Err(format!("`{}`: help is {} bytes, more than {MAX_HELP_BYTES}", m.name, m.help.len()));
        }
        if m.labels.len() > MAX_LABELS {
            return Err(format!("`{}`: {} labels, more than {MAX_LABELS}", m.name, m.labels.len()));
        }
        for (i, label) in m.labels.iter().enumerate() {
            check_name(label, "label name")?;
            if label == "plugin" || label == "le" {
                return Err(format!("`{}`: label `{label}` is acemux's", m.name));
            }
            if m.labels[..i].contains(label) {
                return Err(format!("`{}`: label `{label}` named twice", m.name));
            }
        }
        let buckets = match m.kind {
            MetricKind::Histogram if m.buckets.is_empty() => DEFAULT_BUCKETS.to_vec(),
            MetricKind::Histogram => {
                if m.buckets.len() > MAX_BUCKETS {
                    return Err(format!(
                        "`{}`: {} buckets, more than {MAX_BUCKETS}",
                        m.name,
                        m.buckets.len()
                    ));
                }
                if m.buckets.iter().any(|b| !b.is_finite()) || m.buckets.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!("`{}`: bucket bounds must be finite and increasing", m.name));
                }
                m.buckets
            }
            _ if !m.buckets.is_empty() => {
                return Err(format!("`{}`: only a histogram has buckets", m.name));
            }
            _ => Vec::new(),
        };
        // One line of help: newlines would end the `# HELP` line.
        let help = m.help.replace(['\n', '\r'], " ");
        Ok(Self { name: m.name, help, kind: m.kind, labels: m.labels, buckets })
    }

    /// Published names this declaration's samples use besides its own.
    fn sample_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Histogram => {
                ["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", self.name)).into()
            }
            _ => Vec::new(),
        }
    }
}

/// `[a-z][a-z0-9_]*`, at most [`MAX_NAME_BYTES`].
fn check_name(name: &str, what: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    if !first_ok
        || name.len() > MAX_NAME_BYTES
        || !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
    {
        let shown: String = name.chars().take(MAX_NAME_BYTES).collect();
        return Err(format!(
            "{what} `{shown}`: must match [a-z][a-z0-9_]* and be at most {MAX_NAME_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A series' value.
enum Cell {
    /// A counter's or a gauge's, as `f64` bits.
    Scalar(AtomicU64),
    Histogram(Mutex<Histogram>),
}

#[derive(Clone)]
struct Histogram {
    /// Observations per bucket (not cumulative), then above the last bound.
    counts: Vec<u64>,
    sum: f64,
}

struct Series {
    metric: u32,
    labels: Vec<String>,
    cell: Cell,
}

struct Metric {
    decl: Arc<Declaration>,
    /// The load of the plugin that declared it.
    load: u64,
    /// Replaced by a newer load's declaration: unpublished, its handles dead.
    replaced: bool,
    series: HashMap<Vec<String>, u32>,
}

#[derive(Default)]
struct State {
    metrics: Vec<Metric>,
    by_name: HashMap<String, u32>,
    series: Vec<Series>,
    /// Series of metrics not replaced.
    live_series: usize,
}

impl State {
    fn live_metric(&self, handle: u32) -> Result<&Metric, String> {
        match self.metrics.get(handle as usize) {
            Some(m) if !m.replaced => Ok(m),
            Some(m) => Err(format!("metric `{}` was declared anew by a newer load", m.decl.name)),
            None => Err(format!("no metric has handle {handle}")),
        }
    }

    fn series(&self, handle: u32) -> Result<(&Series, &Declaration), String> {
        let series =
            self.series.get(handle as usize).ok_or_else(|| format!("no series has handle {handle}"))?;
        Ok((series, &self.live_metric(series.metric)?.decl))
    }
}

/// One plugin's metrics.
pub struct PluginMetrics {
    pub plugin: Arc<str>,
    max_series: AtomicUsize,
    loads: AtomicU64,
    state: RwLock<State>,
    refused: AtomicU64,
    last_refusal: Mutex<Option<String>>,
}

/// What `/plugins` shows of a plugin's metrics.
#[derive(Debug, Serialize)]
pub struct MetricsView {
    pub metrics: usize,
    pub series: usize,
    pub max_series: usize,
    pub refused: u64,
    pub last_refusal: Option<String>,
}

impl PluginMetrics {
    pub fn view(&self) -> MetricsView {
        let state = self.state.read();
        MetricsView {
            metrics: state.metrics.iter().filter(|m| !m.replaced).count(),
            series: state.live_series,
            max_series: self.max_series.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            last_refusal: self.last_refusal.lock().clone(),
        }
    }

    /// Counts a refusal; logs the 1st, 2nd, 4th, 8th… so a plugin that
    /// keeps calling wrong cannot flood the log.
    fn refuse(&self, error: String) -> String {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(plugin = &*self.plugin, refused = n, "metric call refused: {error}");
        }
        *self.last_refusal.lock() = Some(error.clone());
        error
    }
}

/// Every plugin's metrics, by plugin name.
#[derive(Default)]
pub struct MetricsRegistry {
    plugins: Mutex<BTreeMap<Arc<str>, Arc<PluginMetrics>>>,
}

impl MetricsRegistry {
    /// The metrics of one load of `plugin`, capped at `max_series` label sets.
    pub fn scope(self: &Arc<Self>, plugin: &Arc<str>, max_series: usize) -> MetricsScope {
        let own = self
            .plugins
            .lock()
            .entry(plugin.clone())
            .or_insert_with(|| {
                Arc::new(PluginMetrics {
                    plugin: plugin.clone(),
                    max_series: AtomicUsize::new(max_series),
                    loads: AtomicU64::new(0),
                    state: RwLock::default(),
                    refused: AtomicU64::new(0),
                    last_refusal: Mutex::new(None),
                })
            })
            .clone();
        own.max_series.store(max_series, Ordering::Relaxed);
        let load = own.loads.fetch_add(1, Ordering::Relaxed) + 1;
        MetricsScope { registry: self.clone(), own, load }
    }

    /// Forgets the metrics of plugins no longer loaded.
    pub fn retain(&self, mut loaded: impl FnMut(&str) -> bool) {
        self.plugins.lock().retain(|name, _| loaded(name));
    }

    /// Every published family, by name; within one, each plugin's series.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<FamilySnapshot>> {
        let plugins: Vec<Arc<PluginMetrics>> = self.plugins.lock().values().cloned().collect();
        let mut families: BTreeMap<String, Vec<FamilySnapshot>> = BTreeMap::new();
        for p in plugins {
            let state = p.state.read();
            for m in state.metrics.iter().filter(|m| !m.replaced && !m.series.is_empty()) {
                let mut series: Vec<SeriesSnapshot> = m
                    .series
                    .values()
                    .map(|&h| {
                        let s = &state.series[h as usize];
                        let value = match &s.cell {
                            Cell::Scalar(bits) => Value::Scalar(f64::from_bits(bits.load(Ordering::Relaxed))),
                            Cell::Histogram(h) => {
                                let h = h.lock().clone();
                                Value::Histogram { counts: h.counts, sum: h.sum }
                            }
                        };
                        SeriesSnapshot { labels: s.labels.clone(), value }
                    })
                    .collect();
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                families.entry(m.decl.name.clone()).or_default().push(FamilySnapshot {
                    plugin: p.plugin.clone(),
                    decl: m.decl.clone(),
                    series,
                });
            }
        }
        families
    }
}

/// One plugin's part of a published family.
pub struct FamilySnapshot {
    pub plugin: Arc<str>,
    pub decl: Arc<Declaration>,
    pub series: Vec<SeriesSnapshot>,
}

pub struct SeriesSnapshot {
    pub labels: Vec<String>,
    pub value: Value,
}

pub enum Value {
    Scalar(f64),
    /// Per bucket (not cumulative), then above the last bound.
    Histogram {
        counts: Vec<u64>,
        sum: f64,
    },
}

/// What one load of a plugin declares and updates: each of its instances'
/// stores holds one.
#[derive(Clone)]
pub struct MetricsScope {
    registry: Arc<MetricsRegistry>,
    pub own: Arc<PluginMetrics>,
    load: u64,
}

impl MetricsScope {
    /// A scope of its own, for a plugin run outside acemux (`acemux plugin`).
    pub fn standalone(plugin: &str) -> Self {
        Arc::new(MetricsRegistry::default()).scope(&Arc::from(plugin), 1000)
    }

    /// Every plugin's metrics this scope's plugin is published among.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    pub fn define(&self, metric: WitMetric) -> Result<u32, String> {
        self.defined(metric).map_err(|e| self.own.refuse(e))
    }

    fn defined(&self, metric: WitMetric) -> Result<u32, String> {
        let decl = Declaration::check(metric)?;
        // Held while declaring: two plugins declaring one name at once
        // see each other (the only place a plugin's state is read under it).
        let plugins = self.registry.plugins.lock();
        for other in plugins.values().filter(|p| !Arc::ptr_eq(p, &self.own)) {
            let state = other.state.read();
            let clash = |name: &str| state.by_name.get(name).map(|&h| &state.metrics[h as usize].decl);
            if let Some(theirs) = clash(&decl.name).filter(|d| d.kind != decl.kind) {
                return Err(format!(
                    "`{}` is a {} of plugin {}; one name is one kind",
                    decl.name,
                    kind_name(theirs.kind),
                    other.plugin
                ));
            }
            if decl.sample_names().iter().any(|n| clash(n).is_some())
                || state.metrics.iter().any(|m| !m.replaced && m.decl.sample_names().contains(&decl.name))
            {
                return Err(format!(
                    "`{}` clashes with a histogram's samples of plugin {}",
                    decl.name, other.plugin
                ));
            }
        }
        let mut state = self.own.state.write();
        let existing = state.by_name.get(&decl.name).copied();
        if let Some(handle) = existing {
            let existing = &state.metrics[handle as usize];
            if *existing.decl == decl {
                return Ok(handle);
            }
            if existing.load >= self.load {
                return Err(format!("`{}` is already declared otherwise", decl.name));
            }
        } else if state.metrics.iter().filter(|m| !m.replaced).count() >= MAX_METRICS {
            return Err(format!("`{}`: {MAX_METRICS} metrics declared already", decl.name));
        }
        let others = |m: &&Metric| !m.replaced && m.decl.name != decl.name;
        if let Some(hist) =
            state.metrics.iter().filter(others).find(|m| m.decl.sample_names().contains(&decl.name))
        {
            return Err(format!("`{}` clashes with histogram `{}`'s samples", decl.name, hist.decl.name));
        }
        if decl
            .sample_names()
            .iter()
            .any(|n| state.by_name.get(n).is_some_and(|&h| !state.metrics[h as usize].replaced))
        {
            return Err(format!("`{}`: a histogram's samples would clash with another metric", decl.name));
        }
        if let Some(handle) = existing {
            // A newer load declares it otherwise: the old one's series go.
            let gone = state.metrics[handle as usize].series.len();
            state.metrics[handle as usize].replaced = true;
            state.live_series -= gone;
        }
        let handle = u32::try_from(state.metrics.len()).map_err(|_| "too many metrics".to_owned())?;
        state.by_name.insert(decl.name.clone(), handle);
        state.metrics.push(Metric {
            decl: Arc::new(decl),
            load: self.load,
            replaced: false,
            series: HashMap::new(),
        });
        Ok(handle)
    }

    pub fn series(&self, metric: u32, values: Vec<String>) -> Result<u32, String> {
        self.series_of(metric, values).map_err(|e| self.own.refuse(e))
    }

    fn series_of(&self, metric: u32, values: Vec<String>) -> Result<u32, String> {
        {
            let state = self.own.state.read();
            let m = state.live_metric(metric)?;
            if values.len() != m.decl.labels.len() {
                return Err(format!(
                    "`{}` takes {} label values, not {}",
                    m.decl.name,
                    m.decl.labels.len(),
                    values.len()
                ));
            }
            if let Some(v) = values.iter().find(|v| v.len() > MAX_LABEL_VALUE_BYTES) {
                return Err(format!(
                    "`{}`: a label value of {} bytes, more than {MAX_LABEL_VALUE_BYTES}",
                    m.decl.name,
                    v.len()
                ));
            }
            if let Some(&handle) = m.series.get(&values) {
                return Ok(handle);
            }
        }
        let mut state = self.own.state.write();
        let m = state.live_metric(metric)?;
        if let Some(&handle) = m.series.get(&values) {
            return Ok(handle);
        }
        let cap = self.own.max_series.load(Ordering::Relaxed);
        if state.live_series >= cap {
            return Err(format!("`{}`: the plugin's {cap} series (max_series) are all taken", m.decl.name));
        }
        if state.series.len() >= cap.saturating_mul(HANDLES_PER_CAP) {
            return Err(format!("`{}`: too many series since the plugin was first loaded", m.decl.name));
        }
        let cell = match m.decl.kind {
            MetricKind::Histogram => {
                Cell::Histogram(Mutex::new(Histogram { counts: vec![0; m.decl.buckets.len() + 1], sum: 0.0 }))
            }
            _ => Cell::Scalar(AtomicU64::new(0f64.to_bits())),
        };
        let handle = u32::try_from(state.series.len()).map_err(|_| "too many series".to_owned())?;
        state.series.push(Series { metric, labels: values.clone(), cell });
        state.metrics[metric as usize].series.insert(values, handle);
        state.live_series += 1;
        Ok(handle)
    }

    /// `add`, `set` or `observe`.
    pub fn update(&self, series: u32, op: Update, value: f64) -> Result<(), String> {
        self.updated(series, op, value).map_err(|e| self.own.refuse(e))
    }

    fn updated(&self, series: u32, op: Update, value: f64) -> Result<(), String> {
        let state = self.own.state.read();
        let (s, decl) = state.series(series)?;
        if !value.is_finite() {
            return Err(format!("`{}`: {value} is not a finite number", decl.name));
        }
        match (&s.cell, decl.kind, op) {
            (Cell::Scalar(_), MetricKind::Counter, Update::Add) if value < 0.0 => {
                Err(format!("counter `{}`: cannot add {value}", decl.name))
            }
            (Cell::Scalar(bits), MetricKind::Counter | MetricKind::Gauge, Update::Add) => {
                let _ = bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some((f64::from_bits(b) + value).to_bits())
                });
                Ok(())
            }
            (Cell::Scalar(bits), MetricKind::Gauge, Update::Set) => {
                bits.store(value.to_bits(), Ordering::Relaxed);
                Ok(())
            }
            (Cell::Histogram(h), MetricKind::Histogram, Update::Observe) => {
                let bucket = decl.buckets.iter().position(|&b| value <= b).unwrap_or(decl.buckets.len());
                let mut h = h.lock();
                h.counts[bucket] += 1;
                h.sum += value;
                Ok(())
            }
            (_, kind, op) => Err(format!("`{}` is a {}: no `{}`", decl.name, kind_name(kind), op.as_str())),
        }
    }
}

/// How `# TYPE` names a kind.
pub fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    }
}

/// What a call does to a series.
#[derive(Debug, Clone, Copy)]
pub enum Update {
    Add,
    Set,
    Observe,
}

impl Update {
    fn as_str(self) -> &'static str {
        match self {
            Update::Add => "add",
            Update::Set => "set",
            Update::Observe => "observe",
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
