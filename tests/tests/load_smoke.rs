//! CI smoke of the load tool: 1 content x 50 players for a few seconds,
//! plus a burst of zapping. A correctness check (no stall, no TS error, no
//! leaked session), not a timing assertion.

use std::net::SocketAddr;
use std::time::Duration;

use ace_sim::SimConfig;
use acemux_tests::Harness;
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
