//! The live plugin set and everything that changes it.
//!
//! A scan of the plugin directory compiles new and changed `.wasm` files
//! (off the async threads), keeps the previous version of any file that
//! fails to load, drops removed files, and swaps the new set in atomically.
//! Streams notice the swap through [`PluginHost::generation`] and rebuild
//! their filter chain at the next batch.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::bindings::Event;
use super::cache::CompileCache;
use super::host_settings::PluginCompiler;
use super::metrics::MetricsRegistry;
use super::plugin::Plugin;
use super::runtime::Runtime;
use super::settings::PluginSettings;
use super::signature::{MAX_SIGNATURE_BYTES, Signer, check_signature, signature_file};

/// The plugins in effect, in call order (`order`, then name).
#[derive(Default)]
pub struct PluginSet {
    pub plugins: Vec<Arc<Plugin>>,
}

/// A file that could not be loaded (the previous version, if any, runs on).
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub error: String,
    pub at: SystemTime,
    pub fingerprint: [u8; 32],
}

/// What one plugin is made of on disk: its component, its settings and
/// its signature, each as read in one scan.
#[derive(Clone)]
pub(super) struct PluginFiles {
    pub bytes: Vec<u8>,
    pub settings: Option<String>,
    pub signature: Option<String>,
}

/// An event plugin's queue and worker.
struct EventWorker {
    plugin: Arc<Plugin>,
    queue: mpsc::Sender<Arc<Event>>,
    stop: CancellationToken,
}

/// See the module docs.
pub struct PluginHost {
    pub runtime: Arc<Runtime>,
    /// With `--plugin-compiler tiered`: Winch, for code the cache does not
    /// know yet (see [`super::tiering`]).
    pub(super) quick: Option<Arc<Runtime>>,
    /// Cancelled at shutdown: background recompilations give up.
    pub(super) stopping: CancellationToken,
    pub dir: PathBuf,
    pub(super) set: ArcSwap<PluginSet>,
    pub(super) generation: AtomicU64,
    failures: Mutex<BTreeMap<PathBuf, LoadFailure>>,
    workers: Mutex<HashMap<PathBuf, EventWorker>>,
    /// Owns the event workers.
    tasks: TaskTracker,
    /// Serialises scans (the watcher and an explicit reload may overlap).
    pub(super) scanning: tokio::sync::Mutex<()>,
    /// Files being compiled now, and since when.
    loading: Mutex<BTreeMap<PathBuf, SystemTime>>,
    /// Refuse plugins whose settings pin no digest.
    require_digest: bool,
    /// Keys one of which must have signed each plugin (none: unchecked).
    signers: Vec<Signer>,
    /// The metrics plugins define, by plugin name (kept across reloads).
    pub metrics: Arc<MetricsRegistry>,
}

impl PluginHost {
    /// Plugins of `dir`, compiled components kept in `cache` when given.
    pub fn new(
        dir: PathBuf,
        cache: Option<CompileCache>,
        compiler: PluginCompiler,
        require_digest: bool,
        signers: Vec<Signer>,
    ) -> anyhow::Result<Arc<Self>> {
        let quick = match compiler {
            PluginCompiler::Tiered => Some(Runtime::new(cache.clone(), PluginCompiler::Winch)?),
            _ => None,
        };
        Ok(Arc::new(Self {
            runtime: Runtime::new(cache, compiler)?,
            quick,
            stopping: CancellationToken::new(),
            dir,
            set: ArcSwap::from_pointee(PluginSet::default()),
            generation: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            workers: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            scanning: tokio::sync::Mutex::new(()),
            loading: Mutex::new(BTreeMap::new()),
            require_digest,
            signers,
            metrics: Arc::default(),
        }))
    }

    /// The set in effect.
    pub fn current(&self) -> Arc<PluginSet> {
        self.set.load_full()
    }

    /// Bumped on every swap.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn failures(&self) -> BTreeMap<PathBuf, LoadFailure> {
        self.failures.lock().clone()
    }

    /// Files being compiled now (`/plugins` shows them as `loading`).
    pub fn loading(&self) -> BTreeMap<PathBuf, SystemTime> {
        self.loading.lock().clone()
    }

    /// Brings the set in line with the directory. Returns true if it changed.
    pub async fn scan(self: &Arc<Self>) -> bool {
        let _one_at_a_time = self.scanning.lock().await;
        let dir = self.dir.clone();
        // File reads are blocking I/O: off the async threads.
        let read = tokio::task::spawn_blocking(move || {
            wasm_files(&dir).map(|files| {
                files
                    .into_iter()
                    .map(|f| {
                        let r = read_files(&f);
                        (f, r)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await;
        let entries = match read {
            Ok(Ok(entries)) => entries,
            Err(e) => {
                // The runtime is shutting down under the scan.
                warn!(error = %e, "plugin directory scan cancelled");
                return false;
            }
            Ok(Err(e)) => {
                warn!(dir = %self.dir.display(), error = %e, "cannot read the plugin directory");
                return false;
            }
        };
        let files: Vec<PathBuf> = entries.iter().map(|(f, _)| f.clone()).collect();
        let current = self.current();
        let mut next: Vec<Arc<Plugin>> = Vec::new();
        let mut changed = false;
        for (file, read) in entries {
            let file = &file;
            let old = current.plugins.iter().find(|p| &p.file == file).cloned();
            let files = match read {
                Ok(files) => files,
                Err(e) => {
                    // Half-written or vanished mid-scan: keep what runs.
                    warn!(file = %file.display(), error = %e, "cannot read plugin file");
                    next.extend(old);
                    continue;
                }
            };
            let fingerprint = fingerprint(&files);
            if old.as_ref().is_some_and(|p| p.fingerprint == fingerprint) {
                // The running version is back in place: a failed attempt
                // to replace it is no longer the file's state.
                if self.failures.lock().remove(file).is_some() {
                    info!(file = %file.display(), "plugin file restored to the running version");
                }
                next.extend(old);
                continue;
            }
            if self.failures.lock().get(file).is_some_and(|f| f.fingerprint == fingerprint) {
                next.extend(old);
                continue;
            }
            self.loading.lock().insert(file.clone(), SystemTime::now());
            // Kept for a Cranelift recompilation of code Winch loaded.
            let source = self.quick.is_some().then(|| files.clone());
            let loaded = self.load(file.clone(), files, fingerprint).await;
            self.loading.lock().remove(file);
            match loaded {
                Ok(plugin) => {
                    info!(
                        plugin = &*plugin.name,
                        version = %plugin.version,
                        capabilities = ?plugin.capabilities,
                        replaced = old.is_some(),
                        compiled = ?plugin.compiled,
                        compile_ms = plugin.compile_time.as_millis() as u64,
                        "plugin loaded"
                    );
                    self.failures.lock().remove(file);
                    if let Some(files) = source.filter(|_| plugin.compiler() == PluginCompiler::Winch) {
                        let host = self.clone();
                        let file = file.clone();
                        self.tasks.spawn(async move {
                            super::tiering::recompile(host, file, files, fingerprint).await;
                        });
                    }
                    next.push(Arc::new(plugin));
                    changed = true;
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    warn!(file = %file.display(), error = %error, kept_previous = old.is_some(), "plugin refused");
                    self.failures
                        .lock()
                        .insert(file.clone(), LoadFailure { error, at: SystemTime::now(), fingerprint });
                    next.extend(old);
                }
            }
        }
        for gone in current.plugins.iter().filter(|p| !files.contains(&p.file)) {
            info!(plugin = &*gone.name, "plugin removed");
            changed = true;
        }
        self.failures.lock().retain(|f, _| files.contains(f));
        if changed {
            next.sort_by(|a, b| a.settings.order.cmp(&b.settings.order).then_with(|| a.name.cmp(&b.name)));
            // Metrics of plugins gone go with them (a reload keeps them).
            self.metrics.retain(|name| next.iter().any(|p| &*p.name == name));
            self.set.store(Arc::new(PluginSet { plugins: next }));
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.sync_workers();
        }
        changed
    }

    /// Compiles (or loads from the cache) and instantiates once. With
    /// `tiered`, code the cache does not hold compiled by Cranelift is
    /// compiled by Winch.
    async fn load(&self, file: PathBuf, files: PluginFiles, fingerprint: [u8; 32]) -> anyhow::Result<Plugin> {
        self.load_by(None, file, files, fingerprint).await
    }

    /// [`PluginHost::load`] by `runtime` when given.
    pub(super) async fn load_by(
        &self,
        runtime: Option<Arc<Runtime>>,
        file: PathBuf,
        files: PluginFiles,
        fingerprint: [u8; 32],
    ) -> anyhow::Result<Plugin> {
        let PluginFiles { bytes, settings: settings_text, signature } = files;
        let settings = match &settings_text {
            Some(text) => PluginSettings::parse(text)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", file.with_extension("toml").display()))?,
            None => PluginSettings::default(),
        };
        check_digest(&file, &bytes, settings.sha256.as_deref(), self.require_digest)?;
        let signed_by = check_signature(&file, &bytes, signature.as_deref(), &self.signers)?;
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_owned();
        let metrics = self.metrics.scope(&Arc::from(name.as_str()), settings.max_series);
        let (main, quick) = (self.runtime.clone(), self.quick.clone());
        // Compilation (and the cache lookup) is CPU-heavy or blocking:
        // never on the async threads.
        let plugin = tokio::task::spawn_blocking(move || {
            let runtime = match (runtime, quick) {
                (Some(runtime), _) => runtime,
                (None, Some(quick)) if !main.has_compiled(&bytes) => quick,
                (None, _) => main,
            };
            Plugin::compile(&runtime, &name, file, &bytes, settings, fingerprint, metrics)
        })
        .await??;
        plugin.try_instantiate().await?;
        let mut plugin = plugin;
        plugin.signed_by = signed_by;
        Ok(plugin)
    }

    /// Starts a worker for every event plugin in the set, stops the others.
    pub(super) fn sync_workers(&self) {
        let set = self.current();
        let mut workers = self.workers.lock();
        workers.retain(|file, w| {
            let keep = set.plugins.iter().any(|p| &p.file == file && Arc::ptr_eq(p, &w.plugin));
            if !keep {
                w.stop.cancel();
            }
            keep
        });
        for plugin in set.plugins.iter().filter(|p| p.capabilities.events) {
            if workers.contains_key(&plugin.file) {
                continue;
            }
            let (queue, rx) = mpsc::channel(plugin.settings.event_queue);
            let stop = CancellationToken::new();
            self.tasks.spawn(event_worker(plugin.clone(), rx, stop.clone()));
            workers.insert(plugin.file.clone(), EventWorker { plugin: plugin.clone(), queue, stop });
        }
    }

    /// Queues an event for every active event plugin; a full queue drops
    /// it for that plugin (counted).
    pub fn dispatch(&self, event: Event) {
        let event = Arc::new(event);
        for w in self.workers.lock().values() {
            if w.plugin.is_active() && w.queue.try_send(event.clone()).is_err() {
                w.plugin.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops the event workers (after they drain what is queued).
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        for w in self.workers.lock().drain().map(|(_, w)| w) {
            drop(w.queue);
            w.stop.cancel();
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Delivers one plugin's events in order, off the stream path; each call
/// is bounded by the plugin's time budget.
async fn event_worker(plugin: Arc<Plugin>, mut rx: mpsc::Receiver<Arc<Event>>, stop: CancellationToken) {
    let mut sink = match plugin.event_sink().await {
        Ok(s) => s,
        Err(e) => {
            warn!(plugin = &*plugin.name, error = %e, "cannot start event delivery");
            return;
        }
    };
    loop {
        let event = tokio::select! {
            e = rx.recv() => match e { Some(e) => e, None => return },
            _ = stop.cancelled() => return,
        };
        // Failures are counted (and logged) by the plugin's accounting.
        let _ = sink.deliver(&event).await;
    }
}

fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn read_files(file: &Path) -> std::io::Result<PluginFiles> {
    let bytes = std::fs::read(file)?;
    let optional = |path: PathBuf| match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let settings = optional(file.with_extension("toml"))?;
    let signature_path = signature_file(file);
    // A signature is a few hundred bytes: anything far larger is not one.
    if std::fs::metadata(&signature_path).is_ok_and(|m| m.len() > MAX_SIGNATURE_BYTES) {
        return Err(std::io::Error::other(format!(
            "{} is over {MAX_SIGNATURE_BYTES} bytes: not a signature",
            signature_path.display()
        )));
    }
    let signature = optional(signature_path)?;
    Ok(PluginFiles { bytes, settings, signature })
}

/// Refuses, before anything is compiled, a file whose SHA-256 is not the
/// one its settings pin, or one without a pin when pins are required.
pub(super) fn check_digest(
    file: &Path,
    bytes: &[u8],
    pinned: Option<&str>,
    required: bool,
) -> anyhow::Result<()> {
    let actual: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    let toml = file.with_extension("toml");
    match pinned {
        Some(pinned) if pinned != actual => anyhow::bail!(
            "{}: its SHA-256 is {actual}, not the {pinned} that {} pins (refused before compiling)",
            file.display(),
            toml.display()
        ),
        Some(_) => Ok(()),
        None if required => anyhow::bail!(
            "{}: no `sha256` pinned in {} and --plugins-require-digest is on (this file's SHA-256 is {actual})",
            file.display(),
            toml.display()
        ),
        None => Ok(()),
    }
}

fn fingerprint(files: &PluginFiles) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&files.bytes);
    for part in [&files.settings, &files.signature] {
        h.update([0xFF]);
        h.update(part.as_deref().unwrap_or("").as_bytes());
    }
    h.finalize().into()
}
