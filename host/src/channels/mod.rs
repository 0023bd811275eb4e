//! The channels acemux offers players by name: what `/playlist.m3u`, the
//! HDHomeRun lineup, `/channels.json` and the dashboard list.
//!
//! The operator's own `[[channels]]` and the channels of every
//! `[[sources]]` (M3U lists by file or URL, the engine's search,
//! channel-source plugins) form one
//! [`Catalog`]: merged, numbered for good, swapped in whole after each
//! refresh. [`m3u`] reads the lists operators keep their channels in;
//! [`refresh`] reads each source again on its period; [`rules`] is what an
//! operator does to a source's channels; [`numbers`] keeps numbers stable;
//! [`guide`] reads XMLTV guides and writes `/epg.xml`.

pub mod catalog;
pub mod fetch;
pub mod guide;
pub mod m3u;
pub mod numbers;
pub mod plugin_source;
pub mod refresh;
pub mod rules;
pub mod search;
pub mod settings;
pub mod source;
pub mod text;

pub use catalog::{Catalog, Listed, Listing};
pub use settings::{Channel, ChannelSettings};

/// A number no list or guide read had before: what a rendered guide
/// remembers it was made of.
pub fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Writes `bytes` to `path` whole or not at all (a new file beside it,
/// then a rename), making its directory if needed. Blocking.
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
