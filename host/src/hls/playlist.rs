//! HLS playlists as text (RFC 8216): the master playlist a viewer opens,
//! which sends it on to its own media playlist URL, and the live media
//! playlist rendered from the segment window.

use std::fmt::Write;

use super::window::Listing;

/// The multivariant ("master") playlist: one variant, the viewer's media
/// playlist at `media_uri` (relative to the master's URL).
pub fn master(listing: &Listing, media_uri: &str) -> String {
    let (peak, average) = bandwidth(listing);
    let mut out = String::with_capacity(256);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
    if independent(listing) {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={peak}");
    if let Some(average) = average {
        let _ = write!(out, ",AVERAGE-BANDWIDTH={average}");
    }
    let _ = write!(out, "\n{media_uri}\n");
    out
}

/// The live media playlist: the listed segments as `<number>.ts` (relative
/// to the playlist's URL), no `#EXT-X-ENDLIST`.
pub fn media(listing: &Listing) -> String {
    let mut out = String::with_capacity(128 + 160 * listing.segments.len());
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
        listing.target_duration, listing.media_sequence
    );
    if listing.discontinuity_sequence > 0 {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", listing.discontinuity_sequence);
    }
    if independent(listing) {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    for s in &listing.segments {
        if s.cut.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let date = humantime::format_rfc3339_millis(s.cut.program_date_time);
        let _ = write!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{date}\n#EXTINF:{:.3},\n{}.ts\n",
            s.cut.duration.as_secs_f64(),
            s.sequence
        );
    }
    out
}

/// Every listed segment starts at a keyframe after PAT and PMT.
fn independent(listing: &Listing) -> bool {
    !listing.segments.is_empty() && listing.segments.iter().all(|s| s.cut.independent)
}

/// Peak and average bits per second over the listed segments (the peak is
/// what `BANDWIDTH` must not be exceeded by).
fn bandwidth(listing: &Listing) -> (u64, Option<u64>) {
    let rate = |bytes: usize, secs: f64| (bytes as f64 * 8.0 / secs.max(0.001)).ceil() as u64;
    let peak = listing.segments.iter().map(|s| rate(s.cut.bytes, s.cut.duration.as_secs_f64())).max();
    let bytes: usize = listing.segments.iter().map(|s| s.cut.bytes).sum();
    let secs: f64 = listing.segments.iter().map(|s| s.cut.duration.as_secs_f64()).sum();
    match peak {
        Some(peak) => (peak.max(1), (secs > 0.0).then(|| rate(bytes, secs))),
        None => (1, None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::hls::segmenter::Cut;
    use crate::hls::window::Segment;

    fn segment(sequence: u64, secs: f64, discontinuity: bool) -> Arc<Segment> {
        Arc::new(Segment {
            sequence,
            cut: Cut {
                parts: Vec::new(),
                bytes: 1_000_000,
                duration: Duration::from_secs_f64(secs),
                independent: true,
                discontinuity,
                program_date_time: UNIX_EPOCH + Duration::from_millis(1_795_000_000_250),
            },
        })
    }

    #[test]
    fn media_playlist_lists_segments_with_tags() {
        let listing = Listing {
            target_duration: 4,
            media_sequence: 41,
            discontinuity_sequence: 2,
            segments: vec![segment(41, 4.0, false), segment(42, 3.52, true)],
        };
        let text = media(&listing);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:41\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:40.250Z\n#EXTINF:4.000,\n41.ts\n\
             #EXT-X-DISCONTINUITY\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:40.250Z\n#EXTINF:3.520,\n42.ts\n"
        );
        let text = master(&listing, "live.m3u8?viewer=abc");
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2272728,AVERAGE-BANDWIDTH=2127660\nlive.m3u8?viewer=abc\n"
        );
    }
}
