//! A session whose content turned out to be owned by another instance of
//! the cluster (two instances started it while Redis was unreachable, or
//! this process was frozen past its lease): it gives up its engine
//! session and reads the owner's stream of the content instead, so there
//! is again one engine session per content and its players keep their
//! responses. The owner's bytes go into the same ring, from where the
//! owner's answer starts (a keyframe, with the tables in front); when the owner's stream ends the
//! session asks Redis again and plays on its own engine if the lease is
//! free, or follows the new owner.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::registry::{Registry, StreamContext};
use super::session::{Session, SessionState, StreamError};
use super::upstream::{Upstream, keep_alive_for};
use crate::cluster::{ClusterSlot, Owner};
use crate::content::ContentKey;

/// Wait before asking an owner that served nothing again.
const RETRY_WAIT: Duration = Duration::from_secs(1);

/// How following the owner ended.
pub(super) enum Followed {
    /// The lease is this instance's again (or Redis cannot say): start on
    /// an engine here.
    Reclaimed,
    /// The owner holds the lease but served nothing.
    Failed(StreamError),
}

/// Resolves with the owner's base URL when `key`, streaming here, is found
/// owned by another instance; never alone.
pub(super) async fn lease_lost(ctx: &StreamContext, key: &ContentKey) -> String {
    match &ctx.cluster {
        Some(cluster) => cluster.until_lost(key).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the stream's slot on its engine was revoked; never alone.
pub(super) async fn slot_revoked(slot: Option<&ClusterSlot>) {
    match slot {
        Some(slot) => slot.revoked().await,
        None => std::future::pending().await,
    }
}

impl Session {
    /// Reads `owner`'s stream of this content into the ring until it ends.
    /// The caller has stopped this session's engine session and given its
    /// slot back.
    pub(super) async fn follow_owner(&self, registry: &Registry, mut owner: String) -> Followed {
        let ctx = registry.context();
        let Some(cluster) = ctx.cluster.clone() else { return Followed::Reclaimed };
        cluster.counters.handovers.fetch_add(1, Ordering::Relaxed);
        // Since when the owner served nothing (it may be settling itself:
        // its engines briefly counted full while the cluster's slots were
        // re-registered).
        let mut barren_since: Option<Instant> = None;
        loop {
            cluster.settle(&self.key);
            let Some(url) = stream_url(&owner, &self.key) else {
                return Followed::Failed(StreamError::UpstreamLost(format!(
                    "the owner's address is not a URL: {owner}"
                )));
            };
            info!(owner = %owner, "another instance owns this content: its players move onto the owner's stream");
            {
                let mut info = self.info.lock();
                info.engine = None;
                info.engine_session = None;
                info.following = Some(owner.clone());
            }
            self.set_state(SessionState::Recovering);
            let mut upstream = Upstream::new(self, ctx).following();
            let end = upstream.run(url.as_str()).await;
            let delivered = upstream.delivered();
            if !upstream.table_counters().is_empty() {
                *self.table_counters.lock() = upstream.table_counters().to_vec();
            }
            drop(upstream);
            self.info.lock().following = None;
            if delivered {
                barren_since = None;
            }
            match cluster.claim(&self.key).await {
                Owner::There(next) if next != owner || delivered => owner = next,
                Owner::There(_)
                    if barren_since.get_or_insert_with(Instant::now).elapsed() < ctx.stream.init_timeout =>
                {
                    info!(owner = %owner, end = ?end, "the owner served nothing yet; asking it again");
                    keep_alive_for(self, ctx, RETRY_WAIT).await;
                }
                Owner::There(_) => {
                    warn!(owner = %owner, end = ?end, "the instance that owns this content served nothing");
                    return Followed::Failed(StreamError::UpstreamLost(
                        "the instance that owns this content did not serve it".into(),
                    ));
                }
                Owner::Here | Owner::Unknown => {
                    info!("this instance holds the content's lease again: playing it on an engine here");
                    return Followed::Reclaimed;
                }
            }
        }
    }
}

/// `owner`'s `/ace/getstream` URL for `key`.
fn stream_url(owner: &str, key: &ContentKey) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(owner).ok()?.join("/ace/getstream").ok()?;
    url.query_pairs_mut().extend_pairs(key.engine_query());
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::KeyType;

    #[test]
    fn the_owner_url_names_the_content_as_a_player_would() {
        let id = "a".repeat(40);
        let url =
            stream_url("http://10.0.0.5:8000", &ContentKey::new(KeyType::ContentId, id.clone())).unwrap();
        assert_eq!(url.as_str(), format!("http://10.0.0.5:8000/ace/getstream?content_id={id}"));
        let named = ContentKey::from_query(&[
            ("url".into(), "http://example.com/a.acelive?x=1&y=2".into()),
            ("transcode_audio".into(), "1".into()),
        ])
        .unwrap();
        let url = stream_url("http://h:1/", &named).unwrap();
        let back: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(ContentKey::from_query(&back).unwrap(), named, "{url}");
        assert!(stream_url("not a url", &ContentKey::new(KeyType::ContentId, id)).is_none());
    }
}
