//! Plugins written in JavaScript, built by componentize-js from `wit/` and
//! loaded by acemux unchanged, under live players: a filter (checked packet
//! by packet against the recording the engine plays), a selector, and a
//! plugin built for another version of the contract. Skipped loudly
//! without the toolchain (`npm install --prefix plugins/js`), failed under
//! `ACEMUX_REQUIRE_PROGRAMS`.

use std::path::Path;
use std::time::Duration;

use ace_sim::SimConfig;
use acemux::plugins::contract::PACKAGE_VERSION;
use acemux_tests::plugins::{
    assert_called_without_errors, assert_refused_for_version, metric, play_contents, plugin,
};
use acemux_tests::recording::recorded;
use acemux_tests::toolchains::{build_js, js_available, js_source, wit, wit_of_version};
use acemux_tests::{Harness, TempDir, content_id};
use acemux_ts::{NULL_PID, PACKET_SIZE, pid};

/// The audio PID of the recording (ffmpeg's first audio PID).
const AUDIO_PID: u16 = 0x101;
const VIDEO_PID: u16 = 0x100;

fn recording() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/h264-aac.ts")).unwrap()
}

/// Installs a built plugin with the settings file from its source directory.
fn install(dir: &Path, name: &str, wasm: &Path) {
    std::fs::copy(js_source(name).join(format!("{name}.toml")), dir.join(format!("{name}.toml"))).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
}

/// Checks that `received` is, packet for packet, the recording without
/// `dropped` (looped, as the engine plays it), from the first video packet
/// on; before it only keepalive and tables. Returns the packets compared.
/// The body is a byte stream: a read may stop inside a packet, so the
/// whole packets received are judged.
fn assert_is_recording_without(received: &[u8], recording: &[u8], dropped: u16, who: &str) -> usize {
    let received = &received[..received.len() / PACKET_SIZE * PACKET_SIZE];
    let expected: Vec<&[u8]> = recording.chunks_exact(PACKET_SIZE).filter(|p| pid(p) != dropped).collect();
    let packets: Vec<&[u8]> = received.chunks_exact(PACKET_SIZE).collect();
    for (i, p) in packets.iter().enumerate() {
        assert_ne!(pid(p), dropped, "{who}: packet {i} has the dropped PID");
    }
    let first_video = packets.iter().position(|p| pid(p) == VIDEO_PID).expect("video arrived");
    for p in &packets[..first_video] {
        assert!(
            matches!(pid(p), NULL_PID | 0 | 0x11 | 0x1000),
            "{who}: before the first video packet: PID {}",
            pid(p)
        );
    }
    let at = expected
        .iter()
        .position(|p| *p == packets[first_video])
        .expect("the first video packet is the recording's");
    for (k, p) in packets[first_video..].iter().enumerate() {
        let want = expected[(at + k) % expected.len()];
        assert!(
            *p == want,
            "{who}: packet {} differs from the recording's packet {}",
            first_video + k,
            (at + k) % expected.len()
        );
    }
    packets.len() - first_video
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_filter_removes_its_pid_from_what_every_player_receives() {
    if !js_available("js_plugins::a_javascript_filter_removes_its_pid") {
        return;
    }
    let build = TempDir::new("js-filter-build");
    let wasm = build_js("pid-drop", "filter-plugin", &wit(), &js_source("pid-drop"), build.path()).await;
    // The author's bench (`acemux plugin check`) reads it as acemux will.
    acemux_tests::toolchains::assert_bench_reads(&wasm, "filter").await;
    let plugins = TempDir::new("js-filter");
    install(plugins.path(), "pid-drop", &wasm);
    let dir = plugins.path().to_path_buf();
    let h = Harness::start(recorded(2), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(dir))).await;
    let filter = plugin(&h, "pid-drop").await;
    assert_eq!(filter["status"], "active", "{filter}");
    assert_eq!(filter["capabilities"]["filter"], true, "{filter}");

    let key = content_id(800);
    let mut players = Vec::new();
    for _ in 0..3 {
        players.push(h.player(&key).await);
    }
    let recording = recording();
    for (i, p) in players.iter_mut().enumerate() {
        assert!(p.read_at_least(400_000, Duration::from_secs(20)).await, "player {i}");
        let compared =
            assert_is_recording_without(&p.received, &recording, AUDIO_PID, &format!("player {i}"));
        assert!(compared > 1000, "player {i}: {compared} packets compared");
    }
    let filter = plugin(&h, "pid-drop").await;
    assert!(filter["stats"]["calls"].as_u64().unwrap() > 0, "{filter}");
    assert_eq!(filter["stats"]["errors"], 0, "{filter}");
    // The stream's filter instance, and what it holds, in `/plugins`.
    let memory = &filter["memory"];
    assert!(memory["instances"].as_u64().unwrap() >= 1, "{filter}");
    assert!(memory["linear_bytes"].as_u64().unwrap() > 0, "{filter}");
    assert!(memory["code_bytes"].as_u64().unwrap() > 1_000_000, "{filter}");
    eprintln!("javascript filter: {memory}");
    // Its own counter, through the JavaScript SDK helper, on /metrics.
    let series = format!("acemux_plugin_packets_dropped_total{{plugin=\"pid-drop\",pid=\"{AUDIO_PID}\"}}");
    let dropped = metric(&h, &series).await.unwrap_or(0.0);
    assert!(dropped >= 100.0, "{series} = {dropped}");
    assert_eq!(filter["metrics"]["refused"], 0, "{filter}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_selector_sends_players_to_the_engines_of_their_tier() {
    if !js_available("js_plugins::a_javascript_selector_sends_players") {
        return;
    }
    let build = TempDir::new("js-selector-build");
    let wasm =
        build_js("tier-selector", "selector-plugin", &wit(), &js_source("tier-selector"), build.path()).await;
    let plugins = TempDir::new("js-selector");
    install(plugins.path(), "tier-selector", &wasm);
    let dir = plugins.path().to_path_buf();
    let sim = || SimConfig { bitrate_bps: 500_000, ..SimConfig::default() };
    let mut ids = Vec::new();
    let h = Harness::start_many(vec![sim(), sim()], |s| {
        ids = s.engines.engines.iter().map(|e| format!("{}:{}", e.host, e.port)).collect();
        // The built-in rule would pick the smaller id: label the other one.
        let other = usize::from(ids[0] < ids[1]);
        s.engines.engines[other].labels.insert("tier".into(), "gold".into());
        s.plugins.plugins_dir = acemux::values::OrNone(Some(dir));
    })
    .await;
    let gold = usize::from(ids[0] < ids[1]);
    let selector = plugin(&h, "tier-selector").await;
    assert_eq!(selector["status"], "active", "{selector}");
    assert_eq!(selector["capabilities"]["selector"], true, "{selector}");

    // Players from 127.0.0.x are gold (the plugin's settings): both
    // contents go to the gold engine, where the built-in rule would spread them.
    let _players = play_contents(&h, 810, 2).await;
    assert_eq!(h.engines[gold].counters().starts, 2, "the JavaScript selector chose the engine");
    assert_eq!(h.engines[1 - gold].counters().starts, 0);
    assert_called_without_errors(&h, "tier-selector", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_plugin_built_for_another_contract_version_is_refused_naming_both() {
    if !js_available("js_plugins::a_javascript_plugin_built_for_another_contract_version") {
        return;
    }
    // The filter's source as an acemux of contract 0.2 would have it.
    let build = TempDir::new("js-version-build");
    let other = wit_of_version(build.path(), "0.2.0");
    let source = build.path().join("pid-drop");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(build.path().join("sdk")).unwrap();
    for (from, to) in [
        (js_source("pid-drop").join("app.js"), source.join("app.js")),
        (js_source("pid-drop").join("pids.js"), source.join("pids.js")),
        (js_source("sdk").join("metrics.js"), build.path().join("sdk/metrics.js")),
    ] {
        let text = std::fs::read_to_string(from).unwrap();
        // Every `acemux:plugin/…@<version>'` import.
        std::fs::write(to, text.replace(&format!("@{PACKAGE_VERSION}'"), "@0.2.0'")).unwrap();
    }
    let wasm = build_js("pid-drop", "filter-plugin", &other, &source, build.path()).await;
    let plugins = TempDir::new("js-version");
    install(plugins.path(), "pid-drop", &wasm);
    let dir = plugins.path().to_path_buf();
    let h =
        Harness::start(SimConfig::default(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(dir)))
            .await;
    assert_refused_for_version(&h, "pid-drop", "0.2.0").await;
}

/// The plugins' own unit tests (`node --test`, no WebAssembly) pass: the
/// guide tells authors to test the rule so, and CI keeps the examples honest.
#[tokio::test]
async fn the_javascript_rules_pass_their_own_unit_tests() {
    if !acemux_test_artifacts::programs::available_by(
        "js_plugins::unit_tests",
        &["node"],
        "Node.js 18 or newer",
    ) {
        return;
    }
    let run = tokio::process::Command::new("node")
        .args(["--test", "pid-drop/", "tier-selector/"])
        .current_dir(js_source(""))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run).await.expect("node --test ends").unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("# pass 9"), "{report}");
}
