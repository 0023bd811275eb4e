//! The Xtream Codes API as an IPTV app uses it, through real HTTP on
//! loopback: sign in (account info), live categories, the streams of one,
//! its short guide, then its stream URL, played as TS and, by ffmpeg, as
//! HLS; the M3U list (`get.php`) and guide (`xmltv.php`) an app fetches;
//! a user with groups sees and plays only those; a wrong password is
//! refused as apps expect (`user_info.auth` 0) and nothing starts; the
//! password never shows in acemux's log or status.

use std::time::Duration;

use acemux::access::PlayerAccess;
use acemux::channels::Channel;
use acemux::channels::guide::{GuideSpec, Location};
use acemux::content::{ContentKey, KeyType};
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, PlayerClient, TempDir, content_id};
use base64::Engine as _;
use serde_json::Value;
use tokio::process::Command;

const TOKEN: &str = "grandmas-secret-42";
const KID: &str = "kids-token-1234";

/// A guide with two programmes of `news.tv`: the one on now and the next.
fn guide() -> String {
    use acemux::channels::guide::time;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    format!(
        "<?xml version=\"1.0\"?>\n<tv>\n<channel id=\"news.tv\"><display-name>News</display-name></channel>\n\
         <programme start=\"{}\" stop=\"{}\" channel=\"news.tv\"><title>Headlines</title><desc>What &amp; why</desc></programme>\n\
         <programme start=\"{1}\" stop=\"{}\" channel=\"news.tv\"><title>Weather</title></programme>\n</tv>\n",
        time::format(now - 600),
        time::format(now + 1200),
        time::format(now + 3000),
    )
}

async fn start(dir: &TempDir) -> Harness {
    acemux_tests::log_capture::capture();
    let guide_path = dir.path().join("guide.xml");
    std::fs::write(&guide_path, guide()).unwrap();
    let value: toml::Value = toml::from_str(&format!(
        "[[users]]\nname = \"grandma\"\ntoken = \"{TOKEN}\"\n\
         [[users]]\nname = \"kid\"\ntoken = \"{KID}\"\ngroups = [\"Kids\"]\n"
    ))
    .unwrap();
    let users = acemux::access::users::users_from_file(&value["users"]).unwrap();
    Harness::start(recorded(2), move |s| {
        s.access.player_access = PlayerAccess::Token;
        s.engines.max_streams_per_engine = 10;
        s.access.users = users;
        let mut news = Channel::new("News".into(), ContentKey::new(KeyType::ContentId, content_id(1)));
        news.group = Some("News".into());
        news.tvg_id = Some("news.tv".into());
        news.logo = Some("http://logos.example/news.png".into());
        let mut cartoons = Channel::new("Cartoons".into(), ContentKey::new(KeyType::Infohash, content_id(2)));
        cartoons.group = Some("Kids".into());
        s.channels.channels = vec![news, cartoons];
        s.channels.guides = vec![GuideSpec {
            name: "local".into(),
            location: Location::Path(guide_path),
            refresh: Duration::from_secs(3600),
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
        }];
    })
    .await
}

fn api(user: &str, password: &str, action: &str) -> String {
    format!("/player_api.php?username={user}&password={password}{action}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_signs_in_lists_categories_streams_and_guide_then_plays() {
    let dir = TempDir::new("xtream-flow");
    let h = start(&dir).await;

    // Sign in.
    let (code, account) = h.get_json(&api("grandma", TOKEN, "")).await;
    assert_eq!(code, 200, "{account}");
    let info = &account["user_info"];
    assert_eq!((info["auth"].as_i64(), info["status"].as_str()), (Some(1), Some("Active")), "{account}");
    assert_eq!(info["username"], "grandma");
    assert_eq!(info["allowed_output_formats"], serde_json::json!(["m3u8", "ts"]));
    let server = &account["server_info"];
    let port = h.url("").rsplit(':').next().unwrap().trim_end_matches('/').to_owned();
    assert_eq!(
        (server["port"].as_str(), server["server_protocol"].as_str()),
        (Some(port.as_str()), Some("http"))
    );
    assert!(server["timestamp_now"].as_i64().unwrap() > 1_700_000_000, "{server}");

    // Categories, then the streams of one.
    let (_, categories) = h.get_json(&api("grandma", TOKEN, "&action=get_live_categories")).await;
    let names: Vec<&str> =
        categories.as_array().unwrap().iter().map(|c| c["category_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["News", "Kids"], "{categories}");
    let news_category = categories[0]["category_id"].as_str().unwrap().to_owned();
    assert!(news_category.parse::<u32>().is_ok(), "category ids are digits in a string: {categories}");
    let (_, streams) = h
        .get_json(&api("grandma", TOKEN, &format!("&action=get_live_streams&category_id={news_category}")))
        .await;
    let streams = streams.as_array().unwrap().clone();
    assert_eq!(streams.len(), 1, "{streams:?}");
    let news = &streams[0];
    assert_eq!((news["name"].as_str(), news["stream_type"].as_str()), (Some("News"), Some("live")));
    assert_eq!(news["epg_channel_id"], "news.tv");
    assert_eq!(news["stream_icon"], "http://logos.example/news.png");
    assert_eq!(news["category_id"].as_str(), Some(news_category.as_str()));
    let stream_id = news["stream_id"].as_u64().expect("stream_id is a number");
    let (_, all) = h.get_json(&api("grandma", TOKEN, "&action=get_live_streams")).await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let (_, vod) = h.get_json(&api("grandma", TOKEN, "&action=get_vod_categories")).await;
    assert_eq!(vod, serde_json::json!([]), "no video on demand, and no error");

    // The short guide, once the guide is read.
    let url = api("grandma", TOKEN, &format!("&action=get_short_epg&stream_id={stream_id}&limit=2"));
    let mut epg = Value::Null;
    let mut read = false;
    for _ in 0..150 {
        epg = h.get_json(&url).await.1;
        read = epg["epg_listings"].as_array().is_some_and(|l| l.len() == 2);
        if read {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(read, "the short guide lists the programme on now and the next: {epg}");
    let first = &epg["epg_listings"][0];
    let decode = |v: &Value| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap())
            .unwrap()
    };
    assert_eq!(
        (decode(&first["title"]).as_str(), decode(&first["description"]).as_str()),
        ("Headlines", "What & why")
    );
    assert_eq!(decode(&epg["epg_listings"][1]["title"]), "Weather");
    assert_eq!(first["channel_id"], "news.tv");
    assert_eq!(first["start"].as_str().unwrap().len(), "2026-12-04 17:00:00".len(), "{first}");
    assert!(first["start_timestamp"].as_str().unwrap().parse::<i64>().is_ok(), "{first}");

    // The stream URL, as TS.
    let ts = h.url(&format!("/live/grandma/{TOKEN}/{stream_id}.ts"));
    let response = h.http.get(&ts).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp2t");
    let mut player = PlayerClient::new(response);
    assert!(player.read_at_least(100_000, Duration::from_secs(10)).await);
    assert!(player.report().aligned, "whole TS packets");

    // Both, decoded by ffmpeg (what an app's player is built on).
    let hls = h.url(&format!("/live/grandma/{TOKEN}/{stream_id}.m3u8"));
    if acemux_test_artifacts::programs::available("xtream::flow", &["ffmpeg"], "ffmpeg") {
        for url in [&ts, &hls] {
            let args =
                ["-nostdin", "-hide_banner", "-v", "error", "-i", url.as_str(), "-t", "6", "-f", "null", "-"];
            let run = Command::new("ffmpeg").args(args).kill_on_drop(true).output();
            let out = tokio::time::timeout(Duration::from_secs(60), run).await.expect("ffmpeg ends").unwrap();
            let errors = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && errors.is_empty(), "{url}: {errors}");
        }
    }
    drop(player);
    assert_eq!(h.engine().counters().starts, 1, "TS and HLS of the channel share one engine session");

    // No token in the log or in status.
    let status = h.status().await.to_string();
    assert!(status.contains("grandma") && !status.contains(TOKEN), "{status}");
    let logged = acemux_tests::log_capture::everything_logged();
    assert!(!logged.iter().any(|l| l.contains(TOKEN)), "the password shows in acemux's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_php_lists_what_the_user_may_play_and_every_url_plays() {
    let dir = TempDir::new("xtream-lists");
    let h = start(&dir).await;
    let list = |user: &str, token: &str, output: &str| {
        let url = h.url(&format!("/get.php?username={user}&password={token}&type=m3u_plus&output={output}"));
        let http = h.http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let text = list("grandma", TOKEN, "ts").await;
    assert!(text.starts_with("#EXTM3U url-tvg=\""), "{text}");
    assert!(text.contains("tvg-id=\"news.tv\"") && text.contains("group-title=\"Kids\""), "{text}");
    let urls: Vec<&str> = text.lines().filter(|l| l.starts_with("http")).collect();
    assert_eq!(urls.len(), 2, "{text}");
    for url in &urls {
        assert!(url.contains(&format!("/live/grandma/{TOKEN}/")) && url.ends_with(".ts"), "{url}");
        let mut player = PlayerClient::new(h.http.get(*url).send().await.unwrap());
        assert!(player.read_at_least(20_000, Duration::from_secs(10)).await, "{url}");
    }
    let hls = list("grandma", TOKEN, "m3u8").await;
    assert!(hls.lines().filter(|l| l.starts_with("http")).all(|l| l.ends_with(".m3u8")), "{hls}");
    let guide_url = text.lines().next().unwrap().split('"').nth(1).unwrap().to_owned();
    let guide = h.http.get(&guide_url).send().await.unwrap();
    assert_eq!(guide.status(), 200, "{guide_url}");
    assert!(guide.text().await.unwrap().contains("<channel id=\"news.tv\">"));

    // A user with groups: only its channels, and no other plays.
    let kid = list("kid", KID, "ts").await;
    let kid_urls: Vec<&str> = kid.lines().filter(|l| l.starts_with("http")).collect();
    assert_eq!(kid_urls.len(), 1, "{kid}");
    assert!(kid.contains("Cartoons") && !kid.contains("News"), "{kid}");
    let news_id = urls[0].rsplit('/').next().unwrap();
    let other = h.http.get(h.url(&format!("/live/kid/{KID}/{news_id}"))).send().await.unwrap();
    assert_eq!(other.status(), 404, "another group's channel is no stream of this user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_as_apps_expect_and_nothing_starts() {
    let dir = TempDir::new("xtream-refused");
    let h = start(&dir).await;
    for (user, password) in [("grandma", "not-the-token-at-all"), ("kid", TOKEN), ("nobody", TOKEN)] {
        let r = h.http.get(h.url(&api(user, password, ""))).send().await.unwrap();
        assert_eq!(r.status(), 403, "{user}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["user_info"]["auth"], 0, "{body}");
        assert_eq!(body["code"], "wrong_token", "{body}");
    }
    let missing = h.http.get(h.url("/player_api.php")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    for path in [
        "/live/grandma/wrong-password-1/1.ts".to_owned(),
        format!("/get.php?username=kid&password={TOKEN}"),
        "/xmltv.php?username=grandma&password=wrong-password-1".to_owned(),
    ] {
        let r = h.http.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(h.engine().counters().starts, 0, "nothing started");
}
