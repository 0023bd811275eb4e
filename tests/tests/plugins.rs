//! WebAssembly plugins end to end: real components built by the test build
//! (`acemux-test-artifacts`), loaded from a directory into a running acemux.

use std::time::{Duration, Instant};

use ace_sim::SimConfig;
use acemux::plugins::host_settings::PluginCompiler;
use acemux_test_artifacts as wasm;
use acemux_tests::plugins::{install, plugin, plugins};
use acemux_tests::{Harness, PlayerClient, TempDir, TsReport, content_id};

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 4_000_000, ..SimConfig::default() }
}

/// Null packets after the first video packet (keepalive before data is
/// not the filter's business).
fn nulls_after_video(bytes: &[u8]) -> usize {
    let start = bytes
        .chunks_exact(188)
        .position(|p| ace_sim::video_counter(p).is_some())
        .unwrap_or(bytes.len() / 188);
    TsReport::of(&bytes[start * 188..]).null_packets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_plugins_choose_the_engine_and_failures_fall_through() {
    let dir = TempDir::new("sel");
    let mut ids = Vec::new();
    let engines = vec![sim(), sim()];
    let h = Harness::start_many(engines, |s| {
        ids = s.engines.engines.iter().map(|e| format!("{}:{}", e.host, e.port)).collect();
        // The built-in rule would pick the smaller id; label the other one.
        let other = if ids[0] > ids[1] { 0 } else { 1 };
        s.engines.engines[other].labels.insert("region".into(), "b".into());
        s.plugins.plugins_dir = acemux::values::OrNone(Some(dir.path().to_path_buf()));
    })
    .await;
    let labelled = if ids[0] > ids[1] { 0 } else { 1 };
    install(dir.path(), "panic-selector", wasm::PANIC_SELECTOR, Some("order = 1\nmax_failures = 100\n"));
    install(
        dir.path(),
        "label-affinity",
        wasm::LABEL_AFFINITY,
        Some("order = 2\n[config]\nlabels = { region = \"b\" }\n"),
    );
    let loaded = h.wait_for(Duration::from_secs(5), || async { plugins(&h).await.len() == 2 }).await;
    assert!(loaded, "{:#?}", plugins(&h).await);
    let mut p = h.player(&content_id(1)).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    assert_eq!(h.engines[labelled].counters().starts, 1, "label-affinity chose the engine");
    let panicky = plugin(&h, "panic-selector").await;
    assert!(panicky["stats"]["errors"].as_u64().unwrap() >= 1, "{panicky}");
    assert_eq!(panicky["capabilities"]["selector"], true);
    let affinity = plugin(&h, "label-affinity").await;
    assert_eq!(affinity["status"], "active");
    assert!(affinity["stats"]["calls"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_strip_removes_null_packets_for_every_player() {
    null_strip_for_every_player(PluginCompiler::Cranelift).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_strip_compiled_by_winch_removes_null_packets_for_every_player() {
    null_strip_for_every_player(PluginCompiler::Winch).await;
}

async fn null_strip_for_every_player(compiler: PluginCompiler) {
    let dir = TempDir::new("null");
    install(dir.path(), "null-strip", wasm::NULL_STRIP, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.plugins.plugin_compiler = compiler;
    })
    .await;
    assert_eq!(plugin(&h, "null-strip").await["status"], "active");
    let id = content_id(2);
    let mut players = Vec::new();
    for _ in 0..3 {
        players.push(h.player(&id).await);
    }
    for (i, p) in players.iter_mut().enumerate() {
        assert!(p.read_at_least(300_000, Duration::from_secs(10)).await);
        let r = p.report();
        assert!(r.aligned && r.gaps == 0 && r.video_packets > 1000, "player {i}: {r:?}");
        assert_eq!(nulls_after_video(&p.received), 0, "player {i} still gets null packets");
    }
    let stats = &plugin(&h, "null-strip").await["stats"];
    assert!(stats["calls"].as_u64().unwrap() > 0 && stats["errors"] == 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_plugin_hears_a_stream_lifecycle() {
    let dir = TempDir::new("ev");
    install(dir.path(), "event-log", wasm::EVENT_LOG, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.stream.grace_period = Duration::from_millis(100);
    })
    .await;
    let mut p = h.player(&content_id(3)).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    drop(p);
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);
    // engine-selected, stream-started, player-connected, player-disconnected,
    // stream-ended; `calls` also counts the instantiation.
    let delivered = h
        .wait_for(Duration::from_secs(5), || async {
            plugin(&h, "event-log").await["stats"]["calls"].as_u64().unwrap_or(0) >= 6
        })
        .await;
    let ev = plugin(&h, "event-log").await;
    assert!(delivered, "events not delivered: {ev}");
    assert_eq!(ev["stats"]["errors"], 0, "{ev}");
    assert_eq!(ev["capabilities"]["events"], true);
}

/// The stream's engine statistics reach event hooks as `stream-stats`
/// (the `event-log` example logs peers and speeds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_plugins_hear_the_engines_statistics() {
    let log = acemux_tests::log_capture::plugin_log();
    let dir = TempDir::new("ev-stats");
    install(dir.path(), "event-log", wasm::EVENT_LOG, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.engines.engine_stat_interval = Duration::from_millis(500);
    })
    .await;
    let id = content_id(33);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    let heard = || {
        log.lines_of("event-log")
            .into_iter()
            .filter(|l| l.starts_with("event=stream-stats"))
            .collect::<Vec<_>>()
    };
    assert!(
        h.wait_for(Duration::from_secs(5), || async { heard().len() >= 2 }).await,
        "{:?}",
        log.lines_of("event-log")
    );
    let line = heard().pop().unwrap();
    assert!(line.contains(&format!("content={id}")) && line.contains(" status=dl peers="), "{line}");
    assert!(!line.contains("peers=-"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_plugins_fail_alone_while_players_get_valid_ts() {
    misbehaving_plugins_fail_alone(PluginCompiler::Cranelift).await;
}

/// Winch's code must be stopped at the budget (epoch interruption) and
/// capped in memory just like Cranelift's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_plugins_compiled_by_winch_fail_alone_too() {
    misbehaving_plugins_fail_alone(PluginCompiler::Winch).await;
}

async fn misbehaving_plugins_fail_alone(compiler: PluginCompiler) {
    let dir = TempDir::new("bad");
    install(dir.path(), "trap-filter", wasm::TRAP_FILTER, Some("order = 1\n"));
    install(dir.path(), "spin-filter", wasm::SPIN_FILTER, Some("order = 2\ntime_budget = \"20ms\"\n"));
    // A generous budget: on a busy machine growing to the cap can take
    // longer than the default 10 ms, and this test is about the cap.
    install(
        dir.path(),
        "hog-filter",
        wasm::HOG_FILTER,
        Some("order = 3\nmemory_limit = \"8MiB\"\ntime_budget = \"1s\"\n"),
    );
    install(dir.path(), "broken-filter", wasm::BROKEN_FILTER, Some("order = 4\n"));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.plugins.plugin_compiler = compiler;
    })
    .await;
    assert_eq!(plugins(&h).await.len(), 4);
    let id = content_id(4);
    let mut players = Vec::new();
    for _ in 0..10 {
        players.push(h.player(&id).await);
    }
    for (i, p) in players.iter_mut().enumerate() {
        assert!(p.read_at_least(300_000, Duration::from_secs(15)).await, "player {i} starved");
        let r = p.report();
        assert!(r.aligned && r.gaps == 0 && r.video_packets > 1000, "player {i}: {r:?}");
    }
    for (name, kind) in [
        ("trap-filter", "errors"),
        ("spin-filter", "timeouts"),
        ("hog-filter", "errors"),
        ("broken-filter", "errors"),
    ] {
        let p = plugin(&h, name).await;
        assert!(p["stats"][kind].as_u64().unwrap() >= 1, "{name} did not fail as expected: {p}");
        assert_eq!(p["status"], "disabled", "{name} not disabled after repeated failures: {p}");
    }
    // Each failure says why, in an operator's words.
    assert_eq!(plugin(&h, "hog-filter").await["last_error"], "memory limit 8 MiB reached");
    assert_eq!(plugin(&h, "spin-filter").await["disabled_reason"], "time budget 20 ms exceeded");
    // The host is fine and keeps serving.
    let (code, _) = h.get_json("/healthz").await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_filters_under_players_without_gaps() {
    let dir = TempDir::new("reload");
    install(dir.path(), "filter", wasm::NULL_STRIP, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let id = content_id(5);
    let mut players: Vec<PlayerClient> = Vec::new();
    for _ in 0..10 {
        players.push(h.player(&id).await);
    }
    for p in players.iter_mut() {
        assert!(p.read_at_least(100_000, Duration::from_secs(10)).await);
        assert_eq!(nulls_after_video(&p.received), 0);
    }
    let marks: Vec<usize> = players.iter().map(|p| p.received.len()).collect();

    // Replace (write + rename) the null stripper with a pass-through filter.
    let renamed = Instant::now();
    install(dir.path(), "filter", wasm::PASS_FILTER, None);
    let mut first = players.remove(0);
    let mut seen_after = None;
    while renamed.elapsed() < Duration::from_secs(5) {
        assert!(first.read_at_least(first.received.len() + 1, Duration::from_secs(2)).await);
        if nulls_after_video(&first.received[marks[0] - marks[0] % 188..]) > 0 {
            seen_after = Some(renamed.elapsed());
            break;
        }
    }
    let latency = seen_after.expect("the new filter never took effect");
    eprintln!("reload latency (rename to first packet through the new filter): {latency:?}");
    assert!(latency < Duration::from_secs(3), "reload took {latency:?}");
    players.insert(0, first);
    for (i, p) in players.iter_mut().enumerate() {
        assert!(p.read_at_least(p.received.len() + 100_000, Duration::from_secs(10)).await);
        let r = p.report();
        assert!(r.aligned && r.gaps == 0, "player {i} lost bytes or alignment in the reload: {r:?}");
    }

    // A truncated file keeps the running version and reports the error.
    let bytes = std::fs::read(wasm::NULL_STRIP).unwrap();
    let tmp = dir.path().join(".trunc");
    std::fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&tmp, dir.path().join("filter.wasm")).unwrap();
    let reported = h
        .wait_for(Duration::from_secs(5), || async { plugin(&h, "filter").await["reload_error"].is_string() })
        .await;
    let p = plugin(&h, "filter").await;
    assert!(reported, "truncated file not reported: {p}");
    assert_eq!(p["status"], "active", "previous version should keep running: {p}");

    // Putting the running version back clears the reload error.
    install(dir.path(), "filter", wasm::PASS_FILTER, None);
    let cleared = h
        .wait_for(Duration::from_secs(5), || async { plugin(&h, "filter").await["reload_error"].is_null() })
        .await;
    assert!(cleared, "reload error kept after the good file came back: {}", plugin(&h, "filter").await);

    // Removing the file unloads it.
    std::fs::remove_file(dir.path().join("filter.wasm")).unwrap();
    assert!(
        h.wait_for(Duration::from_secs(5), || async { plugins(&h).await.is_empty() }).await,
        "not unloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_see_nothing_unless_granted() {
    let dir = TempDir::new("sandbox");
    install(dir.path(), "probe", wasm::SANDBOX_PROBE, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let (code, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(6))).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"], "stream refused: env=[] fs=denied net=denied");
    assert_eq!(h.engine().counters().starts, 0);

    // Granted by the operator: the variables listed (those set), and one
    // read-only directory.
    let granted = TempDir::new("granted");
    let settings = format!(
        "[grants]\nenv = [\"PATH\", \"ACEMUX_TEST_NEVER_SET\"]\ndirs = {{ {:?} = \"/probe\" }}\n",
        granted.path().display().to_string()
    );
    std::fs::write(dir.path().join("probe.toml"), settings).unwrap();
    let reloaded = h
        .wait_for(Duration::from_secs(5), || async {
            let (_, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(7))).await;
            body["error"].as_str().is_some_and(|e| e.contains("fs=allowed"))
        })
        .await;
    let (_, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(8))).await;
    assert!(reloaded, "grants not applied: {body}");
    let e = body["error"].as_str().unwrap();
    assert_eq!(e, "stream refused: env=[PATH] fs=allowed net=denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_engine_returns_a_content_to_its_engine() {
    let dir = TempDir::new("sticky");
    install(dir.path(), "sticky-engine", wasm::STICKY_ENGINE, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start_many(vec![sim(), sim(), sim()], |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.stream.grace_period = Duration::from_millis(100);
        s.engines.max_streams_per_engine = 10;
    })
    .await;
    let engine_of = |h: &Harness| -> Vec<u64> { h.engines.iter().map(|e| e.counters().starts).collect() };
    let mut homes = Vec::new();
    for n in 0..6u32 {
        let before = engine_of(&h);
        let mut p = h.player(&content_id(100 + n)).await;
        assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
        let after = engine_of(&h);
        homes.push((0..3).find(|i| after[*i] > before[*i]).unwrap());
    }
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);
    // Same contents again, one at a time: each returns to its engine even
    // though the built-in rule would fill engines in id order.
    for n in 0..6u32 {
        let before = engine_of(&h);
        let mut p = h.player(&content_id(100 + n)).await;
        assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
        let after = engine_of(&h);
        let home = (0..3).find(|i| after[*i] > before[*i]).unwrap();
        assert_eq!(home, homes[n as usize], "content {n} moved");
        drop(p);
        assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);
    }
    let distinct: std::collections::BTreeSet<usize> = homes.iter().copied().collect();
    assert!(distinct.len() > 1, "six contents all on one engine: {homes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_filter_drops_configured_pids_but_keeps_the_tables() {
    let dir = TempDir::new("pid");
    install(dir.path(), "pid-filter", wasm::PID_FILTER, Some("[config]\ndrop_pids = [8191]\n"));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let mut p = h.player(&content_id(9)).await;
    assert!(p.read_at_least(300_000, Duration::from_secs(10)).await);
    let r = p.report();
    assert!(r.aligned && r.gaps == 0, "{r:?}");
    assert_eq!(nulls_after_video(&p.received), 0);
    let pids: std::collections::BTreeSet<u16> = p.received.chunks_exact(188).map(acemux_ts::pid).collect();
    assert!(
        pids.contains(&0) && pids.contains(&ace_sim::PMT_PID) && pids.contains(&ace_sim::VIDEO_PID),
        "{pids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_filter_drops_batches_until_disabled() {
    let dir = TempDir::new("closed");
    install(dir.path(), "broken", wasm::BROKEN_FILTER, Some("fail_mode = \"closed\"\nmax_failures = 3\n"));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let mut p = h.player(&content_id(10)).await;
    assert!(p.read_at_least(300_000, Duration::from_secs(10)).await);
    let r = p.report();
    // Three batches were dropped, then the plugin was disabled and the
    // stream flows unfiltered: still whole packets.
    assert!(r.aligned && r.video_packets > 1000, "{r:?}");
    let b = plugin(&h, "broken").await;
    assert_eq!(b["status"], "disabled", "{b}");
    assert_eq!(b["stats"]["errors"], 3, "{b}");
    assert!(b["last_error"].as_str().unwrap().contains("not whole TS packets"), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_multiplying_its_output_fails_as_malformed() {
    let dir = TempDir::new("bloat");
    install(
        dir.path(),
        "bloat",
        wasm::BLOAT_FILTER,
        // (A budget far above what twenty copies of a batch take: this test
        // is about the output check, not about time.)
        Some(
            "max_failures = 3
time_budget = \"500ms\"
[config]
times = 20
",
        ),
    );
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let mut p = h.player(&content_id(11)).await;
    assert!(p.read_at_least(300_000, Duration::from_secs(10)).await);
    let r = p.report();
    // Fail-open: the batches pass unchanged, never twenty times over.
    assert!(r.aligned && r.gaps == 0 && r.video_packets > 1000, "{r:?}");
    let session = &h.status().await["sessions"][0];
    let upstream = session["counters"]["upstream_bytes"].as_u64().unwrap();
    let appended = session["buffer"]["appended_bytes"].as_u64().unwrap();
    // (The ring also holds keepalive packets, so not exactly equal.)
    assert!(appended < 2 * upstream, "the ring got {appended} bytes for {upstream} from the engine");
    let b = plugin(&h, "bloat").await;
    assert_eq!(b["status"], "disabled", "{b}");
    assert_eq!(b["stats"]["errors"], 3, "{b}");
    assert!(b["last_error"].as_str().unwrap().contains("over max_output_ratio = 4"), "{b}");
}

/// Filters run in `order`, each on the previous one's output: two filters
/// that repeat every batch 3 and 2 times make every batch 6 times; `/plugins`
/// lists each stream's chain in that order, and a new order takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_filters_compose_in_their_order() {
    let dir = TempDir::new("chain");
    let times =
        |n: u32, order: i32| format!("order = {order}\nmax_output_ratio = 4\n[config]\ntimes = {n}\n");
    install(dir.path(), "thrice", wasm::BLOAT_FILTER, Some(&times(3, 1)));
    install(dir.path(), "twice", wasm::BLOAT_FILTER, Some(&times(2, 2)));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let id = content_id(77);
    let mut player = h.player(&id).await;
    assert!(player.read_at_least(2_000_000, Duration::from_secs(15)).await);
    let status = h.status().await;
    let session = &status["sessions"][0];
    let upstream = session["counters"]["upstream_bytes"].as_f64().unwrap();
    let appended = session["buffer"]["appended_bytes"].as_f64().unwrap();
    let ratio = appended / upstream;
    assert!(
        (5.5..6.6).contains(&ratio),
        "6 times the engine's bytes, got {ratio:.2} ({appended} / {upstream})"
    );
    let (_, listing) = h.get_json("/plugins").await;
    let chain = listing["chains"].as_array().unwrap().iter().find(|c| c["stream"] == id.as_str()).cloned();
    assert_eq!(chain.unwrap()["filters"], serde_json::json!(["thrice", "twice"]), "{listing}");

    // Reordered: the chain follows at a batch boundary.
    acemux_tests::plugins::set_settings(dir.path(), "thrice", &times(3, 3));
    let mut reordered = false;
    for _ in 0..100 {
        let _ = player.read_at_least(player.received.len() + 100_000, Duration::from_millis(200)).await;
        let (_, listing) = h.get_json("/plugins").await;
        if listing["chains"][0]["filters"] == serde_json::json!(["twice", "thrice"]) {
            reordered = true;
            break;
        }
    }
    assert!(reordered, "the chain did not follow the new order");
    let report = player.report();
    assert!(report.aligned, "{report:?}");
}

/// `--plugin-compiler tiered`: new code is live at once compiled by Winch,
/// then Cranelift's code is swapped in under the players; the next load of
/// the same code comes from the cache, optimised from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_compilation_swaps_cranelift_code_in_under_the_players() {
    let dir = TempDir::new("tiered");
    let cache = TempDir::new("tiered-cache");
    let d = dir.path().to_path_buf();
    let c = cache.path().to_path_buf();
    let h = Harness::start(sim(), move |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.plugins.plugin_cache = Some(acemux::values::OrNone(Some(c)));
        s.plugins.plugin_compiler = PluginCompiler::Tiered;
    })
    .await;
    let mut player = h.player(&content_id(88)).await;
    assert!(player.read_at_least(100_000, Duration::from_secs(10)).await);
    install(dir.path(), "null-strip", wasm::NULL_STRIP, None);
    let mut seen = Vec::new();
    for _ in 0..200 {
        let p = plugin(&h, "null-strip").await;
        if p["status"] == "active" {
            let compiler = p["compiler"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&compiler) {
                seen.push(compiler.clone());
            }
            if compiler == "cranelift" {
                break;
            }
        }
        let _ = player.read_at_least(player.received.len() + 20_000, Duration::from_millis(50)).await;
    }
    assert_eq!(seen.last().map(String::as_str), Some("cranelift"), "{seen:?}");
    assert_eq!(seen.first().map(String::as_str), Some("winch"), "new code loads by Winch first: {seen:?}");
    // The players never noticed: whole packets, no counter gap, nulls gone.
    assert!(player.read_at_least(player.received.len() + 500_000, Duration::from_secs(10)).await);
    let report = player.report();
    assert!(report.aligned && report.gaps == 0, "{report:?}");

    // The same code again (a settings change): Cranelift's, from the cache.
    acemux_tests::plugins::set_settings(dir.path(), "null-strip", "order = 5\n");
    for _ in 0..100 {
        let p = plugin(&h, "null-strip").await;
        if p["settings"]["order"] == 5 {
            assert_eq!(p["compiler"], "cranelift", "{p}");
            assert_eq!(p["compiled"], "cache", "{p}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the settings change never loaded");
}
