//! The cluster's one background task: renews this instance's leases every
//! third of the lease, gives back what it no longer holds, sweeps the
//! slots that dead instances left (stopping their engine sessions), and
//! reads each engine's load over the whole cluster for selection.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::slot::{SlotChange, SlotEntry};
use super::{Cluster, PREFIX, content_key, engine_keys, scripts};
use crate::content::ContentKey;
use crate::engine::{EngineClient, EnginePool};

/// See the module docs.
pub struct Keeper {
    cluster: Arc<Cluster>,
    changes: mpsc::Receiver<SlotChange>,
}

impl Keeper {
    pub(super) fn new(cluster: Arc<Cluster>, changes: mpsc::Receiver<SlotChange>) -> Self {
        Self { cluster, changes }
    }

    /// Runs until `stop`, then gives back every lease it still holds.
    /// `running` lists the contents this instance streams now.
    pub async fn run(
        mut self,
        pool: Arc<EnginePool>,
        client: EngineClient,
        running: impl Fn() -> Vec<ContentKey> + Send + 'static,
        stop: CancellationToken,
    ) {
        let mut rounds = tokio::time::interval(self.cluster.lease() / 3);
        rounds.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = rounds.tick() => self.round(&pool, &client, &running()).await,
                Some(change) = self.changes.recv() => self.apply(change).await,
            }
        }
        self.give_back().await;
    }

    /// One renewal round; every call at once, each under its own timeout.
    async fn round(&self, pool: &EnginePool, client: &EngineClient, running: &[ContentKey]) {
        let cluster = &self.cluster;
        // Unreachable at the last call: one probe, not a round of calls
        // that each wait out their timeout.
        if !cluster.is_reachable() {
            let mut beat = scripts::HEARTBEAT.key(format!("{PREFIX}instances"));
            beat.arg(cluster.instance_id()).arg(cluster.lease_ms());
            if cluster.call::<u64>(&beat).await.is_none() {
                cluster.standing.confirm();
                return;
            }
        }
        let lease = cluster.lease_ms();
        let running: HashSet<String> = running.iter().map(content_key).collect();
        let young = |at: &Instant| at.elapsed() < cluster.lease();
        // Contents: renew what runs here (and fresh claims whose session is
        // starting); give back the rest.
        let (renew, give_back): (Vec<String>, Vec<String>) = {
            let claims = cluster.claims.lock();
            let mut renew: Vec<String> = running.iter().cloned().collect();
            renew.extend(
                claims.iter().filter(|(k, at)| !running.contains(*k) && young(at)).map(|(k, _)| k.clone()),
            );
            let renewing: HashSet<&String> = renew.iter().collect();
            let give_back = claims.keys().filter(|k| !renewing.contains(k)).cloned().collect();
            (renew, give_back)
        };
        let renewals = renew.iter().map(|key| async move {
            let owner: Option<String> = cluster
                .call(
                    scripts::CLAIM_CONTENT
                        .key(key)
                        .arg(&cluster.owner_value)
                        .arg(lease)
                        .arg(cluster.address_suffix()),
                )
                .await;
            (key, owner)
        });
        let slots: Vec<_> = cluster.slots.lock().values().cloned().collect();
        let capacity = pool.capacity();
        let keeps = slots.iter().map(|entry| keep_slot(cluster, entry, capacity));
        let engines = pool.engines();
        let sweeps = engines.iter().map(|engine| async move {
            let (slots_key, sessions_key) = engine_keys(&engine.id);
            let swept: Option<Vec<String>> =
                cluster.call(scripts::SWEEP_SLOTS.key(&slots_key).key(&sessions_key).arg(lease)).await;
            (engine, slots_key, sessions_key, swept)
        });
        let mut beat = scripts::HEARTBEAT.key(format!("{PREFIX}instances"));
        beat.arg(cluster.instance_id()).arg(lease);
        let heartbeat = cluster.call::<u64>(&beat);
        let (renewed, _, swept, instances) =
            tokio::join!(join_all(renewals), join_all(keeps), join_all(sweeps), heartbeat);
        let gives = give_back.iter().map(|key| async move {
            let _: Option<i64> =
                cluster.call(scripts::RELEASE_CONTENT.key(key).arg(&cluster.owner_value)).await;
        });
        join_all(gives).await;

        {
            let mut claims = cluster.claims.lock();
            claims.retain(|k, _| !give_back.contains(k));
            for (key, owner) in renewed {
                match owner {
                    Some(owner) if owner != cluster.owner_value => {
                        cluster.counters.ownership_conflicts.fetch_add(1, Ordering::Relaxed);
                        claims.remove(key);
                        let Some((_, url)) = owner.split_once(' ') else { continue };
                        if running.contains(key) {
                            warn!(
                                content = %key,
                                owner = %owner,
                                "a content streaming here is owned by another instance (Redis was \
                                 unreachable, or this process was frozen past its lease): its players \
                                 move onto the owner's stream"
                            );
                            cluster.standing.lose(key, url);
                        }
                    }
                    _ => {
                        let at = claims.entry(key.clone()).or_insert_with(Instant::now);
                        if running.contains(key) {
                            *at = Instant::now();
                        }
                    }
                }
            }
        }
        // Lost contents are known before the data path, held back after a
        // freeze, goes on.
        cluster.standing.confirm();
        if let Some(n) = instances {
            cluster.instances.store(n, Ordering::Relaxed);
        }
        // Cluster-wide load: what Redis counts, less this instance's own
        // registered slots (the pool counts those itself).
        let mut orphans = Vec::new();
        for (engine, slots_key, sessions_key, swept) in swept {
            // Unanswered: the last count stands (the other instances' streams
            // run on without Redis; taking it for zero would fill the engine
            // past its cap).
            let Some(mut swept) = swept else { continue };
            let live: usize = swept.first().and_then(|n| n.parse().ok()).unwrap_or(0);
            let ours = slots
                .iter()
                .filter(|s| s.engine_id == engine.id && s.registered.load(Ordering::Relaxed))
                .count();
            engine.set_others_load(live.saturating_sub(ours));
            let dead: Vec<String> = swept.drain(1..).collect();
            for pair in dead.chunks_exact(2) {
                let (member, url) = (pair[0].clone(), pair[1].clone());
                orphans.push((engine.id.clone(), slots_key.clone(), sessions_key.clone(), member, url));
            }
        }
        // The slot of each stays counted until its session is stopped, so
        // no new stream takes the engine past its cap meanwhile.
        let stops = orphans.iter().map(|(engine, slots_key, sessions_key, member, url)| async move {
            info!(engine = %engine, "stopping an engine session a dead instance left");
            match client.stop_command(url).await {
                Ok(()) => {
                    cluster.counters.orphans_stopped.fetch_add(1, Ordering::Relaxed);
                    let mut release = scripts::RELEASE_SLOT.key(slots_key);
                    release.key(sessions_key).arg(member);
                    let _: Option<i64> = cluster.call(&release).await;
                }
                Err(e) => warn!(engine = %engine, error = %e, "cannot stop a dead instance's engine session; retried at the next sweep"),
            }
        });
        join_all(stops).await;
    }

    async fn apply(&self, change: SlotChange) {
        let cluster = &self.cluster;
        // Without Redis: a recorded slot is registered by the round that
        // finds Redis again; a released one lapses and is swept.
        if !cluster.is_reachable() {
            return;
        }
        match change {
            SlotChange::Record(entry) => keep_slot(cluster, &entry, usize::MAX).await,
            SlotChange::Release { slots_key, sessions_key, member } => {
                let mut release = scripts::RELEASE_SLOT.key(slots_key);
                release.key(sessions_key).arg(member);
                let _: Option<i64> = cluster.call(&release).await;
            }
        }
    }

    /// Shutdown: slots the ending streams gave back, then every content
    /// lease, so other instances can take them at once.
    async fn give_back(&mut self) {
        while let Ok(change) = self.changes.try_recv() {
            self.apply(change).await;
        }
        let keys: Vec<String> = self.cluster.claims.lock().drain().map(|(k, _)| k).collect();
        let cluster = &self.cluster;
        join_all(keys.iter().map(|key| async move {
            let _: Option<i64> =
                cluster.call(scripts::RELEASE_CONTENT.key(key).arg(&cluster.owner_value)).await;
        }))
        .await;
    }
}

/// Renews one held slot with its engine session's command URL; one Redis
/// does not count is added under `capacity`, or revoked (its stream moves)
/// when the engine is full without it.
async fn keep_slot(cluster: &Cluster, entry: &SlotEntry, capacity: usize) {
    if entry.revoked.is_cancelled() {
        return;
    }
    let url = entry.command_url.lock().clone().unwrap_or_default();
    let mut keep = scripts::KEEP_SLOT.key(&entry.slots_key);
    keep.key(&entry.sessions_key).arg(&entry.member).arg(cluster.lease_ms()).arg(url).arg(capacity);
    match cluster.call::<i64>(&keep).await {
        Some(0) => {
            cluster.counters.slots_revoked.fetch_add(1, Ordering::Relaxed);
            warn!(
                engine = %entry.engine_id,
                "engine over its cap across the cluster (streams started without Redis): moving a stream off it"
            );
            entry.revoked.cancel();
        }
        Some(_) => entry.registered.store(true, Ordering::Relaxed),
        None => {}
    }
}
