//! Pinned plugin files: `sha256 = "…"` in `<name>.toml` is checked before
//! anything is compiled, and `--plugins-require-digest` refuses a plugin
//! that pins nothing. Through `/plugins` of a running acemux.

use std::time::Duration;

use ace_sim::SimConfig;
use acemux_test_artifacts as wasm;
use acemux_tests::plugins::{install, play_contents, plugin, set_settings, status_becomes};
use acemux_tests::{Harness, TempDir};
use sha2::{Digest, Sha256};

fn digest_of(path: &str) -> String {
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_digest_loads_the_right_file_and_refuses_any_other_before_compiling() {
    let dir = TempDir::new("digest");
    let right = digest_of(wasm::NULL_STRIP);
    let wrong = digest_of(wasm::PASS_FILTER);
    install(dir.path(), "pinned", wasm::NULL_STRIP, Some(&format!("sha256 = \"{right}\"\n")));
    install(
        dir.path(),
        "mismatched",
        wasm::NULL_STRIP,
        Some(&format!("sha256 = \"sha256:{}\"\n", wrong.to_uppercase())),
    );
    let d = dir.path().to_path_buf();
    let h = Harness::start(SimConfig::default(), |s| s.plugins.plugins_dir = acemux::values::OrNone(Some(d)))
        .await;

    let pinned = plugin(&h, "pinned").await;
    assert_eq!(pinned["status"], "active", "{pinned}");
    assert_eq!(pinned["settings"]["sha256"], right.as_str(), "{pinned}");
    let refused = plugin(&h, "mismatched").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains(&right) && error.contains(&wrong), "the error names both digests: {error}");
    assert!(refused.get("compile_ms").is_none_or(|ms| ms.is_null()), "refused before compiling: {refused}");

    // The pinned plugin's file replaced by another: refused, and the version
    // that matches the pin keeps running.
    install(dir.path(), "pinned", wasm::PASS_FILTER, None);
    let mut now = plugin(&h, "pinned").await;
    for _ in 0..100 {
        if now["reload_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = plugin(&h, "pinned").await;
    }
    let reload_error = now["reload_error"].as_str().unwrap_or_default();
    assert!(reload_error.contains(&wrong) && reload_error.contains(&right), "{now}");
    assert_eq!(now["status"], "active", "the pinned version keeps running: {now}");

    // A malformed pin is a settings error naming the key.
    set_settings(dir.path(), "mismatched", "sha256 = \"abc\"\n");
    let bad = status_becomes(&h, "mismatched", "failed").await;
    for _ in 0..50 {
        if plugin(&h, "mismatched").await["error"].as_str().is_some_and(|e| e.contains("`sha256`")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad_now = plugin(&h, "mismatched").await;
    assert!(
        bad_now["error"].as_str().is_some_and(|e| e.contains("`sha256` must be 64 hexadecimal")),
        "{bad_now} ({bad})"
    );
    play_contents(&h, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_digest_refuses_a_plugin_that_pins_nothing() {
    let dir = TempDir::new("require-digest");
    let right = digest_of(wasm::NULL_STRIP);
    install(dir.path(), "unpinned", wasm::NULL_STRIP, None);
    install(dir.path(), "pinned", wasm::NULL_STRIP, Some(&format!("sha256 = \"{right}\"\n")));
    let d = dir.path().to_path_buf();
    let h = Harness::start(SimConfig::default(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.plugins.plugins_require_digest = true;
    })
    .await;
    assert_eq!(plugin(&h, "pinned").await["status"], "active");
    let refused = plugin(&h, "unpinned").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains("--plugins-require-digest") && error.contains(&right), "{error}");
    // Pinning it (a settings change) loads it.
    set_settings(dir.path(), "unpinned", &format!("sha256 = \"{right}\"\n"));
    status_becomes(&h, "unpinned", "active").await;
}
