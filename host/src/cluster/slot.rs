//! A stream's slot on an engine, counted across the cluster: held while
//! the stream holds its engine, renewed by the keeper, given back on drop.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Cluster, engine_keys};
use crate::engine::pool::Engine;

/// What [`Cluster::take_slot`] answers.
pub enum SlotAnswer {
    /// Held (in Redis, or only locally while Redis is unreachable: the
    /// keeper registers it when Redis answers again).
    Taken(ClusterSlot),
    /// The engine is at its cap over all instances together.
    Full,
}

/// A held slot, as the cluster's keeper sees it.
#[derive(Debug)]
pub(super) struct SlotEntry {
    pub engine_id: String,
    pub slots_key: String,
    pub sessions_key: String,
    /// `<instance id>/<serial>`: unique in the cluster.
    pub member: String,
    /// The engine session's command URL once the engine accepted the
    /// stream: a survivor stops it if this instance dies.
    pub command_url: Mutex<Option<String>>,
    /// Redis counts it (false while it was taken without Redis).
    pub registered: AtomicBool,
    /// Cancelled when Redis, back, had no room for it under the cap.
    pub revoked: CancellationToken,
}

impl SlotEntry {
    pub fn new(engine: &Engine, member: String) -> Self {
        let (slots_key, sessions_key) = engine_keys(&engine.id);
        Self {
            engine_id: engine.id.clone(),
            slots_key,
            sessions_key,
            member,
            command_url: Mutex::new(None),
            registered: AtomicBool::new(false),
            revoked: CancellationToken::new(),
        }
    }
}

/// What a slot asks of the keeper between its rounds.
#[derive(Debug)]
pub(super) enum SlotChange {
    /// Write this slot's engine session to Redis now (not at the next
    /// round: this instance could die before it).
    Record(Arc<SlotEntry>),
    /// The slot was given back: remove it from Redis.
    Release { slots_key: String, sessions_key: String, member: String },
}

/// See the module docs.
pub struct ClusterSlot {
    cluster: Arc<Cluster>,
    serial: u64,
    entry: Arc<SlotEntry>,
}

impl ClusterSlot {
    pub(super) fn new(cluster: Arc<Cluster>, serial: u64, entry: Arc<SlotEntry>) -> Self {
        Self { cluster, serial, entry }
    }

    /// The engine accepted the stream: remember how to stop its session.
    pub fn engine_session(&self, command_url: &str) {
        *self.entry.command_url.lock() = Some(command_url.to_owned());
        // A full queue leaves it to the next round.
        let _ = self.cluster.changes.try_send(SlotChange::Record(self.entry.clone()));
    }
}

impl ClusterSlot {
    /// Resolves when the engine turned out to be at its cap over the
    /// cluster without this slot (streams started on it by several
    /// instances while Redis was unreachable): the stream must move to
    /// another engine.
    pub async fn revoked(&self) {
        self.entry.revoked.cancelled().await;
    }
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        self.cluster.slots.lock().remove(&self.serial);
        let released = SlotChange::Release {
            slots_key: self.entry.slots_key.clone(),
            sessions_key: self.entry.sessions_key.clone(),
            member: self.entry.member.clone(),
        };
        // A full queue only delays the release until the lease lapses.
        let _ = self.cluster.changes.try_send(released);
    }
}
