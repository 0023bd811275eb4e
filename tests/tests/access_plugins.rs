//! Access plugins (WIT world `access-plugin`) decide who may watch, through
//! real HTTP on loopback: the Rust example (`network-allow`: each user
//! from its networks) allows and denies with its reason; the Python
//! example (`watch-hours`: each user at its hours of the day) too; a
//! plugin that answers tighter limits holds its user to them; a plugin
//! that traps denies (503) unless `--access-plugin-failure allow`; and
//! event plugins hear the user's name, never its token.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ace_sim::SimConfig;
use acemux::access::{OnPluginFailure, PlayerAccess};
use acemux_test_artifacts as wasm;
use acemux_tests::log_capture::plugin_log;
use acemux_tests::plugins::{install, plugin};
use acemux_tests::toolchains::{build_python, python_available, repo, wit};
use acemux_tests::{Harness, PlayerClient, TempDir, content_id};
use serde_json::Value;

const GRANDMA: &str = "grandmas-secret-42";
const KID: &str = "kids-token-1234";

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 1_000_000, ..SimConfig::default() }
}

/// acemux in token mode with two users and the plugin directory `dir`.
async fn start(dir: &Path, on_failure: OnPluginFailure) -> Harness {
    acemux_tests::log_capture::capture();
    let value: toml::Value = toml::from_str(&format!(
        "[[users]]\nname = \"grandma\"\ntoken = \"{GRANDMA}\"\n[[users]]\nname = \"kid\"\ntoken = \"{KID}\"\n"
    ))
    .unwrap();
    let users = acemux::access::users::users_from_file(&value["users"]).unwrap();
    let dir = dir.to_path_buf();
    Harness::start(sim(), move |s| {
        s.access.player_access = PlayerAccess::Token;
        s.access.users = users;
        s.access.access_plugin_failure = on_failure;
        s.engines.max_streams_per_engine = 10;
        s.plugins.plugins_dir = acemux::values::OrNone(Some(dir));
    })
    .await
}

async fn wait_active(h: &Harness, name: &str, limit: Duration) {
    let active = h.wait_for(limit, || async { plugin(h, name).await["status"] == "active" }).await;
    assert!(active, "{name} never became active: {}", plugin(h, name).await);
}

/// A request from `address` (acemux and the plugins see it as the player's).
async fn get(h: &Harness, from: &str, path: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().local_address(from.parse::<IpAddr>().ok()).build().unwrap();
    client.get(h.url(path)).send().await.unwrap()
}

/// The status, and the JSON body of a refusal (a stream's endless body is
/// not read).
async fn refusal(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    if status == 200 {
        return (status, Value::Null);
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_allow_list_lets_each_user_in_from_its_networks_only() {
    let dir = TempDir::new("access-network");
    install(
        dir.path(),
        "network-allow",
        wasm::NETWORK_ALLOW,
        Some("[config]\nothers = [\"127.0.0.0/8\"]\n[config.users]\ngrandma = [\"127.0.0.2/32\"]\n"),
    );
    install(dir.path(), "event-log", wasm::EVENT_LOG, None);
    let h = start(dir.path(), OnPluginFailure::Deny).await;
    wait_active(&h, "network-allow", Duration::from_secs(20)).await;
    wait_active(&h, "event-log", Duration::from_secs(20)).await;

    let path = |id: u32, token: &str| format!("/ace/getstream?id={}&token={token}", content_id(id));
    let mut player = PlayerClient::new(get(&h, "127.0.0.2", &path(1, GRANDMA)).await);
    assert!(player.read_at_least(20_000, Duration::from_secs(5)).await, "grandma from her network");
    let (status, body) = refusal(get(&h, "127.0.0.3", &path(2, GRANDMA)).await).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("denied")), "{body}");
    assert_eq!(body["error"], "not allowed to watch from 127.0.0.3", "the plugin's reason");
    let (status, _) =
        refusal(get(&h, "127.0.0.3", &format!("/t/{GRANDMA}/ace/manifest.m3u8?id={}", content_id(3))).await)
            .await;
    assert_eq!(status, 403, "an HLS viewer is asked too");
    let mut kid = PlayerClient::new(get(&h, "127.0.0.3", &path(4, KID)).await);
    assert!(kid.read_at_least(20_000, Duration::from_secs(5)).await, "others from 127.0.0.0/8");
    assert_eq!(h.engine().counters().starts, 2, "a denied player starts nothing");
    let stats = plugin(&h, "network-allow").await;
    assert_eq!(stats["stats"]["errors"], 0, "{stats}");
    assert!(stats["stats"]["calls"].as_u64().unwrap() >= 4, "{stats}");

    // Event plugins hear who played.
    let heard = h
        .wait_for(Duration::from_secs(5), || async {
            plugin_log()
                .lines_of("event-log")
                .iter()
                .any(|l| l.contains("event=player-connected") && l.contains("user=grandma"))
        })
        .await;
    assert!(heard, "{:#?}", plugin_log().lines_of("event-log"));
    let logged = acemux_tests::log_capture::everything_logged();
    assert!(!logged.iter().any(|l| l.contains(GRANDMA) || l.contains(KID)), "a token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tighter_limits_from_a_plugin_hold_the_user_to_them() {
    let dir = TempDir::new("access-limits");
    install(dir.path(), "limit-access", wasm::LIMIT_ACCESS, None);
    let h = start(dir.path(), OnPluginFailure::Deny).await;
    wait_active(&h, "limit-access", Duration::from_secs(20)).await;
    let path = |id: u32| format!("/ace/getstream?id={}&token={GRANDMA}", content_id(id));
    let mut first = PlayerClient::new(get(&h, "127.0.0.1", &path(10)).await);
    assert!(first.read_at_least(10_000, Duration::from_secs(5)).await);
    let (status, body) = refusal(get(&h, "127.0.0.1", &path(11)).await).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("user_limit")), "{body}");
    let (status, _) =
        refusal(get(&h, "127.0.0.1", &format!("/ace/getstream?id={}&token={KID}", content_id(11))).await)
            .await;
    assert_eq!(status, 200, "another user has its own place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_access_plugin_denies_unless_the_operator_chose_otherwise() {
    for (on_failure, expected) in [(OnPluginFailure::Deny, 503), (OnPluginFailure::Allow, 200)] {
        let dir = TempDir::new("access-trap");
        install(dir.path(), "panic-access", wasm::PANIC_ACCESS, Some("max_failures = 1000\n"));
        let h = start(dir.path(), on_failure).await;
        wait_active(&h, "panic-access", Duration::from_secs(20)).await;
        let response =
            get(&h, "127.0.0.1", &format!("/ace/getstream?id={}&token={GRANDMA}", content_id(20))).await;
        let (status, body) = refusal(response).await;
        assert_eq!(status, expected, "{on_failure:?}: {body}");
        if expected == 503 {
            assert_eq!(body["code"], "access_check_failed", "{body}");
            assert_eq!(h.engine().counters().starts, 0, "nothing started");
        }
        let stats = plugin(&h, "panic-access").await;
        assert!(stats["stats"]["errors"].as_u64().unwrap() >= 1, "the trap is counted: {stats}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_watch_hours_plugin_lets_a_user_in_at_its_hours_only() {
    if !python_available("access_plugins::the_python_watch_hours_plugin") {
        return;
    }
    let build = TempDir::new("py-hours-build");
    let wasm = build_python("watch-hours", "access-plugin", &wit(), build.path()).await;
    // kid's window is the hour around now; grandma's is twelve hours away.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    let hhmm = |minute: u64| format!("{:02}:{:02}", minute % 1440 / 60, minute % 60);
    let config = format!(
        "time_budget = \"200ms\"\nmemory_limit = \"64MiB\"\n[config]\nutc_offset = \"+00:00\"\n\
         [config.users.kid]\nfrom = \"{}\"\nuntil = \"{}\"\n[config.users.grandma]\nfrom = \"{}\"\nuntil = \"{}\"\n",
        hhmm(now + 1440 - 30),
        hhmm(now + 30),
        hhmm(now + 720 - 30),
        hhmm(now + 720 + 30),
    );
    let dir = TempDir::new("access-hours");
    install(dir.path(), "watch-hours", wasm.to_str().unwrap(), Some(&config));
    let h = start(dir.path(), OnPluginFailure::Deny).await;
    wait_active(&h, "watch-hours", Duration::from_secs(180)).await;
    let mut kid = PlayerClient::new(
        get(&h, "127.0.0.1", &format!("/ace/getstream?id={}&token={KID}", content_id(30))).await,
    );
    assert!(kid.read_at_least(10_000, Duration::from_secs(10)).await, "kid at its hours");
    let (status, body) =
        refusal(get(&h, "127.0.0.1", &format!("/ace/getstream?id={}&token={GRANDMA}", content_id(31))).await)
            .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("denied")), "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("grandma may watch from "), "{body}");
    let toml = std::fs::read_to_string(repo().join("plugins/python/watch-hours/watch-hours.toml")).unwrap();
    assert!(toml.contains("[config.users.kid]"), "the example's settings file documents the shape");
}
