//! VLC plays a cold content's HLS a minute at real time without
//! rebuffering after it started. VLC's adaptive demuxer keeps at least 6 s
//! buffered ahead: when it has less, it stops feeding the decoders, logs
//! "Buffering 0%" again and, when data comes, "ES_OUT_SET_(GROUP_)PCR is
//! called too late". After the first "Stream buffering done", neither may
//! appear (at `-vv`).
//!
//! Needs Debian's `vlc-bin` and `vlc-plugin-base` (`.ci/run` installs them).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use acemux_tests::recording::recorded;
use acemux_tests::{Harness, content_id};
use tokio::io::{AsyncBufReadExt, BufReader};

const STARTED: &str = "Stream buffering done";
const REBUFFERING: &str = "Buffering 0%";
const LATE: &str = "is called too late";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_plays_a_cold_content_a_minute_without_rebuffering() {
    if !acemux_tests::vlc::available("hls_vlc::cold_content") {
        return;
    }
    let h = Harness::start(recorded(1), |_| {}).await;
    let id = content_id(1);
    let url = h.url(&format!("/ace/manifest.m3u8?id={id}"));
    let mut child = acemux_tests::vlc::command(&url, 64, &["-vv"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cvlc runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let began = Instant::now();
    let mut log: Vec<(Duration, String)> = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(100);
    while let Ok(Ok(Some(line))) = tokio::time::timeout_at(until, lines.next_line()).await {
        log.push((began.elapsed(), line));
    }
    let _ = child.kill().await;
    let show =
        || log.iter().map(|(t, l)| format!("{:6.2} {l}", t.as_secs_f64())).collect::<Vec<_>>().join("\n");

    let start = log
        .iter()
        .position(|(_, l)| l.contains(STARTED))
        .unwrap_or_else(|| panic!("VLC never started:\n{}", show()));
    let started_at = log[start].0;
    let stalls: Vec<_> =
        log[start + 1..].iter().filter(|(_, l)| l.contains(REBUFFERING) || l.contains(LATE)).collect();
    assert!(stalls.is_empty(), "VLC rebuffered after it started at {started_at:?}: {stalls:?}\n{}", show());
    // It kept playing: a new segment every 4 s for the minute after it started.
    let segments: BTreeSet<&str> = log[start..]
        .iter()
        .filter(|(t, _)| *t < started_at + Duration::from_secs(60))
        .filter_map(|(_, l)| l.split("Retrieving ").nth(1))
        .filter(|u| u.contains(&format!("/hls/{id}/")) && u.ends_with(".ts"))
        .collect();
    assert!(segments.len() >= 14, "VLC fetched {} segments in its first minute:\n{}", segments.len(), show());
    println!("vlc: playing {:.2} s after it was started", started_at.as_secs_f64());
}
