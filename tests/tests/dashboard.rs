//! The dashboard in a real browser: Debian's `chromium`, headless, driven
//! through WebDriver (`chromedriver`, the `fantoccini` client) against
//! acemux with the simulated engine serving the H.264/AAC recording.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages (`.ci/run`
//! installs them). The screenshot goes to the test's temporary directory,
//! and to `docs/dashboard.png` with `ACEMUX_UPDATE_SCREENSHOT=1`.

use std::path::Path;
use std::time::{Duration, Instant};

use ace_sim::ContentBehaviour;
use acemux::channels::Channel;
use acemux::content::{ContentKey, KeyType};
use acemux_tests::browser::Browser;
use acemux_tests::plugins::install;
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, PlayerClient, TempDir, content_id};
use fantoccini::Locator;
use serde_json::json;

fn channel(name: &str, id: String) -> Channel {
    let mut channel = Channel::new(name.into(), ContentKey::new(KeyType::ContentId, id));
    channel.group = Some("Test".into());
    channel
}

fn browser_available(test: &str) -> bool {
    acemux_test_artifacts::programs::available(
        &format!("dashboard::{test}"),
        &["chromium", "chromedriver"],
        "chromium chromium-driver",
    )
}

/// A stream's row attribute, or `null` while the row is not there.
fn row_attr(id: &str, field: &str, attr: &str) -> String {
    format!(
        "const c = document.querySelector('tr[data-stream=\"{id}\"] td[data-field=\"{field}\"]'); \
         return c ? c.getAttribute('{attr}') : null;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_new_player_and_plays_the_channel_through_hls() {
    if !browser_available("the_dashboard_shows_a_new_player_and_plays_the_channel_through_hls") {
        return;
    }
    let id = content_id(21);
    let channels = vec![channel("Test pattern", id.clone()), channel("Second channel", content_id(22))];
    let plugins = TempDir::new("dashboard-plugins");
    install(plugins.path(), "null-strip", acemux_test_artifacts::NULL_STRIP, None);
    let dir = plugins.path().to_path_buf();
    let h = Harness::start(recorded(1), |s| {
        s.channels.channels = channels;
        s.hls.hls_segment = Duration::from_secs(2);
        s.plugins.plugins_dir = acemux::values::OrNone(Some(dir));
    })
    .await;
    let browser = Browser::start(1280, 1000).await.expect("chromium through chromedriver");
    let c = &browser.client;
    c.goto(&h.url("/")).await.expect("the dashboard loads");
    assert!(
        browser
            .wait_until(
                Duration::from_secs(5),
                "return document.getElementById('feed').textContent === 'live';"
            )
            .await
            .unwrap(),
        "the live feed connects"
    );

    // A TS player through the HTTP API: its row appears within two seconds,
    // with the engine and one player.
    let mut player = h.player(&id).await;
    let started = Instant::now();
    let engine = h.engine_id(0);
    let shown = browser
        .wait_until(
            Duration::from_secs(2),
            &format!(
                "const e = document.querySelector('tr[data-stream=\"{id}\"] td[data-field=\"engine\"]'); \
                 const p = document.querySelector('tr[data-stream=\"{id}\"] td[data-field=\"players\"]'); \
                 return !!e && e.textContent === '{engine}' && p.dataset.total === '1';"
            ),
        )
        .await
        .unwrap();
    assert!(shown, "row with engine {engine} and 1 player within 2 s (took {:?})", started.elapsed());
    let name = browser
        .eval(&format!("return document.querySelector('tr[data-stream=\"{id}\"] td').textContent;"))
        .await
        .unwrap();
    assert_eq!(name, json!("Test pattern"), "the channel's name, not its id");
    // The plugin table: the filter running for this stream, with what it holds.
    let memory = browser
        .wait_until(
            Duration::from_secs(5),
            "const row = [...document.querySelectorAll('#plugins tbody tr')] \
               .find((r) => r.querySelector('td[data-label=\"Plugin\"]').textContent === 'null-strip'); \
             const m = row && row.querySelector('td[data-label=\"Memory\"]'); \
             return !!m && /^[0-9.]+ (KiB|MiB)$/.test(m.textContent) && /native code .* 1 instance\\(s\\)/.test(m.title);",
        )
        .await
        .unwrap();
    assert!(
        memory,
        "the null-strip row shows its memory: {:?}",
        browser.eval("return document.getElementById('plugins').outerHTML;").await
    );

    // Play the channel from the page: the <video> element plays it through
    // acemux's HLS output.
    c.find(Locator::Css(&format!("button[data-play=\"{id}\"]")))
        .await
        .expect("play button")
        .click()
        .await
        .unwrap();
    assert!(
        browser
            .wait_until(Duration::from_secs(30), "return document.getElementById('player').currentTime > 0;")
            .await
            .unwrap(),
        "the video starts: {}",
        browser.eval("return document.getElementById('player-state').textContent;").await.unwrap()
    );
    let t0 = browser
        .eval("return document.getElementById('player').currentTime;")
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let advanced = browser
        .wait_until(
            Duration::from_secs(15),
            &format!("return document.getElementById('player').currentTime >= {} ;", t0 + 2.0),
        )
        .await
        .unwrap();
    assert!(advanced, "currentTime advanced 2 s from {t0}");
    // The page is one more viewer of the same engine session.
    let counted = format!("return (() => {{ {} }})() === '2';", row_attr(&id, "players", "data-total"));
    browser.wait_until(Duration::from_secs(3), &counted).await.unwrap();
    let total = browser.eval(&row_attr(&id, "players", "data-total")).await.unwrap();
    let hls = browser.eval(&row_attr(&id, "players", "data-hls")).await.unwrap();
    assert_eq!((total, hls), (json!("2"), json!("1")), "the page's viewer is counted");
    assert_eq!(h.engine().counters().starts, 1, "one engine session for the TS player and the page");
    let lines = browser
        .eval(&format!(
            "return document.querySelectorAll('tr[data-stream=\"{id}\"] svg.spark:not(.speed) polyline').length;"
        ))
        .await
        .unwrap();
    assert_eq!(lines, json!(2), "sparklines of bitrate and players");
    // The engine's peers and download speed, from its statistics: a number
    // that moves (the simulated swarm's peers change every second), and a
    // line of the speed.
    let peers_cell =
        format!("document.querySelector('tr[data-stream=\"{id}\"] td[data-field=\"peers\"]').textContent");
    let numeric = format!("return /^[0-9]+$/.test({peers_cell});");
    assert!(browser.wait_until(Duration::from_secs(10), &numeric).await.unwrap(), "no peers shown");
    let first = browser.eval(&format!("return {peers_cell};")).await.unwrap();
    let moved = format!("return {peers_cell} !== {first};");
    assert!(browser.wait_until(Duration::from_secs(10), &moved).await.unwrap(), "peers stayed at {first}");
    let speed_line = format!(
        "return document.querySelectorAll('tr[data-stream=\"{id}\"] td[data-field=\"speed\"] svg.speed polyline').length === 1;"
    );
    assert!(browser.wait_until(Duration::from_secs(10), &speed_line).await.unwrap(), "no speed sparkline");
    assert!(player.read_at_least(50_000, Duration::from_secs(5)).await);

    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).unwrap();
    if std::env::var_os("ACEMUX_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png"), &png).unwrap();
    }
    browser.close().await;
}

/// A channel with several ids: its row names the channel and says which
/// id it plays, that it switched, and that the dead id is backing off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_s_row_shows_the_id_it_plays_and_its_switches() {
    if !browser_available("a_channel_s_row_shows_the_id_it_plays_and_its_switches") {
        return;
    }
    let (gone, good) = (content_id(25), content_id(26));
    let mut sim = recorded(1);
    let dead = ContentBehaviour { start_error: Some("failed to load content".into()), ..Default::default() };
    sim.contents = [(gone.clone(), dead)].into();
    let mut two_ids = channel("Two ids", gone);
    two_ids.alternates = vec![ContentKey::new(KeyType::ContentId, good)];
    two_ids.identity = Some("channel:Two ids".into());
    let key = two_ids.play_key().id;
    let h = Harness::start(sim, |s| s.channels.channels = vec![two_ids]).await;
    let browser = Browser::start(1280, 1000).await.expect("chromium through chromedriver");
    browser.client.goto(&h.url("/")).await.expect("the dashboard loads");
    let response = h.http.get(h.url(&format!("/channel/{key}/x.ts"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut player = PlayerClient::new(response);
    assert!(player.read_at_least(10_000, Duration::from_secs(5)).await);
    let script = format!(
        "const c = document.querySelector('tr[data-stream=\"{key}\"] [data-field=\"channel\"]'); \
         return c ? [c.parentNode.firstChild.textContent, c.textContent, c.title] : null;"
    );
    let predicate = format!(
        "const c = document.querySelector('tr[data-stream=\"{key}\"] [data-field=\"channel\"]'); \
         return !!c && c.textContent.includes('switch');"
    );
    let shown = browser.wait_until(Duration::from_secs(5), &predicate).await.unwrap();
    let row = browser.eval(&script).await.unwrap();
    assert!(shown, "{row}");
    assert_eq!(row[0], json!("Two ids"), "{row}");
    assert_eq!(row[1], json!("id 2 of 2 · 1 switch · 1 backing off"), "{row}");
    assert!(row[2].as_str().unwrap().contains("start failed"), "{row}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_need_the_token_once_and_the_page_fits_a_phone() {
    if !browser_available("admin_actions_need_the_token_once_and_the_page_fits_a_phone") {
        return;
    }
    let id = content_id(23);
    let channels = vec![channel("Phone channel", id.clone())];
    let h = Harness::start(recorded(1), |s| {
        s.channels.channels = channels;
        s.front.admin_token = Some("s3cret-token".into());
    })
    .await;
    let mut player = h.player(&id).await;
    let browser = Browser::start(390, 844).await.expect("chromium through chromedriver");
    let c = &browser.client;
    c.goto(&h.url("/")).await.expect("the dashboard loads");
    let row = format!("return !!document.querySelector('tr[data-stream=\"{id}\"]');");
    assert!(browser.wait_until(Duration::from_secs(5), &row).await.unwrap(), "the stream's row");
    // Without the token: redacted (no engine address), no admin buttons.
    assert_eq!(browser.eval(&row_attr(&id, "engine", "data-label")).await.unwrap(), json!("Engine"));
    let engine = browser
        .eval(&format!(
            "return document.querySelector('tr[data-stream=\"{id}\"] td[data-field=\"engine\"]').textContent;"
        ))
        .await
        .unwrap();
    assert_eq!(engine, json!("—"), "engine addresses are for admins");
    assert_eq!(
        browser.eval("return document.querySelectorAll('button[data-stop]').length;").await.unwrap(),
        json!(0)
    );
    // State is text too, not colour alone; and nothing overflows a phone's width.
    let state = browser
        .eval(&format!("return document.querySelector('tr[data-stream=\"{id}\"] .state').textContent;"))
        .await
        .unwrap();
    assert_eq!(state, json!("live"));
    let fits =
        browser.eval("return document.documentElement.scrollWidth <= window.innerWidth;").await.unwrap();
    assert_eq!(fits, json!(true), "no sideways scrolling at 390 px");

    // Sign in once: the prompt takes the token, the page reloads with it.
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.send_alert_text("s3cret-token").await.unwrap();
    c.accept_alert().await.unwrap();
    let admin = "return document.querySelectorAll('button[data-stop]').length === 1;";
    assert!(browser.wait_until(Duration::from_secs(5), admin).await.unwrap(), "admin buttons after sign-in");
    let engine = browser
        .eval(&format!(
            "return document.querySelector('tr[data-stream=\"{id}\"] td[data-field=\"engine\"]').textContent;"
        ))
        .await
        .unwrap();
    assert_eq!(engine, json!(h.engine_id(0)));

    // Stop the stream from the page (after confirming).
    c.find(Locator::Css("button[data-stop]")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    assert!(h.wait_for(Duration::from_secs(5), || async { h.session_count().await == 0 }).await, "stopped");
    assert!(player.read_to_end(Duration::from_secs(5)).await, "the TS player's response ended");
    let gone = format!("return !document.querySelector('tr[data-stream=\"{id}\"]');");
    assert!(browser.wait_until(Duration::from_secs(3), &gone).await.unwrap(), "the row goes");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_is_server_sent_events_under_the_status_rules() {
    let h = Harness::start(recorded(1), |s| {
        s.front.admin_token = Some("feed-token".into());
        s.front.status_access = acemux::http::StatusAccess::Token;
    })
    .await;
    let r = h.http.get(h.url("/proxy/events")).send().await.unwrap();
    assert_eq!(r.status(), 401, "same rule as /proxy/status");
    let mut r = h.http.get(h.url("/proxy/events")).bearer_auth("feed-token").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let until = Instant::now() + Duration::from_secs(5);
    while text.matches("\n\n").count() < 2 && Instant::now() < until {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(3), r.chunk()).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert!(events.len() >= 2, "an event a second: {text}");
    let data = events[0].lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    let doc: serde_json::Value = serde_json::from_str(data).unwrap();
    assert!(doc["sessions"].is_array() && doc["engines"].is_array() && doc["plugins"].is_object());
    assert_eq!((doc["admin"].clone(), doc["redacted"].clone()), (json!(true), json!(false)));
    assert!(events[0].contains("retry: "), "the browser is told when to reconnect");

    // The page itself, and turning it off.
    let page = h.http.get(h.url("/")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("content-security-policy"));
    for asset in ["/assets/dashboard.js", "/assets/dashboard.css", "/assets/hls.light.min.js"] {
        assert_eq!(h.http.get(h.url(asset)).send().await.unwrap().status(), 200, "{asset}");
    }
    let off = Harness::start(recorded(1), |s| s.dashboard.dashboard = false).await;
    let r = off.http.get(off.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_by_itself_after_acemux_restarts() {
    if !browser_available("the_page_reconnects_by_itself_after_acemux_restarts") {
        return;
    }
    let mut h = Harness::start(recorded(1), |_| {}).await;
    let addr = h.acemux.as_ref().unwrap().addr();
    let browser = Browser::start(1024, 768).await.expect("chromium through chromedriver");
    browser.client.goto(&h.url("/")).await.expect("the dashboard loads");
    let live = "return document.getElementById('feed').textContent === 'live';";
    assert!(browser.wait_until(Duration::from_secs(5), live).await.unwrap());
    h.shutdown().await;
    let lost = "return document.getElementById('feed').textContent !== 'live';";
    assert!(browser.wait_until(Duration::from_secs(5), lost).await.unwrap(), "the page notices");
    // A new acemux on the same address, with a channel the old one lacked.
    let mut settings = acemux::config::Settings::with_engines(&[h.engine().endpoint()]).unwrap();
    settings.front.listen = addr;
    settings.plugins.plugins_dir = acemux::values::OrNone(None);
    settings.channels.channels = vec![channel("After the restart", content_id(24))];
    let again = acemux::Acemux::start(settings).await.expect("acemux starts again on the same address");
    let back = format!(
        "return document.getElementById('feed').textContent === 'live' && \
         !!document.querySelector('button[data-play=\"{}\"]');",
        content_id(24)
    );
    assert!(browser.wait_until(Duration::from_secs(10), &back).await.unwrap(), "live again without a reload");
    browser.close().await;
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_each_source_and_filters_channels_by_group() {
    if !browser_available("the_dashboard_shows_each_source_and_filters_channels_by_group") {
        return;
    }
    let files = acemux_tests::files::FileServer::start().await;
    files.set(
        "list.m3u",
        format!(
            "#EXTM3U\n#EXTINF:-1 group-title=\"Sport\",Match\nacestream://{}\n#EXTINF:-1 group-title=\"News\",Headlines\nacestream://{}\nhttp://not.acestream/x.m3u8\n",
            content_id(31),
            content_id(32)
        ),
    );
    let dir = TempDir::new("dashboard-sources");
    let config = dir.path().join("acemux.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nname = 'friends'\nkind = 'm3u'\nurl = '{}'\n\n[[sources]]\nname = 'gone'\nkind = 'm3u'\nurl = '{}'\n",
            files.url("list.m3u"),
            files.url("missing.m3u")
        ),
    )
    .unwrap();
    let h = Harness::start(recorded(1), move |s| {
        s.channels = acemux::config::Settings::from_args(["acemux", "--config", config.to_str().unwrap()])
            .unwrap()
            .channels;
    })
    .await;
    let browser = Browser::start(1280, 1000).await.expect("chromium through chromedriver");
    browser.client.goto(&h.url("/")).await.expect("the dashboard loads");
    let sources = browser
        .wait_until(
            Duration::from_secs(10),
            "const row = (n) => document.querySelector('#sources tr[data-source=\"' + n + '\"]'); \
             const cell = (n, l) => row(n) && row(n).querySelector('td[data-label=\"' + l + '\"]').textContent; \
             return cell('friends', 'Channels') === '2' && cell('friends', 'Skipped / excluded') === '1 / 0' \
               && /404/.test(cell('gone', 'Error') || '') && /failing/.test(cell('gone', 'Source'));",
        )
        .await
        .unwrap();
    assert!(
        sources,
        "each source with its count and error: {:?}",
        browser.eval("return document.getElementById('sources').outerHTML;").await
    );
    let listed = browser
        .wait_until(Duration::from_secs(5), "return document.querySelectorAll('#channels li').length === 2;")
        .await
        .unwrap();
    assert!(listed, "both channels listed");
    // Choose a group: only its channels stay, each with its play button.
    browser
        .eval("const s = document.getElementById('channel-group'); s.value = 'News'; s.dispatchEvent(new Event('change')); return true;")
        .await
        .unwrap();
    let filtered = browser
        .wait_until(
            Duration::from_secs(5),
            &format!(
                "const items = document.querySelectorAll('#channels li'); \
                 return items.length === 1 && /Headlines/.test(items[0].textContent) \
                   && !!document.querySelector('button[data-play=\"{}\"]');",
                content_id(32)
            ),
        )
        .await
        .unwrap();
    assert!(
        filtered,
        "the group filter keeps only News: {:?}",
        browser.eval("return document.getElementById('channels').outerHTML;").await
    );
    // The choice holds across the next events (the list is not sent again).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = browser.eval("return document.querySelectorAll('#channels li').length;").await.unwrap();
    assert_eq!(still, json!(1));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_each_user_s_players_and_streams_against_its_limits() {
    if !browser_available("the_dashboard_shows_each_user_s_players_and_streams_against_its_limits") {
        return;
    }
    let value: toml::Value = toml::from_str(
        "[[users]]\nname = \"grandma\"\ntoken = \"grandmas-secret-42\"\nmax_players = 2\nmax_streams = 1\n\
         [[users]]\nname = \"kid\"\ntoken = \"kids-token-1234\"\ngroups = [\"Test\"]\n",
    )
    .unwrap();
    let users = acemux::access::users::users_from_file(&value["users"]).unwrap();
    let h = Harness::start(recorded(1), move |s| {
        s.access.player_access = acemux::access::PlayerAccess::Token;
        s.access.users = users;
    })
    .await;
    let browser = Browser::start(1280, 1000).await.expect("chromium through chromedriver");
    browser.client.goto(&h.url("/")).await.expect("the dashboard loads");
    let url = h.url(&format!("/ace/getstream?id={}&token=grandmas-secret-42", content_id(5)));
    let mut player = PlayerClient::new(h.http.get(url).send().await.unwrap());
    assert!(player.read_at_least(10_000, Duration::from_secs(5)).await);
    let cells = |user: &str| {
        format!(
            "const r = document.querySelector('tr[data-user=\"{user}\"]'); \
             return r ? [...r.cells].map(c => c.textContent) : null;"
        )
    };
    let shown = browser
        .wait_until(
            Duration::from_secs(5),
            "const c = document.querySelector('tr[data-user=\"grandma\"] td[data-label=\"Players\"]'); \
             return !!c && c.textContent === '1 / 2';",
        )
        .await
        .unwrap();
    let grandma = browser.eval(&cells("grandma")).await.unwrap();
    assert!(shown, "{grandma}");
    assert_eq!(grandma, json!(["grandma", "1 / 2", "1 / 1", "every group"]));
    assert_eq!(browser.eval(&cells("kid")).await.unwrap(), json!(["kid", "0", "0", "Test"]));
    let mode = browser.eval("return document.getElementById('access-mode').textContent").await.unwrap();
    assert_eq!(mode, json!("(access: token)"));
    let page = browser.eval("return document.body.innerHTML").await.unwrap();
    assert!(!page.to_string().contains("grandmas-secret-42"), "no token on the page");
    browser.close().await;
}
