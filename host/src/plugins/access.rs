//! Access plugins: asked about every new player (see `crate::access`).
//! Each is asked in order; the first denial wins, the tightest limits of
//! all apply, and a failure (a trap, the budget, the memory cap, a
//! disabled plugin) is told apart so the caller can fail closed.

use std::sync::Arc;

use super::bindings::exports::acemux::plugin::access::{Decision, Limits, Viewer};
use super::host::PluginHost;
use super::plugin::{CallError, Plugin};

/// Idle access-check instances kept per plugin; more concurrent checks
/// instantiate their own (tens of microseconds) and drop it after.
const IDLE_INSTANCES: usize = 4;

/// What the access plugins say of one player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessVerdict {
    /// Let in, within these limits (none: the user's own).
    Allow {
        max_players: Option<u32>,
        max_streams: Option<u32>,
    },
    Deny {
        plugin: Arc<str>,
        reason: String,
    },
    /// A plugin could not answer.
    Failed {
        plugin: Arc<str>,
        error: String,
    },
}

impl PluginHost {
    /// Whether any access plugin is loaded and enabled (disabled after
    /// failures counts: it fails every check).
    pub fn checks_access(&self) -> bool {
        self.current().plugins.iter().any(|p| p.capabilities.access && p.settings.enabled)
    }

    /// Asks every access plugin about `viewer`.
    pub async fn check_access(&self, viewer: &Viewer) -> AccessVerdict {
        let set = self.current();
        let (mut max_players, mut max_streams) = (None, None);
        let tighter = |now: Option<u32>, said: Option<u32>| match (now, said) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for plugin in set.plugins.iter().filter(|p| p.capabilities.access && p.settings.enabled) {
            match plugin.check_access(viewer).await {
                Ok(Decision::Allow) => {}
                Ok(Decision::AllowWithin(Limits { max_players: p, max_streams: s })) => {
                    max_players = tighter(max_players, p);
                    max_streams = tighter(max_streams, s);
                }
                Ok(Decision::Deny(reason)) => {
                    let reason = crate::values::one_line(&reason, 300).unwrap_or_else(|| "denied".into());
                    return AccessVerdict::Deny { plugin: plugin.name.clone(), reason };
                }
                Err(e) => return AccessVerdict::Failed { plugin: plugin.name.clone(), error: e.to_string() },
            }
        }
        AccessVerdict::Allow { max_players, max_streams }
    }
}

impl Plugin {
    /// Asks this access plugin about `viewer`, in an instance of its own.
    pub async fn check_access(&self, viewer: &Viewer) -> Result<Decision, CallError> {
        let Some(indices) = &self.access else { return Err(CallError::Disabled) };
        let idle = self.idle_access.lock().pop();
        let (mut store, guest) = match idle {
            Some(instance) => instance,
            None => {
                let made = self.instantiate(|store, instance| indices.load(store, instance)).await;
                self.account_setup(made)?
            }
        };
        let result = self.guarded(&mut store, |s| guest.call_check(s, viewer)).await;
        if !result.as_ref().is_err_and(CallError::poisons) {
            let mut idle = self.idle_access.lock();
            if idle.len() < IDLE_INSTANCES {
                idle.push((store, guest));
            }
        }
        self.account(result)
    }
}
