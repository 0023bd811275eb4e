use super::*;

fn metric(name: &str, kind: MetricKind, labels: &[&str]) -> WitMetric {
    WitMetric {
        name: name.into(),
        help: format!("help of {name}"),
        kind,
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        buckets: Vec::new(),
    }
}

fn text(registry: &MetricsRegistry) -> String {
    let mut out = String::new();
    crate::plugins::metrics_text::write(&mut out, registry);
    out
}

#[test]
fn names_labels_and_buckets_are_checked() {
    let bad = [
        metric("Picks_total", MetricKind::Counter, &[]),
        metric("picks", MetricKind::Counter, &[]),
        metric("1picks_total", MetricKind::Counter, &[]),
        metric("picks-total", MetricKind::Counter, &[]),
        metric(&format!("{}_total", "a".repeat(60)), MetricKind::Counter, &[]),
        metric("lag_seconds_total", MetricKind::Histogram, &[]),
        metric("lag_count", MetricKind::Histogram, &[]),
        metric("lag_bucket", MetricKind::Gauge, &[]),
        metric("picks_total", MetricKind::Counter, &["plugin"]),
        metric("picks_total", MetricKind::Counter, &["le"]),
        metric("picks_total", MetricKind::Counter, &["engine", "engine"]),
        metric("picks_total", MetricKind::Counter, &["Engine"]),
        metric("picks_total", MetricKind::Counter, &["a", "b", "c", "d", "e", "f", "g", "h", "i"]),
        WitMetric { buckets: vec![1.0], ..metric("depth", MetricKind::Gauge, &[]) },
        WitMetric { buckets: vec![1.0, 1.0], ..metric("lag", MetricKind::Histogram, &[]) },
        WitMetric { buckets: vec![f64::NAN], ..metric("lag", MetricKind::Histogram, &[]) },
        WitMetric { buckets: (0..21).map(f64::from).collect(), ..metric("lag", MetricKind::Histogram, &[]) },
        WitMetric { help: "h".repeat(201), ..metric("depth", MetricKind::Gauge, &[]) },
    ];
    for m in bad {
        let name = m.name.clone();
        assert!(Declaration::check(m).is_err(), "{name} passed");
    }
    let ok = Declaration::check(WitMetric {
        help: "two\nlines".into(),
        ..metric("lag", MetricKind::Histogram, &[])
    })
    .unwrap();
    assert_eq!(ok.buckets, DEFAULT_BUCKETS);
    assert_eq!(ok.help, "two lines");
}

#[test]
fn counters_gauges_and_histograms_publish_with_the_plugin_label() {
    let registry = Arc::new(MetricsRegistry::default());
    let scope = registry.scope(&Arc::from("picker"), 100);
    let picks = scope.define(metric("picks_total", MetricKind::Counter, &["engine"])).unwrap();
    let a = scope.series(picks, vec!["a \"1\"".into()]).unwrap();
    scope.update(a, Update::Add, 2.0).unwrap();
    scope.update(a, Update::Add, 0.5).unwrap();
    assert!(scope.update(a, Update::Add, -1.0).is_err(), "a counter never goes down");
    assert!(scope.update(a, Update::Set, 1.0).is_err(), "a counter is not set");
    let depth = scope.define(metric("depth", MetricKind::Gauge, &[])).unwrap();
    let d = scope.series(depth, vec![]).unwrap();
    scope.update(d, Update::Set, 7.0).unwrap();
    scope.update(d, Update::Add, -9.0).unwrap();
    let lag = scope
        .define(WitMetric { buckets: vec![0.1, 1.0], ..metric("lag_seconds", MetricKind::Histogram, &[]) })
        .unwrap();
    let l = scope.series(lag, vec![]).unwrap();
    for v in [0.05, 0.1, 0.5, 3.0] {
        scope.update(l, Update::Observe, v).unwrap();
    }
    assert!(scope.update(l, Update::Observe, f64::INFINITY).is_err());
    let out = text(&registry);
    for line in [
        "# TYPE acemux_plugin_picks_total counter",
        "acemux_plugin_picks_total{plugin=\"picker\",engine=\"a \\\"1\\\"\"} 2.5",
        "# TYPE acemux_plugin_depth gauge",
        "acemux_plugin_depth{plugin=\"picker\"} -2.0",
        "# TYPE acemux_plugin_lag_seconds histogram",
        "acemux_plugin_lag_seconds_bucket{plugin=\"picker\",le=\"0.1\"} 2",
        "acemux_plugin_lag_seconds_bucket{plugin=\"picker\",le=\"1.0\"} 3",
        "acemux_plugin_lag_seconds_bucket{plugin=\"picker\",le=\"+Inf\"} 4",
        "acemux_plugin_lag_seconds_sum{plugin=\"picker\"} 3.65",
        "acemux_plugin_lag_seconds_count{plugin=\"picker\"} 4",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in\n{out}");
    }
    assert_eq!(scope.own.view().refused, 3);
}

#[test]
fn label_sets_are_capped_per_plugin_and_values_bounded() {
    let registry = Arc::new(MetricsRegistry::default());
    let scope = registry.scope(&Arc::from("greedy"), 3);
    let m = scope.define(metric("seen_total", MetricKind::Counter, &["id"])).unwrap();
    for id in 0..3 {
        scope.series(m, vec![id.to_string()]).unwrap();
    }
    let refused = scope.series(m, vec!["3".into()]).unwrap_err();
    assert!(refused.contains("max_series"), "{refused}");
    assert_eq!(scope.series(m, vec!["1".into()]).unwrap(), 1, "a known label set is found again");
    assert!(scope.series(m, vec!["x".repeat(129)]).is_err());
    assert!(scope.series(m, vec![]).is_err(), "one value per label");
    assert!(scope.series(99, vec![]).is_err());
    assert!(scope.update(99, Update::Add, 1.0).is_err());
    let view = scope.own.view();
    assert_eq!((view.series, view.max_series, view.refused), (3, 3, 5));
    for n in 1..MAX_METRICS {
        scope.define(metric(&format!("m{n}"), MetricKind::Gauge, &[])).unwrap();
    }
    assert!(scope.define(metric("one_more", MetricKind::Gauge, &[])).is_err());
}

#[test]
fn a_reload_keeps_values_and_a_newer_declaration_replaces_an_older() {
    let registry = Arc::new(MetricsRegistry::default());
    let name: Arc<str> = Arc::from("p");
    let first = registry.scope(&name, 10);
    let m = first.define(metric("hits_total", MetricKind::Counter, &[])).unwrap();
    let s = first.series(m, vec![]).unwrap();
    first.update(s, Update::Add, 5.0).unwrap();
    assert!(first.define(metric("hits_total", MetricKind::Counter, &["x"])).is_err(), "same load: refused");

    let same = registry.scope(&name, 10);
    assert_eq!(same.define(metric("hits_total", MetricKind::Counter, &[])).unwrap(), m);
    assert!(text(&registry).contains("acemux_plugin_hits_total{plugin=\"p\"} 5.0"));

    let newer = registry.scope(&name, 10);
    let m2 = newer.define(metric("hits_total", MetricKind::Counter, &["x"])).unwrap();
    assert_ne!(m2, m);
    assert!(first.update(s, Update::Add, 1.0).is_err(), "the old handle is dead");
    assert!(!text(&registry).contains("hits_total{plugin=\"p\"}"));
    assert!(
        first.define(metric("hits_total", MetricKind::Counter, &[])).is_err(),
        "an older load cannot take it back"
    );
    registry.retain(|_| false);
    assert!(text(&registry).is_empty());
}

#[test]
fn plugins_share_a_name_only_as_one_kind() {
    let registry = Arc::new(MetricsRegistry::default());
    let a = registry.scope(&Arc::from("a"), 10);
    let b = registry.scope(&Arc::from("b"), 10);
    let ma = a.define(metric("streams", MetricKind::Gauge, &[])).unwrap();
    assert!(b.define(metric("streams", MetricKind::Histogram, &[])).is_err());
    assert!(b.define(metric("streams_count", MetricKind::Gauge, &[])).is_ok());
    assert!(a.define(metric("depth", MetricKind::Histogram, &[])).is_ok());
    assert!(b.define(metric("depth_sum", MetricKind::Gauge, &[])).is_err(), "a histogram's samples");
    let mb = b.define(metric("streams", MetricKind::Gauge, &[])).unwrap();
    a.update(a.series(ma, vec![]).unwrap(), Update::Set, 1.0).unwrap();
    b.update(b.series(mb, vec![]).unwrap(), Update::Set, 2.0).unwrap();
    let out = text(&registry);
    assert_eq!(out.matches("# TYPE acemux_plugin_streams gauge").count(), 1, "{out}");
    assert!(
        out.contains("acemux_plugin_streams{plugin=\"a\"} 1.0\nacemux_plugin_streams{plugin=\"b\"} 2.0\n"),
        "{out}"
    );
}

proptest::proptest! {
    /// Whatever a plugin calls, in whatever order: no panic, the cap
    /// holds, and every published line is a comment or `name{…} number`.
    #[test]
    fn any_calls_keep_the_bounds(
        calls in proptest::collection::vec(
            (0u8..5, ".{0,12}", 0u32..6, proptest::num::f64::ANY, proptest::collection::vec(".{0,8}", 0..3)),
            0..60,
        ),
    ) {
        let registry = Arc::new(MetricsRegistry::default());
        let scope = registry.scope(&Arc::from("fuzz"), 5);
        for (op, name, handle, value, labels) in calls {
            let kind = [MetricKind::Counter, MetricKind::Gauge, MetricKind::Histogram][handle as usize % 3];
            let _ = match op {
                0 => scope.define(WitMetric { name, help: String::new(), kind, labels, buckets: vec![] }).map(drop),
                1 => scope.series(handle, labels).map(drop),
                2 => scope.update(handle, Update::Add, value),
                3 => scope.update(handle, Update::Set, value),
                _ => scope.update(handle, Update::Observe, value),
            };
        }
        proptest::prop_assert!(scope.own.view().series <= 5);
        for line in text(&registry).lines() {
            let sample = line.rsplit_once(' ').is_some_and(|(_, v)| v.parse::<f64>().is_ok() || v == "+Inf");
            proptest::prop_assert!(line.starts_with("# ") || (line.starts_with(PREFIX) && sample), "{}", line);
        }
    }
}
