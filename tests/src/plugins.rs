//! Plugin helpers for end-to-end tests: install a built component into a
//! running acemux's plugin directory, and read `/plugins`.

use std::path::Path;

use serde_json::Value;

use crate::Harness;

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
