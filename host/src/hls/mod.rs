//! HLS output cut from the shared ring: one engine session for TS players
//! and HLS viewers alike.
//!
//! ```text
//! ring ─▶ segmenter (own cursor) ─▶ segment window ─▶ playlists, segments
//! ```
//!
//! A viewer opens a master playlist (`/ace/manifest.m3u8?id=…` or
//! `/hls/<id>/index.m3u8`), which joins the content's stream exactly as a
//! TS player does (selection, plugins, limits, events) and sends the viewer
//! on to its own media playlist URL (`live.m3u8?viewer=<token>`). Fetching
//! that playlist keeps the viewer present; the segments (`<n>.ts`) are the
//! same URLs for everyone. [`segmenter`] decides where segments start and
//! how long they are, [`window`] numbers and keeps them, [`playlist`]
//! renders the text, [`viewers`] counts who watches, and [`output`] ties
//! one stream's parts together in one task.

pub mod output;
pub mod parts;
pub mod playlist;
pub mod segmenter;
pub mod settings;
pub mod viewers;
pub mod window;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::content::ContentKey;
use crate::engine::select::SelectRequest;
use crate::stream::{PlayerSlot, Registry, Session, StreamError, UserPlayer};

pub use output::{Blocked, Directive, HlsOutput, NoSegment, ServedTotals, ServedValues};
pub use settings::HlsSettings;
pub use viewers::MAX_WAITING_PER_VIEWER;
pub use window::PartState;

/// Every stream's HLS output, by session.
pub struct Hls {
    registry: Arc<Registry>,
    settings: HlsSettings,
    /// Longest a playlist request waits for the first segment.
    first_segment_wait: Duration,
    outputs: Mutex<HashMap<u64, Arc<HlsOutput>>>,
    totals: Arc<ServedTotals>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

/// A viewer's place: the output it watches and its token.
pub struct Viewing {
    pub output: Arc<HlsOutput>,
    pub token: String,
}

impl Hls {
    pub fn new(registry: Arc<Registry>, settings: HlsSettings) -> Arc<Self> {
        // A stream's start may take the init timeout; then the first
        // playlist's lead and half a segment (see
        // `HlsOutput::wait_until_playable`), with room for a GOP longer
        // than the target.
        let target = settings.hls_segment;
        let first_segment_wait =
            registry.context().stream.init_timeout + output::first_playlist_lead(target, target) + target * 2;
        Arc::new(Self {
            registry,
            settings,
            first_segment_wait,
            outputs: Mutex::new(HashMap::new()),
            totals: Arc::default(),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        })
    }

    /// Longest a playlist request waits for the first segment.
    pub fn first_segment_wait(&self) -> Duration {
        self.first_segment_wait
    }

    /// Segments held per output (listed and kept after listing).
    pub fn segments_held(&self) -> usize {
        self.settings.hls_window + window::KEPT_AFTER_LISTING
    }

    /// A new viewer of `key`: joins the content's stream (starting it if
    /// nobody watches) exactly as a TS player does, and gives it a token.
    pub async fn open(
        self: &Arc<Self>,
        key: ContentKey,
        request: SelectRequest,
        client: Option<SocketAddr>,
        user: Option<UserPlayer>,
    ) -> Result<Viewing, StreamError> {
        let slot = self.registry.attach(key, request, user.as_ref())?;
        slot.session().wait_ready().await?;
        let token = viewers::new_token();
        let output = self.add_viewer(slot, token.clone(), client);
        Ok(Viewing { output, token })
    }

    /// A media playlist fetch of the running `session`: the viewer with
    /// `token` (or, without one, the viewer at the client's address) is
    /// present; it is registered again if it had timed out. Never starts a
    /// stream: a stopped stream stays stopped, whoever polls it.
    pub fn renew(
        self: &Arc<Self>,
        session: &Arc<Session>,
        token: Option<&str>,
        client: Option<SocketAddr>,
        user: Option<UserPlayer>,
    ) -> Result<Viewing, StreamError> {
        let token = match token {
            Some(t) => t.to_owned(),
            None => format!("address-{}", client.map_or_else(|| "unknown".into(), |a| a.ip().to_string())),
        };
        if let Some(output) = self.output_of(session)
            && output.renew(&token)
        {
            return Ok(Viewing { output, token });
        }
        let slot = self.registry.attach_running(session, user.as_ref())?;
        let output = self.add_viewer(slot, token.clone(), client);
        output.renew(&token);
        Ok(Viewing { output, token })
    }

    /// The running output of the content `id`, if any (segment requests).
    pub fn find(&self, id: &str) -> Option<Arc<HlsOutput>> {
        let session = self.registry.find(id)?;
        self.output_of(&session)
    }

    /// The running output of `session`, if any.
    pub fn output_of(&self, session: &Session) -> Option<Arc<HlsOutput>> {
        self.outputs.lock().get(&session.id).filter(|o| !o.is_retired()).cloned()
    }

    /// What every output served since start.
    pub fn totals(&self) -> ServedValues {
        self.totals.snapshot()
    }

    /// Every running output.
    pub fn outputs(&self) -> Vec<Arc<HlsOutput>> {
        self.outputs.lock().values().cloned().collect()
    }

    fn add_viewer(
        self: &Arc<Self>,
        mut slot: PlayerSlot,
        token: String,
        client: Option<SocketAddr>,
    ) -> Arc<HlsOutput> {
        loop {
            let output = self.output_for(slot.session());
            match output.add_viewer(token.clone(), slot, client) {
                Ok(()) => return output,
                // It retired between the lookup and the add: the next
                // lookup starts a new one.
                Err(back) => slot = back,
            }
        }
    }

    /// The session's output, started if there is none.
    fn output_for(self: &Arc<Self>, session: &Arc<Session>) -> Arc<HlsOutput> {
        let mut outputs = self.outputs.lock();
        if let Some(o) = outputs.get(&session.id).filter(|o| !o.is_retired()) {
            return o.clone();
        }
        let events = self.registry.context().events.clone();
        let output = Arc::new(HlsOutput::new(session.clone(), events, self.settings, self.totals.clone()));
        outputs.insert(session.id, output.clone());
        let hls = self.clone();
        let running = output.clone();
        let stop = self.stop.child_token();
        self.tasks.spawn(async move {
            running.clone().run(stop).await;
            let mut outputs = hls.outputs.lock();
            if outputs.get(&running.session.id).is_some_and(|o| Arc::ptr_eq(o, &running)) {
                outputs.remove(&running.session.id);
            }
        });
        output
    }

    /// Ends every output (viewers released) and waits for their tasks.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(timeout, self.tasks.wait()).await.is_ok()
    }
}
