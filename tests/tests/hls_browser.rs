//! hls.js (the vendored copy the dashboard serves) in a real browser plays
//! a cold content through the dashboard's own Play code in Low-Latency
//! mode: a minute with no `waiting` after the first frame, no hls.js error,
//! and `hls.latency` (how far behind the newest media listed it plays)
//! under 4 s, which the dashboard shows.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them).

use std::time::Duration;

use acemux_tests::browser::Browser;
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, content_id};

/// Where hls.js must play, at most, behind the newest media listed.
const LATENCY_TARGET_SECS: f64 = 4.0;

/// Watches `url` with the dashboard's `watch()`, recording what the video
/// element and hls.js report.
fn start_watching(url: &str) -> String {
    format!(
        "const v = document.getElementById('player');
         window.ll = {{ started: performance.now(), firstFrame: null, waiting: [], latencies: [], behindNewest: [], errors: [] }};
         v.addEventListener('playing', () => {{
           if (ll.firstFrame === null) ll.firstFrame = (performance.now() - ll.started) / 1000;
         }});
         v.addEventListener('waiting', () => {{ if (ll.firstFrame !== null) ll.waiting.push(v.currentTime); }});
         watch('{url}', 'low latency');
         hls.on(Hls.Events.ERROR, (_, d) => ll.errors.push(d.details + (d.fatal ? ' (fatal)' : '')));
         setInterval(() => {{
           if (ll.firstFrame === null || !hls) return;
           ll.latencies.push(hls.latency);
           // The playlist's dates are when acemux received the media.
           if (hls.playingDate) ll.behindNewest.push((Date.now() - hls.playingDate.getTime()) / 1000);
         }}, 1000);
         return true;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_a_cold_content_a_minute_in_low_latency_mode_without_a_stall() {
    if !acemux_test_artifacts::programs::available(
        "hls_browser::low_latency",
        &["chromium", "chromedriver"],
        "chromium chromium-driver",
    ) {
        return;
    }
    let h = Harness::start(recorded(1), |_| {}).await;
    let browser = Browser::start(1280, 900).await.expect("chromium through chromedriver");
    browser.client.goto(&h.url("/")).await.expect("the dashboard loads");
    browser.eval(&start_watching(&format!("/ace/manifest.m3u8?id={}", content_id(1)))).await.unwrap();
    let playing =
        browser.wait_until(Duration::from_secs(40), "return ll.firstFrame !== null;").await.unwrap();
    assert!(playing, "hls.js started: {:?}", browser.eval("return ll;").await);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let ll = browser.eval("return ll;").await.unwrap();
    let parts =
        browser.eval("return hls.levels[0].details.partList ? hls.levels[0].details.partList.length : 0;");
    let parts = parts.await.unwrap().as_u64().unwrap_or(0);
    let shown =
        browser.eval("return document.getElementById('player-latency').dataset.latency;").await.unwrap();
    let status = h.status().await;
    browser.close().await;

    let first_frame = ll["firstFrame"].as_f64().unwrap();
    assert_eq!(ll["errors"], serde_json::json!([]), "hls.js reported errors: {ll}");
    assert_eq!(ll["waiting"], serde_json::json!([]), "the video waited after it started: {ll}");
    assert!(parts > 0, "hls.js read the playlist's parts");
    let latencies: Vec<f64> = ll["latencies"].as_array().unwrap().iter().filter_map(|l| l.as_f64()).collect();
    assert!(latencies.len() >= 55, "a minute of samples: {ll}");
    // hls.js moves to its target latency within its first seconds.
    let settled = &latencies[5..];
    let worst = settled.iter().copied().fold(0.0, f64::max);
    let mean = settled.iter().sum::<f64>() / settled.len() as f64;
    assert!(worst <= LATENCY_TARGET_SECS, "latency up to {worst:.2} s (mean {mean:.2} s): {latencies:?}");
    // Behind the newest byte acemux has: the wall clock against the
    // playlist's program date of the frame playing (when acemux got it).
    let behind: Vec<f64> = ll["behindNewest"].as_array().unwrap().iter().filter_map(|l| l.as_f64()).collect();
    let behind = &behind[5.min(behind.len())..];
    let behind_mean = behind.iter().sum::<f64>() / behind.len().max(1) as f64;
    let behind_worst = behind.iter().copied().fold(0.0, f64::max);
    assert!(!behind.is_empty(), "hls.js knows the program date: {ll}");
    assert!(behind_mean <= LATENCY_TARGET_SECS, "{behind_mean:.2} s behind the newest byte: {behind:?}");
    assert!(shown.as_str().is_some_and(|s| !s.is_empty()), "the dashboard shows the latency");
    let hls = &status["sessions"][0]["hls"];
    assert!(hls["parts_served"].as_u64() > Some(0), "parts were fetched: {hls}");
    println!(
        "hls.js low latency: first frame {first_frame:.2} s, latency mean {mean:.2} s, worst {worst:.2} s; \
         behind the newest byte mean {behind_mean:.2} s, worst {behind_worst:.2} s"
    );
}
