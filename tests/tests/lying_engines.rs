//! Engines that answer as if all were well and are not (see
//! `ace_sim::Lie`): a playback URL that 404s, an HTML page instead of a
//! stream, bytes that are no MPEG-TS for a while, a connection that never
//! sends a byte, statistics that are not JSON. Each ends in a clear state
//! (failover, reconnect, or an ended response) with the lying engine's
//! session stopped: never a hung stream or a leaked session.

use std::time::Duration;

use ace_sim::{Lie, SimConfig};
use acemux_tests::{Harness, content_id};

fn sim(lie: Option<Lie>) -> SimConfig {
    SimConfig { bitrate_bps: 2_000_000, lie, ..SimConfig::default() }
}

/// A lying engine (preferred: port-forwarded) and an honest one.
async fn liar_and_honest(lie: Lie) -> Harness {
    Harness::start_many(vec![sim(Some(lie)), sim(None)], |s| {
        s.engines.engines[0].labels.insert("acestream.forwarded".into(), "true".into());
        s.stream.init_timeout = Duration::from_secs(20);
        s.stream.max_retries = 1;
        s.stream.retry_wait = Duration::from_millis(100);
        s.engines.connection_timeout = Duration::from_secs(2);
    })
    .await
}

/// The player plays from the honest engine; the liar was asked first and
/// holds no session any more.
async fn fails_over_to_the_honest_engine(lie: Lie, within: Duration) {
    let h = liar_and_honest(lie).await;
    let mut player = h.player(&content_id(1)).await;
    assert!(player.read_at_least(300_000, within).await, "{lie:?}: the response ended");
    assert!(player.received.len() >= 300_000, "{lie:?}: only {} bytes in {within:?}", player.received.len());
    player.report().assert_clean(&format!("{lie:?}"));
    assert_eq!(h.engines[0].counters().starts, 1, "{lie:?}: the liar was asked first");
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engines[0].live_sessions() == 0 }).await,
        "{lie:?}: the lying engine's session was left running"
    );
    assert_eq!(h.engines[1].live_sessions(), 1);
    let status = h.status().await;
    assert_eq!(status["sessions"][0]["engine_id"], h.engine_id(1), "{lie:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playback_url_that_404s_fails_over() {
    fails_over_to_the_honest_engine(Lie::PlaybackNotFound, Duration::from_secs(10)).await;
}

/// Refused on its Content-Type at once, not read for the 20 s init timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_instead_of_a_stream_fails_over_at_once() {
    fails_over_to_the_honest_engine(Lie::Html, Duration::from_secs(10)).await;
}

/// Bytes but no packets for the stall window is a stall: the upstream
/// reconnects, gives the engine up and fails over; nothing of the garbage
/// reaches the player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_packets_is_a_stall_and_fails_over() {
    let lie = Lie::Garbage { after: Duration::from_secs(2), lasting: Duration::from_secs(600) };
    let h = liar_and_honest(lie).await;
    let mut player = h.player(&content_id(2)).await;
    assert!(player.read_at_least(200_000, Duration::from_secs(10)).await);
    // Garbage from 2 s: 2 s stall window, one retry, then the honest engine.
    assert!(player.read_for(Duration::from_secs(14)).await, "the response ended");
    let report = player.report();
    assert!(report.aligned, "garbage reached the player: {report:?}");
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engines[0].live_sessions() == 0 }).await,
        "the lying engine's session was left running"
    );
    let status = h.status().await;
    assert_eq!(status["sessions"][0]["engine_id"], h.engine_id(1), "{status}");
    assert!(status["sessions"][0]["state"]["state"] == "live", "{status}");
    let before = player.received.len();
    assert!(player.read_at_least(before + 200_000, Duration::from_secs(5)).await);
    assert!(player.received.len() >= before + 200_000, "no data from the honest engine");
}

/// A garbage spell shorter than the stall window is ridden out on the same
/// connection: the player gets keepalive packets, then the stream again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_garbage_spell_is_ridden_out() {
    let lie = Lie::Garbage { after: Duration::from_secs(2), lasting: Duration::from_secs(1) };
    let h = Harness::start(sim(Some(lie)), |s| {
        s.engines.connection_timeout = Duration::from_secs(4);
    })
    .await;
    let mut player = h.player(&content_id(3)).await;
    assert!(player.read_for(Duration::from_secs(6)).await, "the response ended");
    let report = player.report();
    assert!(report.aligned && report.video_packets > 0, "{report:?}");
    assert_eq!(h.engine().counters().playback_connections, 1, "reconnected for a 1 s spell");
}

/// An engine that accepts and never sends: the player's response ends at
/// the init timeout, and the engine session is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playback_that_never_sends_ends_at_the_init_timeout() {
    let h = Harness::start(sim(Some(Lie::Silent)), |s| {
        s.stream.init_timeout = Duration::from_secs(3);
    })
    .await;
    let response = h.http.get(h.stream_url(&content_id(4))).send().await.unwrap();
    let mut player = acemux_tests::PlayerClient::new(response);
    assert!(player.read_to_end(Duration::from_secs(15)).await, "the response never ended");
    assert_eq!(player.report().video_packets, 0);
    assert!(
        h.wait_for(Duration::from_secs(5), || async { h.engine().live_sessions() == 0 }).await,
        "engine session left running"
    );
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);
    let (_, session) = h.get_json(&format!("/proxy/sessions/{}", content_id(4))).await;
    assert!(session.get("stream_id").is_none(), "{session}");
}

/// Statistics that are not JSON are ignored; the stream plays on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_statistics_do_not_disturb_the_stream() {
    let h = Harness::start(sim(Some(Lie::MalformedStat)), |s| {
        s.engines.engine_stat_interval = Duration::from_millis(200);
    })
    .await;
    let mut player = h.player(&content_id(5)).await;
    assert!(player.read_for(Duration::from_secs(3)).await);
    player.report().assert_clean("malformed stat");
    assert!(h.engine().counters().stat_calls >= 3, "stat was not polled");
    let status = h.status().await;
    assert_eq!(status["sessions"][0]["state"]["state"], "live", "{status}");
    assert_eq!(status["sessions"][0]["engine_stats"], serde_json::Value::Null, "{status}");
}
