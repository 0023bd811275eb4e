//! GStreamer plays a cold content's HLS a minute at real time without
//! rebuffering after it started: `playbin` (hlsdemux) and `playbin3`
//! (hlsdemux2), with sinks that keep to the clock as a real player's do.
//! `gst-launch-1.0` pauses the pipeline whenever a queue runs low
//! ("Buffering, setting pipeline to PAUSED") and resumes when it is full
//! again: after the first resume, that must not happen again.
//!
//! Needs Debian's `gstreamer1.0-tools` with the good, bad and libav plugins
//! (`.ci/run` installs them).

use std::process::Stdio;
use std::time::{Duration, Instant};

use acemux_tests::recording::recorded;
use acemux_tests::{Harness, content_id};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const PAUSED: &str = "Buffering, setting pipeline to PAUSED";
const RESUMED: &str = "Done buffering, setting pipeline to PLAYING";
const PLAYING: &str = "Setting pipeline to PLAYING";

/// Runs `element` on `url` for `seconds`; gst-launch's messages with the
/// time each came, from the start.
async fn play(element: &str, url: &str, seconds: u64) -> Vec<(Duration, String)> {
    let mut child = Command::new("gst-launch-1.0")
        .arg(element)
        .arg(format!("uri={url}"))
        .args(["video-sink=fakesink sync=true", "audio-sink=fakesink sync=true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("gst-launch-1.0 runs");
    let mut out = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, out.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        // Progress lines end in '\r', messages in '\n'.
        while let Some(at) = pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            if !line.is_empty() && !line.starts_with("buffering...") {
                lines.push((started.elapsed(), line));
            }
        }
    }
    let _ = child.kill().await;
    lines
}

async fn plays_without_rebuffering(element: &str, id: u32) {
    if !acemux_test_artifacts::programs::available(
        &format!("hls_gstreamer::{element}"),
        &["gst-launch-1.0"],
        "gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav",
    ) {
        return;
    }
    let h = Harness::start(recorded(1), |_| {}).await;
    let url = h.url(&format!("/ace/manifest.m3u8?id={}", content_id(id)));
    let lines = play(element, &url, 75).await;
    let log =
        || lines.iter().map(|(t, l)| format!("{:6.2} {l}", t.as_secs_f64())).collect::<Vec<_>>().join("\n");
    let errors: Vec<_> = lines.iter().filter(|(_, l)| l.starts_with("ERROR")).collect();
    assert!(errors.is_empty(), "{element} reported errors:\n{}", log());
    let playing =
        lines.iter().position(|(_, l)| l.starts_with(PLAYING)).unwrap_or_else(|| panic!("{}", log()));
    // Playback starts when the pipeline plays and no buffering holds it.
    let start = lines[playing..]
        .iter()
        .position(|(_, l)| l.starts_with(PAUSED))
        .map_or(Some(playing), |paused| {
            lines[playing + paused..]
                .iter()
                .position(|(_, l)| l.starts_with(RESUMED))
                .map(|r| playing + paused + r)
        })
        .unwrap_or_else(|| panic!("{element} never resumed:\n{}", log()));
    let started_at = lines[start].0;
    let stalls: Vec<_> = lines[start + 1..].iter().filter(|(_, l)| l.starts_with(PAUSED)).collect();
    assert!(stalls.is_empty(), "{element} rebuffered after it started at {started_at:?}:\n{}", log());
    let played = lines.last().map(|(t, _)| *t).unwrap_or_default().max(Duration::from_secs(75)) - started_at;
    assert!(played >= Duration::from_secs(60), "{element} played {played:?}:\n{}", log());
    println!("{element}: playing {:.2} s after it was started", started_at.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_playbin_hlsdemux_plays_a_cold_content_a_minute_without_rebuffering() {
    plays_without_rebuffering("playbin", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_playbin3_hlsdemux2_plays_a_cold_content_a_minute_without_rebuffering() {
    plays_without_rebuffering("playbin3", 2).await;
}
