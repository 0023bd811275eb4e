//! Plugins' metrics in the Prometheus text format: what `/metrics` adds
//! after acemux's own, and what `acemux plugin filter|select` print.

use std::fmt::Write;

use super::bindings::MetricKind;
use super::metrics::{MetricsRegistry, PREFIX, Value, kind_name};

/// Appends every plugin's metrics: one family per name (plugins that use
/// one name share it, each series labelled with its plugin), help and
/// kind from the first plugin by name.
pub fn write(out: &mut String, registry: &MetricsRegistry) {
    for (name, parts) in registry.snapshot() {
        let Some(first) = parts.first() else { continue };
        let family = format!("{PREFIX}{name}");
        let _ = writeln!(out, "# HELP {family} {}", escape_help(&first.decl.help));
        let _ = writeln!(out, "# TYPE {family} {}", kind_name(first.decl.kind));
        for part in &parts {
            for series in &part.series {
                let mut labels = format!("plugin=\"{}\"", escape_value(&part.plugin));
                for (label, value) in part.decl.labels.iter().zip(&series.labels) {
                    let _ = write!(labels, ",{label}=\"{}\"", escape_value(value));
                }
                match (&series.value, part.decl.kind) {
                    (Value::Histogram { counts, sum }, MetricKind::Histogram) => {
                        let mut cumulative = 0u64;
                        let bounds = part.decl.buckets.iter().map(|b| number(*b)).chain(["+Inf".to_owned()]);
                        for (bound, n) in bounds.zip(counts) {
                            cumulative += n;
                            let _ = writeln!(out, "{family}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
                        }
                        let _ = writeln!(out, "{family}_sum{{{labels}}} {}", number(*sum));
                        let _ = writeln!(out, "{family}_count{{{labels}}} {cumulative}");
                    }
                    (Value::Scalar(v), _) => {
                        let _ = writeln!(out, "{family}{{{labels}}} {}", number(*v));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A sample value or bound as Prometheus parses it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v:?}")
    }
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A label value in the text format (`/metrics` escapes its own labels
/// with it too).
pub fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
