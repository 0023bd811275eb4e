//! Reading XMLTV guides as a stream: `<channel>`s, then `<programme>`s,
//! one event at a time (quick-xml), keeping only the programmes of the
//! channels acemux lists, within a time window, each text bounded. A guide
//! of tens of megabytes never sits in memory whole; what is kept is what
//! `/epg.xml` will serve.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::time;

/// Programmes kept per channel and in all.
const MAX_PER_CHANNEL: usize = 2_000;
const MAX_PROGRAMMES: usize = 200_000;
/// Categories kept per programme.
const MAX_CATEGORIES: usize = 8;
/// Longest title, description, and other text kept.
const MAX_TITLE: usize = 512;
const MAX_DESC: usize = 4 << 10;

/// One programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programme {
    /// Unix seconds.
    pub start: i64,
    pub stop: i64,
    pub title: String,
    pub sub_title: Option<String>,
    pub desc: Option<String>,
    pub categories: Vec<String>,
    pub icon: Option<String>,
    /// `(system, value)`, e.g. `("onscreen", "S01E02")`.
    pub episode_num: Option<(String, String)>,
}

/// Which programmes to keep: those of channels whose XMLTV id is a listed
/// channel's `tvg-id`, or whose display name is a listed channel's name.
#[derive(Debug, Default)]
pub struct Wanted {
    pub ids: HashSet<String>,
    /// Names folded by [`fold`].
    pub names: HashSet<String>,
    /// Programmes that end before this or start after `until` are not kept.
    pub from: i64,
    pub until: i64,
}

/// A name as matched: lower case, runs of white space as one space.
pub fn fold(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// What a guide gave.
#[derive(Debug, Default)]
pub struct Guide {
    /// Programmes by XMLTV channel id, each list sorted by start.
    pub programmes: HashMap<String, Vec<Programme>>,
    /// Folded display name → XMLTV channel id, for the kept channels.
    pub names: HashMap<String, String>,
    /// Programmes skipped: malformed, outside the window, past the bounds.
    pub skipped: usize,
    /// Tells this read from every other (see [`crate::channels::next_generation`]).
    pub generation: u64,
}

/// Reads a guide; an error means the document is not XML or not XMLTV.
pub fn read<R: BufRead>(input: R, wanted: &Wanted) -> anyhow::Result<Guide> {
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut guide = Guide::default();
    let mut kept_ids: HashSet<String> = wanted.ids.clone();
    let mut total = 0usize;
    let mut seen_tv = false;
    // The element being read and its text.
    let mut channel: Option<String> = None;
    let mut programme: Option<(String, Programme)> = None;
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            anyhow::anyhow!("not a well-formed XMLTV document at byte {}: {e}", reader.buffer_position())
        })?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name().as_ref().to_owned();
                match name.as_str() {
                    "tv" => seen_tv = true,
                    "channel" if programme.is_none() => channel = attribute(&e, "id"),
                    "programme" => {
                        programme = read_programme_head(&e, wanted, &kept_ids);
                        if programme.is_none() {
                            guide.skipped += 1;
                        }
                    }
                    "icon" => {
                        if let Some((_, p)) = programme.as_mut() {
                            p.icon = attribute(&e, "src").map(|s| bounded(&s, MAX_TITLE));
                        }
                    }
                    "episode-num" if programme.is_some() => {
                        field = Some(format!("episode-num:{}", attribute(&e, "system").unwrap_or_default()));
                    }
                    other if programme.is_some() || (channel.is_some() && other == "display-name") => {
                        field = Some(other.to_owned());
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Text(t) => push(&mut text, &t.xml10_content()),
            Event::CData(t) => push(&mut text, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name).unwrap_or_default().to_owned(),
                };
                push(&mut text, &resolved);
            }
            Event::End(e) => {
                let name = e.local_name().as_ref().to_owned();
                match name.as_str() {
                    "display-name" if programme.is_none() => {
                        if let Some(id) = &channel {
                            let folded = fold(&text);
                            if wanted.names.contains(&folded) {
                                kept_ids.insert(id.clone());
                                guide.names.entry(folded).or_insert_with(|| id.clone());
                            }
                        }
                    }
                    "channel" => channel = None,
                    "programme" => {
                        if let Some((id, p)) = programme.take() {
                            let list = guide.programmes.entry(id).or_default();
                            if p.title.is_empty() || list.len() >= MAX_PER_CHANNEL || total >= MAX_PROGRAMMES
                            {
                                guide.skipped += 1;
                            } else {
                                list.push(p);
                                total += 1;
                            }
                        }
                    }
                    _ => {
                        if let (Some((_, p)), Some(f)) = (programme.as_mut(), field.as_deref()) {
                            set_field(p, f, &text);
                        }
                    }
                }
                field = None;
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    anyhow::ensure!(seen_tv, "not an XMLTV document (no <tv> element)");
    for list in guide.programmes.values_mut() {
        list.sort_by_key(|p| p.start);
    }
    guide.programmes.retain(|_, list| !list.is_empty());
    guide.generation = crate::channels::next_generation();
    Ok(guide)
}

fn read_programme_head(
    e: &BytesStart<'_>,
    wanted: &Wanted,
    kept: &HashSet<String>,
) -> Option<(String, Programme)> {
    let id = attribute(e, "channel")?;
    if !kept.contains(&id) {
        return None;
    }
    let start = time::parse(&attribute(e, "start")?)?;
    // A programme without a stop ends when the next one starts; an hour
    // stands in for it here.
    let stop = attribute(e, "stop").and_then(|s| time::parse(&s)).unwrap_or(start + 3600);
    if stop <= start || stop < wanted.from || start > wanted.until {
        return None;
    }
    let p = Programme {
        start,
        stop,
        title: String::new(),
        sub_title: None,
        desc: None,
        categories: Vec::new(),
        icon: None,
        episode_num: None,
    };
    Some((id, p))
}

fn set_field(p: &mut Programme, field: &str, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    match field {
        // The first title (in the guide's first language) is kept.
        "title" if p.title.is_empty() => p.title = bounded(text, MAX_TITLE),
        "sub-title" if p.sub_title.is_none() => p.sub_title = Some(bounded(text, MAX_TITLE)),
        "desc" if p.desc.is_none() => p.desc = Some(bounded(text, MAX_DESC)),
        "category" if p.categories.len() < MAX_CATEGORIES => p.categories.push(bounded(text, 128)),
        f if f.starts_with("episode-num:") && p.episode_num.is_none() => {
            p.episode_num = Some((bounded(&f["episode-num:".len()..], 64), bounded(text, 64)));
        }
        _ => {}
    }
}

/// Appends to the element's text, never past the longest text kept.
fn push(text: &mut String, more: &str) {
    if text.len() < MAX_DESC {
        text.push_str(more);
    }
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let a = e.try_get_attribute(name).ok()??;
    let v = a.normalized_value(XmlVersion::Implicit1_0).ok()?;
    let v = v.trim();
    (!v.is_empty()).then(|| bounded(v, MAX_TITLE))
}

/// A text of a guide as kept (see [`crate::channels::text::xml`]).
pub fn bounded(text: &str, max: usize) -> String {
    crate::channels::text::xml(text, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE tv SYSTEM "xmltv.dtd">
<tv generator-info-name="test">
  <channel id="sport1.es"><display-name lang="es">Sport 1</display-name></channel>
  <channel id="other"><display-name>News &amp; Weather</display-name></channel>
  <channel id="unlisted"><display-name>Nobody</display-name></channel>
  <programme start="20261204180000 +0100" stop="20261204200000 +0100" channel="sport1.es">
    <title lang="es">Final &#8211; Madrid &lt;vs&gt; Barça</title><title lang="en">Final</title>
    <sub-title>Live</sub-title><desc><![CDATA[The <final>.]]></desc>
    <category>Sport</category><category>Football</category>
    <icon src="http://i/x.png"/><episode-num system="onscreen">S01E02</episode-num>
  </programme>
  <programme start="20261204160000 +0000" channel="sport1.es"><title>Before</title></programme>
  <programme start="20261204170000 +0000" stop="20261204180000 +0000" channel="other"><title>Weather</title></programme>
  <programme start="20261204170000 +0000" stop="20261204180000 +0000" channel="unlisted"><title>X</title></programme>
  <programme start="garbage" channel="sport1.es"><title>Y</title></programme>
  <programme start="20201204170000 +0000" stop="20201204180000 +0000" channel="sport1.es"><title>Old</title></programme>
</tv>"#;

    fn wanted() -> Wanted {
        Wanted {
            ids: ["sport1.es".to_owned()].into(),
            names: [fold("news  & WEATHER")].into(),
            from: time::parse("20261201000000 +0000").unwrap(),
            until: time::parse("20261231000000 +0000").unwrap(),
        }
    }

    #[test]
    fn keeps_the_listed_channels_programmes_by_id_and_by_name() {
        let guide = read(DOC.as_bytes(), &wanted()).unwrap();
        let sport = &guide.programmes["sport1.es"];
        assert_eq!(sport.len(), 2);
        assert_eq!(sport[0].title, "Before", "sorted by start");
        assert_eq!(sport[0].stop - sport[0].start, 3600, "no stop: an hour");
        let last = &sport[1];
        assert_eq!(last.title, "Final \u{2013} Madrid <vs> Barça");
        assert_eq!(last.start, time::parse("20261204170000 +0000").unwrap());
        assert_eq!(last.desc.as_deref(), Some("The <final>."));
        assert_eq!(last.categories, ["Sport", "Football"]);
        assert_eq!(last.icon.as_deref(), Some("http://i/x.png"));
        assert_eq!(last.episode_num, Some(("onscreen".into(), "S01E02".into())));
        assert_eq!(guide.programmes["other"][0].title, "Weather");
        assert_eq!(guide.names[&fold("News & Weather")], "other");
        assert!(!guide.programmes.contains_key("unlisted"));
        assert_eq!(guide.skipped, 3, "unlisted, bad start, outside the window");
    }

    #[test]
    fn what_is_not_xmltv_is_an_error() {
        assert!(read("<html><body>blocked</body></html>".as_bytes(), &wanted()).is_err());
        assert!(read("<tv><programme".as_bytes(), &wanted()).is_err());
        assert!(read("not xml at all".as_bytes(), &wanted()).is_err());
    }

    proptest::proptest! {
        /// Whatever the document holds, reading it never panics and keeps
        /// only bounded, listed programmes.
        #[test]
        fn any_document_is_read_without_panic(
            parts in proptest::collection::vec(
                "<tv>|</tv>|<channel id=\"[a-z.]{1,6}\">|</channel>|<display-name>[A-Za-z &;#0-9]{0,12}</display-name>|<programme start=\"2026120[0-9]{7} [+-]0[0-9]00\"( stop=\"2026120[0-9]{7}\")? channel=\"[a-z.]{1,6}\">|</programme>|<title>[^<]{0,20}</title>|<desc>[^<]{0,40}</desc>|&amp;|&#[0-9]{1,7};|&bogus;|<!\\[CDATA\\[[^\\]]{0,10}\\]\\]>|.{0,10}",
                0..40,
            ),
        ) {
            let wanted = Wanted { ids: ["sport1.es".into(), "a".into()].into(), names: ["x".into()].into(), from: 0, until: i64::MAX };
            if let Ok(guide) = read(parts.concat().as_bytes(), &wanted) {
                for list in guide.programmes.values() {
                    proptest::prop_assert!(list.len() <= MAX_PER_CHANNEL);
                    for p in list {
                        proptest::prop_assert!(p.stop > p.start && !p.title.is_empty() && p.title.len() <= MAX_TITLE);
                    }
                }
            }
        }
    }
}
