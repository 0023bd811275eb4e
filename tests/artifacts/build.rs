//! Builds every example plugin (`plugins/*`) and test plugin
//! (`tests/plugins/*`) for `wasm32-wasip2`, and writes `pub const NAME: &str
//! = "/path/to/name.wasm";` for each, so tests name real components and
//! `cargo test` needs no other step. (The same trick as wasmtime's
//! test-programs artifacts.)

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let target_dir = out.join("wasm");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin", "--target-dir"])
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
        "building the plugins for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
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

fn package_name(dir: &Path) -> String {
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    toml.lines()
        .find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
        .unwrap_or_else(|| panic!("no package name in {}", dir.display()))
        .to_owned()
}
