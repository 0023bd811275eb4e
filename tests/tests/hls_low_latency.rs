//! Low-Latency HLS through raw HTTP on loopback (RFC 8216bis): blocking
//! playlist reloads wait for the part they ask for and answer when it is
//! cut, a directive too far ahead is refused with 400, a wait is bounded
//! (503 when the stream stalls), a viewer may not pile up waiting requests;
//! the hinted part streams as it is cut; parts concatenate to exactly their
//! segment's bytes; cache headers tell a CDN what it may keep.
//!
//! ffmpeg, mpv, GStreamer and hls.js play these playlists in `hls.rs`,
//! `hls_start.rs`, `hls_gstreamer.rs` and `hls_browser.rs` (parts are on
//! by default).

use std::time::{Duration, Instant};

use ace_sim::ContentBehaviour;
use acemux::config::Settings;
use acemux_tests::hls::HlsViewer;
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, content_id};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_LENGTH, HeaderMap};

/// Two-second segments in half-second parts.
fn low_latency(s: &mut Settings) {
    s.hls.hls_segment = Duration::from_secs(2);
    s.hls.hls_part = Some(Duration::from_millis(500));
    s.hls.hls_viewer_timeout = Duration::from_secs(10);
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn get(h: &Harness, url: &str) -> Answer {
    let response = h.http.get(url).timeout(Duration::from_secs(30)).send().await.expect("answered");
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, body: response.text().await.expect("a body") }
}

/// The playlist's parts in order, as (segment, index, duration, URI).
fn parts(playlist: &str) -> Vec<(u64, usize, f64, String)> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .map(|attrs| {
            let duration = attr(attrs, "DURATION").parse().expect("a part duration");
            let uri = attr(attrs, "URI").trim_matches('"').to_owned();
            let (n, i) = uri.strip_suffix(".ts").and_then(|s| s.split_once('.')).expect("<n>.<i>.ts");
            (n.parse().unwrap(), i.parse().unwrap(), duration, uri)
        })
        .collect()
}

fn attr<'a>(attrs: &'a str, name: &str) -> &'a str {
    attrs
        .split(',')
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name} in {attrs}"))
}

fn newest_part(playlist: &str) -> (u64, usize) {
    parts(playlist)
        .last()
        .map(|(n, i, _, _)| (*n, *i))
        .unwrap_or_else(|| panic!("no part listed: {playlist}"))
}

fn preload_hint(playlist: &str) -> String {
    let line = playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:")).expect("a preload hint");
    assert_eq!(attr(line, "TYPE"), "PART");
    attr(line, "URI").trim_matches('"').to_owned()
}

fn with_directive(viewer: &HlsViewer, msn: u64, part: Option<usize>) -> String {
    let part = part.map(|p| format!("&_HLS_part={p}")).unwrap_or_default();
    format!("{}&_HLS_msn={msn}{part}", viewer.media_url)
}

fn error_code(answer: &Answer) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&answer.body).unwrap_or_else(|_| panic!("JSON: {}", answer.body));
    v["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_reload_answers_when_the_asked_part_is_cut() {
    let h = Harness::start(recorded(1), low_latency).await;
    let viewer =
        HlsViewer::open(&h.http, &h.url(&format!("/ace/manifest.m3u8?id={}", content_id(1)))).await.unwrap();
    let plain = get(&h, &viewer.media_url).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert!(
        plain.body.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n"),
        "{}",
        plain.body
    );
    assert!(plain.body.contains("#EXT-X-PART-INF:PART-TARGET=0.500\n"), "{}", plain.body);
    assert!(
        plain.headers[CACHE_CONTROL].to_str().unwrap().contains("no-cache"),
        "a plain playlist is not kept"
    );
    for (_, _, duration, uri) in parts(&plain.body) {
        assert!(duration <= 0.5, "{uri} lasts {duration} s, longer than the part target: {}", plain.body);
    }

    // Ask for the part after the newest, then for the one after that: each
    // answer waits for it and lists it.
    let (mut msn, mut index) = newest_part(&plain.body);
    for _ in 0..4 {
        let asked = (msn, index + 1);
        let started = Instant::now();
        let answer = get(&h, &with_directive(&viewer, asked.0, Some(asked.1))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let newest = newest_part(&answer.body);
        assert!(newest >= asked || newest.0 > asked.0, "asked {asked:?}, the answer lists up to {newest:?}");
        assert!(started.elapsed() < Duration::from_secs(6), "answered within the bound");
        let cache = answer.headers[CACHE_CONTROL].to_str().unwrap().to_owned();
        assert!(cache.starts_with("public, max-age="), "a blocking answer is cacheable by its URL: {cache}");
        (msn, index) = newest;
    }

    // A segment the playlist already holds is answered at once.
    let answer = get(&h, &with_directive(&viewer, msn.saturating_sub(1), None)).await;
    assert_eq!(answer.status, StatusCode::OK);

    // More than two segments ahead, or far past the advance part limit: 400.
    // The hinted part is in the segment being cut (the newest listed part
    // may end the segment before it).
    let live = get(&h, &viewer.media_url).await.body;
    let hint = preload_hint(&live);
    let live_msn: u64 = hint.split('.').next().unwrap().parse().unwrap();
    let far = get(&h, &with_directive(&viewer, live_msn + 2, None)).await;
    assert_eq!((far.status, error_code(&far).as_str()), (StatusCode::BAD_REQUEST, "directive_too_far"));
    let far = get(&h, &with_directive(&viewer, live_msn, Some(40))).await;
    assert_eq!((far.status, error_code(&far).as_str()), (StatusCode::BAD_REQUEST, "directive_too_far"));
    // Malformed directives: 400.
    for query in ["&_HLS_part=1", "&_HLS_msn=x", "&_HLS_msn=1&_HLS_part=-1"] {
        let bad = get(&h, &format!("{}{query}", viewer.media_url)).await;
        assert_eq!(
            (bad.status, error_code(&bad).as_str()),
            (StatusCode::BAD_REQUEST, "bad_directive"),
            "{query}"
        );
    }
    let c = h.engine().counters();
    assert_eq!(c.starts, 1, "one engine session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_is_bounded_and_a_viewer_cannot_pile_up_waiting_requests() {
    let id = content_id(2);
    let mut sim = recorded(1);
    // After the first playlist (which waits for 8 s of media and a half segment).
    let stall = ContentBehaviour { stall_after: Some(Duration::from_secs(14)), ..Default::default() };
    sim.contents.insert(id.to_lowercase(), stall);
    let h = Harness::start(sim, low_latency).await;
    let viewer = HlsViewer::open(&h.http, &h.url(&format!("/ace/manifest.m3u8?id={id}"))).await.unwrap();
    // Wait for the stall: the newest part stops changing.
    let mut newest = newest_part(&get(&h, &viewer.media_url).await.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = newest_part(&get(&h, &viewer.media_url).await.body);
        if now == newest {
            break;
        }
        assert!(Instant::now() < deadline, "the engine stalls 14 s in");
        newest = now;
    }
    let next = with_directive(&viewer, newest.0, Some(newest.1 + 1));
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (http, url) = (h.http.clone(), next.clone());
            tokio::spawn(async move { http.get(url).timeout(Duration::from_secs(30)).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let third = get(&h, &next).await;
    assert_eq!(
        (third.status, error_code(&third).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_waiting")
    );
    let started = Instant::now();
    for w in waiting {
        let answer = w.await.unwrap().expect("answered");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "no part came: the wait ends");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "part_not_cut", "{body}");
    }
    // Three target durations (6 s) from when they started waiting.
    assert!(started.elapsed() < Duration::from_secs(15), "the wait is bounded ({:?})", started.elapsed());
    // The hinted part of a stalled stream (cut up to the stall) is streamed
    // as far as it goes, then broken off after a few part targets without
    // growth: no player or cache takes it for complete.
    let hint = preload_hint(&get(&h, &viewer.media_url).await.body);
    let started = Instant::now();
    let part =
        h.http.get(viewer.segment_url(&hint).unwrap()).timeout(Duration::from_secs(30)).send().await.unwrap();
    assert_eq!(part.status(), StatusCode::OK);
    assert!(part.bytes().await.is_err(), "an incomplete part is broken off, not ended");
    assert!(started.elapsed() < Duration::from_secs(15), "bounded ({:?})", started.elapsed());
    // The part after it is not even begun: 404 after a few part targets.
    let (n, i) = hint.strip_suffix(".ts").and_then(|s| s.split_once('.')).unwrap();
    let after = format!("{n}.{}.ts", i.parse::<usize>().unwrap() + 1);
    let part = get(&h, &viewer.segment_url(&after).unwrap()).await;
    assert_eq!(part.status, StatusCode::NOT_FOUND, "{}", part.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_concatenate_to_their_segment_and_the_hinted_part_streams_as_it_is_cut() {
    let h = Harness::start(recorded(1), low_latency).await;
    let viewer =
        HlsViewer::open(&h.http, &h.url(&format!("/ace/manifest.m3u8?id={}", content_id(3)))).await.unwrap();
    let playlist = get(&h, &viewer.media_url).await.body;

    // The hinted part, asked before it is cut: streamed as it grows.
    let hint = preload_hint(&playlist);
    let hinted =
        h.http.get(viewer.segment_url(&hint).unwrap()).timeout(Duration::from_secs(30)).send().await.unwrap();
    assert_eq!(hinted.status(), StatusCode::OK);
    let streamed_length = hinted.headers().get(CONTENT_LENGTH).cloned();
    let streamed = hinted.bytes().await.expect("the part completes");

    // Wait for its segment to complete, then compare everything.
    let (n, i) = hint.strip_suffix(".ts").and_then(|s| s.split_once('.')).unwrap();
    let (n, i): (u64, usize) = (n.parse().unwrap(), i.parse().unwrap());
    let playlist = get(&h, &with_directive(&viewer, n + 1, None)).await.body;
    let listed: Vec<_> = parts(&playlist).into_iter().filter(|p| p.0 == n).collect();
    assert!(listed.len() > i, "segment {n} lists part {i}: {playlist}");
    let mut joined = Vec::new();
    for (_, index, _, uri) in &listed {
        let response = h.http.get(viewer.segment_url(uri).unwrap()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let cache = response.headers()[CACHE_CONTROL].to_str().unwrap().to_owned();
        assert!(cache.contains("immutable") && cache.starts_with("public, max-age="), "{uri}: {cache}");
        assert!(response.headers().contains_key("etag"), "{uri}");
        let bytes = response.bytes().await.unwrap();
        if *index == i {
            assert_eq!(bytes, streamed, "the streamed part is the part");
        }
        joined.extend_from_slice(&bytes);
    }
    let segment = h.http.get(viewer.segment_url(&format!("{n}.ts")).unwrap()).send().await.unwrap();
    assert_eq!(segment.status(), StatusCode::OK);
    let segment = segment.bytes().await.unwrap();
    assert_eq!(joined.len(), segment.len(), "parts of {n} add up to the segment");
    assert!(joined == segment, "parts of {n} concatenate to exactly its bytes");
    println!("hinted part {hint}: {} bytes, Content-Length {streamed_length:?}", streamed.len());
}
