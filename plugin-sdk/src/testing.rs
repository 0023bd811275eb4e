//! Helpers for a plugin's native unit tests (`cargo test` on the host).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::metrics::{Kind, Op};

use crate::{Engine, KeyType, Request, Stream};

thread_local! {
    static CONFIG: RefCell<String> = RefCell::new("{}".to_owned());
    /// Metrics this thread's tests updated: (name, label values) → value,
    /// or, for a histogram, observations and their sum.
    static METRICS: RefCell<BTreeMap<(String, Vec<String>), MetricValue>> = const { RefCell::new(BTreeMap::new()) };
}

#[derive(Debug, Clone, Copy)]
enum MetricValue {
    Scalar(f64),
    Histogram { count: u64, sum: f64 },
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn record_metric(name: &str, kind: Kind, values: &[&str], op: Op, value: f64) {
    let key = (name.to_owned(), values.iter().map(|v| (*v).to_owned()).collect());
    METRICS.with(|m| {
        let mut m = m.borrow_mut();
        let entry = m.entry(key).or_insert(match kind {
            Kind::Histogram => MetricValue::Histogram { count: 0, sum: 0.0 },
            _ => MetricValue::Scalar(0.0),
        });
        match (entry, op) {
            (MetricValue::Scalar(v), Op::Add) => *v += value,
            (MetricValue::Scalar(v), Op::Set) => *v = value,
            (MetricValue::Histogram { count, sum }, Op::Observe) => {
                *count += 1;
                *sum += value;
            }
            (_, op) => panic!("metric `{name}` is a {kind:?}: no {op:?} (acemux would refuse this call)"),
        }
    });
}

/// A counter's or a gauge's value in this thread's tests (`None`: never
/// updated), by its label values.
pub fn metric_value(name: &str, values: &[&str]) -> Option<f64> {
    let key = (name.to_owned(), values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>());
    METRICS.with(|m| match m.borrow().get(&key) {
        Some(MetricValue::Scalar(v)) => Some(*v),
        _ => None,
    })
}

/// A histogram's observations and their sum in this thread's tests.
pub fn histogram_value(name: &str, values: &[&str]) -> Option<(u64, f64)> {
    let key = (name.to_owned(), values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>());
    METRICS.with(|m| match m.borrow().get(&key) {
        Some(MetricValue::Histogram { count, sum }) => Some((*count, *sum)),
        _ => None,
    })
}

/// What [`crate::config`] returns in this thread's tests (JSON).
pub fn set_config(json: &str) {
    CONFIG.with(|c| *c.borrow_mut() = json.to_owned());
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn config_for_tests() -> String {
    CONFIG.with(|c| c.borrow().clone())
}

/// A healthy engine `id` (`host:port`) with `load` running streams.
pub fn engine(id: &str, load: u32) -> Engine {
    let (host, port) = id.rsplit_once(':').unwrap_or((id, "6878"));
    Engine {
        id: id.to_owned(),
        host: host.to_owned(),
        port: port.parse().unwrap_or(6878),
        labels: Vec::new(),
        forwarded: false,
        healthy: true,
        active_streams: load,
        pending_streams: 0,
        capacity: 3,
    }
}

/// `engine` with labels.
pub fn engine_with_labels(id: &str, load: u32, labels: &[(&str, &str)]) -> Engine {
    let mut e = engine(id, load);
    e.labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    e
}

/// A request for a content id.
pub fn request(content_key: &str) -> Request {
    Request {
        content_key: content_key.to_owned(),
        key_type: KeyType::ContentId,
        client_address: None,
        query: Vec::new(),
        user: None,
    }
}

/// A TS player of `user` (none: anyone, in open mode) from `address`
/// (`ip:port`) asking for a content id.
pub fn viewer(user: Option<&str>, address: &str, content_key: &str) -> crate::Viewer {
    crate::Viewer {
        user: user.map(str::to_owned),
        client_address: Some(address.to_owned()),
        content_key: content_key.to_owned(),
        key_type: KeyType::ContentId,
        channel_name: None,
        channel_group: None,
        kind: crate::PlayerKind::Ts,
        query: Vec::new(),
    }
}

/// A stream of a content id.
pub fn stream(content_key: &str) -> Stream {
    Stream {
        content_key: content_key.to_owned(),
        key_type: KeyType::ContentId,
        engine_id: None,
        channel: None,
    }
}
