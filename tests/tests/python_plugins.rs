//! Plugins written in Python, built by `componentize-py` from `wit/` and
//! loaded by acemux unchanged, under live players; and the compile cache
//! that makes such a plugin (an 18 MB component) live at once when its
//! code is known. Skipped loudly without `componentize-py`
//! (`pip install componentize-py==0.25.0`), failed under
//! `ACEMUX_REQUIRE_PROGRAMS`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ace_sim::SimConfig;
use acemux_test_artifacts::programs;
use acemux_tests::{Harness, TempDir, content_id};
use serde_json::Value;

const COMPONENTIZE_PY: &str = "pip install componentize-py==0.25.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `plugins/python/<name>` for `world` into `out`.
async fn build_python(name: &str, world: &str, out: &Path) -> PathBuf {
    let source = repo().join("plugins/python").join(name);
    let wasm = out.join(format!("{name}.wasm"));
    let status = tokio::process::Command::new("componentize-py")
        .arg("-d")
        .arg(repo().join("wit"))
        .args(["-w", world, "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(&source)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("componentize-py runs");
    assert!(status.success(), "componentize-py could not build {name}");
    wasm
}

async fn plugin(h: &Harness, name: &str) -> Value {
    let (_, list) = h.get_json("/plugins").await;
    list["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or(Value::Null)
}

fn sim() -> SimConfig {
    SimConfig { bitrate_bps: 500_000, ..SimConfig::default() }
}

/// Two engines; the one the built-in rule would not pick (the larger id)
/// carries the region of 127.0.0.x players. `ids` gets the engines' ids.
fn settings<'a>(
    ids: &'a mut Vec<String>,
    plugins: &Path,
    cache: &Path,
) -> impl FnOnce(&mut acemux::config::Settings) + 'a {
    let (plugins, cache) = (plugins.to_path_buf(), cache.to_path_buf());
    move |s| {
        *ids = s.engines.iter().map(|e| format!("{}:{}", e.host, e.port)).collect();
        let other = usize::from(ids[0] < ids[1]);
        s.engines[other].labels.insert("region".into(), "local".into());
        s.plugins_dir = Some(plugins);
        s.plugin_cache = Some(cache);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_selector_chooses_the_engine_and_known_code_loads_from_the_cache() {
    let test = "python_plugins::a_python_selector_chooses_the_engine";
    if !programs::available_by(test, &["componentize-py"], COMPONENTIZE_PY) {
        return;
    }
    let build = TempDir::new("py-build");
    let wasm = build_python("region-selector", "selector-plugin", build.path()).await;
    let plugins = TempDir::new("py-plugins");
    let cache = TempDir::new("py-cache");
    std::fs::copy(&wasm, plugins.path().join("region-selector.wasm")).unwrap();
    std::fs::copy(
        repo().join("plugins/python/region-selector/region-selector.toml"),
        plugins.path().join("region-selector.toml"),
    )
    .unwrap();

    let mut ids = Vec::new();
    let mut h =
        Harness::start_many(vec![sim(), sim()], settings(&mut ids, plugins.path(), cache.path())).await;
    let labelled = usize::from(ids[0] < ids[1]);
    let first = plugin(&h, "region-selector").await;
    assert_eq!(first["status"], "active", "{first}");
    assert_eq!(first["compiled"], "fresh", "{first}");
    assert_eq!(first["capabilities"]["selector"], true);

    // Two contents: the built-in rule would spread them; the Python
    // selector puts both on the engine of the players' region.
    let mut players = Vec::new();
    for n in 0..2 {
        let mut p = h.player(&content_id(700 + n)).await;
        assert!(p.read_at_least(10_000, Duration::from_secs(10)).await);
        players.push(p);
    }
    assert_eq!(h.engines[labelled].counters().starts, 2, "the Python selector chose the engine");
    assert_eq!(h.engines[1 - labelled].counters().starts, 0);
    let used = plugin(&h, "region-selector").await;
    assert!(used["stats"]["calls"].as_u64().unwrap() >= 2, "{used}");
    assert_eq!(used["stats"]["errors"], 0, "{used}");
    drop(players);
    h.shutdown().await;

    // A restart: the same code comes from the compile cache.
    let mut ids = Vec::new();
    let h = Harness::start_many(vec![sim(), sim()], settings(&mut ids, plugins.path(), cache.path())).await;
    let again = plugin(&h, "region-selector").await;
    assert_eq!(again["status"], "active", "{again}");
    assert_eq!(again["compiled"], "cache", "{again}");
    eprintln!(
        "python selector: compiled in {:.0} ms, from the cache in {:.0} ms",
        first["compile_ms"].as_f64().unwrap(),
        again["compile_ms"].as_f64().unwrap()
    );
    let labelled = usize::from(ids[0] < ids[1]);
    let mut p = h.player(&content_id(710)).await;
    assert!(p.read_at_least(10_000, Duration::from_secs(10)).await);
    assert_eq!(h.engines[labelled].counters().starts, 1, "the cached selector chose the engine");
}
