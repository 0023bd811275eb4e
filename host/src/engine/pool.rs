//! The engines acemux knows, their health and their load.
//!
//! Load is counted here and nowhere else: a stream counts on its engine from
//! the moment the engine is chosen ([`EngineLease`], "pending") until its
//! session ends, so streams starting at the same instant cannot all land on
//! the last free slot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::config::EngineSetting;

use super::select::{EngineSelector, SelectError, SelectRequest, Selection};

/// One engine and its live counters.
#[derive(Debug)]
pub struct Engine {
    /// `host:port`; unique in the pool.
    pub id: String,
    pub host: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub container_id: Option<String>,
    /// Port-forwarded engines have more peers and are preferred.
    pub forwarded: bool,
    /// Streams holding a lease here: starting plus running.
    load: AtomicUsize,
    /// Of those, streams whose engine start has not succeeded yet.
    pending: AtomicUsize,
    healthy: AtomicBool,
    draining: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A read-only view of an engine for selectors and status.
#[derive(Debug, Clone, Serialize)]
pub struct EngineView {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub container_id: Option<String>,
    pub forwarded: bool,
    pub healthy: bool,
    pub draining: bool,
    /// Streams that hold this engine (pending included).
    pub load: usize,
    pub pending: usize,
    pub capacity: usize,
    pub last_error: Option<String>,
}

impl Engine {
    fn new(setting: &EngineSetting) -> Self {
        Self {
            id: format!("{}:{}", setting.host, setting.port),
            host: setting.host.clone(),
            port: setting.port,
            labels: BTreeMap::new(),
            container_id: None,
            forwarded: false,
            load: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// `http://host:port`, the base of every engine URL.
    pub fn base_url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
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
            id: self.id.clone(),
            host: self.host.clone(),
            port: self.port,
            labels: self.labels.clone(),
            container_id: self.container_id.clone(),
            forwarded: self.forwarded,
            healthy: self.is_healthy(),
            draining: self.draining.load(Ordering::Relaxed),
            load: self.load.load(Ordering::Relaxed),
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
        let engines = settings.iter().map(|s| Arc::new(Engine::new(s))).collect();
        Self { engines: RwLock::new(engines), capacity }
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
    pub fn reserve(
        &self,
        selector: &dyn EngineSelector,
        request: &SelectRequest,
        exclude: &[String],
    ) -> Result<EngineLease, SelectError> {
        for _ in 0..SELECT_ATTEMPTS {
            let engines = self.engines();
            let usable: Vec<&Arc<Engine>> = engines
                .iter()
                .filter(|e| e.is_healthy() && !e.draining.load(Ordering::Relaxed))
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
            let chosen_id = match selector.select(request, &candidates) {
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
    use crate::engine::BuiltinSelector;

    fn pool(n: usize, capacity: usize) -> EnginePool {
        let settings: Vec<EngineSetting> =
            (0..n).map(|i| EngineSetting { host: "127.0.0.1".into(), port: 7000 + i as u16 }).collect();
        EnginePool::new(&settings, capacity)
    }

    fn request() -> SelectRequest {
        SelectRequest::default()
    }

    #[test]
    fn spreads_by_load_and_respects_capacity() {
        let p = pool(2, 2);
        let leases: Vec<EngineLease> =
            (0..4).map(|_| p.reserve(&BuiltinSelector, &request(), &[]).unwrap()).collect();
        let on_first = leases.iter().filter(|l| l.engine().port == 7000).count();
        assert_eq!(on_first, 2);
        assert_eq!(p.reserve(&BuiltinSelector, &request(), &[]).unwrap_err(), SelectError::AtCapacity(2));
        drop(leases);
        assert!(p.views().iter().all(|v| v.load == 0 && v.pending == 0));
    }

    #[test]
    fn skips_unhealthy_and_excluded() {
        let p = pool(2, 3);
        p.engines()[0].set_health(false, Some("down".into()));
        let l = p.reserve(&BuiltinSelector, &request(), &[]).unwrap();
        assert_eq!(l.engine().port, 7001);
        let err = p.reserve(&BuiltinSelector, &request(), &["127.0.0.1:7001".into()]).unwrap_err();
        assert_eq!(err, SelectError::NoEngines);
    }

    #[test]
    fn concurrent_reservations_never_exceed_capacity() {
        let p = Arc::new(pool(3, 2));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || p.reserve(&BuiltinSelector, &request(), &[]).ok())
            })
            .collect();
        let leases: Vec<EngineLease> = threads.into_iter().filter_map(|t| t.join().unwrap()).collect();
        assert_eq!(leases.len(), 6);
        assert!(p.views().iter().all(|v| v.load == 2));
    }
}
