//! Low-Latency HLS viewers for `acemux-load --hls --low-latency`, as
//! hls.js in `lowLatencyMode` behaves: after a first plain playlist, each
//! viewer asks for the next one with a blocking reload for the part after
//! the newest listed (`_HLS_msn`, `_HLS_part`), fetches every new part in
//! order, and asks again at once. It starts at the newest independent part
//! at least three parts from the live end (PART-HOLD-BACK).
//!
//! A part fetch is late when it takes longer than the part lasts; a part
//! that left the playlist before the viewer got to it is missed (the
//! viewer then jumps to the newest independent part, as a player seeks).
//! With a recording, every independent part must start with PAT, PMT and
//! a keyframe.

use std::time::Instant;

use anyhow::{Context, bail};

use crate::hls_load::{HlsPlan, KeepAlive, ViewerResult, media_playlist_path, starts_cleanly};

/// A part as a playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    /// Its segment's media sequence number and its index in the segment.
    pub msn: u64,
    pub index: usize,
    pub uri: String,
    pub duration: f64,
    pub independent: bool,
}

/// What a viewer reads from a low-latency media playlist.
#[derive(Debug, Default)]
pub struct LowLatencyPlaylist {
    pub parts: Vec<ListedPart>,
}

/// Reads the parts of a media playlist (RFC 8216bis 4.4.4.9): each
/// `EXT-X-PART` belongs to the next segment URI line, or to the segment
/// being cut when none follows.
pub fn parse(body: &str) -> anyhow::Result<LowLatencyPlaylist> {
    let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        bail!("not a playlist: {}", body.chars().take(200).collect::<String>());
    }
    let mut msn = None;
    let mut index = 0;
    let mut parts = Vec::new();
    for line in lines {
        if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = Some(value.parse::<u64>().context("EXT-X-MEDIA-SEQUENCE")?);
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PART:") {
            let msn = msn.context("EXT-X-PART before EXT-X-MEDIA-SEQUENCE")?;
            let uri = attribute(attributes, "URI").context("EXT-X-PART without URI")?;
            let duration = attribute(attributes, "DURATION")
                .and_then(|d| d.parse::<f64>().ok())
                .context("EXT-X-PART without DURATION")?;
            let independent = attribute(attributes, "INDEPENDENT") == Some("YES");
            parts.push(ListedPart { msn, index, uri: uri.to_owned(), duration, independent });
            index += 1;
        } else if !line.starts_with('#') {
            msn = msn.map(|m| m + 1);
            index = 0;
        }
    }
    Ok(LowLatencyPlaylist { parts })
}

/// An attribute's value, unquoted (RFC 8216bis 4.2).
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// Where a viewer starts: the newest independent part at least three parts
/// from the end.
fn start(parts: &[ListedPart]) -> Option<&ListedPart> {
    let held_back = parts.len().checked_sub(3)?;
    parts[..=held_back].iter().rev().find(|p| p.independent)
}

/// One low-latency viewer until `end`.
pub(crate) async fn view(
    plan: &HlsPlan,
    content: &str,
    end: Instant,
    r: &mut ViewerResult,
) -> anyhow::Result<()> {
    let mut http = KeepAlive::new(plan.target);
    let asked = Instant::now();
    let (media_path, base) = media_playlist_path(&mut http, content).await?;
    r.master = Some(asked.elapsed());
    let mut directive: Option<(u64, usize)> = None;
    let mut next: Option<(u64, usize)> = None;
    while Instant::now() < end {
        let path = match directive {
            None => media_path.clone(),
            Some((msn, part)) => format!("{media_path}&_HLS_msn={msn}&_HLS_part={part}"),
        };
        let asked = Instant::now();
        let response = http.get(&path, None).await?;
        if directive.is_some() {
            r.blocking_waits.push(asked.elapsed());
        }
        r.playlists += 1;
        let playlist = parse(&String::from_utf8_lossy(&response.body))?;
        let newest = playlist.parts.last().context("a low-latency playlist lists parts")?;
        directive = Some((newest.msn, newest.index + 1));
        let wanted = match next {
            Some(n) => n,
            None => {
                let first = start(&playlist.parts).context("too few parts listed to start")?;
                (first.msn, first.index)
            }
        };
        let mut from = playlist.parts.iter().position(|p| (p.msn, p.index) >= wanted);
        if playlist.parts.first().is_some_and(|p| (p.msn, p.index) > wanted) {
            // Fell out of the listing: missed, start again near the edge.
            r.missed += 1;
            from = start(&playlist.parts).and_then(|s| playlist.parts.iter().position(|p| p == s));
        }
        for part in &playlist.parts[from.unwrap_or(playlist.parts.len())..] {
            if Instant::now() >= end {
                break;
            }
            let asked = Instant::now();
            let got = http.get(&format!("{base}/{}", part.uri), None).await?;
            let took = asked.elapsed();
            r.parts += 1;
            r.bytes += got.body.len() as u64;
            r.fetch.push(took);
            if took.as_secs_f64() > part.duration {
                r.late += 1;
            }
            if plan.recorded && part.independent && !starts_cleanly(&got.body) {
                r.bad_starts += 1;
            }
            next = Some((part.msn, part.index + 1));
        }
        // A part index past its segment's last asks for the next segment's
        // first part (RFC 8216bis 6.2.5.2): the next wanted part may be
        // either; look it up by order, whichever is listed.
        if let Some((msn, index)) = next
            && !playlist.parts.iter().any(|p| (p.msn, p.index) == (msn, index))
            && playlist.parts.iter().any(|p| p.msn == msn + 1)
        {
            next = Some((msn + 1, 0));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXT-X-PART:DURATION=1.0,URI=\"7.0.ts\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.0,URI=\"7.1.ts\"\n\
        #EXTINF:2.0,\n7.ts\n\
        #EXT-X-PART:DURATION=0.96,URI=\"8.0.ts\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.0,URI=\"8.1.ts\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.2.ts\"\n";

    #[test]
    fn parts_belong_to_the_segment_after_them_or_the_one_being_cut() {
        let p = parse(PLAYLIST).unwrap();
        let got: Vec<_> = p.parts.iter().map(|p| (p.msn, p.index, p.uri.as_str(), p.independent)).collect();
        assert_eq!(
            got,
            [
                (7, 0, "7.0.ts", true),
                (7, 1, "7.1.ts", false),
                (8, 0, "8.0.ts", true),
                (8, 1, "8.1.ts", false)
            ]
        );
        assert_eq!(p.parts[2].duration, 0.96);
        // Three from the end is 7.1, not independent: the one before.
        assert_eq!(start(&p.parts).map(|p| p.uri.as_str()), Some("7.0.ts"));
    }

    #[test]
    fn attributes_are_read_with_quotes_and_commas() {
        let list = "DURATION=1.0,URI=\"a,b=c.ts\",INDEPENDENT=YES";
        assert_eq!(attribute(list, "URI"), Some("a,b=c.ts"));
        assert_eq!(attribute(list, "INDEPENDENT"), Some("YES"));
        assert_eq!(attribute(list, "GAP"), None);
        assert!(parse("not a playlist").is_err());
        assert!(parse("#EXTM3U\n#EXT-X-PART:DURATION=1.0,URI=\"x\"\n").is_err());
    }
}
