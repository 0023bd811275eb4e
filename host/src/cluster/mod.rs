//! Several acemux instances sharing one engine pool, coordinated through
//! Redis (on only with `--redis-url`; alone, nothing here runs).
//!
//! Two promises hold across instances that hold only per process
//! otherwise: one engine session per content (the instance that starts a
//! content takes a lease on it; other instances send its players there),
//! and each engine's stream cap (a stream's slot on an engine is a lease
//! taken atomically under the cap). Leases carry a TTL that a keeper task
//! renews every third of it, so a dead instance's leases lapse within one
//! TTL and a survivor stops the engine sessions it left behind.
//!
//! Redis is never on a stream's data path, and never a reason to fail: a
//! call that errs or takes longer than [`CALL_TIMEOUT`] makes acemux carry
//! on with local accounting (warned, counted, shown in status) until the
//! keeper reaches Redis again and registers what it holds.

mod keeper;
pub mod scripts;
pub mod settings;
mod slot;
mod standing;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::content::{ContentKey, KeyType};
use crate::engine::pool::Engine;

pub use keeper::Keeper;
pub use settings::{ClusterForward, ClusterSettings};
pub use slot::{ClusterSlot, SlotAnswer};
use standing::Standing;

/// Marks a request one instance passed to another (a player's request
/// handed on, or a session following the owner of its content); it is
/// never passed on again (served where it arrives), so two instances that
/// disagree for a moment cannot bounce it between them.
pub const FORWARDED: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("x-acemux-forwarded");

/// Longest any one Redis call may take before acemux carries on without it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// Slot changes waiting for the keeper; beyond it, a release waits for the
/// lease to lapse and a record for the next round.
const CHANGE_QUEUE: usize = 1024;

/// What this instance is in the cluster: where the shared state is, how
/// others reach it, its name, and how long its leases last.
#[derive(Debug, Clone)]
pub struct Membership {
    pub redis_url: String,
    /// How other instances (and redirected players) reach this one.
    pub advertise_url: String,
    pub instance_id: String,
    /// A lease not renewed for this long has lapsed.
    pub lease: Duration,
}

/// Who serves a content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This instance (it holds the lease now).
    Here,
    /// Another live instance, reachable at this base URL.
    There(String),
    /// Redis did not answer: serve it here, with local accounting.
    Unknown,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub redis_calls: AtomicU64,
    pub redis_errors: AtomicU64,
    pub redirects: AtomicU64,
    pub proxied: AtomicU64,
    /// Times a content turned out to be owned elsewhere while running here
    /// (after Redis was unreachable, or a lease lapsed and was taken).
    pub ownership_conflicts: AtomicU64,
    /// Engine sessions of dead instances this instance stopped.
    pub orphans_stopped: AtomicU64,
    pub slots_refused: AtomicU64,
    /// Sessions that found their content owned elsewhere and moved their
    /// players onto the owner's stream (see [`Cluster::until_lost`]).
    pub handovers: AtomicU64,
    /// Slots taken while Redis was unreachable (or lost with it) that did
    /// not fit the engine's cap once Redis answered: their streams moved.
    pub slots_revoked: AtomicU64,
}

/// What `/proxy/status` shows of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub instance_id: String,
    pub advertise_url: String,
    /// `"connected"` or `"unreachable"` (local accounting meanwhile).
    pub redis: &'static str,
    pub redis_error: Option<String>,
    /// Instances that renewed their presence within a lease.
    pub instances: u64,
    pub lease_seconds: f64,
    /// Contents this instance owns.
    pub owned_contents: usize,
    /// Engine slots this instance holds.
    pub held_slots: usize,
}

/// See the module docs.
pub struct Cluster {
    settings: Membership,
    /// `"<instance id> <advertise url>"`: what a content lease holds.
    owner_value: String,
    redis: ConnectionManager,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    instances: AtomicU64,
    /// Slots held, by serial.
    slots: Mutex<HashMap<u64, Arc<slot::SlotEntry>>>,
    next_slot: AtomicU64,
    changes: mpsc::Sender<slot::SlotChange>,
    /// Contents claimed and when (the keeper renews them while a session
    /// runs, and gives them back after).
    claims: Mutex<HashMap<String, Instant>>,
    forward: reqwest::Client,
    standing: Standing,
    pub counters: ClusterCounters,
}

/// The Redis key prefix of everything acemux stores.
const PREFIX: &str = "acemux:";

impl Cluster {
    /// Checks the URL and prepares the connection (made lazily, so a Redis
    /// that is down at start is the same as one that goes down later).
    pub fn new(settings: Membership) -> anyhow::Result<(Arc<Self>, Keeper)> {
        let client = redis::Client::open(settings.redis_url.as_str())
            .context("invalid setting --redis-url / ACEMUX_REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .context("cannot set up the Redis connection (--redis-url / ACEMUX_REDIS_URL)")?;
        let (changes, change_queue) = mpsc::channel(CHANGE_QUEUE);
        let forward = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client for other instances")?;
        let cluster = Arc::new(Self {
            standing: Standing::new(settings.lease),
            owner_value: format!("{} {}", settings.instance_id, settings.advertise_url),
            settings,
            redis,
            reachable: AtomicBool::new(true),
            last_error: Mutex::new(None),
            instances: AtomicU64::new(0),
            slots: Mutex::new(HashMap::new()),
            next_slot: AtomicU64::new(1),
            changes,
            claims: Mutex::new(HashMap::new()),
            forward,
            counters: ClusterCounters::default(),
        });
        let keeper = Keeper::new(cluster.clone(), change_queue);
        Ok((cluster, keeper))
    }

    pub fn instance_id(&self) -> &str {
        &self.settings.instance_id
    }

    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Takes or renews the lease on `key` unless another instance holds it.
    pub async fn claim(&self, key: &ContentKey) -> Owner {
        let redis_key = content_key(key);
        if !self.is_reachable() {
            // The keeper probes Redis every round; a request never waits
            // on a Redis that did not answer the last call.
            self.claims.lock().insert(redis_key, Instant::now());
            return Owner::Unknown;
        }
        let answer: Option<String> = self
            .call(
                scripts::CLAIM_CONTENT
                    .key(&redis_key)
                    .arg(&self.owner_value)
                    .arg(self.lease_ms())
                    .arg(self.address_suffix()),
            )
            .await;
        match answer {
            None => {
                self.claims.lock().insert(redis_key, Instant::now());
                Owner::Unknown
            }
            Some(v) if v == self.owner_value => {
                self.claims.lock().insert(redis_key, Instant::now());
                Owner::Here
            }
            Some(v) => match v.split_once(' ') {
                Some((_, url)) => Owner::There(url.to_owned()),
                None => Owner::Unknown,
            },
        }
    }

    /// Who holds the lease on `key`, taking nothing.
    pub async fn owner_of(&self, key: &ContentKey) -> Owner {
        if !self.is_reachable() {
            return Owner::Unknown;
        }
        let mut redis = self.redis.clone();
        let mut get = redis::cmd("GET");
        get.arg(content_key(key));
        match self.guarded(get.query_async::<Option<String>>(&mut redis)).await {
            None => Owner::Unknown,
            Some(None) => Owner::Here,
            Some(Some(v)) if v == self.owner_value || v.ends_with(&self.address_suffix()) => Owner::Here,
            Some(Some(v)) => {
                v.split_once(' ').map_or(Owner::Unknown, |(_, url)| Owner::There(url.to_owned()))
            }
        }
    }

    /// Waits until this instance's leases are confirmed (at once unless the
    /// process was frozen longer than a lease): what reaches a ring must
    /// not come from a claim another instance may have taken meanwhile.
    pub async fn wait_confirmed(&self) {
        if !self.standing.wait_confirmed().await {
            tracing::warn!("no keeper round completed within a lease; streaming on unconfirmed");
        }
    }

    /// The base URL of the instance that holds `key`'s lease, when `key`
    /// runs here and was found owned there.
    pub fn lost_to(&self, key: &ContentKey) -> Option<String> {
        self.standing.lost_to(&content_key(key))
    }

    /// Resolves with the owner's base URL once `key`, running here, is
    /// found owned by another instance.
    pub async fn until_lost(&self, key: &ContentKey) -> String {
        self.standing.until_lost(&content_key(key)).await
    }

    /// The session of `key` handed its players over (or ended).
    pub fn settle(&self, key: &ContentKey) {
        self.standing.settle(&content_key(key));
    }

    /// The HTTP client that passes requests on to other instances.
    pub fn forward_client(&self) -> &reqwest::Client {
        &self.forward
    }

    /// Takes a slot on `engine` under the cluster-wide cap `capacity`.
    pub async fn take_slot(self: &Arc<Self>, engine: &Arc<Engine>, capacity: usize) -> SlotAnswer {
        let serial = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(slot::SlotEntry::new(engine, format!("{}/{serial}", self.settings.instance_id)));
        let reachable = self.is_reachable();
        let taken: Option<i64> = if !reachable {
            None
        } else {
            self.call(
                scripts::TAKE_SLOT
                    .key(&entry.slots_key)
                    .arg(&entry.member)
                    .arg(capacity)
                    .arg(self.lease_ms()),
            )
            .await
        };
        if taken == Some(0) {
            self.counters.slots_refused.fetch_add(1, Ordering::Relaxed);
            return SlotAnswer::Full;
        }
        entry.registered.store(taken.is_some(), Ordering::Relaxed);
        self.slots.lock().insert(serial, entry.clone());
        SlotAnswer::Taken(ClusterSlot::new(self.clone(), serial, entry))
    }

    /// One Redis call under [`CALL_TIMEOUT`]; `None` (and the cluster
    /// marked unreachable) when it failed.
    async fn call<T: redis::FromRedisValue>(&self, invocation: &redis::ScriptInvocation<'_>) -> Option<T> {
        let mut redis = self.redis.clone();
        self.guarded(invocation.invoke_async::<T>(&mut redis)).await
    }

    async fn guarded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        self.counters.redis_calls.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(v)) => {
                self.mark_reachable();
                Some(v)
            }
            Ok(Err(e)) => {
                self.mark_unreachable(e.to_string());
                None
            }
            Err(_) => {
                self.mark_unreachable(format!("no answer within {CALL_TIMEOUT:?}"));
                None
            }
        }
    }

    fn mark_reachable(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis reachable again: shared accounting resumes");
            *self.last_error.lock() = None;
        }
    }

    fn mark_unreachable(&self, error: String) {
        self.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = %error,
                "Redis unreachable: new streams use local accounting until it answers again"
            );
        }
        *self.last_error.lock() = Some(error);
    }

    /// `" <advertise url>"`: the end of every lease value held at our address.
    fn address_suffix(&self) -> String {
        format!(" {}", self.settings.advertise_url)
    }

    fn lease_ms(&self) -> u64 {
        self.settings.lease.as_millis() as u64
    }

    pub fn status(&self) -> ClusterStatus {
        ClusterStatus {
            instance_id: self.settings.instance_id.clone(),
            advertise_url: self.settings.advertise_url.clone(),
            redis: if self.is_reachable() { "connected" } else { "unreachable" },
            redis_error: self.last_error.lock().clone(),
            instances: self.instances.load(Ordering::Relaxed),
            lease_seconds: self.settings.lease.as_secs_f64(),
            owned_contents: self.claims.lock().len(),
            held_slots: self.slots.lock().len(),
        }
    }
}

/// The Redis key of a content's lease.
fn content_key(key: &ContentKey) -> String {
    let kind = match key.key_type {
        KeyType::ContentId => "id",
        other => other.engine_param(),
    };
    format!("{PREFIX}content:{kind}:{}", key.id)
}

/// The Redis keys of an engine's slot set and engine-session hash.
fn engine_keys(engine_id: &str) -> (String, String) {
    (format!("{PREFIX}slots:{engine_id}"), format!("{PREFIX}sessions:{engine_id}"))
}
