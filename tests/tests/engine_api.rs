//! acemux answering as an engine, through real HTTP: a client written the
//! way engine clients are (`format=json`, then `playback_url`, polling
//! `stat_url`, then `command_url`) plays and stops, shares one engine
//! session with other clients and plain players, and reads the engine's
//! statistics from one poll per stream; the service endpoints answer as an
//! engine's do.

use std::time::Duration;

use ace_sim::SimConfig;
use acemux_tests::{Harness, PlayerClient, content_id};
use serde_json::Value;

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 2_000_000, ..SimConfig::default() }
}

/// An engine-API client: what Python libraries and Kodi add-ons do.
struct EngineClient {
    http: reqwest::Client,
    response: Value,
}

impl EngineClient {
    /// `GET {url}` with `format=json`; the answer must be a success.
    async fn start(h: &Harness, query: &str) -> Self {
        let (_, answer) = h.get_json(&format!("/ace/getstream?format=json&{query}")).await;
        assert!(answer["error"].is_null(), "{answer}");
        Self { http: reqwest::Client::new(), response: answer["response"].clone() }
    }

    fn url(&self, name: &str) -> String {
        self.response[name].as_str().unwrap_or_else(|| panic!("no {name} in {}", self.response)).to_owned()
    }

    async fn play(&self) -> PlayerClient {
        let r = self.http.get(self.url("playback_url")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        PlayerClient::new(r)
    }

    async fn stat(&self) -> Value {
        self.http.get(self.url("stat_url")).send().await.unwrap().json().await.unwrap()
    }

    async fn command(&self, method: &str) -> Value {
        let url = format!("{}?method={method}", self.url("command_url"));
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_plays_polls_its_stats_and_stops_as_against_an_engine() {
    let h = Harness::start(sim(), |s| s.engines.engine_stat_interval = Duration::from_millis(500)).await;
    let id = content_id(40);
    let client = EngineClient::start(&h, &format!("id={id}&pid=kodi-1")).await;
    let r = &client.response;
    for field in ["playback_url", "stat_url", "command_url"] {
        assert!(client.url(field).starts_with(&h.base), "{field} points at acemux: {r}");
    }
    assert_eq!(r["infohash"].as_str().unwrap().len(), 40, "{r}");
    assert_eq!(r["playback_session_id"].as_str().unwrap().len(), 40, "{r}");
    assert_eq!(
        (r["is_live"].as_i64(), r["is_encrypted"].as_i64(), r["client_session_id"].as_i64()),
        (Some(1), Some(0), Some(-1))
    );
    let mut player = client.play().await;
    assert!(player.read_at_least(100_000, Duration::from_secs(5)).await);
    player.report().assert_clean("engine-API playback");
    // The engine's statistics of the shared stream, with acemux's own.
    assert!(
        h.wait_for(Duration::from_secs(5), || async { client.stat().await["response"]["peers"].is_u64() })
            .await
    );
    let stat = client.stat().await;
    let s = &stat["response"];
    assert!(stat["error"].is_null(), "{stat}");
    assert_eq!(s["status"], "dl", "{stat}");
    assert!(
        s["speed_down"].is_u64() && s["downloaded"].is_u64() && s["livepos"]["pos"].is_string(),
        "{stat}"
    );
    assert_eq!(s["playback_session_id"], r["playback_session_id"]);
    assert_eq!(s["acemux"]["players"], 1, "the client counts once, playing or not: {stat}");
    assert!(s["acemux"]["client_bytes"].as_u64().unwrap() >= 100_000, "{stat}");
    // Stop: the client's playback ends, its URLs are unknown from now on.
    assert_eq!(client.command("pause").await["error"], "unknown method");
    let stopped = client.command("stop").await;
    assert_eq!((&stopped["response"], &stopped["error"]), (&Value::from("ok"), &Value::Null), "{stopped}");
    assert!(player.read_to_end(Duration::from_secs(5)).await, "the playback ends with the client's stop");
    let stat = client.stat().await;
    assert_eq!(
        (&stat["response"], &stat["error"]),
        (&Value::Null, &Value::from("unknown playback session id"))
    );
    assert_eq!(client.command("stop").await["error"], "unknown playback session id");
    let gone = h.http.get(client.url("playback_url")).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    // The last one gone: grace period, then the engine's stop.
    assert!(h.wait_for(Duration::from_secs(5), || async { h.engine().counters().stops == 1 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_and_a_plain_player_share_one_engine_session_and_one_stat_poll() {
    let h = Harness::start(sim(), |s| s.engines.engine_stat_interval = Duration::from_millis(500)).await;
    let id = content_id(41);
    let first = EngineClient::start(&h, &format!("content_id={id}&pid=a")).await;
    let second = EngineClient::start(&h, &format!("id={id}&pid=b")).await;
    assert_ne!(first.url("playback_url"), second.url("playback_url"), "each client has its own URLs");
    let mut first_player = first.play().await;
    let mut second_player = second.play().await;
    let mut plain = h.player(&id).await;
    for p in [&mut first_player, &mut second_player, &mut plain] {
        assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
    }
    assert_eq!(h.engine().counters().starts, 1, "one engine session for every client and player");
    // Both clients poll every 100 ms for 2 s: the engine is asked by the
    // stream's own poll only.
    let polls_before = h.engine().counters().stat_calls;
    let started = std::time::Instant::now();
    let mut client_polls = 0;
    while started.elapsed() < Duration::from_secs(2) {
        for c in [&first, &second] {
            assert!(c.stat().await["error"].is_null());
            client_polls += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let engine_polls = h.engine().counters().stat_calls - polls_before;
    assert!(
        client_polls >= 20 && engine_polls <= 6,
        "{client_polls} client polls made {engine_polls} engine polls"
    );
    // The first client stops: the others go on, the engine session stays.
    assert_eq!(first.command("stop").await["response"], "ok");
    assert!(first_player.read_to_end(Duration::from_secs(5)).await);
    for p in [&mut second_player, &mut plain] {
        assert!(p.read_for(Duration::from_secs(1)).await, "the others keep playing");
        p.report().assert_clean("player after another client's stop");
    }
    assert_eq!(h.engine().counters().stops, 0);
    assert!(second.stat().await["error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_statistics_reach_status_and_metrics_and_move() {
    let h = Harness::start(sim(), |s| s.engines.engine_stat_interval = Duration::from_millis(500)).await;
    let id = content_id(42);
    let mut player = h.player(&id).await;
    assert!(player.read_at_least(50_000, Duration::from_secs(5)).await);
    let peers = || async { h.status().await["sessions"][0]["engine_stats"]["peers"].as_u64() };
    assert!(h.wait_for(Duration::from_secs(5), || async { peers().await.is_some() }).await);
    let first = peers().await;
    // The simulated swarm's peers change every second.
    assert!(
        h.wait_for(Duration::from_secs(5), || async { peers().await != first }).await,
        "peers never moved"
    );
    let status = h.status().await;
    let stats = &status["sessions"][0]["engine_stats"];
    assert_eq!(stats["status"], "dl", "{stats}");
    assert!(
        stats["speed_down"].is_u64() && stats["live_position"].is_i64() && stats["age_seconds"].is_f64(),
        "{stats}"
    );
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in ["acemux_stream_peers", "acemux_stream_speed_down_kbytes", "acemux_stream_speed_up_kbytes"] {
        assert!(metrics.contains(&format!("{name}{{content=\"{id}\"}} ")), "{name} missing:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_in_the_engines_shape() {
    let h = Harness::start(SimConfig { start_error: Some("failed to load content".into()), ..sim() }, |_| {})
        .await;
    let r =
        h.http.get(h.url(&format!("/ace/getstream?format=json&id={}", content_id(43)))).send().await.unwrap();
    assert_eq!(r.status(), 200, "an engine's refusal is answered as the engine answers it");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["response"], &body["error"]),
        (&Value::Null, &Value::from("failed to load content")),
        "{body}"
    );
    for query in ["id=abc", "id=&infohash=", &format!("id={0}&id={0}", content_id(1))] {
        let r = h.http.get(h.url(&format!("/ace/getstream?format=json&{query}"))).send().await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["response"].is_null() && body["error"].is_string() && body["code"] == "bad_content_id",
            "{body}"
        );
        let r = h.http.get(h.url(&format!("/ace/manifest.m3u8?format=json&{query}"))).send().await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        assert!(r.json::<Value>().await.unwrap()["response"].is_null());
    }
    assert_eq!(h.engine().counters().starts, 0, "nothing started");
    assert_eq!(h.session_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acemux_refusals_keep_the_engines_shape_with_acemux_status() {
    let h = Harness::start(sim(), |s| s.stream.max_streams = acemux::values::OrNone(Some(1))).await;
    let _first = EngineClient::start(&h, &format!("id={}", content_id(46))).await;
    let r =
        h.http.get(h.url(&format!("/ace/getstream?format=json&id={}", content_id(47)))).send().await.unwrap();
    assert_eq!(r.status(), 503, "a limit is acemux's refusal");
    let body: Value = r.json().await.unwrap();
    assert!(body["response"].is_null() && body["code"] == "limit", "{body}");
    assert!(body["error"].as_str().unwrap().contains("maximum concurrent streams"), "{body}");
    // The running content can still be joined, by a second client too.
    let second = EngineClient::start(&h, &format!("id={}", content_id(46))).await;
    assert!(second.stat().await["error"].is_null());
    assert_eq!(h.engine().counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_counts_as_one_player_under_the_players_limit() {
    let h = Harness::start(sim(), |s| s.stream.max_players = acemux::values::OrNone(Some(1))).await;
    let id = content_id(48);
    let client = EngineClient::start(&h, &format!("id={id}")).await;
    let mut player = client.play().await;
    assert!(
        player.read_at_least(50_000, Duration::from_secs(5)).await,
        "its playback is not a second player"
    );
    assert_eq!(h.status().await["sessions"][0]["client_count"], 1);
    let r = h.http.get(h.stream_url(&id)).send().await.unwrap();
    assert_eq!(r.status(), 503, "the limit holds for anyone else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_client_gets_a_playable_manifest_url() {
    let h = Harness::start(sim(), |_| {}).await;
    let id = content_id(44);
    let (_, answer) = h.get_json(&format!("/ace/manifest.m3u8?format=json&id={id}")).await;
    let url = answer["response"]["playback_url"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(url.starts_with(&h.base) && url.ends_with(".m3u8"), "{url}");
    let playlist = h.http.get(url).send().await.unwrap();
    assert_eq!(playlist.status(), 200);
    let text = playlist.text().await.unwrap();
    assert!(text.starts_with("#EXTM3U") && text.contains("live.m3u8?viewer="), "{text}");
    assert_eq!(h.engine().counters().starts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_answer_as_an_engine_and_search_results_play() {
    let h = Harness::start(sim(), |_| {}).await;
    let (code, version) = h.get_json("/webui/api/service?method=get_version&format=json").await;
    assert_eq!(code, 200);
    assert_eq!(version["result"]["version"], "3.1.70", "{version}");
    assert!(version["result"]["code"].is_u64() && version["error"].is_null(), "{version}");
    let jsonp =
        h.http.get(h.url("/webui/api/service?method=get_version&callback=jQuery12_34")).send().await.unwrap();
    assert_eq!(jsonp.headers()["content-type"], "application/javascript; charset=utf-8");
    let text = jsonp.text().await.unwrap();
    assert!(text.starts_with("jQuery12_34({") && text.ends_with("});"), "{text}");
    let (code, _) = h.get_json("/webui/api/service?method=get_version&callback=alert(1)").await;
    assert_eq!(code, 400);
    let (_, status) = h.get_json("/server/api?api_version=3&method=get_status").await;
    assert!(status["result"]["engines_healthy"].is_u64() && status["error"].is_null(), "{status}");
    let (code, unknown) = h.get_json("/server/api?method=launch_missiles").await;
    assert_eq!((code, &unknown["error"]), (200, &Value::from("unknown method")), "{unknown}");
    // Search through acemux: no token of the client's own; results play.
    for path in ["/server/api?method=search&query=futbol", "/search?query=futbol&page_size=10"] {
        let (code, found) = h.get_json(path).await;
        assert_eq!(code, 200, "{path}: {found}");
        let results = found["result"]["results"].as_array().unwrap_or_else(|| panic!("{path}: {found}"));
        assert_eq!(results.len(), 3);
        assert!(results[0]["availability"].is_f64() && results[0]["name"] == "futbol 1", "{found}");
    }
    assert_eq!(h.engine().counters().searches, 2);
    let (_, found) = h.get_json("/search?query=futbol").await;
    let infohash = found["result"]["results"][0]["infohash"].as_str().unwrap().to_owned();
    let r = h.http.get(h.url(&format!("/ace/getstream?infohash={infohash}"))).send().await.unwrap();
    let mut player = PlayerClient::new(r);
    assert!(
        player.read_at_least(50_000, Duration::from_secs(5)).await,
        "a search result plays through acemux"
    );
    let (code, _) = h.get_json(&format!("/search?query={}", "x".repeat(300))).await;
    assert_eq!(code, 400, "a query past the bound is refused");
    let (_, files) = h.get_json(&format!("/server/api?method=get_media_files&infohash={infohash}")).await;
    assert!(files["result"]["0"].is_string(), "{files}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_lets_the_stream_go() {
    let h = Harness::start(sim(), |s| s.engine_api.api_client_timeout = Duration::from_secs(1)).await;
    let client = EngineClient::start(&h, &format!("id={}", content_id(45))).await;
    assert_eq!(
        h.status().await["sessions"][0]["client_count"],
        1,
        "the answer holds the stream for the client"
    );
    // Neither plays nor polls: gone after the client timeout, then the
    // grace period, then the engine's stop.
    assert!(h.wait_for(Duration::from_secs(6), || async { h.engine().counters().stops == 1 }).await);
    assert_eq!(client.stat().await["error"], "unknown playback session id");
    assert_eq!(h.session_count().await, 0);
}

/// A plain player of `/ace/getstream` with this query.
async fn player_with(h: &Harness, query: &[(&str, &str)]) -> PlayerClient {
    let r = h.http.get(h.url("/ace/getstream")).query(query).send().await.unwrap();
    assert_eq!(r.status(), 200, "{query:?}");
    PlayerClient::new(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_and_magnets_share_with_their_infohash_and_output_parameters_split_sessions() {
    let h = Harness::start(sim(), |s| s.engines.max_streams_per_engine = 10).await;
    // `url=` is passed to the engine as given; its answer names the infohash.
    let url = "http://lists.example/sports one.acelive?x=1".replace(' ', "%20");
    let answer: Value = h
        .http
        .get(h.url("/ace/getstream"))
        .query(&[("format", "json"), ("url", url.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let infohash = answer["response"]["infohash"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    let mut by_url = player_with(&h, &[("url", &url)]).await;
    let mut by_infohash = player_with(&h, &[("infohash", &infohash)]).await;
    for p in [&mut by_url, &mut by_infohash] {
        assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
        p.report().assert_clean("url / infohash player");
    }
    assert_eq!(h.engine().counters().starts, 1, "the URL and its infohash share one engine session");
    // A magnet link, the same way.
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=Sports&tr=udp://tracker.example:80", content_id(51));
    let mut by_magnet = player_with(&h, &[("magnet", &magnet)]).await;
    assert!(by_magnet.read_at_least(50_000, Duration::from_secs(5)).await);
    let session =
        h.status().await["sessions"].as_array().unwrap().iter().find(|s| s["key_type"] == "magnet").cloned();
    let magnet_infohash = session.unwrap()["infohash"].as_str().unwrap().to_owned();
    let mut magnet_by_infohash = player_with(&h, &[("infohash", &magnet_infohash)]).await;
    assert!(magnet_by_infohash.read_at_least(50_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().starts, 2);
    // Per-player parameters never split a session; output parameters do.
    let id = content_id(52);
    let mut a = player_with(&h, &[("id", &id), ("pid", "1"), ("_", "123")]).await;
    let mut b = player_with(&h, &[("id", &id), ("pid", "2"), ("sid", "7")]).await;
    for p in [&mut a, &mut b] {
        assert!(p.read_at_least(50_000, Duration::from_secs(5)).await);
    }
    assert_eq!(h.engine().counters().starts, 3, "`pid` never splits a session");
    let mut transcoded = player_with(&h, &[("id", &id), ("transcode_audio", "1")]).await;
    assert!(transcoded.read_at_least(50_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().starts, 4, "players asking for other output never share a stream");
    let asked = h.engine().start_queries();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(asked[0], [pair("url", &url)], "the URL reaches the engine as given");
    assert_eq!(asked[1], [pair("magnet", &magnet)]);
    assert_eq!(asked[2], [pair("content_id", &id)], "per-player parameters stay with acemux");
    assert_eq!(asked[3], [pair("content_id", &id), pair("transcode_audio", "1")]);
    let sessions = h.status().await["sessions"].as_array().unwrap().len();
    assert_eq!(sessions, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_no_content_are_refused_before_anything_starts() {
    let h = Harness::start(sim(), |_| {}).await;
    let long = format!("http://x.example/{}", "a".repeat(3000));
    for (param, value) in [
        ("url", "ftp://lists.example/x.acelive"),
        ("url", "javascript:alert(1)"),
        ("url", long.as_str()),
        ("magnet", "magnet:?dn=no-hash"),
        ("magnet", "magnet:?xt=urn:btih:zz"),
        ("direct_url", "file:///etc/passwd"),
    ] {
        for format in ["json", "ts"] {
            let r = h
                .http
                .get(h.url("/ace/getstream"))
                .query(&[(param, value), ("format", format)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{param}={value}");
            let body: Value = r.json().await.unwrap();
            assert!(body["error"].as_str().is_some_and(|e| e.contains(param)), "{body}");
        }
    }
    let r = h
        .http
        .get(h.url("/ace/getstream"))
        .query(&[("id", content_id(1).as_str()), ("transcode_audio", "1;rm")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(h.engine().counters().starts, 0, "nothing started");
}
