//! Channel-source plugins through real HTTP on loopback: the Rust example
//! (a JSON list fetched over HTTP with a network grant), the Python example
//! (a JSON file in a granted directory, built by componentize-py), a
//! plugin dropped in after acemux started (hot-loaded), and one that traps
//! after its first answer (its last good channels stay).

use std::path::Path;
use std::time::Duration;

use ace_sim::SimConfig;
use acemux_tests::files::FileServer;
use acemux_tests::plugins::install;
use acemux_tests::toolchains::{build_python, python_available, wit};
use acemux_tests::{Harness, PlayerClient, TempDir, content_id};
use serde_json::Value;

/// acemux with `sources` (TOML `[[sources]]` tables) and a plugin directory.
async fn start(dir: &TempDir, plugins: &Path, sources: &str) -> Harness {
    let config = dir.path().join("acemux.toml");
    std::fs::write(&config, sources).unwrap();
    let plugins = plugins.to_path_buf();
    Harness::start(SimConfig::default(), move |s| {
        s.channels = acemux::config::Settings::from_args(["acemux", "--config", config.to_str().unwrap()])
            .expect("valid settings file")
            .channels;
        s.plugins.plugins_dir = acemux::values::OrNone(Some(plugins));
    })
    .await
}

fn source<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sources"].as_array().unwrap().iter().find(|s| s["name"] == name).expect("source in status")
}

/// Waits (20 s at most) until the source `name` satisfies `check`.
async fn source_when(h: &Harness, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = source(&h.status().await, name).clone();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("source {name} never got there: {last:#}");
}

async fn channels(h: &Harness) -> Vec<Value> {
    h.get_json("/channels.json").await.1["channels"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_json_source_fills_the_list_is_hot_loaded_and_keeps_its_list_when_the_site_breaks() {
    let files = FileServer::start().await;
    files.set(
        "channels.json",
        format!(
            r#"[{{"name": "Plugin One", "id": "{}", "group": "Sport", "number": 70}},
                {{"name": "Plugin Two", "infohash": "{}", "logo": "http://l/2.png"}},
                {{"name": "Broken", "id": "nothex"}}]"#,
            content_id(1),
            content_id(2)
        ),
    );
    let dir = TempDir::new("rust-source");
    let plugins = TempDir::new("rust-source-plugins");
    let h = start(
        &dir,
        plugins.path(),
        "[[sources]]\nname = 'site'\nkind = 'plugin'\nplugin = 'json-source'\nrefresh = '1s'\nprefix = 'P: '\n",
    )
    .await;
    // Not there yet: the source says so.
    source_when(&h, "site", |s| {
        s["error"].as_str().is_some_and(|e| e.contains("no channel-source plugin named `json-source`"))
    })
    .await;
    // Dropped in: loaded while acemux runs, asked at the next refresh.
    let settings = format!(
        "time_budget = \"5s\"\n[grants]\nnetwork = true\n[config]\nurl = \"{}\"\n",
        files.url("channels.json")
    );
    install(plugins.path(), "json-source", acemux_test_artifacts::JSON_SOURCE, Some(&settings));
    let good = source_when(&h, "site", |s| s["channels"] == 2 && s["error"].is_null()).await;
    // (The plugin's own reader drops the broken entry; acemux sees two.)
    assert_eq!((good["kind"].as_str(), good["skipped"].as_u64()), (Some("plugin"), Some(0)), "{good}");
    let listed = channels(&h).await;
    let one = listed.iter().find(|c| c["name"] == "P: Plugin One").expect("prefixed by the source's rules");
    assert_eq!((one["number"].as_u64(), one["group"].as_str()), (Some(70), Some("Sport")));
    let two = listed.iter().find(|c| c["name"] == "P: Plugin Two").unwrap();
    assert_eq!(two["key"]["key_type"], "infohash");
    // The site breaks: the plugin's error is shown, its channels stay.
    files.set("channels.json", "<html>maintenance</html>");
    let failed =
        source_when(&h, "site", |s| s["error"].as_str().is_some_and(|e| e.contains("not a JSON list"))).await;
    assert_eq!(failed["channels"], 2, "{failed}");
    assert_eq!(channels(&h).await.len(), 2);
    // A channel of the plugin plays.
    let url = one["url"].as_str().unwrap().to_owned();
    let mut player = PlayerClient::new(h.http.get(&url).send().await.unwrap());
    assert!(player.read_at_least(50_000, Duration::from_secs(10)).await);
    player.report().assert_clean("a plugin source's channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_source_keeps_its_last_good_list() {
    let dir = TempDir::new("flaky-source");
    let plugins = TempDir::new("flaky-source-plugins");
    install(
        plugins.path(),
        "flaky-source",
        acemux_test_artifacts::FLAKY_SOURCE,
        Some(&format!("[config]\nid = \"{}\"\n", content_id(3))),
    );
    let h = start(
        &dir,
        plugins.path(),
        "[[sources]]\nname = 'flaky'\nkind = 'plugin'\nplugin = 'flaky-source'\nrefresh = '1s'\n",
    )
    .await;
    source_when(&h, "flaky", |s| s["channels"] == 1 && s["error"].is_null()).await;
    let trapped =
        source_when(&h, "flaky", |s| s["error"].as_str().is_some_and(|e| e.contains("trapped"))).await;
    assert_eq!(trapped["channels"], 1, "the last good list stays: {trapped}");
    assert!(trapped["failures"].as_u64().unwrap() >= 1);
    assert_eq!(channels(&h).await[0]["name"], "Flaky");
    let plugin = acemux_tests::plugins::plugin(&h, "flaky-source").await;
    assert!(plugin["stats"]["errors"].as_u64().unwrap() >= 1, "{plugin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_file_source_reads_a_granted_directory() {
    if !python_available("source_plugins::the_python_file_source_reads_a_granted_directory") {
        return;
    }
    let build = TempDir::new("py-source-build");
    let wasm = build_python("file-source", "channel-source-plugin", &wit(), build.path()).await;
    let lists = TempDir::new("py-source-lists");
    std::fs::write(
        lists.path().join("channels.json"),
        format!(r#"{{"channels": [{{"name": "From Python", "id": "{}", "group": "Py", "tvg_id": "py.1"}}, {{"name": "No id"}}]}}"#, content_id(4)),
    )
    .unwrap();
    let dir = TempDir::new("py-source");
    let plugins = TempDir::new("py-source-plugins");
    let settings = format!(
        "time_budget = \"5s\"\nmemory_limit = \"64MiB\"\n[grants]\ndirs = {{ \"{}\" = \"/lists\" }}\n[config]\nfile = \"/lists/channels.json\"\n",
        lists.path().display()
    );
    install(plugins.path(), "file-source", wasm.to_str().unwrap(), Some(&settings));
    let h = start(
        &dir,
        plugins.path(),
        "[[sources]]\nname = 'mine'\nkind = 'plugin'\nplugin = 'file-source'\nrefresh = '1s'\n",
    )
    .await;
    let good = source_when(&h, "mine", |s| s["channels"] == 1 && s["error"].is_null()).await;
    assert_eq!(good["skipped"], 0, "the Python reader skips the entry without an id itself: {good}");
    let listed = channels(&h).await;
    assert_eq!(
        (listed[0]["name"].as_str(), listed[0]["tvg_id"].as_str()),
        (Some("From Python"), Some("py.1"))
    );
    // The file goes away: the plugin's error is shown, its channel stays.
    std::fs::remove_file(lists.path().join("channels.json")).unwrap();
    let failed = source_when(&h, "mine", |s| {
        s["error"].as_str().is_some_and(|e| e.contains("cannot read /lists/channels.json"))
    })
    .await;
    assert_eq!(failed["channels"], 1, "{failed}");
}
