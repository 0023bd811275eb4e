//! A plugin disabled after failures in a row is tried again after a
//! backoff that doubles on each relapse (`recover_after`, `recover_max`),
//! or stays off with `recover = false`; `/plugins` shows the state, the
//! reason, the retry time and the relapses. Through a running acemux with
//! a real component (`moody-selector`: panics on contents whose key starts
//! with `dead`, no opinion on the others).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ace_sim::SimConfig;
use acemux_test_artifacts as wasm;
use acemux_tests::plugins::{install, plugin};
use acemux_tests::{Harness, TempDir, content_id};
use serde_json::Value;

fn dead(n: u32) -> String {
    format!("dead{n:04x}{}", "0".repeat(32))
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Asks for a content (a selection), whatever the answer.
async fn ask(h: &Harness, id: &str) {
    let _ = h.http.get(h.stream_url(id)).timeout(Duration::from_secs(5)).send().await;
}

async fn wait_status(h: &Harness, name: &str, status: &str, limit: Duration) -> Value {
    let until = std::time::Instant::now() + limit;
    loop {
        let p = plugin(h, name).await;
        if p["status"] == status {
            return p;
        }
        assert!(std::time::Instant::now() < until, "{name} not {status} within {limit:?}: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_plugin_is_retried_after_a_doubling_backoff_or_stays_off_when_told() {
    let dir = TempDir::new("recovery");
    let recovering = "max_failures = 2\nrecover_after = \"1s\"\nrecover_max = \"4s\"\n";
    install(dir.path(), "moody", wasm::MOODY_SELECTOR, Some(&format!("order = 1\n{recovering}")));
    install(
        dir.path(),
        "stubborn",
        wasm::MOODY_SELECTOR,
        Some("order = 2\nmax_failures = 2\nrecover = false\n"),
    );
    let d = dir.path().to_path_buf();
    let h = Harness::start(SimConfig::default(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d)))
        .await;

    ask(&h, &dead(1)).await;
    ask(&h, &dead(2)).await;
    let off = plugin(&h, "moody").await;
    assert_eq!(off["status"], "disabled", "{off}");
    assert!(off["disabled_reason"].as_str().is_some_and(|r| r.contains("trap")), "{off}");
    let wait = off["recovery"]["retry_at"].as_f64().expect("a retry time") - now();
    assert!(wait > 0.0 && wait <= 1.0, "first wait {wait} s");
    assert_eq!(off["recovery"]["relapses"], 0);
    let stubborn = plugin(&h, "stubborn").await;
    assert_eq!(stubborn["status"], "disabled");
    assert_eq!(stubborn["recovery"]["retry_at"], Value::Null, "recover = false: no retry");

    // Tried again; the trial fails: a relapse, twice the wait.
    wait_status(&h, "moody", "active", Duration::from_secs(3)).await;
    ask(&h, &dead(3)).await;
    let relapsed = plugin(&h, "moody").await;
    assert_eq!(relapsed["status"], "disabled", "{relapsed}");
    assert_eq!(relapsed["recovery"]["relapses"], 1, "{relapsed}");
    let wait = relapsed["recovery"]["retry_at"].as_f64().unwrap() - now();
    assert!(wait > 1.0 && wait <= 2.0, "second wait {wait} s (doubled)");

    // Tried again; right answers keep it on.
    wait_status(&h, "moody", "active", Duration::from_secs(4)).await;
    for n in 10..13 {
        ask(&h, &content_id(n)).await;
    }
    let healthy = plugin(&h, "moody").await;
    assert_eq!(healthy["status"], "active", "{healthy}");
    assert_eq!(healthy["recovery"]["retries"], 2, "{healthy}");
    assert_eq!(healthy["recovery"]["retry_at"], Value::Null);
    assert!(healthy["stats"]["calls"].as_u64().unwrap() >= 6, "{healthy}");

    // The plugin with `recover = false` is still off; a settings change
    // (a reload) brings it back at once.
    assert_eq!(plugin(&h, "stubborn").await["status"], "disabled");
    acemux_tests::plugins::set_settings(
        dir.path(),
        "stubborn",
        "order = 2\nmax_failures = 2\nrecover = false\n# reloaded\n",
    );
    wait_status(&h, "stubborn", "active", Duration::from_secs(10)).await;
}
