//! Settings of player access: who may watch (anyone, or holders of a
//! user's token), the users, and how many wrong tokens an address may try.

use serde::Serialize;

use super::users::User;
use crate::values;

/// Who may start and join streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayerAccess {
    /// Anyone who reaches acemux (bind it to a private network).
    Open,
    /// Only players whose URL carries a user's token.
    Token,
}

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
    /// The file's `[[users]]` (see [`super::users`]).
    #[arg(skip)]
    pub users: Vec<User>,
}

impl AccessSettings {
    /// What only the settings together can make wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.player_access == PlayerAccess::Token && self.users.is_empty() {
            anyhow::bail!(
                "invalid setting {}: `token` needs at least one [[users]] table in the settings file",
                values::setting_names::<Self>("player_access")
            );
        }
        if self.token_failures == 0 {
            anyhow::bail!("invalid setting {}: at least 1", values::setting_names::<Self>("token_failures"));
        }
        Ok(())
    }
}
