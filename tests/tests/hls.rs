//! HLS output end to end, over real HTTP on loopback: ffmpeg reads
//! acemux's HLS of the committed H.264/AAC recording (as the first viewer,
//! as a later one, and across an upstream reconnect); playlists are parsed
//! with `m3u8-rs` and segments checked packet by packet; TS players and HLS
//! viewers share one engine session; a viewer that stops polling lets the
//! stream end after the viewer timeout and the grace period.
//!
//! The ffmpeg tests need Debian's `ffmpeg` package (`.ci/run` installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ace_sim::Media;
use acemux::config::Settings;
use acemux_test_artifacts as wasm;
use acemux_tests::hls::HlsViewer;
use acemux_tests::plugins::install;
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, TempDir, content_id};
use acemux_ts::access::{VideoCodec, is_random_access};
use acemux_ts::clock::{clock_diff, pes_pts};
use acemux_ts::{PACKET_SIZE, Packet, packets};
use tokio::process::Command;

const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
const PMT_PID: u16 = 0x1000;

/// Two-second segments, so a test sees several in a few seconds.
fn short_segments(s: &mut Settings) {
    s.hls.hls_segment = Duration::from_secs(2);
    s.hls.hls_viewer_timeout = Duration::from_secs(6);
}

fn manifest(h: &Harness, id: &str) -> String {
    h.url(&format!("/ace/manifest.m3u8?id={id}"))
}

fn ffmpeg_available(test: &str) -> bool {
    acemux_test_artifacts::programs::available(&format!("hls::{test}"), &["ffmpeg"], "ffmpeg")
}

/// Decodes `seconds` of media from `url` with ffmpeg; what it printed at
/// error level (empty when every frame decoded), or why it failed.
async fn decode_errors(url: String, seconds: u32) -> String {
    let seconds = seconds.to_string();
    let args = ["-nostdin", "-hide_banner", "-v", "error", "-i", &url, "-t", &seconds, "-f", "null", "-"];
    let child =
        Command::new("ffmpeg").args(args).stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    let out: Output = match tokio::time::timeout(Duration::from_secs(90), child).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return format!("cannot run ffmpeg: {e}"),
        Err(_) => return "ffmpeg did not finish within 90 s".into(),
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() { stderr } else { format!("exit {}: {stderr}", out.status) }
}

/// What a segment must be: PAT, PMT, then a video keyframe starting a PES;
/// returns the keyframe's PTS.
fn check_segment_start(bytes: &[u8], who: &str) -> u64 {
    assert!(bytes.len().is_multiple_of(PACKET_SIZE) && !bytes.is_empty(), "{who}: whole packets");
    let first: Vec<Packet> = packets(bytes).take(3).filter_map(Packet::new).collect();
    assert_eq!(
        first.iter().map(Packet::pid).collect::<Vec<_>>(),
        [0, PMT_PID, VIDEO_PID],
        "{who}: PAT, PMT, video"
    );
    assert!(is_random_access(&first[2], VideoCodec::H264), "{who}: starts at a keyframe");
    pes_pts(&first[2]).unwrap_or_else(|| panic!("{who}: the keyframe's PES has a PTS"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_hls_as_first_viewer_and_as_a_later_one() {
    if !ffmpeg_available("ffmpeg_decodes_hls_as_first_viewer_and_as_a_later_one") {
        return;
    }
    let h = Harness::start(recorded(1), short_segments).await;
    let url = manifest(&h, &content_id(1));
    let first = tokio::spawn(decode_errors(url.clone(), 20));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = tokio::spawn(decode_errors(url, 20));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first.is_empty(), "first viewer: {first}");
    assert!(second.is_empty(), "later viewer: {second}");
    let c = h.engine().counters();
    assert_eq!((c.starts, c.playback_connections), (1, 1), "one engine session for both viewers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ts_player_and_an_hls_viewer_share_one_engine_session() {
    let h = Harness::start(recorded(2), short_segments).await;
    let id = content_id(2);
    let mut player = h.player(&id).await;
    let viewer = HlsViewer::open(&h.http, &manifest(&h, &id)).await.expect("master playlist");
    let playlist = viewer.playlist().await.expect("media playlist");
    let segment = viewer.segment(&playlist, playlist.segments.len() - 1).await.expect("segment");
    check_segment_start(&segment.bytes, "segment");
    assert!(player.read_at_least(100_000, Duration::from_secs(10)).await);
    let c = h.engine().counters();
    assert_eq!((c.starts, c.playback_connections), (1, 1), "one engine session for TS and HLS");

    let status = h.status().await;
    let s = &status["sessions"][0];
    assert_eq!((s["ts_players"].as_u64(), s["hls_viewers"].as_u64()), (Some(1), Some(1)), "{s}");
    assert_eq!(s["client_count"], 2);
    let kinds: BTreeSet<&str> =
        s["players"].as_array().unwrap().iter().filter_map(|p| p["kind"].as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["hls", "ts"]));
    assert!(s["hls"]["segments_served"].as_u64() >= Some(1), "{s}");
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\nacemux_hls_viewers 1\n"), "{metrics}");
    assert!(metrics.contains("\nacemux_players 2\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_decode_alone_and_their_extinf_is_their_pts_span() {
    let h = Harness::start(recorded(2), short_segments).await;
    let url = manifest(&h, &content_id(3));
    let viewer = HlsViewer::open(&h.http, &url).await.expect("master playlist");

    let head = h.http.get(&viewer.media_url).send().await.unwrap();
    assert_eq!(head.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert!(head.headers()["cache-control"].to_str().unwrap().contains("no-cache"));
    assert_eq!(head.headers()["access-control-allow-origin"], "*");

    // number → (first keyframe PTS, EXTINF, discontinuity)
    let mut seen: BTreeMap<u64, (u64, f32, bool)> = BTreeMap::new();
    let mut last_sequence = 0;
    let until = Instant::now() + Duration::from_secs(9);
    while Instant::now() < until {
        let playlist = viewer.playlist().await.expect("media playlist");
        assert!(playlist.media_sequence >= last_sequence, "media sequence went back");
        last_sequence = playlist.media_sequence;
        assert!(!playlist.end_list && playlist.independent_segments);
        assert!(!playlist.segments.is_empty() && playlist.segments.len() <= 6);
        for (i, s) in playlist.segments.iter().enumerate() {
            let sequence = playlist.media_sequence + i as u64;
            assert_eq!(s.uri, format!("{sequence}.ts"), "numbered in order");
            assert!(
                s.duration.round() as u64 <= playlist.target_duration,
                "EXTINF within the target duration"
            );
            assert!(s.program_date_time.is_some(), "every segment has a program date-time");
            if seen.contains_key(&sequence) {
                continue;
            }
            let segment = viewer.segment(&playlist, i).await.expect("listed segment is served");
            assert_eq!(segment.headers["content-type"], "video/mp2t");
            assert!(segment.headers["cache-control"].to_str().unwrap().contains("max-age="));
            assert_eq!(segment.headers["access-control-allow-origin"], "*");
            assert_eq!(segment.headers["content-length"], segment.bytes.len().to_string().as_str());
            let pts = check_segment_start(&segment.bytes, &format!("segment {sequence}"));
            seen.insert(sequence, (pts, s.duration, s.discontinuity));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(seen.len() >= 5, "segments seen: {}", seen.len());
    let numbers: Vec<u64> = seen.keys().copied().collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "no number skipped: {numbers:?}");
    for (a, b) in seen.iter().zip(seen.iter().skip(1)) {
        let ((n, (pts, extinf, _)), (_, (next_pts, _, discontinuity))) = (a, b);
        assert!(!discontinuity, "no discontinuity without a reconnect");
        let span = clock_diff(*next_pts, *pts) as f64 / 90_000.0;
        assert!(
            (span - f64::from(*extinf)).abs() < 0.002,
            "segment {n}: EXTINF {extinf} but PTS span {span}"
        );
        // Two one-second GOPs (the simulated engine's loop of the
        // recording adds a frame's worth at the seam).
        assert!((1.99..2.05).contains(&span), "one-second GOPs cut every 2 s: {span}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reconnect_is_a_discontinuity_and_ffmpeg_decodes_across_it() {
    // The engine drops the first connection after 5 s of media; the next
    // one starts the recording (and its timestamps) over.
    let mut sim = recorded(1);
    let five_seconds = Media::sample().bitrate_bps().unwrap() * 5 / 8;
    sim.drop_after_bytes = Some(five_seconds);
    sim.drop_first_connection_only = true;
    let h = Harness::start(sim, short_segments).await;
    let id = content_id(4);
    let url = manifest(&h, &id);
    let decoding = ffmpeg_available("an_upstream_reconnect_is_a_discontinuity_and_ffmpeg_decodes_across_it")
        .then(|| tokio::spawn(decode_errors(url.clone(), 16)));

    let viewer = HlsViewer::open(&h.http, &url).await.expect("master playlist");
    let until = Instant::now() + Duration::from_secs(25);
    let mut tagged = None;
    while tagged.is_none() && Instant::now() < until {
        let playlist = viewer.playlist().await.expect("media playlist");
        if let Some(i) = playlist.segments.iter().position(|s| s.discontinuity) {
            let segment = viewer.segment(&playlist, i).await.expect("segment after the break");
            check_segment_start(&segment.bytes, "first segment after the reconnect");
            tagged = Some(playlist);
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let playlist = tagged.expect("a discontinuity tag after the reconnect");
    assert!(h.status().await["sessions"][0]["counters"]["reconnects"].as_u64() >= Some(1));
    // The tag comes with the media timeline restarting.
    let i = playlist.segments.iter().position(|s| s.discontinuity).unwrap();
    assert!(i > 0 || playlist.discontinuity_sequence == 0);
    if let Some(decoding) = decoding {
        // ffmpeg's HLS reader ignores the discontinuity tag, so its own
        // output stage sees timestamps step back and says so; every frame
        // still decodes (no decoder reports an error) and it runs to the end.
        let errors = decoding.await.unwrap();
        let decoder_errors: Vec<&str> =
            errors.lines().filter(|l| !l.contains("non monotonically increasing dts to muxer")).collect();
        assert!(decoder_errors.is_empty(), "ffmpeg across the reconnect: {errors}");
    }
    assert_eq!(h.engine().counters().starts, 1, "reconnects, not new engine sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ends_after_the_last_viewer_stops_polling_and_the_grace_period() {
    let h = Harness::start(recorded(2), |s| {
        s.hls.hls_segment = Duration::from_secs(1);
        s.hls.hls_viewer_timeout = Duration::from_secs(2);
    })
    .await;
    let viewer = HlsViewer::open(&h.http, &manifest(&h, &content_id(5))).await.expect("master playlist");
    // Polling keeps the viewer (and the stream) there well past the timeout.
    let polling_until = Instant::now() + Duration::from_secs(5);
    let mut stopped_polling = Instant::now();
    while Instant::now() < polling_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        viewer.playlist().await.expect("media playlist");
        stopped_polling = Instant::now();
    }
    assert_eq!(h.session_count().await, 1);
    assert_eq!(h.status().await["sessions"][0]["hls_viewers"], 1);
    assert!(h.wait_for(Duration::from_secs(10), || async { h.session_count().await == 0 }).await);
    let took = stopped_polling.elapsed();
    // Viewer timeout (2 s) + grace period (0.5 s), checked once a second.
    assert!(took >= Duration::from_millis(2400), "ended {took:?} after the last fetch");
    assert!(h.wait_for(Duration::from_secs(3), || async { h.engine().counters().stops == 1 }).await);
    // Its playlist is gone with it; fetching it does not restart anything.
    let gone = h.http.get(&viewer.media_url).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(h.engine().counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_probes_start_nothing() {
    let h = Harness::start(recorded(1), |s| {
        s.channels.channels = vec![acemux::channels::Channel::new(
            "One".into(),
            acemux::content::ContentKey::new(acemux::content::KeyType::Infohash, content_id(6)),
        )];
    })
    .await;
    let id = content_id(6);
    for (path, status, code) in [
        ("/ace/manifest.m3u8?id=xyz".to_owned(), 400, "bad_content_id"),
        ("/ace/manifest.m3u8".to_owned(), 400, "bad_content_id"),
        (format!("/ace/manifest.m3u8?id={id}&infohash={id}"), 400, "bad_content_id"),
        ("/hls/xyz/index.m3u8".to_owned(), 400, "bad_content_id"),
        (format!("/hls/{id}/live.m3u8?viewer=abc"), 404, "not_running"),
        (format!("/hls/{id}/live.m3u8?viewer={}", "a".repeat(65)), 400, "bad_viewer"),
        (format!("/hls/{id}/live.m3u8?viewer=not-hex"), 400, "bad_viewer"),
        (format!("/hls/{id}/1795000000.ts"), 404, "not_found"),
        (format!("/hls/{id}/notes.txt"), 404, "not_found"),
        ("/playlist.m3u?format=dash".to_owned(), 400, "bad_format"),
    ] {
        let r = h.http.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        if !path.starts_with("/playlist") {
            assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}: CORS on errors too");
        }
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], code, "{path}: {body}");
    }
    for path in [format!("/ace/manifest.m3u8?id={id}"), format!("/hls/{id}/index.m3u8")] {
        let r = h.http.head(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
        assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    }
    let preflight =
        h.http.request(reqwest::Method::OPTIONS, h.url("/ace/manifest.m3u8")).send().await.unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    let m3u = h.http.get(h.url("/playlist.m3u?format=hls")).send().await.unwrap().text().await.unwrap();
    assert!(m3u.contains(&format!("/ace/manifest.m3u8?infohash={id}\n")), "{m3u}");
    assert_eq!(h.engine().counters().starts, 0, "no request above started a stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_plugins_apply_to_hls_segments() {
    let dir = TempDir::new("hls-filter");
    let config = format!("[config]\ndrop_pids = [{AUDIO_PID}]\n");
    install(dir.path(), "pid-filter", wasm::PID_FILTER, Some(&config));
    let d = dir.path().to_path_buf();
    let h = Harness::start(recorded(2), |s| {
        short_segments(s);
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
    })
    .await;
    let viewer = HlsViewer::open(&h.http, &manifest(&h, &content_id(7))).await.expect("master playlist");
    let playlist = viewer.playlist().await.expect("media playlist");
    for i in 0..playlist.segments.len() {
        let segment = viewer.segment(&playlist, i).await.expect("segment");
        check_segment_start(&segment.bytes, "filtered segment");
        let pids: BTreeSet<u16> = packets(&segment.bytes).map(acemux_ts::pid).collect();
        assert!(!pids.contains(&AUDIO_PID) && pids.contains(&VIDEO_PID), "{pids:?}");
    }
}

/// Everything logged at info level in this test process (plugins log
/// through acemux's log), for the event hook test.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(logs.clone());
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .init();
        logs
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_hooks_hear_hls_viewers_come_and_go_marked_as_such() {
    let logs = captured_logs();
    let dir = TempDir::new("hls-events");
    install(dir.path(), "event-log", wasm::EVENT_LOG, None);
    let d = dir.path().to_path_buf();
    let h = Harness::start(recorded(2), |s| {
        s.hls.hls_segment = Duration::from_secs(1);
        s.hls.hls_viewer_timeout = Duration::from_secs(2);
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
    })
    .await;
    let id = content_id(8);
    let viewer = HlsViewer::open(&h.http, &manifest(&h, &id)).await.expect("master playlist");
    viewer.playlist().await.expect("media playlist");
    assert!(h.wait_for(Duration::from_secs(10), || async { h.session_count().await == 0 }).await);
    let connected = format!("event=player-connected content={id}");
    let disconnected = format!("event=player-disconnected content={id}");
    let heard = h
        .wait_for(Duration::from_secs(5), || async {
            String::from_utf8_lossy(&logs.lock().unwrap()).contains(&disconnected)
        })
        .await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(heard, "no departure logged by the event hook");
    let lines: Vec<&str> =
        text.lines().filter(|l| l.contains(&connected) || l.contains(&disconnected)).collect();
    assert_eq!(lines.len(), 2, "one viewer, one arrival and one departure: {lines:#?}");
    assert!(lines[0].contains(&connected) && lines[0].contains("kind=hls"), "{}", lines[0]);
    let departure = lines[1];
    assert!(departure.contains(&disconnected) && departure.contains("kind=hls"), "{departure}");
    assert!(departure.contains("bytes=0"), "{departure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_outlive_the_buffer_chunks_they_were_cut_from() {
    // A buffer of two chunks (about a second of this stream) behind a
    // window of six two-second segments.
    let h = Harness::start(recorded(2), |s| {
        short_segments(s);
        s.stream.ring_bytes = 2 * s.stream.chunk_bytes;
    })
    .await;
    let viewer = HlsViewer::open(&h.http, &manifest(&h, &content_id(9))).await.expect("master playlist");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let playlist = viewer.playlist().await.expect("media playlist");
    assert!(playlist.segments.len() >= 3, "{} segments", playlist.segments.len());
    let status = h.status().await;
    let session = &status["sessions"][0];
    assert!(
        session["hls"]["window_bytes"].as_u64() > session["buffer"]["bytes"].as_u64(),
        "the window holds more than the buffer: {session}"
    );
    for i in 0..playlist.segments.len() {
        let segment = viewer.segment(&playlist, i).await.expect("every listed segment is served");
        check_segment_start(&segment.bytes, &format!("segment {}", segment.sequence));
    }
}
