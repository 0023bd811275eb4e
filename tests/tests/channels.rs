//! Channels from sources, through real HTTP on loopback: an M3U list
//! served over HTTP (every URL form, broken lines, rules), a local list,
//! the engine's search; refreshes that answer 304 or fail keep the list;
//! numbers survive a restart; a source's channel plays (through ffmpeg
//! where it is installed).

use std::time::Duration;

use ace_sim::SimConfig;
use acemux::config::Settings;
use acemux_tests::files::FileServer;
use acemux_tests::{Harness, PlayerClient, TempDir, content_id};
use serde_json::Value;

/// An operator's list as found in the wild: every URL form, attributes,
/// entries that are not AceStream, a dangling `#EXTINF`, a broken id.
fn wild_list() -> String {
    format!(
        "#EXTM3U url-tvg=\"http://127.0.0.1:9/es.xml.gz\"\n\
         #EXTINF:-1 tvg-id=\"sport1.es\" tvg-name=\"Sport 1\" tvg-logo=\"http://logos/s1.png\" group-title=\"Sport\" tvg-chno=\"41\",Sport 1 HD\n\
         acestream://{a}\n\
         #EXTINF:-1 group-title=\"Sport\",Sport 2 FHD\n\
         http://192.168.1.9:6878/ace/getstream?id={b}&pid=42\n\
         #EXTINF:-1 group-title=\"News\",News 24\n\
         http://engine:6878/ace/manifest.m3u8?infohash={c}\n\
         #EXTINF:-1 group-title=\"Movies\",Cinema\n\
         http://other-proxy:8000/pid/{d}/Cinema.ts\n\
         #EXTINF:-1 group-title=\"Adult\",Late\n\
         {e}\n\
         #EXTINF:-1,Not AceStream\n\
         http://iptv.example/live/7.m3u8\n\
         #EXTINF:-1,Dangling\n\
         #EXTINF:-1,Broken\n\
         acestream://0123\n\
         #EXTINF:-1 group-title=\"Sport\",Duplicate of Sport 1\n\
         acestream://{a}\n",
        a = content_id(1),
        b = content_id(2),
        c = content_id(3),
        d = content_id(4),
        e = content_id(5),
    )
}

/// The settings file: a hand channel, the HTTP list with rules, a local list.
fn settings_file(dir: &TempDir, list_url: &str, local: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.path().join("acemux.toml");
    let text = format!(
        "state_dir = '{state}'\n\
         [[channels]]\nname = 'Hand'\nid = '{hand}'\ngroup = 'Mine'\n\n\
         [[sources]]\nname = 'wild'\nkind = 'm3u'\nurl = '{list_url}'\nrefresh = '1s'\n\
         exclude_group = '^Adult$'\nprefix = 'W: '\n\
         [[sources.rename]]\npattern = ' (HD|FHD)$'\nto = ''\n\n\
         [[sources]]\nname = 'local'\nkind = 'm3u'\npath = '{local}'\nrefresh = '1s'\ngroup = 'Local'\n\
         {extra}",
        state = dir.path().join("state").display(),
        hand = content_id(9),
        local = local.display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(config: &std::path::Path) -> Harness {
    let config = config.to_owned();
    Harness::start(SimConfig::default(), move |s| {
        let from_file =
            Settings::from_args(["acemux", "--config", config.to_str().unwrap()]).expect("valid file");
        s.channels = from_file.channels;
    })
    .await
}

/// `/channels.json`'s channels once `ready` holds of them (10 s at most).
async fn channels_when(h: &Harness, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..200 {
        let (code, body) = h.get_json("/channels.json").await;
        assert_eq!(code, 200);
        last = body["channels"].as_array().cloned().unwrap_or_default();
        if ready(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("channels never became ready: {last:#?}");
}

fn source<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sources"].as_array().unwrap().iter().find(|s| s["name"] == name).expect("source in status")
}

fn names(channels: &[Value]) -> Vec<String> {
    channels.iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_m3u_source_lists_exactly_its_acestream_channels_with_rules_and_survives_failures() {
    let files = FileServer::start().await;
    files.set("list.m3u", wild_list());
    let dir = TempDir::new("channels");
    let local = dir.path().join("local.m3u");
    std::fs::write(&local, format!("#EXTM3U\n#EXTINF:-1,Local One\n{}\n", content_id(6))).unwrap();
    let config = settings_file(&dir, &files.url("list.m3u"), &local, "");
    let started = std::time::Instant::now();
    let mut h = start(&config).await;

    let channels = channels_when(&h, |c| c.len() == 6).await;
    assert_eq!(
        names(&channels),
        ["Hand", "W: Sport 1", "W: Sport 2", "W: News 24", "W: Cinema", "Local One"],
        "the adult group excluded, names renamed and prefixed, the duplicate merged"
    );
    let sport1 = &channels[1];
    assert_eq!(sport1["number"], 41, "tvg-chno taken when free");
    assert_eq!(
        (sport1["tvg_id"].as_str(), sport1["logo"].as_str()),
        (Some("sport1.es"), Some("http://logos/s1.png"))
    );
    assert_eq!((sport1["group"].as_str(), sport1["source"].as_str()), (Some("Sport"), Some("wild")));
    assert_eq!(channels[3]["key"]["key_type"], "infohash", "{}", channels[3]);
    assert_eq!(channels[5]["group"], "Local", "the source's group rule");
    // Sources refresh side by side, so which is numbered first varies;
    // every number is given once, the hand channel first.
    let mut numbers: Vec<u64> = channels.iter().map(|c| c["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers[0], 1);
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 6, "{channels:?}");
    let highest = *numbers.last().unwrap();

    // The playlist: every channel with acemux's URLs and the kept attributes.
    let playlist = h.http.get(h.url("/playlist.m3u")).send().await.unwrap().text().await.unwrap();
    let host = h.base.trim_start_matches("http://");
    assert!(playlist.contains(&format!(
        "#EXTINF:-1 tvg-id=\"sport1.es\" tvg-name=\"W: Sport 1\" tvg-chno=\"41\" tvg-logo=\"http://logos/s1.png\" group-title=\"Sport\",W: Sport 1\nhttp://{host}/pid/{}/W__Sport_1.ts\n",
        content_id(1)
    )), "{playlist}");
    assert!(
        playlist.contains(&format!("http://{host}/infohash/{}/W__News_24.ts", content_id(3))),
        "{playlist}"
    );
    assert!(
        !playlist.contains("192.168.1.9") && !playlist.contains("iptv.example") && !playlist.contains("Late"),
        "{playlist}"
    );
    assert_eq!(playlist.matches("#EXTINF").count(), 6);
    let sport = h.http.get(h.url("/playlist.m3u?group=Sport")).send().await.unwrap().text().await.unwrap();
    assert_eq!(sport.matches("#EXTINF").count(), 2, "{sport}");

    // The source's state, and 304s once nothing changes (waited for in
    // status: the file server counts a 304 before acemux has taken it in).
    assert!(
        h.wait_for(Duration::from_secs(10), || async {
            files.counts("list.m3u").1 >= 2
                && source(&h.status().await, "wild")["not_modified"].as_u64() >= Some(2)
        })
        .await,
        "conditional refreshes answered 304"
    );
    let status = h.status().await;
    let wild = source(&status, "wild");
    assert_eq!(
        (wild["kind"].as_str(), wild["channels"].as_u64(), wild["skipped"].as_u64()),
        (Some("m3u"), Some(5), Some(3)),
        "{wild}"
    );
    assert_eq!(wild["excluded"], 1);
    assert!(wild["not_modified"].as_u64().unwrap() >= 2 && wild["error"].is_null(), "{wild}");
    assert_eq!(wild["guide_url"], "http://127.0.0.1:9/es.xml.gz");
    // Read once per period (1 s), however often the list changes or fails.
    let (requests, _) = files.counts("list.m3u");
    let periods = started.elapsed().as_secs() + 1;
    assert!(requests <= periods, "{requests} requests in {periods} periods");

    // A failing server, then a list of garbage: the last good channels stay.
    files.fail("list.m3u", 500);
    let failed = h.wait_for(Duration::from_secs(10), || async {
        let status = h.status().await;
        source(&status, "wild")["error"].as_str().is_some_and(|e| e.contains("500"))
    });
    assert!(failed.await, "the failure is shown");
    assert_eq!(channels_when(&h, |c| c.len() == 6).await.len(), 6);
    files.set("list.m3u", "<html>Cloudflare says no</html>");
    let rejected = h.wait_for(Duration::from_secs(10), || async {
        let status = h.status().await;
        source(&status, "wild")["error"].as_str().is_some_and(|e| e.contains("no AceStream content"))
    });
    assert!(rejected.await, "a page that is no list is refused");
    assert_eq!(names(&channels_when(&h, |c| c.len() == 6).await)[1], "W: Sport 1");
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("acemux_source_up{source=\"wild\"} 0"), "{metrics}");
    assert!(metrics.contains("acemux_source_channels{source=\"wild\"} 5"), "{metrics}");
    assert!(metrics.contains("acemux_channels 6"), "{metrics}");

    // A list that changes: a channel leaves, one comes; numbers stay put.
    files.set(
        "list.m3u",
        format!(
            "#EXTM3U\n#EXTINF:-1,New\nacestream://{}\n#EXTINF:-1,Cinema\nacestream://{}\n",
            content_id(7),
            content_id(4)
        ),
    );
    let changed = channels_when(&h, |c| c.len() == 4).await;
    let by_name = |channels: &[Value], name: &str| {
        channels.iter().find(|c| c["name"] == name).map(|c| c["number"].clone())
    };
    let cinema = by_name(&channels, "W: Cinema");
    let local = by_name(&channels, "Local One");
    assert_eq!(by_name(&changed, "W: Cinema"), cinema);
    let new = by_name(&changed, "W: New");
    assert_eq!(new, Some((highest + 1).into()), "a new channel takes no number another had");

    // A channel from a source plays, through acemux's URL in the playlist.
    let url = changed.iter().find(|c| c["name"] == "W: Cinema").unwrap()["url"].as_str().unwrap().to_owned();
    let mut player = PlayerClient::new(h.http.get(&url).send().await.unwrap());
    assert!(player.read_at_least(50_000, Duration::from_secs(10)).await);
    player.report().assert_clean("a source's channel");
    drop(player);
    h.shutdown().await;

    // After a restart, with the list reordered, every channel keeps its number.
    files.set(
        "list.m3u",
        format!(
            "#EXTM3U\n#EXTINF:-1,Cinema\nacestream://{}\n#EXTINF:-1,New\nacestream://{}\n",
            content_id(4),
            content_id(7)
        ),
    );
    let mut again = start(&config).await;
    let restarted = channels_when(&again, |c| c.len() == 4).await;
    assert_eq!(by_name(&restarted, "W: Cinema"), cinema);
    assert_eq!(by_name(&restarted, "W: New"), new);
    assert_eq!(by_name(&restarted, "Local One"), local);
    let lineup = again.get_json("/lineup.json").await.1;
    let cinema_number = cinema.clone().unwrap().to_string();
    assert!(
        lineup
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["GuideNumber"] == cinema_number.as_str() && c["GuideName"] == "W: Cinema"),
        "{lineup}"
    );
    again.shutdown().await;

    // Restarted while the site is down: the list it last read well (kept
    // in the state directory) is listed, with its numbers, and the error shown.
    files.fail("list.m3u", 503);
    let mut down = start(&config).await;
    let restored = channels_when(&down, |c| c.len() == 4).await;
    assert_eq!(by_name(&restored, "W: Cinema"), cinema);
    assert_eq!(by_name(&restored, "W: New"), new);
    let failing = down.wait_for(Duration::from_secs(10), || async {
        source(&down.status().await, "wild")["error"].as_str().is_some_and(|e| e.contains("503"))
    });
    assert!(failing.await, "the failing site is shown");
    assert_eq!(channels_when(&down, |c| c.len() == 4).await.len(), 4);
    down.shutdown().await;
}

#[tokio::test]
async fn a_search_source_lists_the_engine_s_channels_with_availability() {
    let files = FileServer::start().await;
    files.set("list.m3u", "#EXTM3U\n");
    let dir = TempDir::new("channels-search");
    let local = dir.path().join("local.m3u");
    std::fs::write(&local, format!("#EXTM3U\n#EXTINF:-1,Local One\n{}\n", content_id(6))).unwrap();
    let config = settings_file(
        &dir,
        &files.url("list.m3u"),
        &local,
        "\n[[sources]]\nname = 'found'\nkind = 'search'\nqueries = ['futbol']\ncategories = ['tennis']\nrefresh = '1h'\n",
    );
    let mut h = start(&config).await;
    let channels = channels_when(&h, |c| c.iter().filter(|c| c["source"] == "found").count() == 4).await;
    let found: Vec<&Value> = channels.iter().filter(|c| c["source"] == "found").collect();
    assert_eq!(
        found.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["futbol channel 1", "futbol channel 2", "tennis channel 1", "tennis channel 2"]
    );
    assert_eq!(found[0]["search"]["availability"], 0.9, "the most available item: {}", found[0]);
    assert_eq!(found[0]["search"]["status"], 2);
    assert_eq!(found[0]["logo"], "http://logos.example/1.png");
    let status = h.status().await;
    let wild = source(&status, "wild");
    assert!(
        wild["error"].as_str().is_some_and(|e| e.contains("no AceStream content")),
        "an empty list is refused: {wild}"
    );
    // A search channel plays.
    let url = found[1]["url"].as_str().unwrap().to_owned();
    let mut player = PlayerClient::new(h.http.get(&url).send().await.unwrap());
    assert!(player.read_at_least(50_000, Duration::from_secs(10)).await);
    player.report().assert_clean("a search channel");
    drop(player);
    h.shutdown().await;
}

#[tokio::test]
async fn a_source_s_channel_decodes_in_ffmpeg() {
    if !acemux_test_artifacts::programs::available(
        "channels::a_source_s_channel_decodes_in_ffmpeg",
        &["ffmpeg"],
        "ffmpeg",
    ) {
        return;
    }
    let files = FileServer::start().await;
    files.set(
        "list.m3u",
        format!("#EXTM3U\n#EXTINF:-1 group-title=\"Test\",Pattern\nacestream://{}\n", content_id(1)),
    );
    let dir = TempDir::new("channels-ffmpeg");
    let local = dir.path().join("local.m3u");
    std::fs::write(&local, format!("{}\n", content_id(6))).unwrap();
    let config = settings_file(&dir, &files.url("list.m3u"), &local, "");
    let sim = acemux_tests::recording::recorded(2);
    let config_path = config.clone();
    let mut h = Harness::start(sim, move |s| {
        s.channels =
            Settings::from_args(["acemux", "--config", config_path.to_str().unwrap()]).unwrap().channels;
    })
    .await;
    let channels = channels_when(&h, |c| c.iter().any(|c| c["name"] == "W: Pattern")).await;
    let url =
        channels.iter().find(|c| c["name"] == "W: Pattern").unwrap()["url"].as_str().unwrap().to_owned();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-v", "error", "-i", &url, "-t", "3", "-f", "null", "-"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffmpeg finishes")
    .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "ffmpeg decoded with errors");
    h.shutdown().await;
}

/// An XMLTV guide of `channels` (`id`, display name, programme title),
/// one programme each from an hour ago to an hour ahead.
fn xmltv(channels: &[(&str, &str, &str)]) -> String {
    use acemux::channels::guide::time;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>\n");
    for (id, name, _) in channels {
        doc.push_str(&format!("<channel id=\"{id}\"><display-name>{name}</display-name></channel>\n"));
    }
    for (id, _, title) in channels {
        doc.push_str(&format!(
            "<programme start=\"{}\" stop=\"{}\" channel=\"{id}\"><title lang=\"en\">{title}</title><desc>About &amp; more</desc></programme>\n",
            time::format(now - 3600),
            time::format(now + 3600)
        ));
    }
    doc.push_str("</tv>\n");
    doc
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What Python's XML parser (a real, independent one) reads of a guide:
/// `{channel id: [display names], ...}` and `[[channel, title], ...]`.
async fn parsed_by_python(xml: &[u8]) -> Option<Value> {
    if !acemux_test_artifacts::programs::available_by("channels::the_guide", &["python3"], "Debian's python3")
    {
        return None;
    }
    let script = "import sys, json, xml.etree.ElementTree as ET\n\
        root = ET.fromstring(sys.stdin.buffer.read())\n\
        assert root.tag == 'tv'\n\
        chans = {c.get('id'): [d.text for d in c.findall('display-name')] for c in root.findall('channel')}\n\
        progs = [[p.get('channel'), p.findtext('title'), p.findtext('desc'), p.get('start')] for p in root.findall('programme')]\n\
        print(json.dumps({'channels': chans, 'programmes': progs}))\n";
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    use tokio::io::AsyncWriteExt;
    child.stdin.take().unwrap().write_all(xml).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert!(
        out.status.success(),
        "Python could not parse the guide: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test]
async fn the_guide_merges_two_xmltv_guides_and_the_search_epg_into_valid_xmltv() {
    let files = FileServer::start().await;
    files.set(
        "list.m3u",
        format!(
            "#EXTM3U url-tvg=\"{}\"\n#EXTINF:-1 tvg-id=\"sport1.es\",Sport 1\nacestream://{}\n#EXTINF:-1,News 24\nacestream://{}\n#EXTINF:-1,No Guide <&>\nacestream://{}\n#EXTINF:-1 tvg-id=\"cinema.es\",Cinema\nacestream://{}\n",
            files.url("a.xml.gz"),
            content_id(1),
            content_id(2),
            content_id(3),
            content_id(4)
        ),
    );
    files.set(
        "a.xml.gz",
        gzip(
            xmltv(&[
                ("sport1.es", "Sport One", "Derby"),
                ("cinema.es", "Cinema", "Film"),
                ("x", "Elsewhere", "Not ours"),
            ])
            .as_bytes(),
        ),
    );
    files.set(
        "b.xml",
        xmltv(&[("n24", "News 24", "Headlines"), ("sport1.es", "Sport 1", "From the operator's guide")]),
    );
    let dir = TempDir::new("channels-guide");
    let local = dir.path().join("local.m3u");
    std::fs::write(&local, format!("{}\n", content_id(6))).unwrap();
    let config = settings_file(
        &dir,
        &files.url("list.m3u"),
        &local,
        &format!(
            "\n[[sources]]\nname = 'found'\nkind = 'search'\nqueries = ['futbol']\nrefresh = '1h'\n\n[[guides]]\nname = 'b'\nurl = '{}'\n",
            files.url("b.xml")
        ),
    );
    let mut h = start(&config).await;
    let ready = h.wait_for(Duration::from_secs(15), || async {
        let status = h.status().await;
        source(&status, "wild")["guide"]["programmes"].as_u64() == Some(2) && files.counts("b.xml").0 >= 1
    });
    assert!(ready.await, "both guides read: {}", h.status().await["sources"]);
    // (The [[guides]] guide is read once the sources were tried.)
    let guide = h.wait_for(Duration::from_secs(10), || async {
        let xml = h.http.get(h.url("/epg.xml")).send().await.unwrap().text().await.unwrap();
        xml.contains("Headlines")
    });
    assert!(guide.await, "the [[guides]] guide reaches /epg.xml");

    let plain = h.http.get(h.url("/epg.xml")).send().await.unwrap();
    assert_eq!(plain.headers()["content-type"], "application/xml; charset=utf-8");
    let plain = plain.bytes().await.unwrap();
    let gzipped = h.http.get(h.url("/epg.xml")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let gzipped = gzipped.bytes().await.unwrap();
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, plain, "the same guide either way");

    let Some(parsed) = parsed_by_python(&plain).await else { return };
    let channels = parsed["channels"].as_object().unwrap();
    let programmes = parsed["programmes"].as_array().unwrap();
    let listed = channels_when(&h, |c| c.len() >= 8).await;
    assert_eq!(
        channels.len(),
        listed.len(),
        "every channel is in the guide, with or without programmes: {channels:?}"
    );
    let number_of = |name: &str| listed.iter().find(|c| c["name"] == name).unwrap()["number"].to_string();
    assert!(channels.contains_key("sport1.es"));
    assert_eq!(channels[&number_of("W: No Guide <&>")][0], "W: No Guide <&>", "escaped and read back");
    let titles_of = |id: &str| -> Vec<String> {
        programmes.iter().filter(|p| p[0] == id).map(|p| p[1].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        titles_of("sport1.es"),
        ["From the operator's guide"],
        "by tvg-id, [[guides]] before the list's own guide"
    );
    assert_eq!(titles_of("cinema.es"), ["Film"], "from the list's own (gzipped) guide");
    assert_eq!(titles_of(&number_of("W: News 24")), ["Headlines"], "by name, from the [[guides]] guide");
    assert_eq!(titles_of(&number_of("futbol channel 1")), ["futbol live 1"], "from the search EPG");
    assert!(titles_of(&number_of("W: No Guide <&>")).is_empty());
    assert!(!programmes.iter().any(|p| p[1] == "Not ours"));
    assert!(programmes.iter().all(|p| p[3].as_str().unwrap().ends_with(" +0000")));
    let desc = programmes.iter().find(|p| p[1] == "Film").unwrap()[2].clone();
    assert_eq!(desc, "About & more");

    // The playlist announces it, and names every channel by its guide id.
    let playlist = h.http.get(h.url("/playlist.m3u")).send().await.unwrap().text().await.unwrap();
    assert!(playlist.starts_with(&format!("#EXTM3U url-tvg=\"{}/epg.xml\"", h.base)), "{playlist}");
    assert!(
        playlist.contains(&format!(
            "tvg-id=\"{}\" tvg-name=\"W: News 24\"",
            number_of("W: News 24").trim_matches('"')
        )),
        "{playlist}"
    );
    h.shutdown().await;
}
