//! Hot reload: watches the plugin directory and rescans it when anything
//! changes (a file written, replaced by rename, or removed). Events are
//! debounced, and a slow periodic rescan covers anything the watcher
//! misses (e.g. the directory being recreated).

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::host::PluginHost;

/// Quiet time after the last change before a rescan.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Rescan even without watcher events this often.
const POLL: Duration = Duration::from_secs(10);

/// Rescans `host`'s directory on every change until `stop`.
pub async fn run(host: Arc<PluginHost>, stop: CancellationToken) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    // The watcher calls back on its own thread; a full queue already means
    // "rescan", so dropping the signal is fine.
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.try_send(());
        }
    });
    let _watcher = match watcher {
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
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = rx.recv() => {
                // Let a burst of writes and renames settle.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(DEBOUNCE) => break,
                        _ = rx.recv() => {}
                    }
                }
            }
            _ = tokio::time::sleep(POLL) => {}
        }
        host.scan().await;
    }
}
