//! The zero-copy path (`--zero-copy on`: the buffer in kernel pages,
//! players fed with `sendfile`) and the copying path (`off`) deliver the
//! same thing: every scenario here runs on both. Players joining at
//! different times receive byte-identical packets where their streams
//! overlap; a lagging player's skip keeps packets whole; a failover keeps
//! players fed; HLS segments and parts come from the same pages.

use std::time::{Duration, Instant};

use ace_sim::SimConfig;
use acemux::config::Settings;
use acemux::stream::LagPolicy;
use acemux_tests::{Harness, RawPlayer, TsReport, content_id};
use acemux_ts::PACKET_SIZE;

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 4_000_000, ..SimConfig::default() }
}

fn path(zero_copy: bool) -> impl FnOnce(&mut Settings) {
    move |s| s.stream.zero_copy = zero_copy
}

/// The packets of `bytes` from the one with video counter `counter` on.
fn from_counter(bytes: &[u8], counter: u64) -> Option<&[u8]> {
    let whole = &bytes[..bytes.len() / PACKET_SIZE * PACKET_SIZE];
    let at = whole.chunks_exact(PACKET_SIZE).position(|p| ace_sim::video_counter(p) == Some(counter))?;
    Some(&whole[at * PACKET_SIZE..])
}

async fn staggered_players_get_the_same_bytes(zero_copy: bool, n: u32) {
    let h = Harness::start(sim(), path(zero_copy)).await;
    let id = content_id(n);
    let mut first = h.player(&id).await;
    assert!(first.read_at_least(400_000, Duration::from_secs(10)).await);
    let mut second = h.player(&id).await;
    let mut third = h.player(&id).await;
    for p in [&mut first, &mut second, &mut third] {
        assert!(p.read_at_least(p.received.len() + 1_500_000, Duration::from_secs(10)).await, "stream ended");
    }
    let status = h.status().await;
    assert_eq!(status["sessions"][0]["buffer"]["kernel_pages"], zero_copy, "{status}");
    let reports: Vec<TsReport> = [&first, &second, &third].iter().map(|p| p.report()).collect();
    for (i, r) in reports.iter().enumerate() {
        r.assert_clean(&format!("player {i} (zero copy {zero_copy})"));
    }
    // Where the later players' streams begin, the first player's has the
    // very same bytes.
    for (i, later) in [&second, &third].iter().enumerate() {
        let start = reports[i + 1].first_counter.unwrap();
        let theirs = from_counter(&later.received, start).unwrap();
        let ours = from_counter(&first.received, start).expect("the first player got that packet");
        let common = theirs.len().min(ours.len()) / PACKET_SIZE * PACKET_SIZE;
        assert!(common > 1_000_000, "overlap {common}");
        assert!(
            theirs[..common] == ours[..common],
            "player {} differs from the first (zero copy {zero_copy})",
            i + 1
        );
    }
    assert_eq!(h.engine().counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_staggered_players_get_the_same_bytes() {
    staggered_players_get_the_same_bytes(true, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_staggered_players_get_the_same_bytes() {
    staggered_players_get_the_same_bytes(false, 2).await;
}

async fn a_lagging_player_skips_with_whole_packets(zero_copy: bool, n: u32) {
    let h = Harness::start(SimConfig { bitrate_bps: 16_000_000, ..sim() }, move |s| {
        s.stream.zero_copy = zero_copy;
        s.front.socket_send_buffer = acemux::values::OrNone(Some(64 * 1024));
        s.stream.chunk_bytes = 188 * 64;
        s.stream.ring_bytes = 188 * 64 * 32;
        s.stream.lag_policy = LagPolicy::Skip;
    })
    .await;
    let id = content_id(n);
    let mut fast = h.player(&id).await;
    let fast_read = tokio::spawn(async move {
        fast.read_for(Duration::from_secs(6)).await;
        fast
    });
    let mut slow = RawPlayer::connect(&h.base, &id).await;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !slow.ended {
        slow.read_some(4096, Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until && !slow.ended {
        slow.read_some(64 * 1024, Duration::from_millis(200)).await;
    }
    let status = h.status().await;
    let skips = status["sessions"][0]["counters"]["skips"].as_u64().unwrap();
    let report = slow.report();
    assert!(!slow.ended, "skip policy keeps the slow player connected");
    assert!(report.aligned, "skips keep packets whole (zero copy {zero_copy}): {report:?}");
    assert!(
        skips > 0 && report.gaps > 0 && report.gaps as u64 <= skips,
        "gaps {} vs skips {skips}",
        report.gaps
    );
    fast_read.await.unwrap().report().assert_clean("fast player beside a slow one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_a_lagging_player_skips_with_whole_packets() {
    a_lagging_player_skips_with_whole_packets(true, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_a_lagging_player_skips_with_whole_packets() {
    a_lagging_player_skips_with_whole_packets(false, 4).await;
}

async fn players_keep_whole_packets_across_a_failover(zero_copy: bool, n: u32) {
    let h = Harness::start_many(vec![sim(), sim()], move |s| {
        s.stream.zero_copy = zero_copy;
        s.stream.max_retries = 1;
        s.stream.retry_wait = Duration::from_millis(100);
        s.engines.connection_timeout = Duration::from_secs(1);
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
    let before: Vec<usize> = players.iter().map(|p| p.received.len()).collect();
    h.engines[first].kill();
    for (i, p) in players.iter_mut().enumerate() {
        assert!(p.read_at_least(before[i] + 200_000, Duration::from_secs(6)).await, "player {i} cut off");
        let report = p.report();
        assert!(report.aligned, "player {i}: TS broken by the failover (zero copy {zero_copy}): {report:?}");
        let after = TsReport::of(&p.received[before[i] - before[i] % PACKET_SIZE..]);
        assert!(after.video_packets > 500, "player {i}: no video after the failover: {after:?}");
    }
    assert_eq!(h.engines[1 - first].counters().starts, 1, "the stream moved to the other engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_players_keep_whole_packets_across_a_failover() {
    players_keep_whole_packets_across_a_failover(true, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_players_keep_whole_packets_across_a_failover() {
    players_keep_whole_packets_across_a_failover(false, 6).await;
}
