//! Signed plugin files: with `--plugin-signers`, a plugin loads only when
//! `<name>.wasm.minisig` is a signature of its file by a listed key —
//! made here by the real `minisign` tool, checked through `/plugins` of a
//! running acemux, before anything is compiled.

use std::path::Path;
use std::process::Command;

use ace_sim::SimConfig;
use acemux::plugins::signature::parse_signer;
use acemux_test_artifacts as wasm;
use acemux_test_artifacts::programs;
use acemux_tests::plugins::{install, play_contents, status_becomes};
use acemux_tests::{Harness, TempDir};

/// A passwordless key pair in `dir`: (`name.pub`, `name.sec`).
fn key_pair(dir: &Path, name: &str) -> (String, String) {
    let (public, secret) = (dir.join(format!("{name}.pub")), dir.join(format!("{name}.sec")));
    let made =
        Command::new("minisign").arg("-G").arg("-W").arg("-p").arg(&public).arg("-s").arg(&secret).output();
    assert!(made.unwrap().status.success(), "minisign -G");
    (public.display().to_string(), secret.display().to_string())
}

/// `minisign -Sm file` with `secret`: writes `file.minisig`.
fn sign(file: &Path, secret: &str) {
    let signed = Command::new("minisign").args(["-S", "-s", secret, "-m"]).arg(file).output().unwrap();
    assert!(signed.status.success(), "minisign -S: {}", String::from_utf8_lossy(&signed.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_files_signed_by_a_listed_key_load() {
    if !programs::available(
        "plugin_signatures::only_files_signed_by_a_listed_key_load",
        &["minisign"],
        "minisign",
    ) {
        return;
    }
    let keys = TempDir::new("signers");
    let (trusted_pub, trusted_sec) = key_pair(keys.path(), "trusted");
    let (_, stranger_sec) = key_pair(keys.path(), "stranger");
    let dir = TempDir::new("signed-plugins");
    let at = |name: &str| dir.path().join(format!("{name}.wasm"));
    install(dir.path(), "signed", wasm::NULL_STRIP, None);
    sign(&at("signed"), &trusted_sec);
    install(dir.path(), "unsigned", wasm::PASS_FILTER, None);
    install(dir.path(), "stranger", wasm::PASS_FILTER, None);
    sign(&at("stranger"), &stranger_sec);
    // Signed, then replaced by another file: the signature no longer fits.
    install(dir.path(), "tampered", wasm::PASS_FILTER, None);
    sign(&at("tampered"), &trusted_sec);
    install(dir.path(), "tampered", wasm::NULL_STRIP, None);

    // The key given as its file (the other way, `RW…`, is the same parser).
    let signer = parse_signer(&trusted_pub).unwrap();
    let key_line = signer.text.clone();
    let d = dir.path().to_path_buf();
    let h = Harness::start(SimConfig::default(), |s| {
        s.plugins.plugins_dir = acemux::values::OrNone(Some(d));
        s.plugins.plugin_signers = vec![signer];
    })
    .await;

    let signed = status_becomes(&h, "signed", "active").await;
    assert_eq!(signed["signed_by"], key_line.as_str(), "{signed}");
    for (name, why) in [
        ("unsigned", "no signature"),
        ("stranger", "does not verify with any of the 1 keys"),
        ("tampered", "does not verify"),
    ] {
        let refused = status_becomes(&h, name, "failed").await;
        let error = refused["error"].as_str().unwrap_or_default();
        assert!(error.contains(why) && error.contains(".wasm.minisig"), "{name}: {error}");
        assert!(
            refused.get("compile_ms").is_none_or(|ms| ms.is_null()),
            "refused before compiling: {refused}"
        );
    }
    play_contents(&h, 7, 1).await;

    // Signed again, for the file it is now: loads without a restart.
    sign(&at("tampered"), &trusted_sec);
    let fixed = status_becomes(&h, "tampered", "active").await;
    assert_eq!(fixed["signed_by"], key_line.as_str(), "{fixed}");
}

#[test]
fn a_signer_that_is_no_key_is_a_startup_error_naming_the_setting() {
    let parsed = acemux::config::Cli::load(["acemux", "--plugin-signers", "RWnot-a-key"]);
    let error = parsed.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("--plugin-signers") && error.contains("not a Minisign public key"), "{error}");
}
