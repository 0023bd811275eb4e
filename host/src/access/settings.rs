//! Settings of player access: who may watch (anyone, or holders of a
//! user's token), the users, and how many wrong tokens an address may try.

use serde::Serialize;

use std::path::PathBuf;

use super::users::User;
use crate::values::{self, OrNone};

/// Who may start and join streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayerAccess {
    /// Anyone who reaches acemux (bind it to a private network).
    Open,
    /// Only players whose URL carries a user's token.
    Token,
}

/// What an access plugin that cannot answer means for the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnPluginFailure {
    /// Refused (503): a broken rule does not open the door.
    Deny,
    /// Let in as if the plugin had allowed it.
    Allow,
}

const ON_PLUGIN_FAILURE: &[(&str, OnPluginFailure)] =
    &[("deny", OnPluginFailure::Deny), ("allow", OnPluginFailure::Allow)];

const PLAYER_ACCESS: &[(&str, PlayerAccess)] =
    &[("open", PlayerAccess::Open), ("token", PlayerAccess::Token)];

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct AccessSettings {
    /// `open` (anyone who reaches acemux may watch) or `token` (players,
    /// playlists and the tuner need a `[[users]]` token in their URL).
    #[arg(long, env = "ACEMUX_PLAYER_ACCESS", default_value = "open", value_parser = values::choice(PLAYER_ACCESS))]
    pub player_access: PlayerAccess,
    /// Wrong or missing tokens one address may send in a burst before its
    /// requests get 429 (one more allowed every minute / this).
    #[arg(long, env = "ACEMUX_TOKEN_FAILURES", default_value = "10", value_parser = values::whole_number::<u32>)]
    pub token_failures: u32,
    /// What an access plugin that fails (traps, runs out of time or
    /// memory, is disabled) means for the player: `deny` (503) or `allow`.
    #[arg(long, env = "ACEMUX_ACCESS_PLUGIN_FAILURE", default_value = "deny", value_parser = values::choice(ON_PLUGIN_FAILURE))]
    pub access_plugin_failure: OnPluginFailure,
    /// A file of `[[users]]` tables, re-read when it changes (users can
    /// be added, changed and removed while acemux runs); together with the
    /// settings file's own `[[users]]` [default: none].
    #[arg(long, env = "ACEMUX_USERS_FILE", default_value = "", hide_default_value = true, value_parser = values::path_or_none)]
    pub users_file: OrNone<PathBuf>,
    /// The settings file's `[[users]]` (see [`super::users`]).
    #[arg(skip)]
    pub users: Vec<User>,
    /// The users file's users when acemux started.
    #[arg(skip)]
    pub file_users: Vec<User>,
}

impl AccessSettings {
    /// Reads the users file, if one is named (its errors name the setting).
    pub fn read_users_file(&mut self) -> anyhow::Result<()> {
        let Some(path) = &self.users_file.0 else { return Ok(()) };
        let users = super::users_file::read(path).map_err(|e| {
            anyhow::anyhow!("invalid setting {}: {e:#}", values::setting_names::<Self>("users_file"))
        })?;
        if let Some(u) = users.iter().find(|u| self.users.iter().any(|f| f.name == u.name)) {
            anyhow::bail!(
                "invalid setting {}: user `{}` is in the settings file too",
                values::setting_names::<Self>("users_file"),
                u.name
            );
        }
        self.file_users = users;
        Ok(())
    }

    /// What only the settings together can make wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.player_access == PlayerAccess::Token && self.users.is_empty() && self.users_file.0.is_none() {
            anyhow::bail!(
                "invalid setting {}: `token` needs at least one [[users]] table in the settings file, or a users file",
                values::setting_names::<Self>("player_access")
            );
        }
        if self.token_failures == 0 {
            anyhow::bail!("invalid setting {}: at least 1", values::setting_names::<Self>("token_failures"));
        }
        Ok(())
    }
}
