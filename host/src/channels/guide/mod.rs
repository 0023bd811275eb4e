//! The programme guide acemux serves for its channels (`/epg.xml`): the
//! XMLTV guides of `[[guides]]` and the ones M3U sources name in their
//! header (`url-tvg`), read as streams ([`xmltv`]), plus what the engine's
//! search says of its channels; written back for exactly the listed
//! channels ([`write`]).
//!
//! A guide is fetched on its own period (a source's guide when its list is
//! read, at most every [`SOURCE_GUIDE_REFRESH`]), conditionally, bounded in
//! bytes (gzip or not) and time; a guide that fails keeps its last good
//! programmes. Only the programmes of channels listed when the guide is
//! read are kept (matched by `tvg-id`, then by name: the listed name or
//! the one its source gave before rules renamed it), so a channel that
//! appears later gets its programmes at that guide's next read.

pub mod time;
pub mod write;
pub mod xmltv;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

use super::catalog::Listing;
use super::fetch::{self, Validators};
use crate::values;

/// How often a source's guide is read again (with its list, no more often).
pub const SOURCE_GUIDE_REFRESH: Duration = Duration::from_secs(6 * 3600);
/// A `[[guides]]` guide's period unless it names one.
const DEFAULT_REFRESH: Duration = Duration::from_secs(6 * 3600);
/// Largest guide read (the XML, and the compressed bytes), unless a guide says.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;
const MAX_MAX_BYTES: usize = 1 << 30;
/// Longest a guide's fetch may take unless it says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Programmes are kept from this long ago to this far ahead.
const PAST: i64 = 6 * 3600;
const AHEAD: i64 = 14 * 86_400;
const MAX_GUIDES: usize = 32;

/// Where a guide is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Url(String),
    Path(PathBuf),
}

/// One guide: where, how often, its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideSpec {
    /// `[[guides]]`' name, or `source:<name>` for a source's guide.
    pub name: String,
    pub location: Location,
    pub refresh: Duration,
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// A guide and what it last gave.
pub struct GuideSlot {
    pub spec: GuideSpec,
    state: Mutex<GuideState>,
}

/// What is known of a guide.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuideState {
    #[serde(skip)]
    pub guide: Arc<xmltv::Guide>,
    #[serde(skip)]
    pub validators: Validators,
    #[serde(skip)]
    pub last_attempt: Option<SystemTime>,
    pub error: Option<String>,
    pub channels: usize,
    pub programmes: usize,
    pub skipped: usize,
}

impl GuideSlot {
    pub fn new(spec: GuideSpec) -> Self {
        Self { spec, state: Mutex::default() }
    }

    pub fn state(&self) -> GuideState {
        self.state.lock().clone()
    }

    /// Whether its period has passed since the last read.
    pub fn due(&self) -> bool {
        self.state
            .lock()
            .last_attempt
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|since| since >= self.spec.refresh)
    }

    /// Reads the guide again, keeping the programmes of `listing`'s
    /// channels; a failure keeps the last good ones.
    pub async fn refresh(&self, http: &reqwest::Client, listing: &Listing) {
        let since = self.state.lock().validators.clone();
        let now = time::now();
        let wanted = xmltv::Wanted {
            ids: listing.channels.iter().filter_map(|l| l.channel.tvg_id.clone()).collect(),
            names: listing
                .channels
                .iter()
                .flat_map(|l| std::iter::once(&l.channel.name).chain(l.source_name.as_ref()))
                .map(|name| xmltv::fold(name))
                .collect(),
            from: now - PAST,
            until: now + AHEAD,
        };
        let spec = &self.spec;
        let read = read_guide(http, &spec.location, &since, spec.max_bytes, spec.timeout, wanted).await;
        let mut state = self.state.lock();
        state.last_attempt = Some(SystemTime::now());
        match read {
            Ok(Some((guide, validators))) => {
                state.channels = guide.programmes.len();
                state.programmes = guide.programmes.values().map(Vec::len).sum();
                state.skipped = guide.skipped;
                state.guide = Arc::new(guide);
                state.validators = validators;
                state.error = None;
                tracing::info!(guide = %self.spec.name, channels = state.channels, programmes = state.programmes, "guide read");
            }
            Ok(None) => state.error = None,
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(guide = %self.spec.name, error, "guide refresh failed; its last good programmes stay");
                state.error = Some(error);
            }
        }
    }
}

/// The `[[guides]]` tables: `name`, `url` or `path`, optional `refresh`,
/// `max_bytes`, `timeout`.
pub fn guides_from_file(value: &toml::Value) -> anyhow::Result<Vec<GuideSpec>> {
    crate::values::named_tables(value, "guides", MAX_GUIDES, guide_from_table, |g| &g.name)
}

const GUIDE_KEYS: &[&str] = &["name", "url", "path", "refresh", "max_bytes", "timeout"];

fn guide_from_table(value: &toml::Value) -> Result<GuideSpec, String> {
    let table = value.as_table().ok_or("not a table")?;
    if let Some(k) = table.keys().find(|k| !GUIDE_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` (known keys: {})", GUIDE_KEYS.join(", ")));
    }
    let text = |k: &str| -> Result<Option<String>, String> {
        match table.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(toml::Value::Integer(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(format!("`{k}` must be a string (got {other})")),
        }
    };
    let name = text("name")?
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && n.len() <= 64)
        .ok_or("`name` is required (1 to 64 characters)")?;
    let at = |why: String| format!("{name}: {why}");
    let location = match (text("url")?, text("path")?) {
        (Some(url), None) => Location::Url(values::http_url(&url).map_err(|e| at(format!("`url`: {e}")))?),
        (None, Some(path)) => Location::Path(PathBuf::from(path)),
        _ => return Err(at("a guide needs exactly one of `url` and `path`".into())),
    };
    let refresh = match text("refresh")? {
        Some(t) => values::duration_within(&t, Duration::from_secs(1), Duration::from_secs(7 * 86_400))
            .map_err(|e| at(format!("`refresh`: {e}")))?,
        None => DEFAULT_REFRESH,
    };
    let max_bytes = match text("max_bytes")? {
        Some(t) => values::size(&t).ok().filter(|n| (1..=MAX_MAX_BYTES).contains(n)).ok_or_else(|| {
            at(format!("`max_bytes` must be a size from 1 byte to {}", values::format_size(MAX_MAX_BYTES)))
        })?,
        None => DEFAULT_MAX_BYTES,
    };
    let timeout = match text("timeout")? {
        Some(t) => values::duration_within(&t, Duration::from_secs(1), Duration::from_secs(3600))
            .map_err(|e| at(format!("`timeout`: {e}")))?,
        None => DEFAULT_TIMEOUT,
    };
    Ok(GuideSpec { name, location, refresh, max_bytes, timeout })
}

/// A reader that fails past `max` bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
    what: &'static str,
    max: usize,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!(
                "the guide's {} is more than the {} bytes allowed",
                self.what, self.max
            ))
        })?;
        Ok(n)
    }
}

/// A guide's bytes, opened off the runtime threads.
enum Raw {
    File(PathBuf),
    Stream(Box<dyn Read + Send>),
}

/// The guide at `location` read as a stream (gzip recognised by its
/// magic bytes), or none when the server says it has not changed.
async fn read_guide(
    http: &reqwest::Client,
    location: &Location,
    since: &Validators,
    max_bytes: usize,
    timeout: Duration,
    wanted: xmltv::Wanted,
) -> anyhow::Result<Option<(xmltv::Guide, Validators)>> {
    let (raw, validators): (Raw, Validators) = match location {
        Location::Path(path) => (Raw::File(path.clone()), Validators::default()),
        Location::Url(url) => {
            // The timeout covers the body too, which is read as it arrives.
            let Some((answer, validators)) =
                fetch::conditional_get(http.get(url).timeout(timeout), since).await?
            else {
                return Ok(None);
            };
            use futures_util::TryStreamExt;
            let body = answer.bytes_stream().map_err(std::io::Error::other);
            let reader = tokio_util::io::StreamReader::new(body);
            (Raw::Stream(Box::new(tokio_util::io::SyncIoBridge::new(reader))), validators)
        }
    };
    let guide = tokio::task::spawn_blocking(move || -> anyhow::Result<xmltv::Guide> {
        let raw: Box<dyn Read> = match raw {
            Raw::File(path) => Box::new(
                std::fs::File::open(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            ),
            Raw::Stream(stream) => stream,
        };
        let raw = Bounded { inner: raw, left: max_bytes as u64, what: "download", max: max_bytes };
        let mut input = BufReader::with_capacity(64 << 10, raw);
        let gzip = input.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let xml: Box<dyn BufRead> = if gzip {
            let decoded = flate2::bufread::MultiGzDecoder::new(input);
            Box::new(BufReader::with_capacity(
                64 << 10,
                Bounded { inner: decoded, left: max_bytes as u64, what: "XML", max: max_bytes },
            ))
        } else {
            Box::new(input)
        };
        xmltv::read(xml, &wanted)
    })
    .await??;
    Ok(Some((guide, validators)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Vec<GuideSpec>> {
        let table: toml::Table = text.parse().unwrap();
        guides_from_file(&table["guides"])
    }

    #[test]
    fn reads_guides_with_defaults_and_names_every_mistake() {
        let guides = parse(
            "[[guides]]\nname = 'es'\nurl = 'https://epg.example/es.xml.gz'\n\
             [[guides]]\nname = 'local'\npath = '/srv/guide.xml'\nrefresh = '1h'\nmax_bytes = '64MiB'\n",
        )
        .unwrap();
        assert_eq!(guides[0].location, Location::Url("https://epg.example/es.xml.gz".into()));
        assert_eq!(
            (guides[0].refresh, guides[0].max_bytes, guides[0].timeout),
            (DEFAULT_REFRESH, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT)
        );
        assert_eq!((guides[1].refresh, guides[1].max_bytes), (Duration::from_secs(3600), 64 << 20));
        let cases = [
            ("name = 'a'", "exactly one of `url` and `path`"),
            ("name = 'a'\nurl = 'ftp://x'", "`url`"),
            ("name = 'a'\npath = 'x'\nurl = 'http://x'", "exactly one"),
            ("name = 'a'\npath = 'x'\nrefresh = '0s'", "`refresh`"),
            ("name = 'a'\npath = 'x'\nmax_bytes = '2GiB'", "`max_bytes`"),
            ("name = 'a'\npath = 'x'\nrefesh = '1h'", "unknown key `refesh`"),
            ("path = 'x'", "`name` is required"),
        ];
        for (table, expect) in cases {
            let err = format!("{:#}", parse(&format!("[[guides]]\n{table}\n")).unwrap_err());
            assert!(err.contains("`guides` entry 1") && err.contains(expect), "{table}: {err}");
        }
        let twice =
            parse("[[guides]]\nname = 'a'\npath = 'x'\n[[guides]]\nname = 'a'\npath = 'y'\n").unwrap_err();
        assert!(twice.to_string().contains("used twice"), "{twice}");
    }
}
