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
        s.stream.max_streams = acemux::values::OrNone(Some(1));
        s.stream.max_players = acemux::values::OrNone(Some(3));
        s.engines.max_streams_per_engine = 10;
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

fn channels() -> Vec<acemux::channels::Channel> {
    use acemux::content::{ContentKey, KeyType};
    vec![
        acemux::channels::Channel {
            name: "News One".into(),
            key: ContentKey::new(KeyType::ContentId, content_id(10)),
            alternates: Vec::new(),
            identity: None,
            group: Some("News".into()),
            logo: Some("http://logos/n1.png".into()),
            tvg_id: Some("news1.tv".into()),
            number: None,
        },
        acemux::channels::Channel {
            name: "Sport".into(),
            key: ContentKey::new(KeyType::Infohash, content_id(11)),
            alternates: Vec::new(),
            identity: None,
            group: Some("Sports".into()),
            logo: None,
            tvg_id: None,
            number: None,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_lists_channels_with_urls_that_stream() {
    let h = Harness::start(sim(), |s| {
        s.channels.channels = channels();
        s.channels.epg_url = acemux::values::OrNone(Some("http://epg.example/guide.xml".into()));
    })
    .await;
    let r = h.http.get(h.url("/playlist.m3u")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "#EXTM3U url-tvg=\"http://epg.example/guide.xml\" x-tvg-url=\"http://epg.example/guide.xml\""
    );
    assert_eq!(
        lines[1],
        "#EXTINF:-1 tvg-id=\"news1.tv\" tvg-name=\"News One\" tvg-chno=\"1\" tvg-logo=\"http://logos/n1.png\" group-title=\"News\",News One"
    );
    let host = h.base.trim_start_matches("http://");
    assert_eq!(lines[2], format!("http://{host}/pid/{}/News_One.ts", content_id(10)));
    assert!(lines[3].starts_with(
        "#EXTINF:-1 tvg-id=\"2\" tvg-name=\"Sport\" tvg-chno=\"2\" group-title=\"Sports\",Sport"
    ));
    assert_eq!(lines[4], format!("http://{host}/infohash/{}/Sport.ts", content_id(11)));
    // The URLs work.
    let mut p = PlayerClient::new(h.http.get(lines[2]).send().await.unwrap());
    assert!(p.read_at_least(20_000, Duration::from_secs(5)).await);
    p.report().assert_clean("playlist player");

    let only_sports =
        h.http.get(h.url("/playlist.m3u?group=Sports")).send().await.unwrap().text().await.unwrap();
    assert_eq!(only_sports.lines().count(), 3, "{only_sports}");
    let r = h.http.get(h.url("/playlist.m3u")).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let proxied = h
        .http
        .get(h.url("/playlist.m3u"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "tv.example.org")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        proxied.contains(&format!("https://tv.example.org/pid/{}/News_One.ts", content_id(10))),
        "{proxied}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdhomerun_documents_carry_what_media_servers_read() {
    let h = Harness::start(sim(), |s| {
        s.channels.channels = channels();
        s.engines.max_streams_per_engine = 4;
        s.front.public_url = acemux::values::OrNone(Some("http://acemux.lan:8000".into()));
    })
    .await;
    let (code, d) = h.get_json("/discover.json").await;
    assert_eq!(code, 200);
    assert_eq!(d["BaseURL"], "http://acemux.lan:8000");
    assert_eq!(d["LineupURL"], "http://acemux.lan:8000/lineup.json");
    assert_eq!(d["TunerCount"], 4, "one engine x 4 streams");
    assert_eq!(d["DeviceID"].as_str().unwrap().len(), 8);
    let (_, lineup) = h.get_json("/lineup.json").await;
    let lineup = lineup.as_array().unwrap();
    assert_eq!(lineup.len(), 2);
    assert_eq!(lineup[0]["GuideNumber"], "1");
    assert_eq!(lineup[0]["GuideName"], "News One");
    assert_eq!(lineup[0]["URL"], format!("http://acemux.lan:8000/pid/{}/News_One.ts", content_id(10)));
    let (_, status) = h.get_json("/lineup_status.json").await;
    assert_eq!(status["ScanInProgress"], 0);
    let xml = h.http.get(h.url("/device.xml")).send().await.unwrap().text().await.unwrap();
    assert!(
        xml.contains("<URLBase>http://acemux.lan:8000</URLBase>") && xml.contains("<UDN>uuid:acemux-"),
        "{xml}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_id_and_its_infohash_share_one_upstream() {
    let h = Harness::start(sim(), |s| s.stream.grace_period = Duration::from_millis(200)).await;
    let id = content_id(20);
    let mut by_id = h.player(&id).await;
    assert!(by_id.read_at_least(10_000, Duration::from_secs(5)).await);
    let infohash = h.status().await["sessions"][0]["infohash"]
        .as_str()
        .expect("engine revealed the infohash")
        .to_owned();
    assert_ne!(infohash, id);
    let r = h.http.get(h.url(&format!("/ace/getstream?infohash={infohash}"))).send().await.unwrap();
    let mut by_infohash = PlayerClient::new(r);
    assert!(by_infohash.read_at_least(10_000, Duration::from_secs(5)).await);
    by_infohash.report().assert_clean("player by infohash");
    assert_eq!(h.engine().counters().starts, 1, "content id and infohash share one upstream");
    assert_eq!(h.status().await["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(h.status().await["sessions"][0]["client_count"], 2);
    drop((by_id, by_infohash));
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await);

    // The other way round: an infohash session first, then the content id.
    let r = h.http.get(h.url(&format!("/infohash/{infohash}/x.ts"))).send().await.unwrap();
    let mut first = PlayerClient::new(r);
    assert!(first.read_at_least(10_000, Duration::from_secs(5)).await);
    let mut second = h.player(&id).await;
    assert!(second.read_at_least(10_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().starts, 2, "the content id joined the running infohash session");
}
