//! What an operator does to a source's channels before they are listed:
//! keep or drop them by name and group, rename them, put them in a group,
//! prefix their names. Written per `[[sources]]` table; compiled when the
//! settings are read, so a bad expression stops acemux with a message
//! naming the source and the key instead of failing at every refresh.
//!
//! Order: `include`/`exclude` (names) and `include_group`/`exclude_group`
//! see the channel as the source gave it; then each `rename` in turn;
//! then `prefix`; then `group` replaces the group.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::catalog::SourceChannel;

/// Compiled size a rule's expression may take (the `regex` crate's own
/// bound), so an expression cannot make every refresh slow.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One `[[sources.rename]]`: `pattern` replaced by `to` (`$1`… refer to
/// the pattern's groups), every match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameFile {
    pub pattern: String,
    pub to: String,
}

/// The rule keys of a `[[sources]]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulesFile {
    pub include: Option<String>,
    pub exclude: Option<String>,
    pub include_group: Option<String>,
    pub exclude_group: Option<String>,
    #[serde(default)]
    pub rename: Vec<RenameFile>,
    pub group: Option<String>,
    pub prefix: Option<String>,
}

/// A source's rules, compiled.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    include: Option<Regex>,
    exclude: Option<Regex>,
    include_group: Option<Regex>,
    exclude_group: Option<Regex>,
    rename: Vec<(Regex, String)>,
    group: Option<String>,
    prefix: Option<String>,
}

fn compile(key: &str, pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("`{key}` is not a valid regular expression: {e}"))
}

impl Rules {
    /// Compiles what a table wrote; the error names the key.
    pub fn compile(file: &RulesFile) -> Result<Self, String> {
        let one = |key: &str, p: &Option<String>| p.as_deref().map(|p| compile(key, p)).transpose();
        Ok(Self {
            include: one("include", &file.include)?,
            exclude: one("exclude", &file.exclude)?,
            include_group: one("include_group", &file.include_group)?,
            exclude_group: one("exclude_group", &file.exclude_group)?,
            rename: file
                .rename
                .iter()
                .map(|r| Ok((compile("rename.pattern", &r.pattern)?, r.to.clone())))
                .collect::<Result<_, String>>()?,
            group: file.group.clone().filter(|g| !g.trim().is_empty()),
            prefix: file.prefix.clone().filter(|p| !p.is_empty()),
        })
    }

    /// Whether a channel named `name` in `group` is kept. A channel
    /// without a group is matched as the empty group.
    pub fn keeps(&self, name: &str, group: Option<&str>) -> bool {
        let group = group.unwrap_or("");
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
            && self.include_group.as_ref().is_none_or(|r| r.is_match(group))
            && !self.exclude_group.as_ref().is_some_and(|r| r.is_match(group))
    }

    /// The listed name: renamed, then prefixed.
    pub fn name(&self, name: &str) -> String {
        let mut name = name.to_owned();
        for (pattern, to) in &self.rename {
            name = pattern.replace_all(&name, to.as_str()).into_owned();
        }
        match &self.prefix {
            Some(prefix) => format!("{prefix}{name}"),
            None => name,
        }
    }

    /// The listed group.
    pub fn group(&self, group: Option<String>) -> Option<String> {
        self.group.clone().or(group)
    }

    /// A source's channels as listed: those kept, renamed and grouped;
    /// and how many were left out.
    pub fn apply(&self, channels: Vec<SourceChannel>) -> (Vec<SourceChannel>, usize) {
        let total = channels.len();
        let kept: Vec<SourceChannel> = channels
            .into_iter()
            .filter(|c| self.keeps(&c.channel.name, c.channel.group.as_deref()))
            .map(|mut c| {
                c.channel.name = self.name(&c.channel.name);
                c.channel.group = self.group(c.channel.group.take());
                c
            })
            .collect();
        let excluded = total - kept.len();
        (kept, excluded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml: &str) -> Rules {
        let file: RulesFile = toml::from_str(toml).unwrap();
        Rules::compile(&file).unwrap()
    }

    #[test]
    fn filters_see_the_source_s_names_then_rename_prefix_and_group_apply() {
        let r = rules(
            "include = '(?i)sport|news'\nexclude = 'XXX'\nexclude_group = '^Adult$'\n\
             prefix = 'ES: '\ngroup = 'Spain'\n\
             [[rename]]\npattern = ' (HD|FHD)$'\nto = ''\n\
             [[rename]]\npattern = '^Movistar (.*)'\nto = 'M+ $1'\n",
        );
        assert!(r.keeps("Sport 1 HD", Some("Sport")));
        assert!(!r.keeps("Movies", None), "not included");
        assert!(!r.keeps("Sport XXX", None), "excluded by name");
        assert!(!r.keeps("News", Some("Adult")), "excluded by group");
        assert_eq!(r.name("Movistar Deportes FHD"), "ES: M+ Deportes");
        assert_eq!(r.group(Some("Sport".into())).as_deref(), Some("Spain"));
        assert_eq!(Rules::default().group(Some("Sport".into())).as_deref(), Some("Sport"));
    }

    #[test]
    fn a_bad_expression_is_named() {
        let file: RulesFile = toml::from_str("include_group = '(unclosed'").unwrap();
        let err = Rules::compile(&file).unwrap_err();
        assert!(err.starts_with("`include_group` is not a valid regular expression"), "{err}");
    }
}
