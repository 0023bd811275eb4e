//! Compiled plugins kept on disk, so known code is live at once: after a
//! restart, a settings change, or the same file dropped in again. An 18 MB
//! Python component takes seconds to compile on a small machine; loading its
//! compiled form takes milliseconds.
//!
//! An entry is native code that wasmtime loads without checking it, so the
//! cache is acemux's own directory (created `0700`), never the plugin
//! directory, whose `.wasm` files are untrusted. Entries are named by the
//! SHA-256 of the component and wasmtime's compatibility hash (its version
//! and every setting that changes generated code): a different component or
//! another acemux build never matches. An entry that does not load is
//! compiled again and replaced. The newest [`KEPT`] entries are kept.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries kept; older ones (by last use) are removed.
const KEPT: usize = 64;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compiled {
    /// Compiled now.
    Fresh,
    /// Loaded from the cache.
    Cache,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// Creates the directory (owner only) if missing.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the plugin compile cache {}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// The component compiled from `bytes`: from the cache when an entry
    /// loads, else compiled (and stored; a failure to store only costs the
    /// next load its speed).
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Compiled)> {
        let entry = self.entry(engine, bytes);
        if entry.exists() {
            // SAFETY: `entry` is in acemux's own cache directory (owner
            // only, never the plugin directory) and was written by
            // `Component::serialize` of this wasmtime build (its name
            // carries the compatibility hash); wasmtime checks its header
            // and refuses an artifact from another version or config.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => {
                    touch(&entry);
                    return Ok((component, Compiled::Cache));
                }
                Err(e) => {
                    tracing::warn!(entry = %entry.display(), error = %e, "compiled plugin unusable; compiling again")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&entry, &component) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot store the compiled plugin");
        }
        Ok((component, Compiled::Fresh))
    }

    /// Whether an entry for `bytes` compiled by `engine` is kept.
    pub fn holds(&self, engine: &Engine, bytes: &[u8]) -> bool {
        self.entry(engine, bytes).exists()
    }

    fn entry(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut compatibility = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compatibility);
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{:016x}.cwasm", compatibility.finish()))
    }

    /// Written under a temporary name and renamed: a reader never sees half
    /// an entry.
    fn store(&self, entry: &Path, component: &Component) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let serialized = component.serialize().map_err(anyhow::Error::from)?;
        // Unique, so two loads of one component never write one file.
        let tmp = entry.with_extension(format!("tmp{:016x}", rand::random::<u64>()));
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(&serialized)?;
        file.sync_all()?;
        std::fs::rename(&tmp, entry)?;
        self.prune();
        Ok(())
    }

    /// Keeps the [`KEPT`] most recently used entries.
    fn prune(&self) {
        let Ok(read) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = read
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() <= KEPT {
            return;
        }
        entries.sort();
        for (_, old) in &entries[..entries.len() - KEPT] {
            let _ = std::fs::remove_file(old);
        }
    }
}

/// Marks an entry used now (what pruning goes by).
fn touch(entry: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(entry) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(epochs: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(epochs);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn known_code_comes_from_the_cache_and_a_bad_entry_is_compiled_again() {
        let dir = std::env::temp_dir().join(format!("acemux-cache-test-{}", rand::random::<u64>()));
        let cache = CompileCache::open(&dir).unwrap();
        let bytes = std::fs::read(acemux_test_artifacts::PASS_FILTER).unwrap();
        let e = engine(true);
        assert_eq!(cache.component(&e, &bytes).unwrap().1, Compiled::Fresh);
        assert_eq!(cache.component(&e, &bytes).unwrap().1, Compiled::Cache);
        // Another engine configuration generates other code: its own entry.
        assert_eq!(cache.component(&engine(false), &bytes).unwrap().1, Compiled::Fresh);
        // So does the other compiler (`--plugin-compiler`).
        let mut winch = wasmtime::Config::new();
        winch.wasm_component_model(true).epoch_interruption(true).strategy(wasmtime::Strategy::Winch);
        let winch = Engine::new(&winch).unwrap();
        assert_eq!(cache.component(&winch, &bytes).unwrap().1, Compiled::Fresh);
        assert_eq!(cache.component(&winch, &bytes).unwrap().1, Compiled::Cache);
        // A damaged entry is not trusted: compiled again, and replaced.
        let entry = cache.entry(&e, &bytes);
        std::fs::write(&entry, b"not a compiled component").unwrap();
        assert_eq!(cache.component(&e, &bytes).unwrap().1, Compiled::Fresh);
        assert_eq!(cache.component(&e, &bytes).unwrap().1, Compiled::Cache);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
