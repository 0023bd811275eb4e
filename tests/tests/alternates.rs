//! A channel with several ids outlives each of them: the simulated engine
//! plays ids that are dead, that stall after a while, that have no peers;
//! players ask for the channel and stay connected while it moves to its
//! next id, and real decoders (ffmpeg over TS and over HLS, mpv, VLC)
//! decode across the switch. Everything ends with no engine session left open.

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use ace_sim::{ContentBehaviour, SimConfig};
use acemux::channels::Channel;
use acemux::content::{ContentKey, KeyType};
use acemux_tests::{Harness, PlayerClient, content_id};
use tokio::process::Command;

/// The recorded fixture (real H.264/AAC), paced at twice real time.
fn recorded(contents: HashMap<String, ContentBehaviour>) -> SimConfig {
    SimConfig { contents, ..acemux_tests::recording::recorded(2) }
}

fn dead() -> ContentBehaviour {
    ContentBehaviour { start_error: Some("failed to load content".into()), ..Default::default() }
}

/// Joined mid-GOP, before any PAT or PMT, as a live stream is.
fn joined_mid_way() -> ContentBehaviour {
    ContentBehaviour { start_at_packet: Some(1234), ..Default::default() }
}

fn channel(name: &str, ids: &[String]) -> Channel {
    let mut keys = ids.iter().map(|id| ContentKey::new(KeyType::ContentId, id.clone()));
    let mut channel = Channel::new(name.into(), keys.next().unwrap());
    channel.alternates = keys.collect();
    channel.identity = Some(format!("channel:{name}").into());
    channel
}

/// The key `/channels.json` gives the channel named `name`.
async fn channel_key(h: &Harness, name: &str) -> String {
    let (code, list) = h.get_json("/channels.json").await;
    assert_eq!(code, 200, "{list}");
    let row = list["channels"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned();
    let row = row.unwrap_or_else(|| panic!("no channel {name} in {list}"));
    assert!(row["url"].as_str().unwrap().contains("/channel/"), "{row}");
    row["channel_key"].as_str().expect("a channel with alternates has a key").to_owned()
}

/// The session of the channel with key `key` in `/proxy/status`.
async fn session_of(h: &Harness, key: &str) -> serde_json::Value {
    let status = h.status().await;
    let sessions = status["sessions"].as_array().cloned().unwrap_or_default();
    sessions.into_iter().find(|s| s["ace_id"] == key).unwrap_or_default()
}

async fn no_engine_session_left(h: &Harness) -> bool {
    h.wait_for(Duration::from_secs(10), || async {
        h.session_count().await == 0 && h.engine().live_sessions() == 0
    })
    .await
}

fn ffmpeg_available(test: &str) -> bool {
    acemux_test_artifacts::programs::available(&format!("alternates::{test}"), &["ffmpeg"], "ffmpeg")
}

fn players_available(test: &str) -> bool {
    let test = format!("alternates::{test}");
    acemux_test_artifacts::programs::available(&test, &["mpv"], "mpv") && acemux_tests::vlc::available(&test)
}

/// Decodes `seconds` of media from `url` (killed after 60 s); what ffmpeg
/// printed at error level about decoding.
async fn decode_errors(url: &str, seconds: &str) -> String {
    let args = ["-nostdin", "-hide_banner", "-v", "error", "-i", url, "-t", seconds, "-f", "null", "-"];
    let child =
        Command::new("ffmpeg").args(args).stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    let out: Output = match tokio::time::timeout(Duration::from_secs(60), child).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run ffmpeg: {e}"),
        Err(_) => panic!("ffmpeg on {url} did not finish within 60 s"),
    };
    // The null muxer's complaints that timestamps went back (the next id's
    // clock is its own) are about ffmpeg's output, not decoding: a player
    // does not mux.
    let stderr: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap_or("(not UTF-8)")
        .lines()
        .filter(|l| !(l.starts_with("[null @") && l.contains("non monotonically increasing dts")))
        .collect();
    let stderr = stderr.join("\n");
    if out.status.success() { stderr } else { format!("exit {}: {stderr}", out.status) }
}

/// Plays `url` for 14 s in `player` (`mpv`, or VLC run as `nobody`: it
/// refuses root) with no video or audio output; what it printed about
/// decoding at error level (VLC's own start-up complaints about missing
/// interfaces are not decoding).
async fn player_errors(player: &str, url: &str) -> String {
    let mut command = match player {
        "mpv" => {
            let mut c = Command::new("mpv");
            c.args(["--no-config", "--vo=null", "--ao=null", "--length=14", "--msg-level=all=error", url]);
            c
        }
        _ => acemux_tests::vlc::command(url, 14, &[]),
    };
    let child = command.stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    let out = match tokio::time::timeout(Duration::from_secs(60), child).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run {player}: {e}"),
        Err(_) => panic!("{player} on {url} did not finish within 60 s"),
    };
    let printed = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let decoding = |line: &&str| {
        player == "mpv"
            || ["decoder", "avcodec", "packetizer", "demux", "es_out"].iter().any(|w| line.contains(w))
                && (line.contains(" error") || line.contains(" warning"))
    };
    let errors: Vec<&str> = printed.lines().filter(decoding).collect();
    errors.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_whose_first_id_is_dead_plays_from_the_first_byte() {
    let (gone, good) = (content_id(1), content_id(2));
    let sim = recorded([(gone.clone(), dead())].into());
    let h = Harness::start(sim, |s| {
        s.channels.channels = vec![channel("News", &[gone.clone(), good.clone()])];
        s.stream.grace_period = Duration::from_secs(2);
    })
    .await;
    let key = channel_key(&h, "News").await;
    let response = h.http.get(h.url(&format!("/channel/{key}/News.ts"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut player = PlayerClient::new(response);
    assert!(player.read_at_least(300_000, Duration::from_secs(10)).await);
    let report = player.report();
    assert!(report.aligned && report.packets > 1000, "{report:?}");

    // Status: on the second id, one switch for a failed start, the dead id left for its backoff.
    let session = session_of(&h, &key).await;
    let channel = &session["channel"];
    assert_eq!(session["key_type"], "channel", "{session}");
    assert_eq!((channel["name"].as_str(), channel["playing"].as_str()), (Some("News"), Some(good.as_str())));
    assert_eq!(session["playing_id"], good.as_str());
    let history = channel["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{channel}");
    assert_eq!(
        (history[0]["from"].as_str(), history[0]["to"].as_str()),
        (Some(gone.as_str()), Some(good.as_str()))
    );
    assert_eq!(history[0]["reason"], "start_failed");
    assert!(history[0]["error"].as_str().unwrap().contains("failed to load content"), "{channel}");
    assert!(history[0]["backoff_s"].as_f64() > Some(0.0), "{channel}");
    let ids = channel["ids"].as_array().unwrap();
    assert_eq!((ids[0]["failures"].as_u64(), ids[0]["playing"].as_bool()), (Some(1), Some(false)));
    assert!(ids[0]["retry_in_s"].as_f64() > Some(0.0), "{channel}");

    // A player asking for the id the channel plays joins the channel's stream.
    let mut direct = h.player(&good).await;
    assert!(direct.read_at_least(50_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().starts, 1, "one engine session for the channel and the id");
    assert_eq!(h.engine().counters().failed_starts, 1);

    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("acemux_channel_switches_total{reason=\"start_failed\"} 1"), "{metrics}");

    drop((player, direct));
    assert!(no_engine_session_left(&h).await, "an engine session was left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_id_gives_way_with_players_connected_and_decoders_decoding_across() {
    let test = "a_stalling_id_gives_way_with_players_connected_and_decoders_decoding_across";
    if !ffmpeg_available(test) || !players_available(test) {
        return;
    }
    let (stalls, good) = (content_id(3), content_id(4));
    let stalling = ContentBehaviour { stall_after: Some(Duration::from_secs(5)), ..Default::default() };
    let mut sim = recorded([(stalls.clone(), stalling), (good.clone(), joined_mid_way())].into());
    // Real time: mpv and VLC play at their pace, and one that fell behind
    // a faster stream would be skipped ahead (a discontinuity of its own).
    sim.bitrate_bps /= 2;
    let h = Harness::start(sim, |s| {
        s.channels.channels = vec![channel("Sport", &[stalls.clone(), good.clone()])];
        s.engines.connection_timeout = Duration::from_secs(2);
        s.stream.max_retries = 1;
        s.stream.grace_period = Duration::from_secs(3);
        s.hls.hls_viewer_timeout = Duration::from_secs(4);
    })
    .await;
    let key = channel_key(&h, "Sport").await;
    let ts = h.url(&format!("/channel/{key}/Sport.ts"));
    let hls = h.url(&format!("/ace/manifest.m3u8?channel={key}"));
    // 5 s before the stall, ~3.5 s to switch, then the second id.
    let over_ts = tokio::spawn({
        let ts = ts.clone();
        async move { decode_errors(&ts, "16").await }
    });
    let over_hls = tokio::spawn(async move { decode_errors(&hls, "14").await });
    let in_mpv = tokio::spawn({
        let ts = ts.clone();
        async move { player_errors("mpv", &ts).await }
    });
    let in_vlc = tokio::spawn({
        let ts = ts.clone();
        async move { player_errors("vlc", &ts).await }
    });
    let response = h.http.get(&ts).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut player = PlayerClient::new(response);
    let longest_gap = player.longest_gap(Duration::from_secs(14)).await;
    assert!(!player.read_to_end(Duration::from_millis(10)).await, "the player's response ended");
    let report = player.report();
    assert!(report.aligned, "bytes across the switch are whole packets: {report:?}");
    assert!(longest_gap < Duration::from_secs(2), "keepalive kept bytes coming: {longest_gap:?}");

    let session = session_of(&h, &key).await;
    let history = &session["channel"]["history"];
    assert_eq!(history[0]["reason"], "upstream_failed", "{session}");
    assert_eq!(session["playing_id"], good.as_str(), "{session}");
    assert!(history[0]["wait_s"].as_f64().is_some(), "the wait at the switch is measured: {history}");

    assert_eq!(over_ts.await.unwrap(), "", "ffmpeg over TS reported errors across the switch");
    assert_eq!(over_hls.await.unwrap(), "", "ffmpeg over HLS reported errors across the switch");
    assert_eq!(in_mpv.await.unwrap(), "", "mpv reported errors across the switch");
    assert_eq!(in_vlc.await.unwrap(), "", "VLC reported decoder errors across the switch");
    drop(player);
    assert!(no_engine_session_left(&h).await, "an engine session was left open: {}", h.status().await);
    assert_eq!(h.engine().counters().starts, 2, "one engine session per id, one at a time");
    assert_eq!(h.engine().counters().peak_sessions, 1, "never two ids on the engine at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_dead_channel_answers_as_a_dead_id_does_and_leaks_nothing() {
    let ids = [content_id(5), content_id(6), content_id(7)];
    // And a dead id asked for directly, to compare.
    let sim = recorded(ids.iter().chain([&content_id(8)]).map(|id| (id.clone(), dead())).collect());
    let h = Harness::start(sim, |s| s.channels.channels = vec![channel("Gone", &ids)]).await;
    let key = channel_key(&h, "Gone").await;
    let (code, body) = h.get_json(&format!("/channel/{key}/Gone.ts")).await;
    let (dead_code, dead_body) = h.get_json(&format!("/ace/getstream?id={}", content_id(8))).await;
    assert_eq!(code, 502, "{body}");
    assert!(body["error"].as_str().unwrap().contains("failed to load content"), "{body}");
    assert_eq!(body["code"], dead_body["code"], "{body} vs {dead_body}");
    assert_eq!(dead_code, 502);
    assert_eq!(h.engine().counters().failed_starts, 4, "each id tried once, and the dead id");
    assert!(no_engine_session_left(&h).await);
    // An unknown channel key is a clear 404.
    let (code, body) = h.get_json(&format!("/channel/{}/x.ts", content_id(9))).await;
    assert_eq!((code, body["code"].as_str()), (404, Some("unknown_channel")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_with_too_few_peers_gives_way_when_the_operator_asks() {
    let (lonely, good) = (content_id(10), content_id(11));
    let sim = recorded([(lonely.clone(), ContentBehaviour { peers: Some(0), ..Default::default() })].into());
    let h = Harness::start(sim, |s| {
        s.channels.channels = vec![channel("Film", &[lonely.clone(), good.clone()])];
        s.engines.engine_stat_interval = Duration::from_millis(200);
        s.alternates.channel_min_peers = acemux::values::OrNone(Some(2));
        s.alternates.channel_low_peers_for = Duration::from_secs(1);
    })
    .await;
    let key = channel_key(&h, "Film").await;
    let response = h.http.get(h.url(&format!("/channel/{key}/Film.ts"))).send().await.unwrap();
    let mut player = PlayerClient::new(response);
    let until = std::time::Instant::now() + Duration::from_secs(15);
    let mut switched = false;
    while !switched && std::time::Instant::now() < until {
        player.read_at_least(usize::MAX, Duration::from_millis(200)).await;
        switched = session_of(&h, &key).await["playing_id"] == good.as_str();
    }
    let session = session_of(&h, &key).await;
    assert!(switched, "{session}");
    assert_eq!(session["channel"]["history"][0]["reason"], "low_peers", "{session}");
    drop(player);
    assert!(no_engine_session_left(&h).await);
}

/// Zapping through channels under failover: each channel's first id is
/// dead or stalls; players come and go 200 times. No engine session is
/// left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_zaps_across_failing_channels_leave_no_engine_session() {
    let mut contents = HashMap::new();
    let mut channels = Vec::new();
    for c in 0..5u32 {
        let first = content_id(100 + c);
        let behaviour = if c % 2 == 0 {
            dead()
        } else {
            ContentBehaviour { stall_after: Some(Duration::from_millis(300)), ..Default::default() }
        };
        contents.insert(first.clone(), behaviour);
        channels.push(channel(&format!("Zap {c}"), &[first, content_id(200 + c)]));
    }
    let mut sim = recorded(contents);
    sim.bitrate_bps *= 4;
    let h = Harness::start(sim, |s| {
        s.channels.channels = channels;
        s.engines.connection_timeout = Duration::from_millis(500);
        s.stream.max_retries = 0;
        s.stream.grace_period = Duration::ZERO;
    })
    .await;
    let mut keys = Vec::new();
    for c in 0..5 {
        keys.push(channel_key(&h, &format!("Zap {c}")).await);
    }
    for zap in 0..200usize {
        let key = &keys[zap % keys.len()];
        let response = h.http.get(h.url(&format!("/channel/{key}/z.ts"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "zap {zap}");
        let mut player = PlayerClient::new(response);
        // Some zaps leave before any data, some after a little.
        player.read_at_least(if zap % 3 == 0 { 1 } else { 20_000 }, Duration::from_secs(5)).await;
    }
    assert!(no_engine_session_left(&h).await, "sessions: {}", h.status().await["sessions"]);
    let counters = h.engine().counters();
    assert_eq!(counters.open_playbacks, 0, "{counters:?}");
}

/// Backup links as lists carry them: the same channel name twice in one
/// M3U list. acemux lists one channel with two ids, and every URL it gives
/// players (the playlist, the tuner lineup, HLS) names the channel and
/// plays through the dead first id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_s_backup_links_become_one_channel_whose_urls_play_through_a_dead_id() {
    let (gone, good) = (content_id(30), content_id(31));
    let dir = acemux_tests::TempDir::new("alternates-list");
    let list = dir.path().join("list.m3u");
    std::fs::write(
        &list,
        format!(
            "#EXTM3U\n#EXTINF:-1 group-title=\"Film\",Cinema\nacestream://{gone}\n\
             #EXTINF:-1 group-title=\"Film\",Cinema\nhttp://127.0.0.1:6878/ace/getstream?id={good}\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("acemux.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\nname = 'backups'\nkind = 'm3u'\npath = '{}'\n", list.display()),
    )
    .unwrap();
    let from_file = acemux::config::Settings::from_args(["acemux", "--config", config.to_str().unwrap()])
        .expect("a valid settings file");
    let h =
        Harness::start(recorded([(gone.clone(), dead())].into()), |s| s.channels = from_file.channels).await;
    let mut listed = Vec::new();
    for _ in 0..100 {
        let (_, list) = h.get_json("/channels.json").await;
        listed = list["channels"].as_array().cloned().unwrap_or_default();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["alternates"][0]["id"], good.as_str(), "{listed:?}");
    let key = channel_key(&h, "Cinema").await;
    let playlist = h.http.get(h.url("/playlist.m3u")).send().await.unwrap().text().await.unwrap();
    let ts = playlist.lines().find(|l| l.starts_with("http")).unwrap().to_owned();
    assert!(ts.contains(&format!("/channel/{key}/")), "{playlist}");
    let (_, lineup) = h.get_json("/lineup.json").await;
    assert_eq!(lineup[0]["URL"], ts.as_str(), "{lineup}");
    let mut player = PlayerClient::new(h.http.get(&ts).send().await.unwrap());
    assert!(player.read_at_least(100_000, Duration::from_secs(10)).await);
    assert!(player.report().aligned);
    let hls = playlist_hls(&h).await;
    assert!(hls.contains(&format!("channel={key}")), "{hls}");
    let master = h.http.get(&hls).send().await.unwrap();
    assert_eq!(master.status(), 200);
    assert_eq!(
        h.engine().counters().starts,
        1,
        "the TS player and the HLS viewer share the channel's session"
    );
}

/// The first media URL of `/playlist.m3u?format=hls`.
async fn playlist_hls(h: &Harness) -> String {
    let playlist = h.http.get(h.url("/playlist.m3u?format=hls")).send().await.unwrap().text().await.unwrap();
    playlist.lines().find(|l| l.starts_with("http")).unwrap().to_owned()
}

/// How long players wait at each kind of switch (a benchmark, not a CI
/// test: `cargo test -p acemux-tests --test alternates -- --ignored
/// --nocapture measure`). Prints one line per kind; docs/benchmarks.md
/// keeps the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand, figures in docs/benchmarks.md"]
async fn measure_switch_waits() {
    let waited = |session: &serde_json::Value| session["channel"]["history"][0]["wait_s"].as_f64();
    // A dead first id: the player's time to first byte, against a plain id's.
    let (gone, good) = (content_id(40), content_id(41));
    let h = Harness::start(recorded([(gone.clone(), dead())].into()), |s| {
        s.channels.channels = vec![channel("Dead first", &[gone.clone(), good.clone()])];
    })
    .await;
    let key = channel_key(&h, "Dead first").await;
    for (what, url) in [
        ("a plain id", h.stream_url(&content_id(42))),
        ("[dead, good]", h.url(&format!("/channel/{key}/x.ts"))),
    ] {
        let started = std::time::Instant::now();
        let mut player = PlayerClient::new(h.http.get(&url).send().await.unwrap());
        // 10 kB: past the keepalive packets, media from the engine.
        player.read_at_least(10_000, Duration::from_secs(10)).await;
        println!("start_failed: 10 kB of {what} after {:?}", started.elapsed());
    }
    drop(h);
    // A stall and a loss of peers: from the old id's last data to the new id's first.
    for (settings_name, timeout, retries) in
        [("--connection-timeout 3 --max-retries 1", 3, 1), ("defaults (10 s, 3 retries)", 10, 3)]
    {
        let (stalls, good) = (content_id(43), content_id(44));
        let stalling = ContentBehaviour { stall_after: Some(Duration::from_secs(3)), ..Default::default() };
        let h = Harness::start(
            recorded([(stalls.clone(), stalling), (good.clone(), joined_mid_way())].into()),
            |s| {
                s.channels.channels = vec![channel("Stall", &[stalls.clone(), good.clone()])];
                s.engines.connection_timeout = Duration::from_secs(timeout);
                s.stream.max_retries = retries;
                s.stream.retry_wait = Duration::from_millis(500);
            },
        )
        .await;
        let key = channel_key(&h, "Stall").await;
        let mut player =
            PlayerClient::new(h.http.get(h.url(&format!("/channel/{key}/x.ts"))).send().await.unwrap());
        let limit = std::time::Instant::now() + Duration::from_secs(120);
        while waited(&session_of(&h, &key).await).is_none() && std::time::Instant::now() < limit {
            player.read_at_least(usize::MAX, Duration::from_millis(500)).await;
        }
        let session = session_of(&h, &key).await;
        println!("upstream_failed ({settings_name}): players waited {:?} s", waited(&session));
    }
    let (lonely, good) = (content_id(45), content_id(46));
    let h = Harness::start(
        recorded(
            [
                (lonely.clone(), ContentBehaviour { peers: Some(0), ..Default::default() }),
                (good.clone(), joined_mid_way()),
            ]
            .into(),
        ),
        |s| {
            s.channels.channels = vec![channel("Lonely", &[lonely.clone(), good.clone()])];
            s.engines.engine_stat_interval = Duration::from_millis(500);
            s.alternates.channel_min_peers = acemux::values::OrNone(Some(2));
            s.alternates.channel_low_peers_for = Duration::from_secs(2);
        },
    )
    .await;
    let key = channel_key(&h, "Lonely").await;
    let mut player =
        PlayerClient::new(h.http.get(h.url(&format!("/channel/{key}/x.ts"))).send().await.unwrap());
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    while waited(&session_of(&h, &key).await).is_none() && std::time::Instant::now() < limit {
        player.read_at_least(usize::MAX, Duration::from_millis(500)).await;
    }
    println!("low_peers: players waited {:?} s", waited(&session_of(&h, &key).await));
}

/// The orchestrator hears each id's stream: a start and an end for the id
/// that stalled, then a start and an end for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_hears_each_id_start_and_end() {
    let orch = acemux_tests::orchestrator::FakeOrchestrator::start().await;
    let url = orch.url();
    let (stalls, good) = (content_id(50), content_id(51));
    let stalling = ContentBehaviour { stall_after: Some(Duration::from_millis(1500)), ..Default::default() };
    let h = Harness::start(recorded([(stalls.clone(), stalling)].into()), |s| {
        s.orchestrator.orchestrator_url = acemux::values::OrNone(Some(url));
        s.channels.channels = vec![channel("Told", &[stalls.clone(), good.clone()])];
        s.engines.connection_timeout = Duration::from_secs(1);
        s.stream.max_retries = 0;
        s.stream.grace_period = Duration::from_millis(200);
    })
    .await;
    let key = channel_key(&h, "Told").await;
    let mut player =
        PlayerClient::new(h.http.get(h.url(&format!("/channel/{key}/x.ts"))).send().await.unwrap());
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while orch.named("stream_started").len() < 2 && std::time::Instant::now() < until {
        player.read_at_least(usize::MAX, Duration::from_millis(200)).await;
    }
    drop(player);
    assert!(h.wait_for(Duration::from_secs(5), || async { orch.named("stream_ended").len() == 2 }).await);
    let started: Vec<serde_json::Value> =
        orch.named("stream_started").iter().map(|e| e.body["stream"]["key"].clone()).collect();
    assert_eq!(started, [serde_json::json!(stalls), serde_json::json!(good)]);
    let ended: Vec<serde_json::Value> =
        orch.named("stream_ended").iter().map(|e| e.body["reason"].clone()).collect();
    assert_eq!(ended, [serde_json::json!("error"), serde_json::json!("normal")]);
    assert!(no_engine_session_left(&h).await);
}
