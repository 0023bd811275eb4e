//! Plugins' own metrics end to end: what a Rust plugin counts through the
//! SDK reaches `/metrics` under `acemux_plugin_…{plugin="…"}`, survives a
//! reload and goes with the plugin; a plugin that breaks every rule of the
//! interface is held to its bounds and never fails for it; plugin label
//! values are for callers who see full status.

use std::time::Duration;

use ace_sim::SimConfig;
use acemux_test_artifacts as wasm;
use acemux_tests::plugins::{install, metric, metrics_text, plugin, set_settings};
use acemux_tests::{Harness, TempDir, content_id};

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 4_000_000, ..SimConfig::default() }
}

const DROPPED: &str = "acemux_plugin_null_packets_dropped_total{plugin=\"null-strip\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_plugins_counter_and_histogram_reach_metrics_and_outlive_a_reload() {
    let dir = TempDir::new("plugin-metrics");
    install(dir.path(), "null-strip", wasm::NULL_STRIP, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    assert_eq!(plugin(&h, "null-strip").await["status"], "active");
    let mut player = h.player(&content_id(31)).await;
    assert!(player.read_at_least(300_000, Duration::from_secs(10)).await);

    let counted =
        h.wait_for(Duration::from_secs(5), || async { metric(&h, DROPPED).await > Some(0.0) }).await;
    assert!(counted, "{}", metrics_text(&h, None).await);
    let text = metrics_text(&h, None).await;
    for line in [
        "# TYPE acemux_plugin_null_packets_dropped_total counter",
        "# TYPE acemux_plugin_batch_packets histogram",
        "acemux_plugins_active{plugin=\"null-strip\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    let batches = metric(&h, "acemux_plugin_batch_packets_count{plugin=\"null-strip\"}").await.unwrap();
    let inf = metric(&h, "acemux_plugin_batch_packets_bucket{plugin=\"null-strip\",le=\"+Inf\"}").await;
    assert!(batches >= 1.0 && inf >= Some(batches), "{text}");
    let p = plugin(&h, "null-strip").await;
    assert_eq!(
        (p["metrics"]["metrics"].as_u64(), p["metrics"]["series"].as_u64()),
        (Some(2), Some(2)),
        "{p}"
    );
    assert_eq!(p["metrics"]["refused"], 0, "{p}");

    // A settings change reloads the plugin: the counter goes on from where
    // it was (the same declarations keep their series).
    let before = metric(&h, DROPPED).await.unwrap();
    set_settings(dir.path(), "null-strip", "order = 5\n");
    let reloaded =
        h.wait_for(Duration::from_secs(20), || async { plugin(&h, "null-strip").await["order"] == 5 }).await;
    assert!(reloaded, "{}", plugin(&h, "null-strip").await);
    let after = metric(&h, DROPPED).await;
    assert!(after >= Some(before), "the reload reset the counter: {after:?} (was {before})");
    assert!(player.read_at_least(300_000, Duration::from_secs(10)).await);
    let grew =
        h.wait_for(Duration::from_secs(5), || async { metric(&h, DROPPED).await > Some(before) }).await;
    assert!(grew, "after the reload: {:?} (was {before})", metric(&h, DROPPED).await);

    // The plugin removed: its metrics go with it.
    std::fs::remove_file(dir.path().join("null-strip.wasm")).unwrap();
    let gone = h.wait_for(Duration::from_secs(20), || async { metric(&h, DROPPED).await.is_none() }).await;
    assert!(gone, "{}", metrics_text(&h, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_floods_its_metrics_is_held_to_its_cap_and_never_fails_for_it() {
    let dir = TempDir::new("metric-flood");
    install(dir.path(), "metric-flood", wasm::METRIC_FLOOD, Some("max_series = 5\n"));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.front.admin_token = Some("m3trics".into());
    })
    .await;
    let mut player = h.player(&content_id(32)).await;
    assert!(player.read_at_least(400_000, Duration::from_secs(10)).await, "the stream plays under the flood");
    let report = player.report();
    assert!(report.aligned && report.gaps == 0 && report.video_packets > 1000, "{report:?}");

    let full = h
        .wait_for(Duration::from_secs(5), || async {
            plugin(&h, "metric-flood").await["metrics"]["series"] == 5
        })
        .await;
    let p = plugin(&h, "metric-flood").await;
    assert!(full, "{p}");
    assert_eq!(p["status"], "active", "{p}");
    assert_eq!(p["stats"]["errors"], 0, "refusals are no failures: {p}");
    assert_eq!(p["metrics"]["max_series"], 5, "{p}");
    assert_eq!(p["metrics"]["metrics"], 64, "the cap on metrics: {p}");
    assert!(p["metrics"]["refused"].as_u64().unwrap() > 50, "{p}");
    assert!(p["metrics"]["last_refusal"].is_null(), "the reason may quote a label value: admins only: {p}");

    // Without the admin token: acemux's per-plugin figures, none of the
    // plugin's own series (their label values are the plugin's text).
    let redacted = metrics_text(&h, None).await;
    assert!(redacted.contains("acemux_plugins_metric_series{plugin=\"metric-flood\"} 5"), "{redacted}");
    assert!(!redacted.contains("acemux_plugin_flood_total"), "{redacted}");
    let refusals = redacted
        .lines()
        .find_map(|l| l.strip_prefix("acemux_plugins_metric_refusals_total{plugin=\"metric-flood\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(refusals > Some(50), "{redacted}");

    let text = metrics_text(&h, Some("m3trics")).await;
    let flood: Vec<&str> = text.lines().filter(|l| l.starts_with("acemux_plugin_flood_total{")).collect();
    assert_eq!(flood.len(), 5, "exactly the cap: {flood:#?}");
    assert!(flood.iter().all(|l| l.ends_with(" 1.0")), "only the valid add counted: {flood:#?}");
    assert!(!text.contains("Bad-Name") && !text.contains("no_suffix") && !text.contains(&"x".repeat(200)));
    let admin = h.http.get(h.url("/plugins")).bearer_auth("m3trics").send().await.unwrap();
    let admin: serde_json::Value = admin.json().await.unwrap();
    let flood = admin["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "metric-flood").unwrap();
    assert!(flood["metrics"]["last_refusal"].as_str().is_some_and(|r| !r.is_empty()), "{flood}");
}
