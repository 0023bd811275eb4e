//! The `[[sources]]` tables of the settings file: where channels come
//! from besides the operator's own `[[channels]]`, how often they are read
//! again, and the bounds and rules each source's channels go through.
//!
//! ```toml
//! [[sources]]
//! name = "friends"
//! kind = "m3u"
//! url = "https://example.org/ace.m3u"   # or path = "/etc/acemux/ace.m3u"
//! refresh = "15m"
//! include_group = "(?i)sport"
//! prefix = "F: "
//!
//! [[sources]]
//! name = "search"
//! kind = "search"
//! queries = ["football"]
//! categories = ["sport"]
//!
//! [[sources]]
//! name = "site"
//! kind = "plugin"
//! plugin = "json-source"                # json-source.wasm in the plugin directory
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::rules::{Rules, RulesFile};
use crate::values;

/// A source's refresh period unless it names one.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);
/// Shortest refresh period: whatever a source does, acemux reads it no
/// more often than this.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Largest M3U list read unless the source says otherwise.
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;
/// Largest `max_bytes` a source may give.
pub const MAX_MAX_BYTES: usize = 256 << 20;
/// Longest a fetch may take unless the source says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Sources at most.
const MAX_SOURCES: usize = 64;
/// Search queries and categories per source at most.
const MAX_TERMS: usize = 32;

/// Where a source's channels come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// An M3U list in a local file.
    M3uFile(PathBuf),
    /// An M3U list at an `http(s)` URL.
    M3uUrl(String),
    /// The engine's search, through a healthy engine of the pool: each
    /// query and each category is one search, grouped by channel.
    Search { queries: Vec<String>, categories: Vec<String> },
    /// A channel-source plugin of the plugin directory, by name.
    Plugin(String),
}

impl SourceKind {
    /// `m3u` or `search`, as the table names it.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::M3uFile(_) | SourceKind::M3uUrl(_) => "m3u",
            SourceKind::Search { .. } => "search",
            SourceKind::Plugin(_) => "plugin",
        }
    }
}

/// One `[[sources]]` table, checked.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub refresh: Duration,
    /// Largest answer read.
    pub max_bytes: usize,
    /// Longest a fetch (connect, redirects, body) may take.
    pub timeout: Duration,
    /// Whether the guide an M3U list names (`url-tvg`) is read (`guide =
    /// false` for a list whose URLs acemux should not follow).
    pub follow_guide: bool,
    pub rules: Rules,
}

/// Keys a `[[sources]]` table may have.
const SOURCE_KEYS: &[&str] = &[
    "name",
    "kind",
    "path",
    "url",
    "plugin",
    "refresh",
    "max_bytes",
    "timeout",
    "guide",
    "queries",
    "categories",
    "include",
    "exclude",
    "include_group",
    "exclude_group",
    "rename",
    "group",
    "prefix",
];

#[derive(Deserialize)]
struct SourceFile {
    name: String,
    kind: String,
    path: Option<PathBuf>,
    url: Option<String>,
    plugin: Option<String>,
    refresh: Option<String>,
    max_bytes: Option<String>,
    timeout: Option<String>,
    guide: Option<bool>,
    #[serde(default)]
    queries: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(flatten)]
    rules: RulesFile,
}

/// The file's `[[sources]]`; an error names the table and the key.
pub fn sources_from_file(value: &toml::Value) -> anyhow::Result<Vec<Source>> {
    crate::values::named_tables(value, "sources", MAX_SOURCES, source_from_table, |s| &s.name)
}

fn source_from_table(value: &toml::Value) -> Result<Source, String> {
    let table = value.as_table().ok_or("not a table")?;
    if let Some(k) = table.keys().find(|k| !SOURCE_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` (known keys: {})", SOURCE_KEYS.join(", ")));
    }
    let file: SourceFile = value.clone().try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
    let name = file.name.trim().to_owned();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err("`name` must be 1 to 64 printable characters".into());
    }
    let at = |why: String| format!("{name}: {why}");
    if file.kind != "search" && !(file.queries.is_empty() && file.categories.is_empty()) {
        return Err(at("`queries` and `categories` are for search sources".into()));
    }
    if file.kind != "plugin" && file.plugin.is_some() {
        return Err(at("`plugin` is for plugin sources".into()));
    }
    let kind = match (file.kind.as_str(), file.path, file.url) {
        ("m3u", Some(path), None) => SourceKind::M3uFile(path),
        ("m3u", None, Some(url)) => {
            SourceKind::M3uUrl(values::http_url(&url).map_err(|e| at(format!("`url`: {e}")))?)
        }
        ("m3u", _, _) => return Err(at("an m3u source needs exactly one of `path` and `url`".into())),
        ("search", None, None) => {
            let terms = |key: &str, list: Vec<String>| -> Result<Vec<String>, String> {
                let list: Vec<String> =
                    list.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
                if list.len() > MAX_TERMS || list.iter().any(|t| t.len() > 256) {
                    return Err(at(format!("`{key}`: at most {MAX_TERMS} terms of at most 256 bytes")));
                }
                Ok(list)
            };
            let queries = terms("queries", file.queries)?;
            let categories = terms("categories", file.categories)?;
            if queries.is_empty() && categories.is_empty() {
                return Err(at("a search source needs `queries`, `categories` or both".into()));
            }
            SourceKind::Search { queries, categories }
        }
        ("search", _, _) => return Err(at("a search source takes no `path` or `url`".into())),
        ("plugin", None, None) => match file.plugin.as_deref().map(str::trim) {
            Some(plugin) if !plugin.is_empty() && plugin.len() <= 128 => {
                SourceKind::Plugin(plugin.to_owned())
            }
            _ => {
                return Err(at(
                    "a plugin source needs `plugin`: the plugin's name (its file name without .wasm)".into(),
                ));
            }
        },
        ("plugin", _, _) => return Err(at("a plugin source takes no `path` or `url`".into())),
        (other, _, _) => {
            return Err(at(format!("`kind` must be `m3u`, `search` or `plugin` (got `{other}`)")));
        }
    };
    let refresh = match file.refresh {
        Some(text) => values::duration_within(&text, MIN_REFRESH, Duration::from_secs(7 * 24 * 3600))
            .map_err(|e| at(format!("`refresh`: {e}")))?,
        None => DEFAULT_REFRESH,
    };
    let max_bytes = match file.max_bytes {
        Some(text) => {
            let n = values::size(&text).map_err(|e| at(format!("`max_bytes`: {e}")))?;
            if n == 0 || n > MAX_MAX_BYTES {
                return Err(at(format!(
                    "`max_bytes` must be between 1 and {}",
                    values::format_size(MAX_MAX_BYTES)
                )));
            }
            n
        }
        None => DEFAULT_MAX_BYTES,
    };
    let timeout = match file.timeout {
        Some(text) => values::duration_within(&text, Duration::from_secs(1), Duration::from_secs(600))
            .map_err(|e| at(format!("`timeout`: {e}")))?,
        None => DEFAULT_TIMEOUT,
    };
    let rules = Rules::compile(&file.rules).map_err(at)?;
    Ok(Source { name, kind, refresh, max_bytes, timeout, follow_guide: file.guide.unwrap_or(true), rules })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Vec<Source>> {
        let table: toml::Table = text.parse().unwrap();
        sources_from_file(&table["sources"])
    }

    #[test]
    fn reads_m3u_and_search_sources_with_defaults() {
        let sources = parse(
            "[[sources]]\nname = 'a'\nkind = 'm3u'\nurl = 'http://h/x.m3u'\nrefresh = '10m'\ngroup = 'G'\n\
             [[sources]]\nname = 'b'\nkind = 'm3u'\npath = '/tmp/x.m3u'\nguide = false\n\
             [[sources]]\nname = 'c'\nkind = 'search'\nqueries = ['sport']\n\
             [[sources]]\nname = 'd'\nkind = 'plugin'\nplugin = 'json-source'\n",
        )
        .unwrap();
        assert_eq!(sources[0].kind, SourceKind::M3uUrl("http://h/x.m3u".into()));
        assert_eq!(sources[0].refresh, Duration::from_secs(600));
        assert_eq!(sources[1].refresh, DEFAULT_REFRESH);
        assert_eq!(sources[1].max_bytes, DEFAULT_MAX_BYTES);
        assert!(sources[0].follow_guide && !sources[1].follow_guide);
        assert_eq!(sources[2].kind, SourceKind::Search { queries: vec!["sport".into()], categories: vec![] });
        assert_eq!(sources[3].kind, SourceKind::Plugin("json-source".into()));
    }

    #[test]
    fn every_mistake_names_the_source_and_key() {
        let cases = [
            ("name = 'a'\nkind = 'm3u'", "exactly one of `path` and `url`"),
            ("name = 'a'\nkind = 'm3u'\nurl = 'ftp://x'", "`url`"),
            ("name = 'a'\nkind = 'rss'\nurl = 'http://x'", "`kind` must be"),
            ("name = 'a'\nkind = 'm3u'\nurl = 'http://x'\nrefresh = '0s'", "`refresh`"),
            ("name = 'a'\nkind = 'm3u'\nurl = 'http://x'\nmax_bytes = '1G'", "`max_bytes`"),
            ("name = 'a'\nkind = 'm3u'\nurl = 'http://x'\nincldue = 'x'", "unknown key `incldue`"),
            ("name = 'a'\nkind = 'm3u'\nurl = 'http://x'\ninclude = '('", "`include`"),
            ("name = 'a'\nkind = 'search'", "needs `queries`"),
            ("name = 'a'\nkind = 'plugin'", "needs `plugin`"),
            ("name = 'a'\nkind = 'm3u'\npath = 'x'\nplugin = 'p'", "`plugin` is for plugin sources"),
            ("kind = 'm3u'\nurl = 'http://x'", "name"),
        ];
        for (table, expect) in cases {
            let err = format!("{:#}", parse(&format!("[[sources]]\n{table}\n")).unwrap_err());
            assert!(err.contains("`sources` entry 1") && err.contains(expect), "{table}: {err}");
        }
        let err = parse(
            "[[sources]]\nname='a'\nkind='m3u'\npath='x'\n[[sources]]\nname='a'\nkind='m3u'\npath='y'\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("used twice"), "{err}");
    }
}
