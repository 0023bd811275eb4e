//! Breaks every rule of the `metrics` host interface on every batch — a
//! name acemux refuses, a label set per batch past its cap, an oversized
//! label value, NaN, a counter going down, an observation of a counter,
//! more metrics than allowed, handles it was never given — and passes the
//! packets through untouched.

use acemux_plugin_sdk::bindings::selector_only::acemux::plugin::metrics::{
    Metric, MetricKind, add, define, observe, series, set,
};
use acemux_plugin_sdk::{Batch, Filter, Stream};

pub struct MetricFlood {
    batches: u64,
}

fn metric(name: &str, kind: MetricKind, labels: &[&str]) -> Metric {
    Metric {
        name: name.to_owned(),
        help: "flood".to_owned(),
        kind,
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        buckets: Vec::new(),
    }
}

impl Filter for MetricFlood {
    fn new(_: &Stream) -> Self {
        let _ = define(&metric("flood_total", MetricKind::Counter, &["batch"]));
        // 63 more fit under the cap of 64; the rest are refused.
        for n in 0..100 {
            let _ = define(&metric(&format!("gauge_{n}"), MetricKind::Gauge, &[]));
        }
        MetricFlood { batches: 0 }
    }

    fn process(&mut self, _batch: &mut Batch) {
        self.batches += 1;
        let _ = define(&metric("Bad-Name", MetricKind::Gauge, &[]));
        let _ = define(&metric("no_suffix", MetricKind::Counter, &[]));
        if let Ok(flood) = define(&metric("flood_total", MetricKind::Counter, &["batch"])) {
            if let Ok(s) = series(flood, &[self.batches.to_string()]) {
                let _ = add(s, 1.0);
                let _ = add(s, -1.0);
                let _ = add(s, f64::NAN);
                let _ = set(s, 3.0);
                let _ = observe(s, 1.0);
            }
            let _ = series(flood, &["x".repeat(1024)]);
            let _ = series(flood, &[]);
        }
        let _ = add(u32::MAX, 1.0);
        let _ = series(u32::MAX, &[]);
    }
}

acemux_plugin_sdk::export!(MetricFlood: filter);
