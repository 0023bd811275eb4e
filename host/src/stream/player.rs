//! A player: a cursor into its session's ring, nothing more.
//!
//! A player never reads the upstream and never holds payload of its own:
//! it hands the ring's shared chunks to its socket one by one. It joins at a
//! keyframe when the ring knows one (PAT and PMT first, then a slice of the
//! chunk from the keyframe on: still the shared allocation). It sleeps on
//! the ring's watch channel, so it wakes only when a chunk arrives (or the
//! stream ends). A player that falls behind the ring's oldest chunk follows
//! the lag policy. A player whose socket stops accepting bytes is dropped by
//! the HTTP layer's write timeout, which ends this stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::watch;
use tracing::debug;

use super::settings::{JoinAt, LagPolicy, StreamSettings};
use crate::events::{PlayerKind, StreamEvent};

use super::ring::{Join, Read};
use super::session::Session;
use super::user_tally::{UserPlayer, UserTally};

/// Counts one attached player on its session until dropped; the session's
/// grace period starts when the last slot is gone.
pub struct PlayerSlot {
    session: Arc<Session>,
    /// Whether this slot is one of the session's players (a companion
    /// rides on its holder's count).
    counted: bool,
    /// The user whose token the player carried (see `crate::access`),
    /// counted while the slot is held.
    user: Option<Arc<UserTally>>,
}

impl PlayerSlot {
    /// Only the registry creates slots, under its lock, so a session being
    /// retired can never gain a player.
    pub(super) fn new(session: Arc<Session>) -> Self {
        session.players_count.send_modify(|n| *n += 1);
        Self { session, counted: true, user: None }
    }

    /// This slot, held by `user`'s player (counted on the user's tally;
    /// the registry checked the limit under its lock).
    pub(super) fn for_user(mut self, user: Option<&UserPlayer>) -> Self {
        if let Some(user) = user {
            user.tally.add(self.session.id);
            self.user = Some(user.tally.clone());
        }
        self
    }

    /// The name of the user whose player holds the slot.
    pub fn user(&self) -> Option<&Arc<str>> {
        self.user.as_ref().map(|u| &u.name)
    }

    /// A slot for another connection of the same player (an engine-API
    /// client's `playback_url`, held by its answer): it keeps no count of
    /// its own, so the player is counted, and limited, once. The session
    /// cannot be retiring meanwhile: this slot's holder keeps it.
    pub fn companion(&self) -> Self {
        Self { session: self.session.clone(), counted: false, user: None }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

impl Drop for PlayerSlot {
    fn drop(&mut self) {
        if self.counted {
            self.session.players_count.send_modify(|n| *n = n.saturating_sub(1));
        }
        if let Some(user) = &self.user {
            user.remove(self.session.id);
        }
    }
}

/// What status shows of one player.
#[derive(Debug, Serialize)]
pub struct PlayerStats {
    pub id: u64,
    pub client: Option<SocketAddr>,
    /// The user whose token it carried.
    pub user: Option<Arc<str>>,
    #[serde(skip)]
    pub connected_at: Instant,
    pub bytes_sent: AtomicU64,
    /// Stream offset of the next byte this player gets.
    pub offset: AtomicU64,
    pub skips: AtomicU64,
    pub skipped_bytes: AtomicU64,
}

static NEXT_PLAYER_ID: AtomicU64 = AtomicU64::new(1);

/// See the module docs.
pub struct Player {
    slot: PlayerSlot,
    stats: Arc<PlayerStats>,
    /// Next chunk to send.
    seq: u64,
    /// Still to send from the join: the PAT/PMT prefix, and how much of
    /// chunk `seq` to leave out.
    join: Option<Join>,
    head: watch::Receiver<u64>,
    lag_policy: LagPolicy,
    at_keyframe: bool,
    /// Set by the connection when its write timeout fired.
    write_timed_out: Option<Arc<AtomicBool>>,
}

impl Player {
    /// Starts a player `join_behind` behind the live edge, at a keyframe
    /// if the settings ask for it and the ring knows one.
    pub fn new(
        slot: PlayerSlot,
        client: Option<SocketAddr>,
        settings: &StreamSettings,
        write_timed_out: Option<Arc<AtomicBool>>,
    ) -> Self {
        let session = slot.session.clone();
        let head = session.ring.subscribe();
        let at_keyframe = settings.join_at == JoinAt::Keyframe;
        let join = session.ring.join(settings.join_behind, at_keyframe);
        let seq = join.seq;
        let joins = if join.prefix.is_some() {
            &session.counters.keyframe_joins
        } else {
            &session.counters.chunk_joins
        };
        joins.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(PlayerStats {
            id: NEXT_PLAYER_ID.fetch_add(1, Ordering::Relaxed),
            client,
            user: slot.user().cloned(),
            connected_at: Instant::now(),
            bytes_sent: AtomicU64::new(0),
            offset: AtomicU64::new(session.ring.offset_of(seq) + join.skip as u64),
            skips: AtomicU64::new(0),
            skipped_bytes: AtomicU64::new(0),
        });
        session.players.lock().insert(stats.id, stats.clone());
        session.counters.players_total.fetch_add(1, Ordering::Relaxed);
        session.events.emit(StreamEvent::PlayerConnected {
            stream: session.stream_ref(),
            engine: session.engine(),
            client,
            kind: PlayerKind::Ts,
            user: stats.user.clone(),
        });
        debug!(
            player = stats.id,
            ?client,
            seq,
            skip = join.skip,
            keyframe = join.prefix.is_some(),
            "player attached"
        );
        Self {
            slot,
            stats,
            seq,
            join: Some(join),
            head,
            lag_policy: settings.lag_policy,
            at_keyframe,
            write_timed_out,
        }
    }

    /// The player's bytes, for an HTTP body. Ends when the stream ends or
    /// the lag policy disconnects the player.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures_util::stream::unfold(self, |mut player| async move {
            let chunk = player.next_chunk().await?;
            Some((Ok(chunk), player))
        })
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        // Borrowed, not cloned: every player of the stream would otherwise
        // bump the one reference count of the session for every chunk.
        let session = &*self.slot.session;
        loop {
            if self.slot.user.as_ref().is_some_and(|u| u.is_revoked()) {
                debug!(player = self.stats.id, "the player's user was withdrawn; disconnecting");
                return None;
            }
            if let Some(prefix) = self.join.as_mut().and_then(|j| j.prefix.take()) {
                self.stats.bytes_sent.fetch_add(prefix.len() as u64, Ordering::Relaxed);
                session.counters.bytes_out.fetch_add(prefix.len() as u64, Ordering::Relaxed);
                return Some(prefix);
            }
            // Mark the current head seen before reading, so an append after
            // the read still wakes `changed()` below.
            self.head.borrow_and_update();
            match session.ring.read(self.seq) {
                Read::Chunk { mut data, mut offset } => {
                    if let Some(join) = self.join.take().filter(|j| j.seq == self.seq && j.skip > 0) {
                        let skip = join.skip.min(data.len());
                        data = data.slice(skip..);
                        offset += skip as u64;
                    }
                    self.seq += 1;
                    let len = data.len() as u64;
                    self.stats.bytes_sent.fetch_add(len, Ordering::Relaxed);
                    self.stats.offset.store(offset + len, Ordering::Relaxed);
                    session.counters.bytes_out.fetch_add(len, Ordering::Relaxed);
                    return Some(data);
                }
                Read::Lagged { .. } => match self.lag_policy {
                    LagPolicy::Skip => {
                        // To the newest keyframe: the decoder restarts cleanly.
                        let join = session.ring.join(std::time::Duration::ZERO, self.at_keyframe);
                        let live = join.seq;
                        let from = self.stats.offset.load(Ordering::Relaxed);
                        let to = session.ring.offset_of(live) + join.skip as u64;
                        self.stats.skips.fetch_add(1, Ordering::Relaxed);
                        self.stats.skipped_bytes.fetch_add(to.saturating_sub(from), Ordering::Relaxed);
                        session.counters.skips.fetch_add(1, Ordering::Relaxed);
                        debug!(
                            player = self.stats.id,
                            skipped = to.saturating_sub(from),
                            "player lagged; skipped to live"
                        );
                        self.seq = live;
                        self.join = Some(join);
                    }
                    LagPolicy::Disconnect => {
                        session.counters.lag_disconnects.fetch_add(1, Ordering::Relaxed);
                        debug!(player = self.stats.id, "player lagged; disconnecting");
                        return None;
                    }
                },
                Read::Pending => {
                    if self.head.changed().await.is_err() {
                        return None;
                    }
                }
                Read::Closed => return None,
            }
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let session = &self.slot.session;
        session.players.lock().remove(&self.stats.id);
        if self.write_timed_out.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
            session.counters.drops.fetch_add(1, Ordering::Relaxed);
        }
        session.events.emit(StreamEvent::PlayerDisconnected {
            stream: session.stream_ref(),
            engine: session.engine(),
            client: self.stats.client,
            kind: PlayerKind::Ts,
            user: self.stats.user.clone(),
            bytes: self.stats.bytes_sent.load(Ordering::Relaxed),
            duration: self.stats.connected_at.elapsed(),
        });
        debug!(
            player = self.stats.id,
            bytes = self.stats.bytes_sent.load(Ordering::Relaxed),
            seconds = self.stats.connected_at.elapsed().as_secs_f64(),
            "player left"
        );
    }
}
