//! The settings file as a layer between the environment and the defaults.
//!
//! clap already takes a flag over its environment variable over its
//! default; a value the file gives for a setting becomes that setting's
//! default before the command line is parsed, so the file sits exactly
//! between the two and its values go through the same parser. A file key
//! is the setting's argument id (the long flag with `_`), checked against
//! the declared settings, so a typo is an error rather than a setting
//! silently left at its default.

use std::path::Path;

use anyhow::{Context, bail};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use super::LoadError;
use crate::values;

/// Largest settings file read (an operator's file of thousands of
/// `[[channels]]` is well under it).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Arguments that are not settings: what to do, and the file itself.
const NOT_IN_FILE: &[&str] = &["config", "demo", "healthcheck", "help", "version"];

/// Reads and parses the settings file.
pub fn read(path: &Path) -> anyhow::Result<toml::Table> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read settings file {shown} (--config / ACEMUX_CONFIG)"))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "settings file {shown} is {size} bytes, more than the {MAX_FILE_BYTES} a settings file may have"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read settings file {shown} (--config / ACEMUX_CONFIG)"))?;
    text.parse().with_context(|| format!("settings file {shown} is not valid TOML"))
}

/// `command` with every value `table` gives as its setting's default;
/// `structured` keys are read by their concerns instead. Errors name
/// settings as `naming` declares them.
pub fn beneath(
    mut command: Command,
    naming: &Command,
    table: &toml::Table,
    path: Option<&Path>,
    structured: &[&str],
) -> anyhow::Result<Command> {
    for (key, value) in table {
        if structured.contains(&key.as_str()) {
            continue;
        }
        let known = command.get_arguments().any(|a| a.get_id() == key.as_str())
            && !NOT_IN_FILE.contains(&key.as_str());
        if !known {
            let mut keys: Vec<&str> = command
                .get_arguments()
                .map(|a| a.get_id().as_str())
                .filter(|id| !NOT_IN_FILE.contains(id))
                .chain(structured.iter().copied())
                .collect();
            keys.sort_unstable();
            let path = path.map_or_else(String::new, |p| format!(" {}", p.display()));
            bail!("settings file{path}: unknown key `{key}` (known keys: {})", keys.join(", "));
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!("invalid setting {}: `{other}` is not a string or number", names(naming, key)),
        };
        command = command.mut_arg(key.as_str(), |arg| arg.default_value(text));
    }
    Ok(command)
}

/// `command` reading no environment variable (tests and embedding).
pub fn without_environment(mut command: Command) -> Command {
    let ids: Vec<String> = command.get_arguments().map(|a| a.get_id().to_string()).collect();
    for id in ids {
        command = command.mut_arg(id, |arg| arg.env(None::<&'static str>));
    }
    command
}

/// Whether the setting `id` was given on the command line or in the
/// environment (not by the file or its default).
pub fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
}

/// `--flag / ENV / file key `key`` of the setting `id`.
pub fn names(command: &Command, id: &str) -> String {
    command.get_arguments().find(|a| a.get_id() == id).map_or_else(|| format!("`{id}`"), values::describe)
}

/// A value that its setting's parser refused becomes an error naming the
/// setting by all its names; anything else is clap's to tell.
pub fn explain(error: clap::Error, command: &Command) -> LoadError {
    if matches!(error.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue)
        && let Some(ContextValue::String(shown)) = error.get(ContextKind::InvalidArg)
        && let Some(long) = shown.split_whitespace().next().and_then(|f| f.strip_prefix("--"))
        && let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(long))
    {
        let value = match error.get(ContextKind::InvalidValue) {
            Some(ContextValue::String(v)) => v.clone(),
            _ => String::new(),
        };
        let why = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("`{value}` is not a valid value"));
        return LoadError::Invalid(anyhow::anyhow!("invalid setting {}: {why}", values::describe(arg)));
    }
    LoadError::Usage(error)
}
