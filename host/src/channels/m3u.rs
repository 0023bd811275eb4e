//! Reading the M3U lists operators keep their channels in.
//!
//! The lists come from scrapers, friends and sites: hostile input. They
//! name AceStream content in every form seen in the wild — `acestream://<id>`,
//! an engine's `…/ace/getstream?id=|content_id=|infohash=…` or
//! `…/ace/manifest.m3u8?…` on any host and port, other proxies' path forms
//! (`/pid/<id>/…`, `/content_id/<id>/…`, `/infohash/<id>/…`), a bare 40-hex
//! id — mixed with entries that are not AceStream at all and broken lines.
//! [`read`] keeps the AceStream entries with their `#EXTINF` attributes and
//! the header's guide URL, and counts what it skipped. Lines, line length
//! and entries are bounded; nothing here allocates more than the input.
//!
//! (The M3U crates parse HLS playlists and drop the IPTV attributes
//! `tvg-id`, `group-title`… that these lists are about, so this is a small
//! reader of its own.)

use crate::content::{ContentKey, KeyType};

/// Longest line read; a longer one is skipped and counted.
pub const MAX_LINE: usize = 8 << 10;
/// Entries kept at most; the rest are counted as skipped.
pub const MAX_ENTRIES: usize = 20_000;
/// Attributes kept per entry at most.
const MAX_ATTRIBUTES: usize = 32;
/// Longest attribute value and channel name kept.
const MAX_TEXT: usize = 512;

/// One AceStream channel of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The `#EXTINF` title (after its last comma), else `tvg-name`, else the id.
    pub name: String,
    pub key: ContentKey,
    pub tvg_id: Option<String>,
    pub tvg_name: Option<String>,
    pub tvg_logo: Option<String>,
    pub group: Option<String>,
    pub tvg_chno: Option<String>,
}

/// What a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List {
    pub entries: Vec<Entry>,
    /// The header's guide (`url-tvg`, else `x-tvg-url`).
    pub guide_url: Option<String>,
    /// Entries that named no AceStream content, broken lines, lines past
    /// the bounds.
    pub skipped: usize,
}

/// Reads an M3U list. Anything that is not a list entry is skipped; it
/// never fails.
pub fn read(text: &str) -> List {
    let mut list = List::default();
    let mut info: Option<Info> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            list.skipped += 1;
            info = None;
            continue;
        }
        if let Some(header) = line.strip_prefix("#EXTM3U") {
            let attrs = attributes(header);
            list.guide_url = get(&attrs, "url-tvg").or_else(|| get(&attrs, "x-tvg-url"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            if info.is_some() {
                // An entry without its URL.
                list.skipped += 1;
            }
            info = Some(Info::of(rest));
            continue;
        }
        if line.starts_with('#') {
            // #EXTGRP, #EXTVLCOPT, comments.
            if let Some(group) = line.strip_prefix("#EXTGRP:")
                && let Some(i) = info.as_mut()
                && i.group.is_none()
            {
                i.group = text_of(group);
            }
            continue;
        }
        let entry_info = info.take();
        let Some(key) = content_of(line) else {
            list.skipped += 1;
            continue;
        };
        if list.entries.len() >= MAX_ENTRIES {
            list.skipped += 1;
            continue;
        }
        let info = entry_info.unwrap_or_default();
        let name = info.title.clone().or_else(|| info.tvg_name.clone()).unwrap_or_else(|| key.id.clone());
        list.entries.push(Entry {
            name,
            key,
            tvg_id: info.tvg_id,
            tvg_name: info.tvg_name,
            tvg_logo: info.tvg_logo,
            group: info.group,
            tvg_chno: info.tvg_chno,
        });
    }
    if info.is_some() {
        list.skipped += 1;
    }
    list
}

/// What an `#EXTINF` line says of the entry that follows it.
#[derive(Debug, Default)]
struct Info {
    title: Option<String>,
    tvg_id: Option<String>,
    tvg_name: Option<String>,
    tvg_logo: Option<String>,
    group: Option<String>,
    tvg_chno: Option<String>,
}

impl Info {
    /// `-1 tvg-id="x" group-title="News",Title, with commas`.
    fn of(rest: &str) -> Self {
        let (attrs_part, title) = split_title(rest);
        let attrs = attributes(attrs_part);
        Self {
            title: text_of(title),
            tvg_id: get(&attrs, "tvg-id"),
            tvg_name: get(&attrs, "tvg-name"),
            tvg_logo: get(&attrs, "tvg-logo"),
            group: get(&attrs, "group-title"),
            tvg_chno: get(&attrs, "tvg-chno"),
        }
    }
}

/// Splits at the first comma outside double quotes: attributes, title.
fn split_title(rest: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return (&rest[..i], &rest[i + 1..]),
            _ => {}
        }
    }
    (rest, "")
}

/// `key="value"` (or `key=value`) pairs, names lower-cased, at most
/// [`MAX_ATTRIBUTES`].
fn attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while out.len() < MAX_ATTRIBUTES {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].rsplit(char::is_whitespace).next().unwrap_or("").to_ascii_lowercase();
        let after = &rest[eq + 1..];
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if !name.is_empty() {
            out.push((name, value.to_owned()));
        }
        rest = next;
    }
    out
}

fn get(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs.iter().find(|(k, _)| k == name).and_then(|(_, v)| text_of(v))
}

/// A kept text (see [`super::text::field`]).
fn text_of(value: &str) -> Option<String> {
    super::text::field(value, MAX_TEXT)
}

/// The AceStream content an entry's URL names, in any of its forms.
pub fn content_of(url: &str) -> Option<ContentKey> {
    let url = url.trim();
    if let Some(id) = url.strip_prefix("acestream://") {
        return hex(KeyType::ContentId, id.trim_end_matches('/'));
    }
    if url.len() == 40 {
        return hex(KeyType::ContentId, url);
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path.ends_with("/ace/getstream") || path.ends_with("/ace/manifest.m3u8") {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .filter(|(k, _)| matches!(*k, "id" | "content_id" | "infohash"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        return ContentKey::from_query(&pairs).ok();
    }
    // `/pid/<id>/<name>`, `/content_id/<id>/<name>`, `/infohash/<id>/<name>`.
    let segments: Vec<&str> = path.split('/').collect();
    segments.windows(2).find_map(|w| match w[0] {
        "pid" | "content_id" => hex(KeyType::ContentId, w[1]),
        "infohash" => hex(KeyType::Infohash, w[1]),
        _ => None,
    })
}

fn hex(key_type: KeyType, id: &str) -> Option<ContentKey> {
    let param = if key_type == KeyType::Infohash { "infohash" } else { "content_id" };
    ContentKey::parse(key_type, param, id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_every_form_found_in_the_wild_and_skips_the_rest() {
        let text = format!(
            "#EXTM3U url-tvg=\"http://epg.example/guide.xml.gz\"\n\
             #EXTINF:-1 tvg-id=\"news1.tv\" tvg-name=\"News\" tvg-logo=\"http://l/n.png\" group-title=\"News, World\" tvg-chno=\"7\",News One, HD\n\
             acestream://{A}\n\
             #EXTINF:-1,Sport via engine\n\
             http://192.168.1.5:6878/ace/getstream?id={B}&pid=123\n\
             #EXTINF:-1,By infohash\n\
             http://x:6878/ace/manifest.m3u8?infohash={B}\n\
             #EXTINF:-1,Other proxy\n\
             http://proxy.example/pid/{A}/Channel.ts\n\
             #EXTINF:-1,Bare\n\
             {B}\n\
             #EXTINF:-1,Not AceStream\n\
             http://iptv.example/live/1.m3u8\n\
             #EXTINF:-1,Dangling\n\
             #EXTINF:-1,Broken id\n\
             acestream://nothex\n"
        );
        let list = read(&text);
        assert_eq!(list.guide_url.as_deref(), Some("http://epg.example/guide.xml.gz"));
        let names: Vec<&str> = list.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["News One, HD", "Sport via engine", "By infohash", "Other proxy", "Bare"]);
        let first = &list.entries[0];
        assert_eq!(first.key, ContentKey::new(KeyType::ContentId, A));
        assert_eq!(
            (
                first.tvg_id.as_deref(),
                first.group.as_deref(),
                first.tvg_chno.as_deref(),
                first.tvg_logo.as_deref()
            ),
            (Some("news1.tv"), Some("News, World"), Some("7"), Some("http://l/n.png"))
        );
        assert_eq!(list.entries[2].key, ContentKey::new(KeyType::Infohash, B));
        assert_eq!(list.skipped, 3, "not AceStream, dangling #EXTINF, broken id");
    }

    #[test]
    fn the_header_may_name_the_guide_as_x_tvg_url_and_groups_may_come_as_extgrp() {
        let list = read(&format!("#EXTM3U x-tvg-url=\"http://g/x.xml\"\n#EXTINF:-1,A\n#EXTGRP:Sport\n{A}\n"));
        assert_eq!(list.guide_url.as_deref(), Some("http://g/x.xml"));
        assert_eq!(list.entries[0].group.as_deref(), Some("Sport"));
    }

    #[test]
    fn bounds_hold() {
        let long = format!("#EXTINF:-1,{}\n{A}\n", "x".repeat(MAX_LINE + 1));
        let list = read(&long);
        assert_eq!(
            (list.entries.len(), list.skipped),
            (1, 1),
            "the long title line is skipped, the entry kept"
        );
        assert_eq!(list.entries[0].name, A);
        let many: String = (0..MAX_ENTRIES + 5).map(|_| format!("{A}\n")).collect();
        let list = read(&many);
        assert_eq!((list.entries.len(), list.skipped), (MAX_ENTRIES, 5));
    }

    proptest::proptest! {
        /// Whatever the list holds, reading it never panics, keeps only
        /// valid keys and bounded texts.
        #[test]
        fn any_list_is_read_without_panic(
            lines in proptest::collection::vec(
                "#EXTM3U.{0,40}|#EXTINF:-1( [a-z-]{1,10}=\"[^\"]{0,20}\"){0,3},.{0,30}|acestream://[0-9a-f]{38,41}|http://[a-z]{1,8}(:[0-9]{1,5})?/(ace/getstream|pid/[0-9a-f]{40}/x.ts)(\\?(id|infohash)=[0-9a-fA-F]{40})?|.{0,60}",
                0..30,
            ),
        ) {
            let list = read(&lines.join("\n"));
            proptest::prop_assert!(list.entries.len() <= lines.len());
            for e in &list.entries {
                proptest::prop_assert!(e.key.id.len() == 40);
                proptest::prop_assert!(e.name.len() <= MAX_TEXT.max(40));
            }
        }
    }
}
