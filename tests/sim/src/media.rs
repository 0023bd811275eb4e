//! What a playback connection sends: the synthetic counter stream, or a
//! recorded MPEG-TS file played in a loop.
//!
//! The synthetic stream lets tests check every packet; a recorded file with
//! real H.264/AAC lets real decoders (ffmpeg, ffprobe) read through acemux.

use std::path::Path;

use acemux_ts::{PACKET_SIZE, is_whole_packets};
use bytes::Bytes;

use crate::tsgen::TsGenerator;

/// A recorded stream, checked to be whole, synced TS packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media(Bytes);

impl Media {
    pub fn new(ts: Bytes) -> anyhow::Result<Self> {
        anyhow::ensure!(!ts.is_empty(), "the media file is empty");
        anyhow::ensure!(
            is_whole_packets(&ts),
            "the media file is not whole 188-byte MPEG-TS packets starting with 0x47"
        );
        Ok(Self(ts))
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let ts = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::new(ts.into()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// The packets of one playback connection.
pub(crate) enum Source {
    Synthetic(TsGenerator),
    /// A recording from its first packet on, looped (each loop restarts
    /// the timestamps and continuity counters, as a real channel's
    /// discontinuity would).
    Recorded {
        media: Media,
        position: usize,
    },
}

impl Source {
    /// Appends `count` packets to `out`.
    pub fn write(&mut self, count: usize, out: &mut Vec<u8>) {
        match self {
            Self::Synthetic(generator) => generator.write(count, out),
            Self::Recorded { media, position } => {
                let mut left = count * PACKET_SIZE;
                while left > 0 {
                    let take = left.min(media.0.len() - *position);
                    out.extend_from_slice(&media.0[*position..*position + take]);
                    *position = (*position + take) % media.0.len();
                    left -= take;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_media_loops_whole_packets() {
        let packets: Vec<u8> =
            (1u8..4).flat_map(|i| [[0x47].as_slice(), &[i; PACKET_SIZE - 1]].concat()).collect();
        let media = Media::new(Bytes::from(packets.clone())).unwrap();
        let mut source = Source::Recorded { media, position: 0 };
        let mut out = Vec::new();
        source.write(5, &mut out);
        assert_eq!(out.len(), 5 * PACKET_SIZE);
        assert_eq!(&out[..3 * PACKET_SIZE], &packets[..]);
        assert_eq!(&out[3 * PACKET_SIZE..], &packets[..2 * PACKET_SIZE]);
    }

    #[test]
    fn refuses_what_is_not_ts() {
        assert!(Media::new(Bytes::from_static(b"")).is_err());
        assert!(Media::new(Bytes::from(vec![0x47; 100])).is_err());
        assert!(Media::new(Bytes::from(vec![0u8; 188])).is_err());
    }
}
