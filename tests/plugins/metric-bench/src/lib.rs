//! Updates a metric `calls` times per batch and passes the packets
//! through: `acemux plugin filter` with `calls = 0` and `calls = 1000`
//! gives what one update costs (docs/benchmarks.md).
//!
//! ```toml
//! [config]
//! calls = 1000
//! kind = "counter"   # or "labelled" (one label), "histogram"
//! ```

use acemux_plugin_sdk::metrics::{Counter, Histogram};
use acemux_plugin_sdk::{Batch, Filter, Stream, config};
use serde::Deserialize;

static PLAIN: Counter = Counter::new("bench_total", "Updates, no label.", &[]);
static LABELLED: Counter = Counter::new("bench_labelled_total", "Updates, one label.", &["engine"]);
static OBSERVED: Histogram = Histogram::new("bench_observed", "Observations.", &[], &[]);

#[derive(Deserialize, Default)]
#[serde(default)]
struct Settings {
    calls: u32,
    kind: String,
}

pub struct MetricBench(Settings);

impl Filter for MetricBench {
    fn new(_: &Stream) -> Self {
        MetricBench(config().unwrap_or_default())
    }

    fn process(&mut self, _batch: &mut Batch) {
        for n in 0..self.0.calls {
            match self.0.kind.as_str() {
                "labelled" => LABELLED.inc_with(&["127.0.0.1:6878"]),
                "histogram" => OBSERVED.observe(f64::from(n % 100) / 1000.0),
                _ => PLAIN.inc(),
            }
        }
    }
}

acemux_plugin_sdk::export!(MetricBench: filter);
