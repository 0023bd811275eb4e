//! Settings of the orchestrator link: where it is, how often its engine
//! list is read, and the key acemux sends it.

use std::time::Duration;

use crate::values::{self, OrNone};

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct OrchestratorSettings {
    /// Orchestrator base URL: engines from `GET /engines`, stream events
    /// to `POST /events/…`; without `--engine`, engines come only from it
    /// [default: none].
    #[arg(long, env = "ORCHESTRATOR_URL", default_value = "", hide_default_value = true, value_parser = values::empty_is_none(values::http_url))]
    pub orchestrator_url: OrNone<String>,
    /// Period of the orchestrator's engine list refresh.
    #[arg(long, env = "ACEMUX_ORCHESTRATOR_REFRESH", default_value = "30", value_parser = values::positive_duration)]
    pub orchestrator_refresh: Duration,
    /// Bearer token sent to the orchestrator [default: none].
    #[arg(long, env = "API_KEY", hide_env_values = true, value_parser = values::token)]
    pub api_key: Option<String>,
}
