//! The settings of one acemux process, assembled from each concern's own.
//!
//! Every setting is declared once, beside the code that uses it, as a
//! field of its concern's `clap::Args` struct: flag, environment variable,
//! default, help text and parser in one attribute, and the file key is the
//! argument's id. This module only puts the concerns side by side
//! ([`Settings`]), adds the TOML file as a layer between the environment
//! and the defaults ([`file`]), and checks what spans two settings.
//!
//! Precedence: command-line flag > environment variable > TOML file
//! (`--config`) > default. A bad value, wherever it came from, stops acemux
//! with a message naming the flag, the environment variable and the file
//! key (`invalid setting --grace-period / PROXY_GRACE_PERIOD / file key
//! `grace_period`: …`).

mod file;
mod legacy;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use crate::values::SECRET_VARIABLES;
pub use legacy::unused_settings;

use crate::access::AccessSettings;
use crate::channels::ChannelSettings;
use crate::cluster::ClusterSettings;
use crate::engine::EngineSettings;
use crate::engine_api::EngineApiSettings;
use crate::hls::HlsSettings;
use crate::http::{DashboardSettings, FrontDoorSettings};
use crate::orchestrator::OrchestratorSettings;
use crate::plugins::PluginHostSettings;
use crate::stream::StreamSettings;
use crate::stream::alternates::AlternatesSettings;

/// The command line: what to do, the settings file, and the settings.
#[derive(Debug, Parser)]
#[command(
    name = "acemux",
    version = crate::plugins::contract::ACEMUX_VERSION,
    // `--grace-period -1` reaches the setting's parser, which names it.
    allow_negative_numbers = true,
    about = "AceStream proxy: one engine session per content, shared by every player"
)]
pub struct Cli {
    /// TOML settings file (keys are the long flag names with `_`)
    /// [default: none].
    #[arg(long, env = "ACEMUX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also start a simulated engine in-process and use it as the only
    /// engine, so acemux works without AceStream.
    #[arg(long, env = "ACEMUX_DEMO")]
    pub demo: bool,
    /// Instead of serving: ask the acemux listening on `--listen` for
    /// /healthz and exit 0 if it answers, 1 if not (a container health
    /// check that needs no shell or curl).
    #[arg(long)]
    pub healthcheck: bool,
    #[command(flatten)]
    pub settings: Settings,
}

/// Every concern's settings, validated.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten, next_help_heading = "Listening and the front door")]
    pub front: FrontDoorSettings,
    #[command(flatten, next_help_heading = "Engines")]
    pub engines: EngineSettings,
    #[command(flatten, next_help_heading = "Orchestrator")]
    pub orchestrator: OrchestratorSettings,
    #[command(flatten, next_help_heading = "The stream and its buffer")]
    pub stream: StreamSettings,
    #[command(flatten, next_help_heading = "HLS")]
    pub hls: HlsSettings,
    #[command(flatten, next_help_heading = "Plugins")]
    pub plugins: PluginHostSettings,
    #[command(flatten, next_help_heading = "Cluster")]
    pub cluster: ClusterSettings,
    #[command(flatten, next_help_heading = "Channels")]
    pub channels: ChannelSettings,
    #[command(flatten, next_help_heading = "Failover between a channel's ids")]
    pub alternates: AlternatesSettings,
    #[command(flatten, next_help_heading = "Who may watch")]
    pub access: AccessSettings,
    #[command(flatten, next_help_heading = "Dashboard")]
    pub dashboard: DashboardSettings,
    #[command(flatten, next_help_heading = "The engine API acemux answers")]
    pub engine_api: EngineApiSettings,
}

/// Why the command line was not taken.
#[derive(Debug)]
pub enum LoadError {
    /// Help, version, an unknown flag: clap prints it and picks the exit
    /// code (`error.exit()`).
    Usage(clap::Error),
    /// A setting's value (or the settings file) is wrong; the message
    /// names the setting.
    Invalid(anyhow::Error),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Usage(e) => write!(f, "{e}"),
            LoadError::Invalid(e) => write!(f, "{e:#}"),
        }
    }
}

/// Where the values come from, besides the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Environment {
    /// The process environment (a real start).
    Process,
    /// None (tests and embedding: the same settings whatever is set).
    Ignored,
}

impl Cli {
    /// Parses `args` (the program name first) over the environment and the
    /// settings file, and validates the result.
    pub fn load<I, T>(args: I) -> Result<Self, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::load_with(args, Environment::Process)
    }

    fn load_with<I, T>(args: I, environment: Environment) -> Result<Self, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // Errors name every setting by all its names, its environment
        // variable too, even when the environment is not read.
        let naming = Self::command();
        let mut command = naming.clone();
        if environment == Environment::Ignored {
            command = file::without_environment(command);
        }
        // First pass: only to learn which file to read.
        let first = command.clone().ignore_errors(true).try_get_matches_from(&args).ok();
        let path = first.as_ref().and_then(|m| m.get_one::<PathBuf>("config").cloned());
        let table = match &path {
            Some(path) => file::read(path).map_err(LoadError::Invalid)?,
            None => toml::Table::new(),
        };
        let command = file::beneath(command, &naming, &table, path.as_deref(), FILE_ONLY_KEYS)
            .map_err(LoadError::Invalid)?;
        let mut matches =
            command.clone().try_get_matches_from(&args).map_err(|e| file::explain(e, &naming))?;
        let engines_given = file::given(&matches, "engines");
        let mut cli = Self::from_arg_matches_mut(&mut matches).map_err(|e| file::explain(e, &naming))?;
        if let Some(value) = table.get("engines")
            && !engines_given
        {
            cli.settings.engines.engines =
                crate::engine::settings::engines_from_file(value).map_err(|why| {
                    LoadError::Invalid(anyhow::anyhow!(
                        "invalid setting {}: {why}",
                        file::names(&naming, "engines")
                    ))
                })?;
        }
        let engines_listed = engines_given || table.contains_key("engines");
        if let Some(value) = table.get("channels") {
            cli.settings.channels.channels =
                crate::channels::settings::channels_from_file(value).map_err(LoadError::Invalid)?;
        }
        if let Some(value) = table.get("sources") {
            cli.settings.channels.sources =
                crate::channels::source::sources_from_file(value).map_err(LoadError::Invalid)?;
        }
        if let Some(value) = table.get("users") {
            cli.settings.access.users =
                crate::access::users::users_from_file(value).map_err(LoadError::Invalid)?;
        }
        cli.settings.access.read_users_file().map_err(LoadError::Invalid)?;
        if let Some(value) = table.get("guides") {
            cli.settings.channels.guides =
                crate::channels::guide::guides_from_file(value).map_err(LoadError::Invalid)?;
        }
        if cli.settings.orchestrator.orchestrator_url.is_some() && !engines_listed {
            // With an orchestrator, engines come from it unless listed.
            cli.settings.engines.engines.clear();
        }
        cli.settings.validate().map_err(LoadError::Invalid)?;
        Ok(cli)
    }
}

/// File keys that are tables or lists of tables rather than one flag's
/// value; each concern reads its own.
const FILE_ONLY_KEYS: &[&str] = &["engines", "channels", "sources", "guides", "users"];

impl Settings {
    /// What only two settings together can make wrong.
    fn validate(&self) -> anyhow::Result<()> {
        self.stream.validate()?;
        self.access.validate()?;
        self.hls.validate()?;
        self.plugins.validate()?;
        self.cluster.validate()?;
        Ok(())
    }

    /// Settings for tests and embedding: the defaults (the process
    /// environment is not read) with the given engines.
    pub fn with_engines(engines: &[String]) -> anyhow::Result<Self> {
        let mut args = vec!["acemux".to_owned()];
        for engine in engines {
            args.extend(["--engine".to_owned(), engine.clone()]);
        }
        Self::from_args(args)
    }

    /// Settings from command-line arguments alone (the program name first),
    /// for tests and embedding: the process environment is not read.
    pub fn from_args<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        match Cli::load_with(args, Environment::Ignored) {
            Ok(cli) => Ok(cli.settings),
            Err(LoadError::Usage(e)) => Err(anyhow::anyhow!("{e}")),
            Err(LoadError::Invalid(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
