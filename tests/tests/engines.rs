//! The engine pool end to end: selection under load, health, failover,
//! orchestrator events and discovery, metrics and admin endpoints.

use std::time::{Duration, Instant};

use ace_sim::SimConfig;
use acemux_tests::orchestrator::FakeOrchestrator;
use acemux_tests::{Harness, PlayerClient, content_id};
use futures_util::future::join_all;
use serde_json::json;

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 2_000_000, ..SimConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_and_forwarded_preference_hold_under_20_new_contents() {
    let h = Harness::start_many(vec![sim(), sim(), sim()], |s| {
        s.engines.max_streams_per_engine = 2;
        s.engines.engines[2].labels.insert("acestream.forwarded".into(), "true".into());
    })
    .await;
    // Equal load: the forwarded engine is chosen.
    let mut first = h.player(&content_id(1)).await;
    assert!(first.read_at_least(1000, Duration::from_secs(5)).await);
    assert_eq!(h.engines[2].counters().starts, 1, "the forwarded engine takes the first stream");

    let requests = (2..=20).map(|n| h.http.get(h.stream_url(&content_id(n))).send());
    let responses: Vec<reqwest::Response> =
        join_all(requests).await.into_iter().map(Result::unwrap).collect();
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    assert_eq!(ok, 5, "3 engines x 2 slots, one already taken");
    let mut refused = 0;
    let mut held = Vec::new();
    for r in responses {
        if r.status() == 503 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "all engines at capacity (2 per engine)", "{body}");
            refused += 1;
        } else {
            held.push(r);
        }
    }
    assert_eq!(refused, 14);
    for (i, e) in h.engines.iter().enumerate() {
        assert_eq!(e.counters().starts, 2, "engine {i} holds exactly its cap");
    }
    let status = h.status().await;
    assert!(
        status["engines"].as_array().unwrap().iter().all(|e| e["load"] == 2 && e["pending"] == 0),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_engine_fails_over_and_players_keep_clean_ts() {
    killed_engine_fails_over(false, 30).await;
}

/// The same on the zero-copy path (`--zero-copy on`, see `zero_copy.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_engine_fails_over_and_players_keep_clean_ts_with_zero_copy() {
    killed_engine_fails_over(true, 130).await;
}

async fn killed_engine_fails_over(zero_copy: bool, n: u32) {
    let h = Harness::start_many(vec![sim(), sim()], |s| {
        s.stream.max_retries = 1;
        s.stream.retry_wait = Duration::from_millis(100);
        s.engines.connection_timeout = Duration::from_secs(1);
        s.stream.zero_copy = zero_copy;
    })
    .await;
    let id = content_id(n);
    let mut players = Vec::new();
    for _ in 0..3 {
        let mut p = h.player(&id).await;
        assert!(p.read_at_least(20_000, Duration::from_secs(5)).await);
        players.push(p);
    }
    let first = h.engine_with_starts(1).expect("one engine serves the stream");
    let other = 1 - first;
    let before: Vec<usize> = players.iter().map(|p| p.received.len()).collect();
    h.engines[first].kill();
    let killed_at = Instant::now();
    // retries x wait + a few seconds
    for (i, p) in players.iter_mut().enumerate() {
        assert!(p.read_at_least(before[i] + 200_000, Duration::from_secs(6)).await, "player {i} cut off");
        let report = p.report();
        assert!(report.aligned, "player {i}: TS broken by the failover: {report:?}");
        let after = acemux_tests::TsReport::of(&p.received[before[i] - before[i] % 188..]);
        assert!(after.video_packets > 500, "player {i}: no video after the failover: {after:?}");
    }
    assert!(killed_at.elapsed() < Duration::from_secs(6));
    assert_eq!(h.engines[other].counters().starts, 1, "the stream moved to the other engine");
    let status = h.status().await;
    let counters = &status["sessions"][0]["counters"];
    assert_eq!(counters["failovers"], 1, "{status}");
    assert!(counters["reconnects"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(status["sessions"][0]["engine_id"], h.engine_id(other).as_str());
}

/// An engine a stream left is not banned from it for life: once the
/// stream has run on its new engine, a later failover may go back to the
/// first one (restored meanwhile). Seen in the 30-minute soak: long-lived
/// streams ended at the second engine death although the first engine
/// had been back for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_failover_may_return_to_an_engine_that_came_back() {
    let mut h = Harness::start_many(vec![sim(), sim()], |s| {
        s.stream.max_retries = 1;
        s.stream.retry_wait = Duration::from_millis(100);
        s.engines.connection_timeout = Duration::from_secs(1);
        s.engines.health_interval = Duration::from_millis(200);
    })
    .await;
    let id = content_id(31);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(20_000, Duration::from_secs(5)).await);
    let first = h.engine_with_starts(1).expect("one engine serves the stream");
    let other = 1 - first;
    let addr = h.engines[first].addr();
    h.engines[first].kill();
    h.engines[first].wait_stopped().await;
    let mark = p.received.len();
    assert!(p.read_at_least(mark + 200_000, Duration::from_secs(6)).await, "cut off at the first failover");
    // The first engine comes back on its address, and is seen healthy.
    h.engines[first] = ace_sim::SimEngine::bind(addr, sim()).await.unwrap();
    let healthy = h
        .wait_for(Duration::from_secs(5), || async { h.status().await["engines"][first]["healthy"] == true })
        .await;
    assert!(healthy, "{}", h.status().await);
    let mark = p.received.len();
    assert!(p.read_at_least(mark + 100_000, Duration::from_secs(5)).await);
    // Now the second engine dies: the stream goes back to the first.
    h.engines[other].kill();
    let mark = p.received.len();
    let kept = p.read_at_least(mark + 200_000, Duration::from_secs(6)).await;
    let status = h.status().await;
    assert!(kept && p.received.len() >= mark + 200_000, "stream ended at the second failover: {status}");
    assert_eq!(h.engines[first].counters().starts, 1, "back on the restored engine");
    assert_eq!(status["sessions"][0]["counters"]["failovers"], 2, "{status}");
    assert!(p.report().aligned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_engine_is_stopped_and_left() {
    let stalling = SimConfig { stall_after_bytes: Some(100_000), ..sim() };
    let h = Harness::start_many(vec![stalling.clone(), stalling], |s| {
        s.stream.max_retries = 1;
        s.stream.retry_wait = Duration::from_millis(100);
        s.engines.connection_timeout = Duration::from_millis(800);
    })
    .await;
    let id = content_id(31);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
    let first = h.engine_with_starts(1).unwrap();
    let other = 1 - first;
    h.engines[other].configure(|c| c.stall_after_bytes = None);
    assert!(p.read_at_least(400_000, Duration::from_secs(10)).await, "player cut off by the stall");
    let report = p.report();
    assert!(report.aligned, "{report:?}");
    assert!(report.null_packets > 7, "keepalive while the upstream stalled: {report:?}");
    // The stalled engine's playback was reconnected, then its session stopped.
    assert_eq!(h.engines[first].counters().playback_connections, 2);
    assert!(h.wait_for(Duration::from_secs(3), || async { h.engines[first].counters().stops == 1 }).await);
    assert_eq!(h.engines[other].counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_engine_is_skipped_until_it_recovers() {
    let h = Harness::start_many(vec![sim(), sim()], |s| {
        s.engines.health_interval = Duration::from_millis(100);
        s.engines.health_failures = 2;
        s.engines.max_streams_per_engine = 5;
    })
    .await;
    h.engines[0].configure(|c| c.healthy = false);
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engine_status(0).await["healthy"] == false }).await,
        "engine never marked unhealthy"
    );
    assert!(h.engine_status(0).await["last_error"].is_string());
    let mut held = Vec::new();
    for n in 0..3 {
        held.push(h.player(&content_id(40 + n)).await);
    }
    assert_eq!(h.engines[0].counters().starts, 0, "an unhealthy engine got a stream");
    assert_eq!(h.engines[1].counters().starts, 3);

    h.engines[0].configure(|c| c.healthy = true);
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engine_status(0).await["healthy"] == true }).await,
        "engine never healthy again"
    );
    held.push(h.player(&content_id(50)).await);
    assert_eq!(h.engines[0].counters().starts, 1, "the recovered, least loaded engine takes the next stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_left_answers_503_json() {
    let h = Harness::start(sim(), |s| {
        s.engines.health_interval = Duration::from_millis(100);
        s.engines.health_failures = 1;
    })
    .await;
    h.engine().configure(|c| c.healthy = false);
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engine_status(0).await["healthy"] == false }).await
    );
    let (code, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(60))).await;
    assert_eq!(code, 503);
    assert_eq!(body["error"], "no engines available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrator_hears_one_start_and_one_end_per_stream() {
    let orch = FakeOrchestrator::start().await;
    let url = orch.url();
    let h = Harness::start(sim(), |s| {
        s.orchestrator.orchestrator_url = acemux::values::OrNone(Some(url));
        s.orchestrator.api_key = Some("k3y".into());
        s.engines.engines[0].container_id = Some("container-a".into());
        s.stream.grace_period = Duration::from_millis(200);
    })
    .await;
    let id = content_id(70);
    let mut a = h.player(&id).await;
    let mut b = h.player(&id).await;
    assert!(a.read_at_least(10_000, Duration::from_secs(5)).await);
    assert!(b.read_at_least(10_000, Duration::from_secs(5)).await);
    drop((a, b));
    assert!(h.wait_for(Duration::from_secs(5), || async { orch.named("stream_ended").len() == 1 }).await);
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);
    let started = orch.named("stream_started");
    let ended = orch.named("stream_ended");
    assert_eq!(started.len(), 1);
    assert_eq!(ended.len(), 1);
    let s = &started[0].body;
    assert_eq!(s["container_id"], "container-a");
    assert_eq!(s["stream"], json!({"key_type": "content_id", "key": id}));
    assert_eq!(s["engine"]["port"], h.engine().addr().port());
    assert_eq!(s["labels"]["source"], "proxy");
    assert!(
        s["session"]["playback_session_id"].is_string() && s["session"]["command_url"].is_string(),
        "{s}"
    );
    let e = &ended[0].body;
    assert_eq!(e["stream_id"], "orch-1", "the end names the id the start answered");
    assert_eq!(e["reason"], "normal");
    assert_eq!(e["container_id"], "container-a");
    assert!(orch.events().iter().all(|e| e.authorization.as_deref() == Some("Bearer k3y")));

    // Stopped on purpose: reason `stopped`.
    let mut p = h.player(&content_id(71)).await;
    assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
    let r = h.http.delete(h.url(&format!("/proxy/sessions/{}", content_id(71)))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert!(p.read_to_end(Duration::from_secs(5)).await, "player not disconnected by DELETE");
    assert!(h.wait_for(Duration::from_secs(5), || async { orch.named("stream_ended").len() == 2 }).await);
    assert_eq!(orch.named("stream_ended")[1].body["reason"], "stopped");
    assert_eq!(orch.named("stream_started").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_dead_orchestrator_never_delays_the_first_byte() {
    let orch = FakeOrchestrator::start().await;
    orch.set_delay(Duration::from_secs(5));
    let slow_url = orch.url();
    let h =
        Harness::start(sim(), |s| s.orchestrator.orchestrator_url = acemux::values::OrNone(Some(slow_url)))
            .await;
    let sent = Instant::now();
    let r = h.http.get(h.stream_url(&content_id(80))).send().await.unwrap();
    let mut p = PlayerClient::new(r);
    assert!(p.read_at_least(1, Duration::from_secs(3)).await);
    assert!(
        p.first_byte_at.unwrap() - sent < Duration::from_secs(2),
        "first byte waited for the orchestrator"
    );

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let h = Harness::start(sim(), |s| {
        s.orchestrator.orchestrator_url = acemux::values::OrNone(Some(format!("http://{dead}")))
    })
    .await;
    let mut p = h.player(&content_id(81)).await;
    assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
    p.report().assert_clean("player with a dead orchestrator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_come_from_the_orchestrator_and_drain_when_removed() {
    let engine = ace_sim::SimEngine::start(sim()).await.unwrap();
    let orch = FakeOrchestrator::start().await;
    let listed = json!([{"container_id": "c-1", "host": "127.0.0.1", "port": engine.addr().port(),
                         "labels": {"acestream.forwarded": "true"}}]);
    orch.set_engines(listed);
    let url = orch.url();
    let h = Harness::start(sim(), |s| {
        s.engines.engines.clear();
        s.orchestrator.orchestrator_url = acemux::values::OrNone(Some(url));
        s.orchestrator.orchestrator_refresh = Duration::from_millis(100);
    })
    .await;
    assert!(
        h.wait_for(Duration::from_secs(5), || async {
            h.status().await["engines"].as_array().unwrap().len() == 1
        })
        .await
    );
    let status = h.status().await;
    assert_eq!(status["engines"][0]["container_id"], "c-1");
    assert_eq!(status["engines"][0]["forwarded"], true);
    let mut p = h.player(&content_id(90)).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(5)).await);
    assert_eq!(engine.counters().starts, 1);

    orch.set_engines(json!([]));
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.status().await["engines"][0]["draining"] == true })
            .await
    );
    // Running stream continues; new ones find no engine.
    assert!(p.read_at_least(p.received.len() + 50_000, Duration::from_secs(5)).await);
    let (code, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(91))).await;
    assert_eq!(code, 503, "{body}");
    drop(p);
    assert!(
        h.wait_for(Duration::from_secs(5), || async {
            h.status().await["engines"].as_array().unwrap().is_empty()
        })
        .await,
        "drained engine not removed once idle"
    );
}

/// Parses Prometheus text into (name with labels, value), failing on any
/// malformed line.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("malformed line: {l}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("malformed value: {l}"));
            let base = name.split('{').next().unwrap();
            assert!(base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name: {l}");
            (name.to_owned(), value)
        })
        .collect()
}

fn metric(samples: &[(String, f64)], name: &str) -> f64 {
    samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no metric {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move() {
    let h = Harness::start(sim(), |s| s.stream.grace_period = Duration::from_millis(100)).await;
    let text = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let before = parse_prometheus(&text);
    assert_eq!(metric(&before, "acemux_bytes_out_total"), 0.0);
    let mut p = h.player(&content_id(100)).await;
    assert!(p.read_at_least(100_000, Duration::from_secs(5)).await);
    let during = parse_prometheus(&h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap());
    assert_eq!(metric(&during, "acemux_streams"), 1.0);
    assert_eq!(metric(&during, "acemux_players"), 1.0);
    assert!(metric(&during, "acemux_bytes_out_total") >= 100_000.0);
    assert!(metric(&during, "acemux_upstream_bytes_total") > 0.0);
    assert!(metric(&during, "acemux_ring_bytes") > 0.0);
    assert_eq!(metric(&during, "acemux_time_to_first_byte_seconds_count"), 1.0);
    assert_eq!(metric(&during, "acemux_streams_started_total"), 1.0);
    let engine = format!("acemux_engine_load{{engine=\"{}\"}}", h.engine_id(0));
    assert_eq!(metric(&during, &engine), 1.0);
    drop(p);
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);
    let after = parse_prometheus(&h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap());
    assert_eq!(metric(&after, "acemux_streams"), 0.0);
    assert!(
        metric(&after, "acemux_bytes_out_total") >= metric(&during, "acemux_bytes_out_total"),
        "totals kept after the stream ended"
    );
    assert_eq!(metric(&after, "acemux_streams_ended_total{reason=\"normal\"}"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_require_the_token() {
    let h = Harness::start(sim(), |s| s.front.admin_token = Some("s3cret".into())).await;
    let id = content_id(110);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
    let url = h.url(&format!("/proxy/sessions/{id}"));
    let r = h.http.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let r = h.http.delete(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(h.session_count().await, 1, "a refused DELETE stopped the stream");
    let r = h.http.delete(&url).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert!(p.read_to_end(Duration::from_secs(5)).await);
    assert!(h.wait_for(Duration::from_secs(3), || async { h.engine().counters().stops == 1 }).await);
    let r = h.http.delete(&url).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

/// A stream stopped while its engine is still answering the start (an
/// admin DELETE here; the grace period or shutdown can do the same): the
/// engine session the start created is stopped once the answer comes,
/// instead of being left running on the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ended_during_the_engine_start_still_stops_what_the_engine_started() {
    let h = Harness::start(SimConfig { start_delay: Duration::from_millis(800), ..sim() }, |_| {}).await;
    let id = content_id(90);
    let url = h.stream_url(&id);
    let http = h.http.clone();
    let player = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 1 }).await);
    let r = h.http.delete(h.url(&format!("/proxy/sessions/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let answer = player.await.unwrap().unwrap();
    assert!(answer.is_server_error() || answer.is_client_error(), "the waiting player got {answer}");
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engine().counters().stops == 1 }).await,
        "the engine session started during the stop was left running: {:?}",
        h.engine().counters()
    );
    assert_eq!(h.engine().counters().starts, 1);
    assert_eq!(h.engine().live_sessions(), 0);
    assert_eq!(h.session_count().await, 0);
}
