//! The access plugins' say on a new player (WIT world `access-plugin`),
//! after acemux's own checks (token, groups) and before anything starts.
//! A plugin that cannot answer denies unless the operator chose
//! `--access-plugin-failure allow`: a broken rule must not open the door.

use std::sync::Arc;

use crate::engine::select::SelectRequest;
use crate::events::PlayerKind;
use crate::plugins::PluginHost;
use crate::plugins::access::AccessVerdict;
use crate::plugins::bindings::{KeyType, WitViewer};

use super::Viewer;
use super::settings::OnPluginFailure;

/// Why the access plugins refused a player.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginRefusal {
    #[error("{0}")]
    Denied(String),
    #[error("the access check failed; try again later")]
    CheckFailed,
}

/// A new player as the access plugins are told of it.
pub struct NewPlayer<'a> {
    pub request: &'a SelectRequest,
    pub kind: PlayerKind,
    /// The listed channel it plays, if any: its name and group.
    pub channel: Option<(&'a str, Option<&'a str>)>,
}

/// Asks the access plugins about `player` of `viewer` (the caller saw that
/// some are loaded: `PluginHost::checks_access`); their limits, if any,
/// become the viewer's (tighter than its user's own).
pub async fn consult(
    plugins: Option<&Arc<PluginHost>>,
    on_failure: OnPluginFailure,
    viewer: &mut Viewer,
    player: NewPlayer<'_>,
) -> Result<(), PluginRefusal> {
    let Some(host) = plugins else { return Ok(()) };
    let request = player.request;
    let (content_key, key_type) = match &request.content {
        Some(key) => (key.id.clone(), crate::plugins::select::key_type(key.key_type)),
        None => (String::new(), KeyType::ContentId),
    };
    let asked = WitViewer {
        user: viewer.user.as_ref().map(|u| u.name.clone()),
        client_address: request.client.map(crate::plugins::address::address_text),
        content_key,
        key_type,
        channel_name: player.channel.map(|(name, _)| name.to_owned()),
        channel_group: player.channel.and_then(|(_, group)| group.map(str::to_owned)),
        kind: crate::plugins::events::player_kind(player.kind),
        query: request.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    let user = asked.user.as_deref().unwrap_or("-");
    match host.check_access(&asked).await {
        AccessVerdict::Allow { max_players, max_streams } => {
            let limit = |n: Option<u32>| n.map(|n| n as usize);
            viewer.tighter = crate::stream::UserLimits {
                max_players: limit(max_players),
                max_streams: limit(max_streams),
            };
            Ok(())
        }
        AccessVerdict::Deny { plugin, reason } => {
            tracing::info!(plugin = &*plugin, user, %reason, "an access plugin denied a player");
            Err(PluginRefusal::Denied(reason))
        }
        AccessVerdict::Failed { plugin, error } => match on_failure {
            OnPluginFailure::Deny => {
                tracing::warn!(plugin = &*plugin, user, %error, "access plugin failed: player denied");
                Err(PluginRefusal::CheckFailed)
            }
            OnPluginFailure::Allow => {
                tracing::warn!(plugin = &*plugin, user, %error, "access plugin failed: player let in (--access-plugin-failure allow)");
                Ok(())
            }
        },
    }
}
