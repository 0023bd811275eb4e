//! The stream path: one upstream per content, fanned out to every player.
//!
//! ```text
//! engine ─▶ upstream (aligner, chunker, filters, keyframe scan) ─▶ ring ─▶ player cursor ─▶ socket
//! ```
//!
//! [`registry`] maps a content to its [`session`]; the session owns the one
//! task that runs [`upstream`] and decides when the stream ends; [`ring`]
//! holds the shared chunks and, from [`media`], where in them a new
//! player can start decoding; each [`player`] is only a cursor into it.
//! A channel with several ids is one session that plays them in turn
//! ([`alternates`]), each next id let in at a keyframe ([`splice`]).

pub mod alternates;
pub mod counters;
pub mod engine_stats;
mod follow;
pub mod media;
mod on_engines;
pub mod player;
pub mod registry;
pub mod ring;
pub mod session;
pub mod settings;
pub mod splice;
pub mod totals;
pub mod upstream;
pub mod user_tally;

pub use counters::{CounterValues, SessionCounters};
pub use player::{Player, PlayerSlot};
pub use registry::{Registry, StreamContext};
pub use ring::Ring;
pub use session::{Session, SessionState, StreamError};
pub use settings::{JoinAt, LagPolicy, StreamSettings};
pub use totals::StreamTotals;
pub use user_tally::{UserLimits, UserPlayer, UserTally};
