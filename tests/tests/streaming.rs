//! The streaming core end to end: players over real HTTP on loopback,
//! acemux in front of the simulated engine.

use std::time::{Duration, Instant};

use ace_sim::SimConfig;
use acemux::stream::LagPolicy;
use acemux_tests::{Harness, RawPlayer, content_id};

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 4_000_000, ..SimConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_player_gets_clean_ts_without_reconnecting() {
    let h = Harness::start(SimConfig { redirect: true, ..sim() }, |_| {}).await;
    let mut p = h.player(&content_id(1)).await;
    assert_eq!(p.response.headers()["content-type"], "video/mp2t");
    assert!(p.response.headers()["cache-control"].to_str().unwrap().contains("no-cache"));
    assert!(p.read_at_least(300_000, Duration::from_secs(10)).await, "stream ended early");
    let report = p.report();
    report.assert_clean("first player");
    assert!(report.video_packets > 1000, "{report:?}");
    let c = h.engine().counters();
    assert_eq!(c.starts, 1);
    assert_eq!(c.playback_connections, 1, "the first player must not need a reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simultaneous_players_share_one_upstream() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(2);
    let players = (0..50).map(|_| {
        let http = h.http.clone();
        let url = h.stream_url(&id);
        tokio::spawn(async move {
            let mut r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let mut got = Vec::new();
            while got.len() < 100_000 {
                match tokio::time::timeout(Duration::from_secs(10), r.chunk()).await {
                    Ok(Ok(Some(c))) => got.extend_from_slice(&c),
                    other => panic!("player stream ended: {other:?}"),
                }
            }
            got
        })
    });
    let players: Vec<_> = players.collect();
    for (i, p) in players.into_iter().enumerate() {
        let bytes = p.await.unwrap();
        acemux_tests::TsReport::of(&bytes).assert_clean(&format!("player {i}"));
    }
    let c = h.engine().counters();
    assert_eq!(c.starts, 1, "one engine start for 50 players");
    assert_eq!(c.playback_connections, 1, "one playback connection for 50 players");
    assert_eq!(c.superseded, 0);
    let status = h.status().await;
    assert_eq!(status["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_starts_from_the_ring() {
    let h = Harness::start(sim(), |s| s.stream.join_behind = Duration::from_secs(2)).await;
    let id = content_id(3);
    let mut first = h.player(&id).await;
    assert!(first.read_for(Duration::from_millis(1500)).await);
    let seen_by_first = first.report().last_counter.unwrap();
    let mut late = h.player(&id).await;
    assert!(late.read_at_least(20_000, Duration::from_secs(5)).await);
    // Its first chunk was already in the ring when it joined: it starts at
    // or before what the first player had received.
    let first_of_late = late.report().first_counter.expect("video among the first bytes");
    assert!(
        first_of_late <= seen_by_first,
        "late joiner started at {first_of_late}, after the live edge {seen_by_first}"
    );
    assert!(late.read_at_least(200_000, Duration::from_secs(10)).await);
    late.report().assert_clean("late joiner");
    assert_eq!(h.engine().counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_player_is_dropped_and_slows_no_one() {
    let h = Harness::start(SimConfig { bitrate_bps: 8_000_000, ..sim() }, |s| {
        s.front.client_timeout = Duration::from_secs(1);
    })
    .await;
    let id = content_id(4);
    let mut players = Vec::new();
    for _ in 0..20 {
        players.push(h.player(&id).await);
    }
    let _stalled = RawPlayer::connect(&h.base, &id).await;
    let started = h.engine().counters().bytes_sent;
    let window = Duration::from_secs(4);
    let reads = players.into_iter().map(|mut p| {
        tokio::spawn(async move {
            p.read_for(window).await;
            p
        })
    });
    let reads: Vec<_> = reads.collect();
    let mut totals = Vec::new();
    for r in reads {
        let p = r.await.unwrap();
        p.report().assert_clean("healthy player");
        totals.push(p.received.len());
    }
    let engine_sent = (h.engine().counters().bytes_sent - started) as usize;
    for (i, got) in totals.iter().enumerate() {
        assert!(
            *got * 2 >= engine_sent,
            "player {i} got {got} bytes while the engine sent {engine_sent}: slowed down"
        );
    }
    let dropped = h
        .wait_for(Duration::from_secs(5), || async {
            h.status().await["sessions"][0]["counters"]["drops"] == 1
        })
        .await;
    assert!(dropped, "stalled player not dropped: {}", h.status().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_reuses_then_stops() {
    let h = Harness::start(sim(), |s| s.stream.grace_period = Duration::from_secs(1)).await;
    let id = content_id(5);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    drop(p);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().starts, 1, "a player within the grace period reuses the session");
    drop(p);
    let stopped = h.wait_for(Duration::from_secs(5), || async { h.engine().counters().stops == 1 }).await;
    assert!(stopped, "engine stop not sent after the grace period");
    assert_eq!(h.session_count().await, 0);
    assert_eq!(h.engine().live_sessions(), 0);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().starts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zapping_leaves_no_session_and_stops_every_upstream() {
    let h = Harness::start(sim(), |s| {
        s.stream.grace_period = Duration::from_millis(100);
        s.engines.max_streams_per_engine = 100;
    })
    .await;
    for i in 0..200u32 {
        let id = content_id(100 + i % 7);
        let url = h.stream_url(&id);
        let mut r = h.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        if i % 3 == 0 {
            let _ = tokio::time::timeout(Duration::from_secs(2), r.chunk()).await;
        }
        drop(r);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    }
    let idle = h
        .wait_for(Duration::from_secs(10), || async {
            h.session_count().await == 0
                && h.engine().live_sessions() == 0
                && h.engine().counters().open_playbacks == 0
        })
        .await;
    let c = h.engine().counters();
    assert!(idle, "sessions left after zapping: {} {:?}", h.status().await, c);
    assert!(c.starts >= 7);
    let engines = &h.status().await["engines"][0];
    assert_eq!(engines["load"], 0, "engine slots leaked: {engines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_flows_while_the_engine_prebuffers() {
    let prebuffer = Duration::from_secs(3);
    let h = Harness::start(SimConfig { prebuffer, ..sim() }, |_| {}).await;
    let mut p = h.player(&content_id(6)).await;
    assert!(p.read_at_least(1, Duration::from_secs(2)).await);
    let first = p.first_byte_at.expect("a first byte");
    assert!(first - p.opened_at < prebuffer, "first byte only after the prebuffer");
    let early = p.report();
    assert!(early.aligned && early.null_packets > 0 && early.video_packets == 0, "{early:?}");
    assert!(p.read_at_least(200_000, Duration::from_secs(10)).await);
    let report = p.report();
    assert!(report.aligned && report.video_packets > 0 && report.gaps == 0, "{report:?}");
    assert!(report.leading_nulls >= 7 * 2, "keepalive about every second: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_timeout_ends_the_stream() {
    let h = Harness::start(SimConfig { prebuffer: Duration::from_secs(30), ..sim() }, |s| {
        s.stream.init_timeout = Duration::from_secs(1);
    })
    .await;
    let mut p = h.player(&content_id(7)).await;
    assert!(p.read_to_end(Duration::from_secs(5)).await, "stream did not end at the init timeout");
    let report = p.report();
    assert!(report.aligned && report.video_packets == 0 && report.null_packets > 0, "{report:?}");
    assert!(h.wait_for(Duration::from_secs(3), || async { h.session_count().await == 0 }).await);
    assert!(h.wait_for(Duration::from_secs(3), || async { h.engine().counters().stops == 1 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_errors_map_to_502_and_504() {
    let h = Harness::start(SimConfig { start_error: Some("failed to load content".into()), ..sim() }, |s| {
        s.engines.connection_timeout = Duration::from_millis(500);
    })
    .await;
    let r = h.http.get(h.stream_url(&content_id(8))).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("failed to load content"), "{body}");
    assert_eq!(h.session_count().await, 0);

    h.engine().configure(|c| {
        c.start_error = None;
        c.start_delay = Duration::from_secs(2);
    });
    let r = h.http.get(h.stream_url(&content_id(9))).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "engine_timeout", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(10);
    for (path, needle) in [
        ("/ace/getstream".to_string(), "missing content"),
        ("/ace/getstream?id=abc".to_string(), "40 hexadecimal"),
        (format!("/ace/getstream?id={}", "z".repeat(40)), "40 hexadecimal"),
        (format!("/ace/getstream?id={id}&infohash={id}"), "exactly one"),
    ] {
        let (status, body) = h.get_json(&path).await;
        assert_eq!(status, 400, "{path}");
        assert!(body["error"].as_str().unwrap().contains(needle), "{path}: {body}");
    }
    let (status, body) = h.get_json("/nope").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, _) = h.get_json(&format!("/proxy/sessions/{id}")).await;
    assert_eq!(status, 404);
    let head = h.http.head(h.stream_url(&id)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "video/mp2t");
    assert_eq!(h.engine().counters().starts, 0, "HEAD must not start the engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_id_and_aliases_reach_one_session() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(11);
    let mut a = h.player(&id).await;
    let url = h.url(&format!("/ace/getstream?content_id={}", id.to_uppercase()));
    let mut b = h.http.get(url).send().await.unwrap();
    assert_eq!(b.status(), 200);
    assert!(a.read_at_least(10_000, Duration::from_secs(5)).await);
    assert!(tokio::time::timeout(Duration::from_secs(5), b.chunk()).await.unwrap().unwrap().is_some());
    assert_eq!(h.engine().counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_buffer_and_players() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(12);
    let mut a = h.player(&id).await;
    let mut b = h.player(&id).await;
    assert!(a.read_at_least(50_000, Duration::from_secs(5)).await);
    assert!(b.read_at_least(50_000, Duration::from_secs(5)).await);
    let status = h.status().await;
    assert_eq!(status["running"], true);
    assert_eq!(status["total_clients"], 2);
    assert_eq!(status["active_sessions"], 1);
    let s = &status["sessions"][0];
    assert_eq!(s["ace_id"], id.as_str());
    assert_eq!(s["client_count"], 2);
    assert_eq!(s["is_live"], 1);
    assert!(s["playback_session_id"].is_string());
    assert!(s["buffer"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["buffer"]["bytes"].as_u64().unwrap() % 188, 0);
    assert!(s["buffer"]["newest_seq"].as_u64().unwrap() >= s["buffer"]["oldest_seq"].as_u64().unwrap());
    let players = s["players"].as_array().unwrap();
    assert_eq!(players.len(), 2);
    assert!(players.iter().all(|p| p["lag_bytes"].is_u64() && p["skips"] == 0));
    assert!(status["engines"][0]["load"] == 1);
    let (code, one) = h.get_json(&format!("/proxy/sessions/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(one["stream_id"], s["stream_id"]);
    let (code, health) = h.get_json("/healthz").await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "ok");
}

/// At 8 Mbit/s a 64 KiB chunk fills in ~65 ms, inside the 100 ms a partial
/// chunk may wait: a steady engine must give the ring whole chunks (one
/// socket write per chunk per player). The wait of what is left after a
/// chunk was once counted from that chunk's start, which flushed a partial
/// chunk behind almost every full one: a mean of 0.83 of a chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_reaches_the_ring_in_whole_chunks() {
    let h = Harness::start(SimConfig { bitrate_bps: 8_000_000, ..sim() }, |_| {}).await;
    let id = content_id(14);
    let mut p = h.player(&id).await;
    // Past the first buffer TTL (3 s), so the ring holds steady-state chunks.
    assert!(p.read_for(Duration::from_secs(5)).await, "stream ended early");
    p.report().assert_clean("player");
    let status = h.status().await;
    let buffer = &status["sessions"][0]["buffer"];
    let (bytes, chunks) = (buffer["bytes"].as_u64().unwrap(), buffer["chunks"].as_u64().unwrap());
    let chunk_bytes = h.acemux.as_ref().unwrap().registry().context().stream.chunk_bytes as u64;
    assert!(chunks >= 20, "{buffer}");
    let mean = bytes as f64 / chunks as f64 / chunk_bytes as f64;
    assert!(mean > 0.9, "chunks hold {mean:.2} of {chunk_bytes} bytes on average: {buffer}");
}

/// A ring of about 0.2 s at 16 Mbit/s and small socket buffers, so a player
/// reading 40 KB/s falls behind the ring's tail within a second or two.
fn small_ring(s: &mut acemux::config::Settings, policy: LagPolicy) {
    s.front.socket_send_buffer = acemux::values::OrNone(Some(64 * 1024));
    s.stream.chunk_bytes = 188 * 64;
    s.stream.ring_bytes = 188 * 64 * 32;
    s.stream.lag_policy = policy;
}

/// Reads `player` at about 40 KB/s for up to `time`; stops if it ends.
async fn read_slowly(player: &mut RawPlayer, time: Duration) {
    let until = Instant::now() + time;
    while Instant::now() < until && !player.ended {
        player.read_some(4096, Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_player_skips_to_live_and_is_counted() {
    slow_player_skips(false, 13).await;
}

/// The same on the zero-copy path (`--zero-copy on`, see `zero_copy.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_player_skips_to_live_and_is_counted_with_zero_copy() {
    slow_player_skips(true, 113).await;
}

async fn slow_player_skips(zero_copy: bool, n: u32) {
    let h = Harness::start(SimConfig { bitrate_bps: 16_000_000, ..sim() }, |s| {
        small_ring(s, LagPolicy::Skip);
        s.stream.zero_copy = zero_copy;
    })
    .await;
    let id = content_id(n);
    let mut fast = h.player(&id).await;
    let fast_read = tokio::spawn(async move {
        fast.read_for(Duration::from_secs(6)).await;
        fast
    });
    let mut slow = RawPlayer::connect(&h.base, &id).await;
    read_slowly(&mut slow, Duration::from_secs(5)).await;
    // Catch up on what the sockets still hold, to see the skip itself.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until && !slow.ended {
        slow.read_some(64 * 1024, Duration::from_millis(200)).await;
    }
    let status = h.status().await;
    let skips = status["sessions"][0]["counters"]["skips"].as_u64().unwrap();
    let skipped = status["sessions"][0]["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["skipped_bytes"].as_u64().unwrap())
        .sum::<u64>();
    let report = slow.report();
    assert!(!slow.ended, "skip policy must keep the slow player connected");
    assert!(report.aligned, "skips must keep packets whole: {report:?}");
    assert!(skips > 0 && skipped > 0, "the slow player never skipped: {status}");
    assert!(report.gaps > 0 && report.gaps as u64 <= skips, "gaps {} vs counted skips {skips}", report.gaps);
    let fast = fast_read.await.unwrap();
    fast.report().assert_clean("fast player beside a slow one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_policy_disconnect_ends_the_slow_player() {
    let h = Harness::start(SimConfig { bitrate_bps: 16_000_000, ..sim() }, |s| {
        small_ring(s, LagPolicy::Disconnect)
    })
    .await;
    let id = content_id(14);
    let mut fast = h.player(&id).await;
    let mut slow = RawPlayer::connect(&h.base, &id).await;
    let (_, fast) = tokio::join!(read_slowly(&mut slow, Duration::from_secs(10)), async move {
        fast.read_for(Duration::from_secs(3)).await;
        fast
    });
    assert!(slow.ended, "the lagging player was not disconnected");
    assert!(slow.report().aligned);
    fast.report().assert_clean("fast player");
    let status = h.status().await;
    let counters = &status["sessions"][0]["counters"];
    assert_eq!(counters["lag_disconnects"], 1, "{status}");
    assert_eq!(counters["skips"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_upstream() {
    let mut h = Harness::start(sim(), |s| s.engines.max_streams_per_engine = 10).await;
    let mut players = Vec::new();
    for n in 0..3 {
        let mut p = h.player(&content_id(20 + n)).await;
        assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
        players.push(p);
    }
    h.shutdown().await;
    assert_eq!(h.engine().counters().stops, 3);
    for mut p in players {
        assert!(p.read_to_end(Duration::from_secs(3)).await, "player stream still open after shutdown");
    }
    assert!(h.http.get(h.stream_url(&content_id(30))).send().await.is_err(), "still accepting");
}
