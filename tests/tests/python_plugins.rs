//! Plugins written in Python, built by `componentize-py` from `wit/` and
//! loaded by acemux unchanged, under live players: a selector (and the
//! compile cache that makes such a plugin, an 18 MB component, live at once
//! when its code is known), an event hook, and a plugin built for another
//! version of the contract. Skipped loudly without `componentize-py`
//! (`pip install componentize-py==0.25.0`), failed under
//! `ACEMUX_REQUIRE_PROGRAMS`.

use std::path::Path;
use std::time::Duration;

use ace_sim::SimConfig;
use acemux_tests::log_capture::plugin_log;
use acemux_tests::plugins::{
    assert_called_without_errors, assert_refused_for_version, install, metric, play_contents, plugin,
};
use acemux_tests::toolchains::{build_python, python_available, repo, wit, wit_of_version};
use acemux_tests::{Harness, TempDir, content_id};

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 500_000, ..SimConfig::default() }
}

/// Two engines; the one the built-in rule would not pick (the larger id)
/// carries the region of 127.0.0.x players. `ids` gets the engines' ids.
fn settings<'a>(
    ids: &'a mut Vec<String>,
    plugins: &Path,
    cache: &Path,
) -> impl FnOnce(&mut acemux::config::Settings) + 'a {
    let (plugins, cache) = (plugins.to_path_buf(), cache.to_path_buf());
    move |s| {
        *ids = s.engines.engines.iter().map(|e| format!("{}:{}", e.host, e.port)).collect();
        let other = usize::from(ids[0] < ids[1]);
        s.engines.engines[other].labels.insert("region".into(), "local".into());
        s.plugins.plugins_dir = acemux::values::OrNone(Some(plugins));
        s.plugins.plugin_cache = Some(acemux::values::OrNone(Some(cache)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_selector_chooses_the_engine_and_known_code_loads_from_the_cache() {
    if !python_available("python_plugins::a_python_selector_chooses_the_engine") {
        return;
    }
    let build = TempDir::new("py-build");
    let wasm = build_python("region-selector", "selector-plugin", &wit(), build.path()).await;
    // The author's bench (`acemux plugin check`) reads it as acemux will.
    acemux_tests::toolchains::assert_bench_reads(&wasm, "selector").await;
    let plugins = TempDir::new("py-plugins");
    let cache = TempDir::new("py-cache");

    let mut ids = Vec::new();
    let mut h =
        Harness::start_many(vec![sim(), sim()], settings(&mut ids, plugins.path(), cache.path())).await;
    let labelled = usize::from(ids[0] < ids[1]);
    // Dropped into the running acemux: listed as `loading` while it
    // compiles (seconds: an 18 MB component), then active.
    let toml =
        std::fs::read_to_string(repo().join("plugins/python/region-selector/region-selector.toml")).unwrap();
    install(plugins.path(), "region-selector", wasm.to_str().unwrap(), Some(&toml));
    let seen_loading = h
        .wait_for(Duration::from_secs(10), || async {
            plugin(&h, "region-selector").await["status"] == "loading"
        })
        .await;
    assert!(seen_loading, "never listed as loading: {}", plugin(&h, "region-selector").await);
    let loaded = h
        .wait_for(Duration::from_secs(120), || async {
            plugin(&h, "region-selector").await["status"] == "active"
        })
        .await;
    let first = plugin(&h, "region-selector").await;
    assert!(loaded, "{first}");
    assert_eq!(first["compiled"], "fresh", "{first}");
    assert_eq!(first["capabilities"]["selector"], true);

    // Two contents: the built-in rule would spread them; the Python
    // selector puts both on the engine of the players' region.
    let players = play_contents(&h, 700, 2).await;
    assert_eq!(h.engines[labelled].counters().starts, 2, "the Python selector chose the engine");
    assert_eq!(h.engines[1 - labelled].counters().starts, 0);
    assert_called_without_errors(&h, "region-selector", 2).await;
    drop(players);
    h.shutdown().await;

    // A restart: the same code comes from the compile cache.
    let mut ids = Vec::new();
    let h = Harness::start_many(vec![sim(), sim()], settings(&mut ids, plugins.path(), cache.path())).await;
    let again = plugin(&h, "region-selector").await;
    assert_eq!(again["status"], "active", "{again}");
    assert_eq!(again["compiled"], "cache", "{again}");
    eprintln!(
        "python selector: compiled in {:.0} ms, from the cache in {:.0} ms",
        first["compile_ms"].as_f64().unwrap(),
        again["compile_ms"].as_f64().unwrap()
    );
    let labelled = usize::from(ids[0] < ids[1]);
    let mut p = h.player(&content_id(710)).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(10)).await);
    assert_eq!(h.engines[labelled].counters().starts, 1, "the cached selector chose the engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_event_hook_sees_players_come_and_go_in_order() {
    if !python_available("python_plugins::a_python_event_hook_sees_players_come_and_go_in_order") {
        return;
    }
    let log = plugin_log();
    let build = TempDir::new("py-events-build");
    let wasm = build_python("channel-counter", "event-plugin", &wit(), build.path()).await;
    let plugins = TempDir::new("py-events");
    std::fs::copy(&wasm, plugins.path().join("channel-counter.wasm")).unwrap();
    std::fs::copy(
        repo().join("plugins/python/channel-counter/channel-counter.toml"),
        plugins.path().join("channel-counter.toml"),
    )
    .unwrap();
    let dir = plugins.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(dir))).await;
    let hook = plugin(&h, "channel-counter").await;
    assert_eq!(hook["status"], "active", "{hook}");
    assert_eq!(hook["capabilities"]["events"], true, "{hook}");

    // Two players come, the first leaves, then the second; the stream ends
    // after the grace period.
    let key = content_id(720);
    let mut first = h.player(&key).await;
    assert!(first.read_at_least(10_000, Duration::from_secs(10)).await);
    let mut second = h.player(&key).await;
    assert!(second.read_at_least(10_000, Duration::from_secs(10)).await);
    drop(first);
    // Leaving is seen when acemux's next write to the closed socket fails.
    let first_left = h
        .wait_for(Duration::from_secs(10), || async {
            log.lines_of("channel-counter").iter().any(|l| l.starts_with("player left"))
        })
        .await;
    assert!(first_left, "{:#?}", log.lines_of("channel-counter"));
    drop(second);
    let ended = h
        .wait_for(Duration::from_secs(15), || async {
            log.lines_of("channel-counter").iter().any(|l| l.starts_with("channel"))
        })
        .await;
    let lines = log.lines_of("channel-counter");
    assert!(ended, "no summary: {lines:#?}");
    let lines: Vec<&String> = lines.iter().filter(|l| l.contains(&key)).collect();
    let left = |n: usize| format!("ms: {n} watching");
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(lines[0], &format!("player joined {key} (ts): 1 watching"));
    assert_eq!(lines[1], &format!("player joined {key} (ts): 2 watching"));
    assert!(
        lines[2].starts_with(&format!("player left {key} (ts) after ")) && lines[2].ends_with(&left(1)),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with(&format!("player left {key} (ts) after ")) && lines[3].ends_with(&left(0)),
        "{lines:#?}"
    );
    assert!(lines[4].starts_with(&format!("channel {key} ended (")), "{lines:#?}");
    assert!(lines[4].contains("peak 2 players, 2 joins"), "{lines:#?}");
    let hook = plugin(&h, "channel-counter").await;
    assert_eq!(hook["stats"]["errors"], 0, "{hook}");
    // Its own metrics, through the Python SDK helper, on /metrics.
    let series = |s: &str| format!("acemux_plugin_{s}");
    assert_eq!(metric(&h, &series("joins_total{plugin=\"channel-counter\",kind=\"ts\"}")).await, Some(2.0));
    assert_eq!(metric(&h, &series("players{plugin=\"channel-counter\",kind=\"ts\"}")).await, Some(0.0));
    assert_eq!(metric(&h, &series("watched_seconds_count{plugin=\"channel-counter\"}")).await, Some(2.0));
    assert_eq!(hook["metrics"]["metrics"], 3, "{hook}");
    assert_eq!(hook["metrics"]["refused"], 0, "{hook}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_built_for_another_contract_version_is_refused_naming_both() {
    if !python_available("python_plugins::a_python_plugin_built_for_another_contract_version") {
        return;
    }
    let build = TempDir::new("py-version-build");
    let other = wit_of_version(build.path(), "0.11.0");
    let wasm = build_python("region-selector", "selector-plugin", &other, build.path()).await;
    let plugins = TempDir::new("py-version");
    std::fs::copy(&wasm, plugins.path().join("region-selector.wasm")).unwrap();
    let dir = plugins.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(dir))).await;
    assert_refused_for_version(&h, "region-selector", "0.11.0").await;
}

/// The plugins' own unit tests (plain `unittest`, no WebAssembly) pass: the
/// guide tells authors to test the rule so, and CI keeps the examples honest.
#[tokio::test]
async fn the_python_rules_pass_their_own_unit_tests() {
    for (name, tests) in
        [("region-selector", 4), ("channel-counter", 4), ("file-source", 2), ("watch-hours", 4)]
    {
        let run = tokio::process::Command::new("python3")
            .args(["-B", "-m", "unittest", "-v"])
            .env("PYTHONPATH", repo().join("plugins/python/sdk"))
            .current_dir(repo().join("plugins/python").join(name))
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), run).await.expect("unittest ends").unwrap();
        // unittest reports on stderr.
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {report}");
        assert!(report.contains(&format!("Ran {tests} tests")), "{name}: {report}");
    }
}
