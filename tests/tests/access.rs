//! Who may watch, through real HTTP on loopback: with
//! `--player-access token`, streams, HLS, playlists and the tuner need a
//! `[[users]]` token in the URL (`?token=` or a `/t/<token>/` prefix); a
//! missing token is 401 and starts nothing, a wrong one 403; an address
//! that keeps guessing gets 429 while others play; lists embed the caller's
//! token in every URL; the token never shows in logs, status or metrics.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use acemux::access::PlayerAccess;
use acemux::channels::Channel;
use acemux::content::{ContentKey, KeyType};
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, PlayerClient, content_id};

const TOKEN: &str = "grandmas-secret-42";
/// A user who may have two players at once.
const TOM: &str = "toms-token-0007";
/// A user who sees and plays only the group "Kids".
const KID: &str = "kids-token-1234";
/// A user who may keep one stream running.
const SAM: &str = "sams-token-5678";

async fn token_mode() -> Harness {
    acemux_tests::log_capture::capture();
    let value: toml::Value = toml::from_str(&format!(
        "[[users]]\nname = \"grandma\"\ntoken = \"{TOKEN}\"\n\
             [[users]]\nname = \"tom\"\ntoken = \"{TOM}\"\nmax_players = 2\n\
             [[users]]\nname = \"kid\"\ntoken = \"{KID}\"\ngroups = [\"Kids\"]\n\
             [[users]]\nname = \"sam\"\ntoken = \"{SAM}\"\nmax_streams = 1\n"
    ))
    .expect("TOML");
    let users = acemux::access::users::users_from_file(&value["users"]).unwrap();
    Harness::start(recorded(2), move |s| {
        s.access.player_access = PlayerAccess::Token;
        // Every listed channel may play at once.
        s.engines.max_streams_per_engine = 10;
        s.access.token_failures = 5;
        s.access.users = users;
        let mut cartoons =
            Channel::new("Cartoons".into(), ContentKey::new(KeyType::ContentId, content_id(30)));
        cartoons.group = Some("Kids".into());
        // A channel with two ids: played by its channel key.
        let mut two_ids = Channel::new("Two ids".into(), ContentKey::new(KeyType::ContentId, content_id(31)));
        two_ids.alternates = vec![ContentKey::new(KeyType::ContentId, content_id(32))];
        two_ids.identity = Some("channel:Two ids".into());
        two_ids.group = Some("Kids".into());
        s.channels.channels = vec![
            Channel::new("News".into(), ContentKey::new(KeyType::ContentId, content_id(1))),
            Channel::new("Film".into(), ContentKey::new(KeyType::Infohash, content_id(2))),
            cartoons,
            two_ids,
        ];
    })
    .await
}

/// A client whose requests come from `address` (acemux limits per address).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(address.parse::<IpAddr>().ok()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_nothing_starts_and_with_it_everything_plays() {
    let h = token_mode().await;
    let id = content_id(3);
    let stranger = client_from("127.0.0.5");
    for path in
        [format!("/ace/getstream?id={id}"), format!("/pid/{id}/x.ts"), format!("/ace/manifest.m3u8?id={id}")]
    {
        let r = stranger.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "token_required", "{path}: {body}");
    }
    let r = stranger.get(h.url(&format!("/ace/getstream?id={id}&token=not-the-one"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let another = client_from("127.0.0.6");
    for path in ["/playlist.m3u", "/lineup.json", "/channels.json", "/discover.json", "/epg.xml"] {
        assert_eq!(another.get(h.url(path)).send().await.unwrap().status(), 401, "{path}");
    }
    assert_eq!(h.engine().counters().starts, 0, "nothing started without a token");

    // The token in the query, then as a path prefix: one stream.
    let mut a = PlayerClient::new(
        h.http.get(h.url(&format!("/ace/getstream?id={id}&token={TOKEN}"))).send().await.unwrap(),
    );
    let mut b =
        PlayerClient::new(h.http.get(h.url(&format!("/t/{TOKEN}/pid/{id}/x.ts"))).send().await.unwrap());
    assert!(
        a.read_at_least(50_000, Duration::from_secs(5)).await
            && b.read_at_least(50_000, Duration::from_secs(5)).await
    );
    assert!(a.report().aligned && b.report().aligned);
    assert_eq!(h.engine().counters().starts, 1);
    // Status and metrics name the user, never the token.
    let status = h.status().await;
    let users: Vec<&str> = status["sessions"][0]["players"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["user"].as_str())
        .collect();
    assert_eq!(users, ["grandma", "grandma"], "{status}");
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("acemux_user_players{user=\"grandma\"} 2"), "{metrics}");

    // HLS with the token in the query: ffmpeg follows the master, media
    // playlist and segments (relative URLs) and decodes.
    if acemux_test_artifacts::programs::available("access::hls", &["ffmpeg"], "ffmpeg") {
        for url in [
            h.url(&format!("/ace/manifest.m3u8?id={}&token={TOKEN}", content_id(4))),
            h.url(&format!("/t/{TOKEN}/ace/manifest.m3u8?id={}", content_id(5))),
        ] {
            let out = tokio::process::Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-i", &url, "-t", "4", "-f", "null", "-"])
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "{url}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{url}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_fetched_with_the_token_embed_it_in_every_url_and_each_plays() {
    let h = token_mode().await;
    for (list, hls) in [
        (format!("/playlist.m3u?token={TOKEN}"), false),
        (format!("/t/{TOKEN}/playlist.m3u"), false),
        (format!("/playlist.m3u?format=hls&token={TOKEN}"), true),
    ] {
        let text = h.http.get(h.url(&list)).send().await.unwrap().text().await.unwrap();
        let urls: Vec<&str> = text.lines().filter(|l| l.starts_with("http")).collect();
        assert_eq!(urls.len(), 4, "{text}");
        assert!(text.contains(&format!("/t/{TOKEN}/epg.xml")), "the guide URL carries it too: {text}");
        for url in urls {
            assert!(url.contains(&format!("/t/{TOKEN}/")), "{url}");
            let r = h.http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            if !hls {
                let mut player = PlayerClient::new(r);
                assert!(player.read_at_least(20_000, Duration::from_secs(5)).await, "{url}");
            }
        }
    }
    let (_, lineup) = h.get_json(&format!("/lineup.json?token={TOKEN}")).await;
    assert!(lineup[0]["URL"].as_str().unwrap().contains(&format!("/t/{TOKEN}/")), "{lineup}");
    let (_, discover) = h.get_json(&format!("/t/{TOKEN}/discover.json")).await;
    let lineup_url = discover["LineupURL"].as_str().unwrap();
    assert_eq!(h.http.get(lineup_url).send().await.unwrap().status(), 200, "{discover}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_guessing_is_held_off_while_others_play_and_the_token_is_never_shown() {
    let h = token_mode().await;
    let guesser = client_from("127.0.0.7");
    let mut codes = Vec::new();
    for i in 0..50 {
        let r = guesser
            .get(h.url(&format!("/ace/getstream?id={}&token=guess-{i}", content_id(6))))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
        }
    }
    assert_eq!(&codes[..5], &[403; 5], "the burst: {codes:?}");
    assert!(codes[5..].iter().all(|c| *c == 429), "then held off: {codes:?}");
    // Even the right token is refused from that address meanwhile…
    let r = guesser
        .get(h.url(&format!("/ace/getstream?id={}&token={TOKEN}", content_id(6))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // …an engine-API client too, in the engine's answer shape, told when to come back…
    let r = guesser
        .get(h.url(&format!("/ace/getstream?id={}&token={TOKEN}&format=json", content_id(6))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((body["response"].is_null(), body["code"].as_str()), (true, Some("too_many_failures")));
    // …while another address plays.
    let other = client_from("127.0.0.8");
    let r =
        other.get(h.url(&format!("/ace/getstream?id={}&token={TOKEN}", content_id(6)))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut player = PlayerClient::new(r);
    assert!(player.read_at_least(20_000, Duration::from_secs(5)).await);

    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("acemux_player_token_refusals_total 5"), "{metrics}");
    assert!(
        metrics.contains("acemux_player_token_limited_total 47"),
        "45 guesses and the right token twice: {metrics}"
    );
    let status = h.status().await.to_string();
    for (what, text) in [("status", status.as_str()), ("metrics", metrics.as_str())] {
        assert!(!text.contains(TOKEN), "the token shows in {what}");
    }
    let logged: Vec<String> = acemux_tests::log_capture::everything_logged()
        .into_iter()
        .filter(|l| l.starts_with("acemux"))
        .collect();
    assert!(!logged.is_empty(), "acemux's log was captured");
    assert!(!logged.iter().any(|l| l.contains(TOKEN)), "the token shows in acemux's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_max_players_gets_429_while_others_play() {
    let h = token_mode().await;
    let open = |id: u32, token: &'static str| {
        let url = h.url(&format!("/ace/getstream?id={}&token={token}", content_id(id)));
        let http = h.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let first = open(20, TOM).await;
    let second = open(21, TOM).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open(20, TOM).await;
    assert_eq!(third.status(), 429);
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["code"], "user_limit", "{body}");
    let hls = h
        .http
        .get(h.url(&format!("/ace/manifest.m3u8?id={}&token={TOM}", content_id(22))))
        .send()
        .await
        .unwrap();
    assert_eq!(hls.status(), 429, "an HLS viewer counts too");
    let api = h
        .http
        .get(h.url(&format!("/ace/getstream?id={}&token={TOM}&format=json", content_id(20))))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 429, "an engine-API client counts too");
    assert_eq!(open(20, TOKEN).await.status(), 200, "another user plays");
    drop(first);
    let again = h.wait_for(Duration::from_secs(5), || async { open(23, TOM).await.status() == 200 }).await;
    assert!(again, "a place freed by a player that left is taken");
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("acemux_user_players{user=\"tom\"}"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_max_streams_may_join_its_stream_but_start_no_other() {
    let h = token_mode().await;
    let open = |id: u32| {
        let url = h.url(&format!("/ace/getstream?id={}&token={SAM}", content_id(id)));
        let http = h.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let first = open(40).await;
    let second = open(40).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200), "its stream can be joined");
    let other = open(41).await;
    assert_eq!(other.status(), 429);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["code"], "user_limit", "{body}");
    assert!(body["error"].as_str().unwrap().contains("streams"), "{body}");
    let hls =
        h.http.get(h.url(&format!("/t/{SAM}/ace/manifest.m3u8?id={}", content_id(42)))).send().await.unwrap();
    assert_eq!(hls.status(), 429, "an HLS viewer of another content counts too");
    drop((first, second));
    // The left stream stays in its grace period; the user zaps at once.
    let zapped = h.wait_for(Duration::from_secs(5), || async { open(41).await.status() == 200 }).await;
    assert!(zapped, "a user whose players left may start another stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_groups_sees_and_plays_only_their_channels() {
    let h = token_mode().await;
    let text =
        h.http.get(h.url(&format!("/playlist.m3u?token={KID}"))).send().await.unwrap().text().await.unwrap();
    let names: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("#EXTINF:").and_then(|l| l.rsplit(',').next())).collect();
    assert_eq!(names, ["Cartoons", "Two ids"], "{text}");
    let (_, lineup) = h.get_json(&format!("/lineup.json?token={KID}")).await;
    assert_eq!(lineup.as_array().unwrap().len(), 2, "{lineup}");
    let (_, list) = h.get_json(&format!("/t/{KID}/channels.json")).await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 2, "{list}");
    let mut players = Vec::new();
    for url in text.lines().filter(|l| l.starts_with("http")) {
        assert!(url.contains("/pid/") || url.contains("/channel/"), "{url}");
        let mut player = PlayerClient::new(h.http.get(url).send().await.unwrap());
        assert!(player.read_at_least(20_000, Duration::from_secs(5)).await, "{url}");
        players.push(player);
    }
    for path in [
        format!("/ace/getstream?id={}&token={KID}", content_id(1)),
        format!("/t/{KID}/ace/manifest.m3u8?id={}", content_id(1)),
        format!("/ace/getstream?id={}&token={KID}", content_id(99)),
    ] {
        let r = h.http.get(h.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "not_in_groups", "{path}: {body}");
    }
    assert_eq!(h.engine().counters().starts, 2, "only the Kids channels started");
}

/// Writes `text` to `path` whole (a rename, as editors and scripts do), so
/// the watcher never reads half a file.
fn write_users(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_file_is_read_again_when_it_changes() {
    let dir = acemux_tests::TempDir::new("users-file");
    let path = dir.path().join("users.toml");
    let (ann, bob, ann_new) = ("anns-token-0001", "bobs-token-0002", "anns-token-0003");
    write_users(&path, &format!("[[users]]\nname = \"ann\"\ntoken = \"{ann}\"\nmax_players = 1\n"));
    let users_file = path.clone();
    let h = Harness::start(recorded(2), move |s| {
        s.access.player_access = PlayerAccess::Token;
        s.engines.max_streams_per_engine = 10;
        s.access.users_file = acemux::values::OrNone(Some(users_file));
        s.access.read_users_file().expect("a good users file");
    })
    .await;
    let play = |id: u32, token: &'static str| {
        let url = h.url(&format!("/ace/getstream?id={}&token={token}", content_id(id)));
        let http = h.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let first = play(50, ann).await;
    assert_eq!(first.status(), 200);
    let mut first = PlayerClient::new(first);
    assert!(first.read_at_least(10_000, Duration::from_secs(5)).await);
    assert_eq!(play(50, ann).await.status(), 429, "ann may have one player");
    assert_eq!(play(51, bob).await.status(), 403, "bob is no user yet");

    // Bob added, ann's limit raised: ann's player plays on, counted.
    write_users(
        &path,
        &format!(
            "[[users]]\nname = \"ann\"\ntoken = \"{ann}\"\nmax_players = 2\n\
             [[users]]\nname = \"bob\"\ntoken = \"{bob}\"\n"
        ),
    );
    let taken = h.wait_for(Duration::from_secs(10), || async { play(51, bob).await.status() == 200 }).await;
    assert!(taken, "bob plays once the file is read again");
    let mut second = PlayerClient::new(play(50, ann).await);
    assert!(second.read_at_least(10_000, Duration::from_secs(5)).await, "ann may have two players now");
    assert_eq!(play(50, ann).await.status(), 429, "and not three: the first is still counted");
    assert!(first.read_at_least(10_000, Duration::from_secs(5)).await, "ann's first player plays on");
    let mut bobs = PlayerClient::new(play(52, bob).await);
    assert!(bobs.read_at_least(10_000, Duration::from_secs(5)).await);

    // Ann's token changed, bob removed: their players end at once.
    write_users(&path, &format!("[[users]]\nname = \"ann\"\ntoken = \"{ann_new}\"\n"));
    assert!(first.read_to_end(Duration::from_secs(10)).await, "the old token's player ends");
    assert!(second.read_to_end(Duration::from_secs(5)).await);
    assert!(bobs.read_to_end(Duration::from_secs(5)).await, "a removed user's player ends");
    assert_eq!(play(50, ann).await.status(), 403, "the old token is refused");
    assert_eq!(play(50, ann_new).await.status(), 200, "the new token plays");

    // A bad file keeps the last good users and says why.
    write_users(&path, "[[users]]\nname = \"ann\"\n");
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status = h.status().await;
        if status["access"]["users_file"]["error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = status["access"]["users_file"]["error"].as_str().expect("the error is shown").to_owned();
    assert!(error.contains("token"), "{error}");
    assert_eq!(play(50, ann_new).await.status(), 200, "the last good users stay");
    let status = h.status().await;
    assert_eq!(status["access"]["users"][0]["name"], "ann", "{status}");
    assert!(!status.to_string().contains(ann_new), "no token in status");
}
