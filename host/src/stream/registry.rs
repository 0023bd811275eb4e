//! Content key → stream session, created once however many players arrive
//! at the same instant.
//!
//! The map's lock is held only for map operations and the player count
//! change that must be atomic with them (never across an `.await`): a
//! player attaches under the lock, and a session retires under the lock
//! only if it has no player, so a player can never attach to a session that
//! is going away.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, warn};

use crate::cluster::Cluster;
use crate::content::{ContentKey, KeyType};
use crate::engine::select::SelectRequest;
use crate::engine::{EngineClient, EngineError, EnginePool, EngineSelector, EngineSession};
use crate::events::EventBus;
use crate::plugins::PluginHost;

use super::alternates::{AlternatesSettings, ChannelDirectory};
use super::player::PlayerSlot;
use super::ring::Ring;
use super::session::{Session, StreamError};
use super::settings::StreamSettings;
use super::totals::StreamTotals;
use super::user_tally::UserPlayer;

/// What every session needs from the rest of acemux.
pub struct StreamContext {
    pub stream: StreamSettings,
    /// Engine calls time out after this long, and a live upstream silent
    /// this long is lost (`--connection-timeout`).
    pub engine_timeout: std::time::Duration,
    /// Period of each stream's poll of its engine's statistics.
    pub engine_stat_interval: std::time::Duration,
    pub pool: Arc<EnginePool>,
    pub client: EngineClient,
    pub selector: Arc<dyn EngineSelector>,
    pub events: Arc<EventBus>,
    pub totals: Arc<StreamTotals>,
    /// Filter plugins run on every stream's packets when present.
    pub plugins: Option<Arc<PluginHost>>,
    /// Shared engine slots when acemux runs as one of several instances.
    pub cluster: Option<Arc<Cluster>>,
    /// Failover between a channel's ids.
    pub alternates: AlternatesSettings,
    /// Where a channel's ids are found (the channel list), when there is one.
    pub channels: Option<Arc<dyn ChannelDirectory>>,
}

impl StreamContext {
    /// Sends the engine's stop command; failures are logged, never fatal.
    pub async fn stop_engine_session(&self, session: EngineSession) {
        stop_logged(&self.client, &session).await;
    }
}

async fn stop_logged(client: &EngineClient, session: &EngineSession) {
    if let Err(e) = client.stop(session).await {
        warn!(error = %e, "engine stop command failed");
    }
}

/// Refuses a player of a user who would be over its limits by joining
/// `session` (a new one: `None`). Called under the registry's lock, so two
/// players of one user arriving at once cannot both take its last place.
fn user_has_room(user: Option<&UserPlayer>, session: Option<u64>) -> Result<(), StreamError> {
    match user.and_then(|u| u.tally.refusal(session, u.tighter)) {
        Some(why) => Err(StreamError::UserLimit(why)),
        None => Ok(()),
    }
}

/// Contents learned from engines remembered at most (content id → infohash).
const KNOWN_INFOHASHES: usize = 10_000;

/// The map behind the registry's lock.
#[derive(Default)]
struct Sessions {
    /// Each session under the key it was created with.
    by_key: HashMap<ContentKey, Arc<Session>>,
    /// Other keys of the same content (the infohash an engine revealed for
    /// a content id) → the key a session is filed under.
    aliases: HashMap<ContentKey, ContentKey>,
    /// Content id → infohash, as engines revealed them.
    infohash_of: HashMap<String, String>,
    /// The id a channel's session plays now → the channel's key: players
    /// asking for that id join the channel's stream (an engine serves one
    /// content once).
    playing: HashMap<ContentKey, ContentKey>,
}

impl Sessions {
    /// The session for `key`, under any of the content's names.
    fn lookup(&self, key: &ContentKey) -> Option<&Arc<Session>> {
        if let Some(s) = self.by_key.get(key) {
            return Some(s);
        }
        if let Some(primary) = self.aliases.get(key).or_else(|| self.playing.get(key)) {
            return self.by_key.get(primary);
        }
        let infohash =
            self.infohash_of.get(&key.id).filter(|_| key.key_type == KeyType::ContentId && key.is_plain())?;
        self.by_key.get(&ContentKey::new(KeyType::Infohash, infohash.clone()))
    }

    fn remove(&mut self, key: &ContentKey, id: u64) {
        if self.by_key.get(key).is_some_and(|s| s.id == id) {
            self.by_key.remove(key);
            self.aliases.retain(|_, primary| primary != key);
            self.playing.retain(|_, channel| channel != key);
        }
    }
}

/// See the module docs.
pub struct Registry {
    sessions: Mutex<Sessions>,
    ctx: StreamContext,
    /// Owns every session task and background engine stop.
    tasks: TaskTracker,
    /// Parent of every session's stop token.
    shutdown: CancellationToken,
    next_id: AtomicU64,
}

impl Registry {
    pub fn new(ctx: StreamContext) -> Arc<Self> {
        Arc::new(Self {
            sessions: Mutex::new(Sessions::default()),
            ctx,
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn context(&self) -> &StreamContext {
        &self.ctx
    }

    /// Sessions created since start.
    pub fn created_total(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed) - 1
    }

    /// Attaches a player (of `user`, counted on its tally) to the
    /// content's session, creating the session (and its task) if there is
    /// none.
    pub fn attach(
        self: &Arc<Self>,
        key: ContentKey,
        request: SelectRequest,
        user: Option<&UserPlayer>,
    ) -> Result<PlayerSlot, StreamError> {
        let mut sessions = self.sessions.lock();
        if self.shutdown.is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        let settings = &self.ctx.stream;
        if let Some(max) = settings.max_players.get() {
            let players: usize = sessions.by_key.values().map(|s| s.player_count()).sum();
            if players >= max {
                return Err(StreamError::Limit(format!("maximum players reached ({max})")));
            }
        }
        let running = sessions.lookup(&key).cloned();
        user_has_room(user, running.as_ref().map(|s| s.id))?;
        if let Some(session) = running {
            return Ok(PlayerSlot::new(session).for_user(user));
        }
        if let Some(max) = settings.max_streams.get()
            && sessions.by_key.len() >= max
        {
            return Err(StreamError::Limit(format!(
                "maximum concurrent streams reached ({max}); running streams can still be joined"
            )));
        }
        let channel = match key.key_type {
            KeyType::Channel => Some(
                self.ctx
                    .channels
                    .as_ref()
                    .and_then(|directory| directory.plan(&key))
                    .filter(|plan| !plan.ids.is_empty())
                    .ok_or(StreamError::UnknownChannel)?,
            ),
            _ => None,
        };
        let session = Arc::new(Session::new(
            self.next_id.fetch_add(1, Ordering::Relaxed),
            key.clone(),
            Ring::new(settings.ring_bytes, settings.buffer_ttl)
                .keeping_join_keyframe(settings.join_behind)
                .in_kernel_pages(settings.zero_copy),
            self.shutdown.child_token(),
            SelectRequest { content: Some(key.clone()), ..request },
            self.ctx.events.clone(),
            channel,
        ));
        let slot = PlayerSlot::new(session.clone()).for_user(user);
        sessions.by_key.insert(key, session.clone());
        self.tasks.spawn(session.run(self.clone()));
        Ok(slot)
    }

    /// Attaches a player to the running session `session` is, if it is
    /// still filed (never creates one: a viewer renewing its place must not
    /// restart a stream that was stopped). Player limits apply as in
    /// [`Registry::attach`].
    pub fn attach_running(
        &self,
        session: &Arc<Session>,
        user: Option<&UserPlayer>,
    ) -> Result<PlayerSlot, StreamError> {
        let sessions = self.sessions.lock();
        if self.shutdown.is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        user_has_room(user, Some(session.id))?;
        if sessions.by_key.get(&session.key).is_none_or(|s| s.id != session.id) {
            return Err(session.end_error());
        }
        if let Some(max) = self.ctx.stream.max_players.get() {
            let players: usize = sessions.by_key.values().map(|s| s.player_count()).sum();
            if players >= max {
                return Err(StreamError::Limit(format!("maximum players reached ({max})")));
            }
        }
        Ok(PlayerSlot::new(session.clone()).for_user(user))
    }

    /// Removes `session` if no player is attached. Called by the session
    /// itself when its grace period ends.
    pub(super) fn retire_if_idle(&self, session: &Session) -> bool {
        let mut sessions = self.sessions.lock();
        if session.player_count() > 0 {
            return false;
        }
        sessions.remove(&session.key, session.id);
        true
    }

    /// Removes the session with this key and id (not a successor).
    pub(super) fn remove(&self, key: &ContentKey, id: u64) {
        self.sessions.lock().remove(key, id);
    }

    /// The engine revealed the infohash of a content requested by another
    /// name (content id, URL, magnet): requests by that infohash (with the
    /// same output parameters) join the same session from now on, and
    /// later content-id requests find infohash sessions.
    pub(super) fn learn_infohash(&self, session: &Session, infohash: &str) {
        let key = &session.key;
        if key.key_type == KeyType::Infohash
            || infohash.len() != 40
            || !infohash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return;
        }
        let infohash = infohash.to_ascii_lowercase();
        let mut sessions = self.sessions.lock();
        if key.key_type == KeyType::ContentId && key.is_plain() {
            if sessions.infohash_of.len() >= KNOWN_INFOHASHES {
                sessions.infohash_of.clear();
            }
            sessions.infohash_of.insert(key.id.clone(), infohash.clone());
        }
        let alias = key.with_infohash(&infohash);
        let filed = sessions.by_key.get(&session.key).is_some_and(|s| s.id == session.id);
        if filed && !sessions.by_key.contains_key(&alias) {
            sessions.aliases.insert(alias, session.key.clone());
        }
    }

    /// A channel's session is to play `id`: from now on players asking
    /// for that id join it. False when another session here plays the id
    /// (players asked for it directly): the channel must not start it a
    /// second time.
    pub(super) fn play_id(&self, session: &Session, id: &ContentKey) -> bool {
        let mut sessions = self.sessions.lock();
        if sessions.lookup(id).is_some_and(|other| other.id != session.id) {
            return false;
        }
        sessions.playing.insert(id.clone(), session.key.clone());
        true
    }

    /// A channel's session left `id`.
    pub(super) fn leave_id(&self, session: &Session, id: &ContentKey) {
        let mut sessions = self.sessions.lock();
        if sessions.playing.get(id) == Some(&session.key) {
            sessions.playing.remove(id);
        }
    }

    /// Asks the engine at `base_url` to start `key`. The call runs in a
    /// task of the registry's tracker: if the stream ends while the engine
    /// is still answering (grace period, admin stop, shutdown), the session
    /// the engine started is stopped when the answer arrives instead of
    /// being left running on the engine.
    pub(super) async fn start_on_engine(
        &self,
        base_url: String,
        key: ContentKey,
    ) -> Result<EngineSession, EngineError> {
        let client = self.ctx.client.clone();
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.tasks.spawn(
            async move {
                let started = client.start(&base_url, &key).await;
                if let Err(Ok(orphan)) = answer.send(started) {
                    info!("the stream ended while the engine started it; stopping the engine session");
                    stop_logged(&client, &orphan).await;
                }
            }
            .in_current_span(),
        );
        answered.await.unwrap_or_else(|_| Err(EngineError::Unreachable("the start call was lost".into())))
    }

    /// Stops an engine session in the background (owned by the registry's
    /// task tracker, so shutdown waits for it).
    pub(super) fn spawn_engine_stop(self: &Registry, session: EngineSession) -> tokio::task::JoinHandle<()> {
        let client = self.ctx.client.clone();
        self.tasks.spawn(async move { stop_logged(&client, &session).await }.in_current_span())
    }

    /// Whether a session of this content runs here (under any of its names).
    pub fn contains(&self, key: &ContentKey) -> bool {
        self.sessions.lock().lookup(key).is_some()
    }

    /// The key of every session, as it was created.
    pub fn keys(&self) -> Vec<ContentKey> {
        self.sessions.lock().by_key.keys().cloned().collect()
    }

    /// The key of every session that streams from an engine here (not one
    /// that follows another instance's stream): the contents whose
    /// cluster leases this instance renews.
    pub fn streaming_keys(&self) -> Vec<ContentKey> {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().by_key.values().cloned().collect();
        sessions.into_iter().filter(|s| !s.is_following()).map(|s| s.key.clone()).collect()
    }

    /// Finds a session by content id (either key type).
    pub fn find(&self, id: &str) -> Option<Arc<Session>> {
        let id = id.to_ascii_lowercase();
        let sessions = self.sessions.lock();
        let by_alias =
            sessions.aliases.iter().find(|(k, _)| k.id == id).and_then(|(_, p)| sessions.by_key.get(p));
        sessions.by_key.values().find(|s| s.key.id == id).or(by_alias).cloned()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        let mut v: Vec<_> = self.sessions.lock().by_key.values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Stops every session, refuses new ones, and waits (up to `timeout`)
    /// until every session task has sent its engine stop and ended.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(timeout, self.tasks.wait()).await.is_ok()
    }
}
