//! Plugin helpers for end-to-end tests: install a built component into a
//! running acemux's plugin directory, and read `/plugins`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::{Harness, PlayerClient, content_id};

/// Copies a built plugin into the directory as `<name>.wasm`, atomically
/// (write to a temporary name, then rename), with optional settings.
pub fn install(dir: &Path, name: &str, wasm_path: &str, settings: Option<&str>) {
    if let Some(s) = settings {
        std::fs::write(dir.join(format!("{name}.toml")), s).unwrap();
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(wasm_path, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.wasm"))).unwrap();
}

/// Replaces a plugin's settings file atomically (a reload).
pub fn set_settings(dir: &Path, name: &str, settings: &str) {
    let tmp = dir.join(format!(".{name}.toml.tmp"));
    std::fs::write(&tmp, settings).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.toml"))).unwrap();
}

/// Every plugin `/plugins` lists.
pub async fn plugins(h: &Harness) -> Vec<Value> {
    h.get_json("/plugins").await.1["plugins"].as_array().cloned().unwrap_or_default()
}

/// One plugin by name (`Null` when not listed).
pub async fn plugin(h: &Harness, name: &str) -> Value {
    plugins(h).await.into_iter().find(|p| p["name"] == name).unwrap_or(Value::Null)
}

/// One player on each of `count` contents from `content_id(first)` on,
/// each past its first bytes (so its engine was chosen and has started).
pub async fn play_contents(h: &Harness, first: u32, count: u32) -> Vec<PlayerClient> {
    let mut players = Vec::new();
    for n in first..first + count {
        let mut p = h.player(&content_id(n)).await;
        assert!(p.read_at_least(10_000, Duration::from_secs(10)).await, "content {n} never played");
        players.push(p);
    }
    players
}

/// Asserts that plugin `name` was called at least `calls` times and never
/// failed.
pub async fn assert_called_without_errors(h: &Harness, name: &str, calls: u64) {
    let p = plugin(h, name).await;
    assert!(p["stats"]["calls"].as_u64().unwrap_or(0) >= calls, "{p}");
    assert_eq!(p["stats"]["errors"], 0, "{p}");
}

/// Asserts that plugin `name` failed to load for being built against
/// contract version `theirs`, the error naming both versions, before any
/// compile time was spent on it; then that acemux still serves a player.
pub async fn assert_refused_for_version(h: &Harness, name: &str, theirs: &str) {
    let refused = plugin(h, name).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    let ours = acemux::plugins::contract::PACKAGE_VERSION;
    assert!(
        error.contains(&format!("acemux:plugin@{theirs}"))
            && error.contains(&format!("acemux:plugin@{ours}")),
        "the error names both versions: {refused}"
    );
    assert!(refused.get("compile_ms").is_none_or(|ms| ms.is_null()), "refused before compiling: {refused}");
    play_contents(h, 999, 1).await;
}

/// `/metrics` as a caller with `token` (the admin token) or without one.
pub async fn metrics_text(h: &Harness, token: Option<&str>) -> String {
    let mut request = h.http.get(h.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().text().await.unwrap()
}

/// The value of one series on `/metrics`, named exactly as published
/// (`name{label="value",…}`); `None` when it is not there.
pub async fn metric(h: &Harness, series: &str) -> Option<f64> {
    let text = metrics_text(h, None).await;
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `/plugins` until plugin `name` has `status` (10 s at most);
/// returns its entry.
pub async fn status_becomes(h: &Harness, name: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = plugin(h, name).await;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never became {status}: {last}");
}
