//! Hostile plugins against a live acemux with players streaming: a plugin
//! that waits inside a host call (WASI's clock), one that answers outside
//! the contract, and the network grant. Each must fail alone, within its
//! time budget, be counted once per call, and be explained in `/plugins`.

use std::time::{Duration, Instant};

use ace_sim::SimConfig;
use acemux_test_artifacts as wasm;
use acemux_tests::plugins::{install, plugin, set_settings};
use acemux_tests::{Harness, TempDir, content_id};

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 4_000_000, ..SimConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_waiting_in_wasi_never_stalls_its_players() {
    let dir = TempDir::new("sleep-filter");
    // Sleeps 4 s per batch against a 20 ms budget; kept active so that
    // every batch of the test meets it.
    let keep = "time_budget = \"20ms\"\nmax_failures = 100000\n[config]\nsleep_ms = 4000\n";
    install(dir.path(), "sleeper", wasm::SLEEP_FILTER, Some(keep));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let id = content_id(1101);
    let mut players = Vec::new();
    for _ in 0..10 {
        players.push(h.player(&id).await);
    }
    for p in players.iter_mut() {
        assert!(p.read_at_least(1, Duration::from_secs(5)).await);
    }
    // Without the deadline each batch would hold the stream for 4 s.
    let gaps =
        futures_util::future::join_all(players.iter_mut().map(|p| p.longest_gap(Duration::from_secs(4))))
            .await;
    for (i, (p, gap)) in players.iter().zip(&gaps).enumerate() {
        let r = p.report();
        assert!(*gap < Duration::from_millis(1500), "player {i} waited {gap:?} between bytes");
        assert!(r.aligned && r.gaps == 0 && r.video_packets > 2000, "player {i}: {r:?}");
    }
    eprintln!("longest gap between bytes over 10 players: {:?}", gaps.iter().max());
    let s = plugin(&h, "sleeper").await;
    assert!(s["stats"]["timeouts"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(s["stats"]["timeouts"], s["stats"]["errors"], "{s}");
    assert_eq!(s["last_error"], "time budget 20 ms exceeded", "{s}");
    assert!(s["stats"]["p99_call_us"].as_f64().unwrap() < 1_000_000.0, "a call outlived its budget: {s}");
    assert_eq!(s["status"], "active");

    // With the default streak limit the plugin is disabled, and says why.
    set_settings(
        dir.path(),
        "sleeper",
        "time_budget = \"20ms\"\nmax_failures = 3\n[config]\nsleep_ms = 4000\n",
    );
    let disabled = h
        .wait_for(Duration::from_secs(10), || async { plugin(&h, "sleeper").await["status"] == "disabled" })
        .await;
    let s = plugin(&h, "sleeper").await;
    assert!(disabled, "{s}");
    assert_eq!(s["stats"]["timeouts"], 3, "{s}");
    assert_eq!(s["disabled_reason"], "time budget 20 ms exceeded", "{s}");
    for p in players.iter_mut() {
        let before = p.received.len();
        assert!(p.read_at_least(before + 100_000, Duration::from_secs(5)).await);
        assert!(p.received.len() >= before + 100_000, "stream stopped after the plugin was disabled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_waiting_in_wasi_holds_up_no_start() {
    let dir = TempDir::new("sleep-selector");
    install(
        dir.path(),
        "sleeper",
        wasm::SLEEP_SELECTOR,
        Some("time_budget = \"50ms\"\nmax_failures = 100000\n"),
    );
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.engines.max_streams_per_engine = 20;
    })
    .await;
    // Eight new contents at once: each selection meets the hour-long sleep,
    // gives up after 50 ms, and the built-in rule places the stream.
    let started = Instant::now();
    let players = futures_util::future::join_all((0..8).map(|n| {
        let h = &h;
        async move {
            let mut p = h.player(&content_id(1200 + n)).await;
            assert!(p.read_at_least(1000, Duration::from_secs(10)).await);
            p
        }
    }))
    .await;
    let took = started.elapsed();
    eprintln!("8 new contents behind a sleeping selector streamed after {took:?}");
    assert!(players.iter().all(|p| p.received.len() >= 1000));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let s = plugin(&h, "sleeper").await;
    assert_eq!(s["stats"]["timeouts"], 8, "{s}");
    assert_eq!(s["last_error"], "time budget 50 ms exceeded", "{s}");
    drop(players);

    // A start waiting on a selector can still be ended on purpose.
    set_settings(dir.path(), "sleeper", "time_budget = \"60s\"\n");
    let reloaded = h
        .wait_for(Duration::from_secs(5), || async {
            plugin(&h, "sleeper").await["stats"]["calls"].as_u64() == Some(1)
        })
        .await;
    assert!(reloaded, "{}", plugin(&h, "sleeper").await);
    let id = content_id(1300);
    let request = tokio::spawn(h.http.get(h.stream_url(&id)).send());
    let starting = h
        .wait_for(Duration::from_secs(5), || async {
            h.get_json(&format!("/proxy/sessions/{id}")).await.1["state"]["state"] == "starting"
        })
        .await;
    assert!(starting, "{}", h.status().await);
    let r = h.http.delete(h.url(&format!("/proxy/sessions/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let answer = tokio::time::timeout(Duration::from_secs(3), request).await;
    let response = answer.expect("the waiting player was not answered after DELETE").unwrap().unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "stopped", "{body}");
    assert!(h.wait_for(Duration::from_secs(3), || async { h.session_count().await == 0 }).await);
    assert_eq!(h.engine().counters().starts, 8, "the stopped content never reached the engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_answering_a_non_candidate_is_disabled_after_max_failures() {
    let dir = TempDir::new("liar");
    install(dir.path(), "liar", wasm::LIAR_SELECTOR, Some("max_failures = 3\n"));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.engines.max_streams_per_engine = 10;
    })
    .await;
    let mut calls = 0;
    for n in 0..4 {
        // Each content still streams: the bad answer falls through.
        let mut p = h.player(&content_id(1400 + n)).await;
        assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
        let s = plugin(&h, "liar").await;
        assert_eq!(s["status"], if n < 2 { "active" } else { "disabled" }, "after {} contents: {s}", n + 1);
        if n == 3 {
            assert_eq!(s["stats"]["calls"], calls, "a disabled selector was still asked: {s}");
        }
        calls = s["stats"]["calls"].as_u64().unwrap();
    }
    let s = plugin(&h, "liar").await;
    assert_eq!(s["stats"]["errors"], 3, "each bad answer counts once: {s}");
    // (The SDK answers a position no candidate has; the plugin's own log
    // line names the engine.)
    assert_eq!(
        s["disabled_reason"], "answered engine 4294967295, past the last candidate (position 0)",
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_grant_allows_outbound_tcp_and_udp_and_nothing_without_it() {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = format!(
        "[config]\ntcp = \"{}\"\nudp = \"{}\"\n",
        tcp.local_addr().unwrap(),
        udp.local_addr().unwrap()
    );
    let dir = TempDir::new("net");
    install(dir.path(), "net", wasm::NET_PROBE, Some(&config));
    let d = dir.path().to_path_buf();
    let h = Harness::start(sim(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d))).await;
    let (code, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(1500))).await;
    assert_eq!(code, 403);
    assert_eq!(body["error"], "stream refused: tcp=denied(PermissionDenied) udp=denied(PermissionDenied)");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), tcp.accept()).await.is_err(),
        "connected without a grant"
    );

    set_settings(dir.path(), "net", &format!("[grants]\nnetwork = true\n{config}"));
    let accepted = tokio::spawn(async move {
        let (mut conn, _) = tcp.accept().await.unwrap();
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut got).await.unwrap();
        got
    });
    let granted = h
        .wait_for(Duration::from_secs(5), || async {
            let (_, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(1501))).await;
            body["error"] == "stream refused: tcp=sent udp=sent"
        })
        .await;
    assert!(granted, "{}", plugin(&h, "net").await);
    let got = tokio::time::timeout(Duration::from_secs(5), accepted).await.unwrap().unwrap();
    assert_eq!(got, b"hello from net-probe");
    let mut datagram = [0u8; 64];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut datagram)).await.unwrap().unwrap();
    assert_eq!(&datagram[..n], b"hello from net-probe");
}
