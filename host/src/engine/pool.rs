//! The engines acemux knows, their health and their load.
//!
//! Load is counted here and nowhere else: a stream counts on its engine from
//! the moment the engine is chosen ([`EngineLease`], "pending") until its
//! session ends, so streams starting at the same instant cannot all land on
//! the last free slot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::settings::EngineSetting;

use super::select::{EngineSelector, SelectError, SelectRequest, Selection};

/// One engine and its live counters.
#[derive(Debug)]
pub struct Engine {
    /// Distinct for every engine the pool ever held (see [`EngineView::serial`]).
    serial: u64,
    /// `host:port`; unique in the pool.
    pub id: String,
    pub host: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub container_id: Option<String>,
    /// Port-forwarded engines have more peers and are preferred.
    pub forwarded: bool,
    /// Came from the orchestrator (and goes when it is no longer listed).
    pub discovered: bool,
    /// Streams holding a lease here: starting plus running.
    load: AtomicUsize,
    /// Of those, streams whose engine start has not succeeded yet.
    pending: AtomicUsize,
    /// Streams other acemux instances run here (from Redis; 0 alone).
    load_elsewhere: AtomicUsize,
    healthy: AtomicBool,
    /// Failed probes in a row.
    probe_failures: AtomicUsize,
    draining: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// The label that marks a port-forwarded engine.
pub const FORWARDED_LABEL: &str = "acestream.forwarded";

/// A read-only view of an engine for selectors and status.
#[derive(Debug, Clone, Serialize)]
pub struct EngineView {
    /// Which engine this is a view of: distinct for every engine the pool
    /// ever held, and one serial's id, host, port, labels, forwarded and
    /// capacity (the pool's) never change (so a list of serials stands for
    /// those fields).
    #[serde(skip)]
    pub serial: u64,
    pub id: String,
    pub host: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub container_id: Option<String>,
    pub forwarded: bool,
    pub healthy: bool,
    pub draining: bool,
    /// Streams that hold this engine (pending included), over every
    /// instance of a cluster.
    pub load: usize,
    /// Of those, streams other acemux instances run (0 without a cluster).
    pub load_elsewhere: usize,
    pub pending: usize,
    pub capacity: usize,
    pub last_error: Option<String>,
}

impl Engine {
    fn new(setting: &EngineSetting, discovered: bool) -> Self {
        static SERIALS: AtomicU64 = AtomicU64::new(1);
        Self {
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            id: format!("{}:{}", setting.host, setting.port),
            host: setting.host.clone(),
            port: setting.port,
            labels: setting.labels.clone(),
            container_id: setting.container_id.clone(),
            forwarded: setting.labels.get(FORWARDED_LABEL).is_some_and(|v| v.eq_ignore_ascii_case("true")),
            discovered,
            load: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            load_elsewhere: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            probe_failures: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    /// Records a probe: healthy again at once on success, unhealthy after
    /// `threshold` failures in a row. Returns true when health changed.
    pub fn record_probe(&self, result: Result<(), String>, threshold: u32) -> bool {
        let was = self.is_healthy();
        match result {
            Ok(()) => {
                self.probe_failures.store(0, Ordering::Relaxed);
                self.healthy.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                let failures = self.probe_failures.fetch_add(1, Ordering::Relaxed) + 1;
                *self.last_error.lock() = Some(e);
                if failures >= threshold as usize {
                    self.healthy.store(false, Ordering::Relaxed);
                }
            }
        }
        was != self.is_healthy()
    }

    /// `http://host:port`, the base of every engine URL.
    pub fn base_url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    /// Records how many streams other instances run on this engine.
    pub fn set_others_load(&self, streams: usize) {
        self.load_elsewhere.store(streams, Ordering::Relaxed);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records the outcome of a probe or a call.
    pub fn set_health(&self, healthy: bool, error: Option<String>) {
        self.healthy.store(healthy, Ordering::Relaxed);
        if error.is_some() {
            *self.last_error.lock() = error;
        }
    }

    /// Takes one slot if the engine is below `capacity`.
    fn try_take(&self, capacity: usize) -> bool {
        self.load
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < capacity).then_some(n + 1))
            .is_ok()
    }

    fn view(&self, capacity: usize) -> EngineView {
        EngineView {
            serial: self.serial,
            id: self.id.clone(),
            host: self.host.clone(),
            port: self.port,
            labels: self.labels.clone(),
            container_id: self.container_id.clone(),
            forwarded: self.forwarded,
            healthy: self.is_healthy(),
            draining: self.draining.load(Ordering::Relaxed),
            load: self.load.load(Ordering::Relaxed) + self.load_elsewhere.load(Ordering::Relaxed),
            load_elsewhere: self.load_elsewhere.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            capacity,
            last_error: self.last_error.lock().clone(),
        }
    }
}

/// A stream's hold on one engine slot; dropping it frees the slot.
#[derive(Debug)]
pub struct EngineLease {
    engine: Arc<Engine>,
    pending: bool,
}

impl EngineLease {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The engine accepted the start: the slot is no longer pending.
    pub fn mark_started(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.engine.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for EngineLease {
    fn drop(&mut self) {
        self.mark_started();
        self.engine.load.fetch_sub(1, Ordering::AcqRel);
    }
}

/// All known engines.
#[derive(Debug)]
pub struct EnginePool {
    engines: RwLock<Vec<Arc<Engine>>>,
    capacity: usize,
}

/// How often selection is retried when a chosen engine filled up between
/// looking and taking.
const SELECT_ATTEMPTS: usize = 8;

impl EnginePool {
    pub fn new(settings: &[EngineSetting], capacity: usize) -> Self {
        let engines = settings.iter().map(|s| Arc::new(Engine::new(s, false))).collect();
        Self { engines: RwLock::new(engines), capacity }
    }

    /// Brings the discovered engines in line with the orchestrator's list:
    /// new ones are added, listed ones un-drained, unlisted ones drained (no
    /// new streams; running ones finish) and removed once idle. Static
    /// engines are left alone. Returns (added, drained).
    pub fn sync_discovered(&self, listed: &[EngineSetting]) -> (usize, usize) {
        let mut engines = self.engines.write();
        let (mut added, mut drained) = (0, 0);
        for setting in listed {
            let id = format!("{}:{}", setting.host, setting.port);
            match engines.iter().find(|e| e.id == id) {
                Some(e) => {
                    if e.draining.swap(false, Ordering::Relaxed) {
                        tracing::info!(engine = %id, "engine listed again; no longer draining");
                    }
                }
                None => {
                    tracing::info!(engine = %id, "engine discovered");
                    engines.push(Arc::new(Engine::new(setting, true)));
                    added += 1;
                }
            }
        }
        for e in engines.iter().filter(|e| e.discovered) {
            let listed = listed.iter().any(|s| s.host == e.host && s.port == e.port);
            if !listed && !e.draining.swap(true, Ordering::Relaxed) {
                tracing::info!(engine = %e.id, load = e.load(), "engine no longer listed; draining");
                drained += 1;
            }
        }
        engines.retain(|e| !(e.discovered && e.is_draining() && e.load() == 0));
        (added, drained)
    }

    /// Streams one engine may carry.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn engines(&self) -> Vec<Arc<Engine>> {
        self.engines.read().clone()
    }

    pub fn views(&self) -> Vec<EngineView> {
        self.engines.read().iter().map(|e| e.view(self.capacity)).collect()
    }

    /// Chooses an engine for a new stream and takes a slot on it, leaving
    /// out `exclude` (engines that already failed this stream).
    /// Nothing is locked while the selector runs.
    pub async fn reserve(
        &self,
        selector: &dyn EngineSelector,
        request: &SelectRequest,
        exclude: &[String],
    ) -> Result<EngineLease, SelectError> {
        for _ in 0..SELECT_ATTEMPTS {
            let engines = self.engines();
            let usable: Vec<&Arc<Engine>> = engines
                .iter()
                .filter(|e| e.is_healthy() && !e.is_draining())
                .filter(|e| !exclude.contains(&e.id))
                .collect();
            if usable.is_empty() {
                return Err(SelectError::NoEngines);
            }
            let candidates: Vec<EngineView> =
                usable.iter().map(|e| e.view(self.capacity)).filter(|v| v.load < self.capacity).collect();
            if candidates.is_empty() {
                return Err(SelectError::AtCapacity(self.capacity));
            }
            let chosen_id = match selector.select(request, &candidates).await {
                Selection::Engine(id) => id,
                Selection::Refuse(reason) => return Err(SelectError::Refused(reason)),
                Selection::NoOpinion => return Err(SelectError::NoEngines),
            };
            let Some(engine) = usable.iter().find(|e| e.id == chosen_id) else {
                return Err(SelectError::UnknownEngine(chosen_id));
            };
            if engine.try_take(self.capacity) {
                engine.pending.fetch_add(1, Ordering::AcqRel);
                return Ok(EngineLease { engine: Arc::clone(engine), pending: true });
            }
        }
        Err(SelectError::AtCapacity(self.capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    use crate::engine::BuiltinSelector;

    fn pool(n: usize, capacity: usize) -> EnginePool {
        let settings: Vec<EngineSetting> =
            (0..n).map(|i| EngineSetting::new("127.0.0.1", 7000 + i as u16)).collect();
        EnginePool::new(&settings, capacity)
    }

    /// The built-in selector answers at once.
    fn reserve(p: &EnginePool, exclude: &[String]) -> Result<EngineLease, SelectError> {
        p.reserve(&BuiltinSelector, &SelectRequest::default(), exclude)
            .now_or_never()
            .expect("the built-in selector never waits")
    }

    #[test]
    fn spreads_by_load_and_respects_capacity() {
        let p = pool(2, 2);
        let leases: Vec<EngineLease> = (0..4).map(|_| reserve(&p, &[]).unwrap()).collect();
        let on_first = leases.iter().filter(|l| l.engine().port == 7000).count();
        assert_eq!(on_first, 2);
        assert_eq!(reserve(&p, &[]).unwrap_err(), SelectError::AtCapacity(2));
        drop(leases);
        assert!(p.views().iter().all(|v| v.load == 0 && v.pending == 0));
    }

    #[test]
    fn skips_unhealthy_and_excluded() {
        let p = pool(2, 3);
        p.engines()[0].set_health(false, Some("down".into()));
        let l = reserve(&p, &[]).unwrap();
        assert_eq!(l.engine().port, 7001);
        let err = reserve(&p, &["127.0.0.1:7001".into()]).unwrap_err();
        assert_eq!(err, SelectError::NoEngines);
    }

    #[test]
    fn concurrent_reservations_never_exceed_capacity() {
        let p = Arc::new(pool(3, 2));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || reserve(&p, &[]).ok())
            })
            .collect();
        let leases: Vec<EngineLease> = threads.into_iter().filter_map(|t| t.join().unwrap()).collect();
        assert_eq!(leases.len(), 6);
        assert!(p.views().iter().all(|v| v.load == 2));
    }

    #[test]
    fn probes_mark_unhealthy_after_threshold_and_recover_at_once() {
        let p = pool(1, 3);
        let e = &p.engines()[0];
        assert!(!e.record_probe(Err("refused".into()), 2));
        assert!(e.is_healthy());
        assert!(e.record_probe(Err("refused".into()), 2));
        assert!(!e.is_healthy());
        assert!(e.record_probe(Ok(()), 2));
        assert!(e.is_healthy());
    }

    #[test]
    fn discovered_engines_drain_then_go() {
        let p = pool(1, 3);
        let listed = vec![EngineSetting::new("10.0.0.1", 6878), EngineSetting::new("10.0.0.2", 6878)];
        assert_eq!(p.sync_discovered(&listed), (2, 0));
        let lease = reserve(&p, &["127.0.0.1:7000".into()]).unwrap();
        let busy = lease.engine().id.clone();
        let remaining: Vec<_> =
            listed.iter().filter(|s| format!("{}:{}", s.host, s.port) != busy).cloned().collect();
        assert_eq!(p.sync_discovered(&[]), (0, 2));
        // The idle one is gone; the busy one drains; the static one stays.
        let ids: Vec<String> = p.views().iter().map(|v| v.id.clone()).collect();
        assert_eq!(ids, vec!["127.0.0.1:7000".to_string(), busy.clone()]);
        assert!(p.views()[1].draining);
        drop(lease);
        p.sync_discovered(&remaining);
        assert!(!p.views().iter().any(|v| v.id == busy));
    }
}
