//! What players and media servers send: path URL forms, probes, ranges,
//! and the operator's limits.

use std::time::Duration;

use ace_sim::SimConfig;
use acemux_tests::{Harness, PlayerClient, content_id};

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 2_000_000, ..SimConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_forms_and_query_forms_reach_one_session() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(1);
    let mut players = vec![h.player(&id).await];
    for path in [format!("/pid/{id}/channel.ts"), format!("/content_id/{}/stream.ts", id.to_uppercase())] {
        let r = h.http.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        players.push(PlayerClient::new(r));
    }
    for p in players.iter_mut() {
        assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
        p.report().assert_clean("path-form player");
    }
    assert_eq!(h.engine().counters().starts, 1, "one session for the three URL forms");
    assert_eq!(h.status().await["sessions"][0]["client_count"], 3);

    let r = h.http.get(h.url(&format!("/infohash/{}/x.ts", content_id(2)))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    let (code, body) = h.get_json(&format!("/pid/{}/x.ts", "abc")).await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = h.get_json(&format!("/nosuchform/{id}/x.ts")).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_ranges_behave_like_a_live_stream() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(3);
    let head = h.http.head(h.url(&format!("/pid/{id}/channel.ts"))).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "video/mp2t");
    assert_eq!(head.headers()["accept-ranges"], "none");
    assert_eq!(h.engine().counters().starts, 0, "a HEAD probe must not start the engine");
    // VLC and mpv send `Range: bytes=0-`: a normal live response.
    let r = h.http.get(h.stream_url(&id)).header("Range", "bytes=0-").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut p = PlayerClient::new(r);
    assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
    p.report().assert_clean("ranged player");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_new_contents_but_let_players_join_running_ones() {
    let h = Harness::start(sim(), |s| {
        s.max_streams = Some(1);
        s.max_players = Some(3);
        s.max_streams_per_engine = 10;
    })
    .await;
    let running = content_id(4);
    let mut a = h.player(&running).await;
    assert!(a.read_at_least(1000, Duration::from_secs(5)).await);
    let (code, body) = h.get_json(&format!("/ace/getstream?id={}", content_id(5))).await;
    assert_eq!(code, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("maximum concurrent streams reached (1)"), "{body}");
    let _b = h.player(&running).await;
    let _c = h.player(&running).await;
    let (code, body) = h.get_json(&format!("/ace/getstream?id={running}")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("maximum players reached (3)"), "{body}");
    assert_eq!(h.engine().counters().starts, 1);
}
