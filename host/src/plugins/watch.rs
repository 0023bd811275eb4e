//! Hot reload: watches the plugin directory and rescans it when anything
//! changes (a file written, replaced by rename, or removed). Changes are
//! debounced, and a slow periodic rescan covers anything the watcher
//! misses (e.g. the directory being recreated).
//!
//! The watch is registered before the first scan, so no change between the
//! two can be missed.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::host::PluginHost;

/// Quiet time after the last change before a rescan.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Rescan even without watcher events this often.
const POLL: Duration = Duration::from_secs(10);

/// A registered watch on the plugin directory.
pub struct DirWatch {
    /// Kept alive for as long as the watch should last.
    _watcher: Option<RecommendedWatcher>,
    changed: Arc<Notify>,
}

impl DirWatch {
    /// Starts watching `host`'s directory (or falls back to polling).
    pub fn new(host: &PluginHost) -> Self {
        let changed = Arc::new(Notify::new());
        let signal = changed.clone();
        // Called on the watcher's own thread; a stored permit is enough.
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reads (ours included: every scan opens the files) change nothing.
            if event.is_ok_and(|e| !e.kind.is_access() && !e.kind.is_other()) {
                signal.notify_one();
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(&host.dir, RecursiveMode::NonRecursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    warn!(dir = %host.dir.display(), error = %e, "cannot watch the plugin directory; polling");
                    None
                }
            },
            Err(e) => {
                warn!(error = %e, "no file watcher; polling the plugin directory");
                None
            }
        };
        Self { _watcher: watcher, changed }
    }

    /// Rescans `host`'s directory on every change until `stop`.
    pub async fn run(self, host: Arc<PluginHost>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.changed.notified() => {
                    // Let a burst of writes and renames settle.
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(DEBOUNCE) => break,
                            _ = self.changed.notified() => {}
                        }
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            host.scan().await;
        }
    }
}
