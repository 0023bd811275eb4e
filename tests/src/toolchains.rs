//! Builds the example plugins written in Python and JavaScript with their
//! languages' own component toolchains, from a `wit/` directory (the
//! repository's, or a copy that claims another version of the contract).
//! A missing toolchain skips the test loudly, or fails it under
//! `ACEMUX_REQUIRE_PROGRAMS` (see `acemux_test_artifacts::programs`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use acemux_test_artifacts::programs;

/// How to get componentize-py.
pub const COMPONENTIZE_PY: &str = "pip install componentize-py==0.25.0";
/// How to get the JavaScript toolchain (pinned in `plugins/js/package-lock.json`).
pub const JS_TOOLCHAIN: &str = "npm install --prefix plugins/js";

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The repository's `wit/`.
pub fn wit() -> PathBuf {
    repo().join("wit")
}

/// Whether componentize-py can be run (else the test skips, loudly).
pub fn python_available(test: &str) -> bool {
    programs::available_by(test, &["componentize-py"], COMPONENTIZE_PY)
}

fn componentize_js() -> PathBuf {
    repo().join("plugins/js/node_modules/.bin/componentize-js")
}

/// Whether componentize-js is installed in `plugins/js` (else the test
/// skips, loudly).
pub fn js_available(test: &str) -> bool {
    programs::available_by(test, &["node"], "Node.js 18 or newer")
        && programs::available_at(test, &componentize_js(), JS_TOOLCHAIN)
}

/// Builds `plugins/python/<name>` for `world` against `wit` into
/// `out/<name>.wasm`.
pub async fn build_python(name: &str, world: &str, wit: &Path, out: &Path) -> PathBuf {
    let wasm = out.join(format!("{name}.wasm"));
    let mut command = tokio::process::Command::new("componentize-py");
    // `-p ../sdk`: the SDK's helpers (`acemux_metrics`) beside the app.
    command
        .arg("-d")
        .arg(wit)
        .args(["-w", world, "componentize", "app", "-p", ".", "-p", "../sdk", "-o"])
        .arg(&wasm);
    command.current_dir(repo().join("plugins/python").join(name));
    run(command, name).await;
    wasm
}

/// Builds the JavaScript plugin whose entry is `source/app.js` for `world`
/// against `wit` into `out/<name>.wasm`, with no WASI feature (acemux
/// grants none by default).
pub async fn build_js(name: &str, world: &str, wit: &Path, source: &Path, out: &Path) -> PathBuf {
    let wasm = out.join(format!("{name}.wasm"));
    let mut command = tokio::process::Command::new(componentize_js());
    command.arg(source.join("app.js")).arg("-w").arg(wit).args(["-n", world]);
    command.args(["-d", "stdio", "random", "clocks", "http", "fetch-event", "-o"]).arg(&wasm);
    // componentize-js resolves `../sdk/…` against its working directory,
    // as `npm run build` runs it: from the directory of the plugins.
    command.current_dir(source.parent().unwrap_or(source));
    run(command, name).await;
    wasm
}

/// The source directory of `plugins/js/<name>`.
pub fn js_source(name: &str) -> PathBuf {
    repo().join("plugins/js").join(name)
}

async fn run(mut command: tokio::process::Command, name: &str) {
    command.stdin(Stdio::null()).stdout(Stdio::null()).kill_on_drop(true);
    let built = tokio::time::timeout(std::time::Duration::from_secs(300), command.status()).await;
    let status =
        built.unwrap_or_else(|_| panic!("building {name} took over 5 minutes")).expect("the toolchain runs");
    assert!(status.success(), "the toolchain could not build {name}");
}

/// A copy of `wit/` in `dir` that claims `version` of the contract (what
/// a plugin built by an older or newer acemux's SDK was built against).
pub fn wit_of_version(dir: &Path, version: &str) -> PathBuf {
    let ours = std::fs::read_to_string(wit().join("plugin.wit")).unwrap();
    let theirs = ours.replace(
        &format!("package acemux:plugin@{};", acemux::plugins::contract::PACKAGE_VERSION),
        &format!("package acemux:plugin@{version};"),
    );
    assert_ne!(ours, theirs, "wit/plugin.wit names its package version");
    let out = dir.join(format!("wit-{version}"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("plugin.wit"), theirs).unwrap();
    out
}

/// Asserts that `acemux plugin check` (the author's bench) reads `wasm` as
/// acemux will: this contract version, `phase` among its phases, one
/// instance made.
pub async fn assert_bench_reads(wasm: &Path, phase: &str) {
    use acemux::plugins::host_settings::PluginCompiler;
    let report = acemux::plugins::harness::check_report(wasm, None, PluginCompiler::Winch).await.unwrap();
    assert!(
        report.contains(&format!("acemux:plugin@{}", acemux::plugins::contract::PACKAGE_VERSION))
            && report.contains(&format!("phases:      {phase}"))
            && report.contains("one instance:"),
        "{report}"
    );
}
