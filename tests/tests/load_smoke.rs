//! CI smoke of the load tool: 1 content x 50 players for a few seconds,
//! plus a burst of zapping. A correctness check (no stall, no TS error, no
//! leaked session), not a timing assertion.

use std::net::SocketAddr;
use std::time::Duration;

use ace_sim::SimConfig;
use acemux_tests::Harness;
use acemux_tests::hls_load::{HlsPlan, run_hls};
use acemux_tests::load::{LoadPlan, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_players_for_a_few_seconds_stay_clean() {
    let h = Harness::start(SimConfig { bitrate_bps: 8_000_000, ..SimConfig::default() }, |s| {
        s.stream.grace_period = Duration::from_millis(200);
    })
    .await;
    let target: SocketAddr = h.base.trim_start_matches("http://").parse().unwrap();
    let plan = LoadPlan {
        target,
        players: 50,
        contents: 1,
        slow_players: 0,
        slow_rate: 50_000,
        ramp: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        stall_after: Duration::from_secs(2),
        content_base: 7000,
        allowed_gaps: 0,
        recorded: false,
    };
    let report = run(&plan).await;
    assert!(report.clean(), "{report:#?}");
    assert!(report.bytes_per_player_min > 1_000_000, "{report:#?}");
    assert_eq!(h.engine().counters().starts, 1);
    assert!(
        h.wait_for(Duration::from_secs(5), || async {
            h.session_count().await == 0 && h.engine().live_sessions() == 0
        })
        .await,
        "session leaked after the load run"
    );
}

/// The load tool's Low-Latency HLS viewers (as hls.js in low-latency mode)
/// on the recording: every part fetched in time, every independent part
/// starting with PAT, PMT and a keyframe, blocking reloads answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_low_latency_hls_viewers_stay_clean() {
    let h = Harness::start(acemux_tests::recording::recorded(1), |s| {
        s.hls.hls_segment = Duration::from_secs(2);
        s.hls.hls_part = Some(Duration::from_millis(500));
    })
    .await;
    let target: SocketAddr = h.base.trim_start_matches("http://").parse().unwrap();
    let plan = HlsPlan {
        target,
        viewers: 20,
        contents: 1,
        ramp: Duration::from_secs(1),
        // The first playlist of the young stream waits ~9 s; then ~8 s of parts.
        duration: Duration::from_secs(17),
        content_base: 7100,
        recorded: true,
        low_latency: true,
    };
    let report = run_hls(&plan).await;
    assert!(report.clean(), "{report:#?}");
    assert!(report.parts >= 20 * 8, "{report:#?}");
    assert!(report.blocking_wait.count >= 20 * 4, "{report:#?}");
    assert_eq!(report.segments, 0, "low-latency viewers fetch parts, not segments");
}
