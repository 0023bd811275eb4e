//! `--plugin-compiler tiered`: a component the compile cache does not know
//! is compiled by Winch (a 12–18 MB Python or JavaScript component in a
//! second or two instead of eight to ten) and goes live at once; Cranelift
//! compiles it again in the background (storing it in the cache, so the
//! next load is optimised from the start), and the optimised plugin
//! replaces the Winch one in the set. Filters switch at their next batch
//! boundary and selectors at their next call, as on any reload; the
//! replacement starts with fresh instances and counters.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::{info, warn};

use super::host::{PluginFiles, PluginHost, PluginSet};

/// Compiles `file` (as loaded by Winch, `fingerprint`) with Cranelift and
/// swaps it in, unless the file changed meanwhile or acemux is stopping.
pub(super) async fn recompile(
    host: Arc<PluginHost>,
    file: PathBuf,
    files: PluginFiles,
    fingerprint: [u8; 32],
) {
    let started = Instant::now();
    let load = host.load_by(Some(host.runtime.clone()), file.clone(), files, fingerprint);
    let optimised = tokio::select! {
        loaded = load => loaded,
        _ = host.stopping.cancelled() => return,
    };
    let optimised = match optimised {
        Ok(plugin) => Arc::new(plugin),
        Err(e) => {
            warn!(file = %file.display(), error = %format!("{e:#}"), "Cranelift could not recompile a plugin Winch loaded; it stays on Winch");
            return;
        }
    };
    let swapped = host.swap_in(&file, fingerprint, optimised.clone()).await;
    if swapped {
        info!(
            plugin = &*optimised.name,
            compile_ms = optimised.compile_time.as_millis() as u64,
            after_ms = started.elapsed().as_millis() as u64,
            "plugin recompiled by Cranelift and swapped in"
        );
    }
}

impl PluginHost {
    /// Replaces the plugin of `file` loaded from `fingerprint` by `next`;
    /// false if that version is no longer in the set.
    async fn swap_in(&self, file: &PathBuf, fingerprint: [u8; 32], next: Arc<super::plugin::Plugin>) -> bool {
        let _one_at_a_time = self.scanning.lock().await;
        let current = self.current();
        let Some(at) = current.plugins.iter().position(|p| &p.file == file && p.fingerprint == fingerprint)
        else {
            return false;
        };
        let mut plugins = current.plugins.clone();
        plugins[at] = next;
        self.set.store(Arc::new(PluginSet { plugins }));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.sync_workers();
        true
    }
}
