//! The zero-copy path (`--zero-copy on`: the buffer in kernel pages,
//! players fed with `sendfile`) and the copying path (`off`) deliver the
//! same bytes: players joining at different times receive byte-identical
//! packets where their streams overlap, on both. A lag skip and a failover
//! run on both paths in `streaming.rs` and `engines.rs`.

use std::time::Duration;

use ace_sim::SimConfig;
use acemux::config::Settings;
use acemux_tests::{Harness, TsReport, content_id};
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
