//! The first HLS viewer of a content that was not running plays without a
//! stall: mpv (whose HLS reader is ffmpeg's) plays a cold content 60 s at
//! real time and its log shows no buffering after playback started. (Before
//! acemux held a young stream's first playlist until it listed two
//! segments' worth of media, mpv ran dry about 4 s in.)
//!
//! Needs Debian's `mpv` (`.ci/run` installs it).

use std::time::{Duration, Instant};

use acemux_tests::recording::recorded;
use acemux_tests::{Harness, content_id};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_hls_viewer_of_a_cold_content_plays_a_minute_without_a_stall() {
    if !acemux_test_artifacts::programs::available("hls_start::first_viewer", &["mpv"], "mpv") {
        return;
    }
    let h = Harness::start(recorded(1), |_| {}).await;
    let log = acemux_tests::TempDir::new("mpv-hls-start");
    let log_file = log.path().join("mpv.log");
    let url = h.url(&format!("/ace/manifest.m3u8?id={}", content_id(1)));
    let started = Instant::now();
    let run = Command::new("mpv")
        .args(["--no-config", "--vo=null", "--ao=null", "--length=60", "--msg-level=all=info,cplayer=v"])
        .arg(format!("--log-file={}", log_file.display()))
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(120), run).await.expect("mpv ends").unwrap();
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(status.success(), "mpv failed: {text}");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.contains("Starting playback")).expect("mpv started playing");
    let stalls: Vec<&&str> = lines[start..].iter().filter(|l| l.contains("Enter buffering")).collect();
    assert!(stalls.is_empty(), "mpv ran dry after it started: {stalls:#?}");
    assert!(elapsed >= Duration::from_secs(60), "mpv played its minute ({elapsed:?})");
    // What a first viewer waits (seen in the log's own clock), for the record.
    println!("first frame: {}", lines[start]);
}
