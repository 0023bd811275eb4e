//! Writing `/epg.xml`: one `<channel>` per listed channel (its `tvg-id`,
//! else its number, which the playlist gives as `tvg-id` too), then its
//! programmes: from the first guide that has any for it — `[[guides]]` in
//! order, then its source's own guide — matched by `tvg-id`, then by name;
//! else what the engine's search said. Every text is escaped and stripped
//! of what XML 1.0 cannot carry.

use std::fmt::Write;

use quick_xml::escape::escape;

use super::time;
use super::xmltv::{Guide, Programme, bounded, fold};
use crate::channels::catalog::{Listed, Listing};

/// The XMLTV channel id of a listed channel.
pub fn guide_id(listed: &Listed) -> String {
    listed.channel.tvg_id.clone().unwrap_or_else(|| listed.number.to_string())
}

fn text(value: &str) -> String {
    escape(bounded(value, usize::MAX)).into_owned()
}

/// The programmes `guides` hold for `listed`.
pub fn programmes_of<'g>(listed: &Listed, guides: &[&'g Guide]) -> Option<&'g [Programme]> {
    guides.iter().find_map(|g| {
        let by_id = listed.channel.tvg_id.as_ref().and_then(|id| g.programmes.get(id));
        let by_name = || {
            std::iter::once(&listed.channel.name)
                .chain(listed.source_name.as_ref())
                .find_map(|name| g.names.get(&fold(name)).and_then(|id| g.programmes.get(id)))
        };
        by_id.or_else(by_name).map(Vec::as_slice)
    })
}

/// The document; `guides_for` gives each channel's guides in order.
pub fn render<'g>(listing: &Listing, guides_for: impl Fn(&Listed) -> Vec<&'g Guide>) -> String {
    let mut out = String::with_capacity(4096 + listing.channels.len() * 256);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n");
    out.push_str("<tv generator-info-name=\"acemux\">\n");
    for listed in &listing.channels {
        let _ = write!(
            out,
            "  <channel id=\"{}\">\n    <display-name>{}</display-name>\n",
            text(&guide_id(listed)),
            text(&listed.channel.name)
        );
        let _ = writeln!(out, "    <display-name>{}</display-name>", listed.number);
        if let Some(logo) = &listed.channel.logo {
            let _ = writeln!(out, "    <icon src=\"{}\"/>", text(logo));
        }
        out.push_str("  </channel>\n");
    }
    for listed in &listing.channels {
        let id = text(&guide_id(listed));
        let guides = guides_for(listed);
        if let Some(list) = programmes_of(listed, &guides) {
            for p in list {
                programme(&mut out, &id, p);
            }
        } else if let Some(search) = &listed.search {
            for e in &search.epg {
                let _ = writeln!(
                    out,
                    "  <programme start=\"{}\" stop=\"{}\" channel=\"{id}\">\n    <title>{}</title>\n  </programme>",
                    time::format(e.start),
                    time::format(e.stop),
                    text(&e.title)
                );
            }
        }
    }
    out.push_str("</tv>\n");
    out
}

fn programme(out: &mut String, id: &str, p: &Programme) {
    let _ = writeln!(
        out,
        "  <programme start=\"{}\" stop=\"{}\" channel=\"{id}\">",
        time::format(p.start),
        time::format(p.stop)
    );
    let _ = writeln!(out, "    <title>{}</title>", text(&p.title));
    if let Some(sub) = &p.sub_title {
        let _ = writeln!(out, "    <sub-title>{}</sub-title>", text(sub));
    }
    if let Some(desc) = &p.desc {
        let _ = writeln!(out, "    <desc>{}</desc>", text(desc));
    }
    for c in &p.categories {
        let _ = writeln!(out, "    <category>{}</category>", text(c));
    }
    if let Some(icon) = &p.icon {
        let _ = writeln!(out, "    <icon src=\"{}\"/>", text(icon));
    }
    if let Some((system, value)) = &p.episode_num {
        let _ = writeln!(out, "    <episode-num system=\"{}\">{}</episode-num>", text(system), text(value));
    }
    out.push_str("  </programme>\n");
}
