//! Builds every example plugin (`plugins/*`) and test plugin
//! (`tests/plugins/*`) for `wasm32-wasip2`, and writes `pub const NAME: &str
//! = "/path/to/name.wasm";` for each, so tests name real components and
//! `cargo test` needs no other step. (The same trick as wasmtime's
//! test-programs artifacts.)

use std::path::{Path, PathBuf};
use std::process::Command;

/// What plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut crates = Vec::new();
    for dir in ["plugins", "tests/plugins"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("Cargo.toml").exists())
            .collect();
        found.sort();
        crates.extend(found);
    }
    for watched in ["plugins", "tests/plugins", "plugin-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    ensure_target_installed(WASM_TARGET);
    let target_dir = out.join("wasm");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["build", "--target", WASM_TARGET, "--profile", "plugin", "--target-dir"])
        .arg(&target_dir)
        // The outer build's flags are for the host target.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Plain rustc: under `cargo clippy` the wrapper would lint (and
        // rebuild) the plugins a second time; they are linted natively as
        // workspace members.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER");
    for c in &crates {
        cmd.arg("-p").arg(package_name(c));
    }
    let status = cmd.status().expect("run cargo for the wasm plugins");
    assert!(
        status.success(),
        "building the plugins for {WASM_TARGET} failed: see the compiler's errors above"
    );
    let mut consts = String::new();
    for c in &crates {
        let name = package_name(c);
        let wasm = target_dir.join("wasm32-wasip2/plugin").join(format!("{}.wasm", name.replace('-', "_")));
        assert!(wasm.exists(), "no {}", wasm.display());
        let konst = name.to_uppercase().replace('-', "_");
        consts.push_str(&format!("pub const {konst}: &str = {:?};\n", wasm.display().to_string()));
    }
    std::fs::write(out.join("wasm.rs"), consts).unwrap();
}

/// Adds `target` to the toolchain that builds us when its standard library
/// is missing. rustup adds the targets `rust-toolchain.toml` lists only
/// when it installs the toolchain itself; a toolchain that came from a
/// link or an image has none of them, and the plugin build would stop
/// with "can't find crate for `core`".
fn ensure_target_installed(target: &str) {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Some(sysroot) = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    else {
        return;
    };
    if sysroot.join("lib/rustlib").join(target).is_dir() {
        return;
    }
    // rustup keeps each toolchain in a directory of its name.
    let Some(toolchain) = sysroot.file_name().and_then(|n| n.to_str()) else { return };
    println!(
        "cargo:warning=the {target} target is not installed for {toolchain}: `rustup target add {target}`"
    );
    let added = Command::new("rustup")
        .args(["target", "add", "--toolchain", toolchain, target])
        .env_remove("RUSTUP_TOOLCHAIN")
        .status();
    match added {
        Ok(status) if status.success() => println!("cargo:warning=added the {target} target to {toolchain}"),
        Ok(status) => panic!("`rustup target add --toolchain {toolchain} {target}` failed ({status})"),
        Err(e) => panic!(
            "the {target} target is missing and rustup could not be run ({e}): install it for {toolchain}"
        ),
    }
}

fn package_name(dir: &Path) -> String {
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    toml.lines()
        .find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
        .unwrap_or_else(|| panic!("no package name in {}", dir.display()))
        .to_owned()
}
