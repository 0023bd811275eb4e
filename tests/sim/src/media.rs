//! What a playback connection sends: the synthetic counter stream, or a
//! recorded MPEG-TS file played in a loop.
//!
//! The synthetic stream lets tests check every packet; a recorded file with
//! real H.264/AAC lets real decoders (ffmpeg, ffprobe) read through acemux.

use std::path::Path;

use acemux_ts::{PACKET_SIZE, is_whole_packets};
use bytes::Bytes;

use crate::retime::{Retimer, loop_span};
use crate::tsgen::TsGenerator;

/// A recorded stream, checked to be whole, synced TS packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    ts: Bytes,
    /// Length of one pass, 90 kHz units (0 if the recording has no PTS).
    span: u64,
}

impl Media {
    pub fn new(ts: Bytes) -> anyhow::Result<Self> {
        anyhow::ensure!(!ts.is_empty(), "the media file is empty");
        anyhow::ensure!(
            is_whole_packets(&ts),
            "the media file is not whole 188-byte MPEG-TS packets starting with 0x47"
        );
        Ok(Self { span: loop_span(&ts), ts })
    }

    /// The committed sample (`tests/fixtures/h264-aac.ts`): 12 s of a
    /// test pattern in H.264 with a 440 Hz tone in AAC, ≈550 kbit/s.
    pub fn sample() -> Self {
        Self::new(Bytes::from_static(include_bytes!("../../fixtures/h264-aac.ts")))
            .expect("the committed sample is whole TS packets")
    }

    /// The recording's own bitrate (bits per second), to play it in real
    /// time; `None` if it has no timestamps to tell.
    pub fn bitrate_bps(&self) -> Option<u64> {
        (self.span > 0).then(|| self.ts.len() as u64 * 8 * 90_000 / self.span)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let ts = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::new(ts.into()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// The packets of one playback connection.
pub(crate) enum Source {
    Synthetic(TsGenerator),
    /// A recording from its first packet on, looped seamlessly (see
    /// [`Retimer`]).
    Recorded {
        media: Media,
        position: usize,
        pass: u64,
        retimer: Retimer,
    },
}

impl Source {
    /// The recording from its packet `packet` on (wrapped to its length).
    pub fn recorded_from(media: Media, packet: usize) -> Self {
        let position = packet * PACKET_SIZE % media.ts.len();
        Self::Recorded { media, position, pass: 0, retimer: Retimer::default() }
    }
}

impl Source {
    /// Appends `count` packets to `out`.
    pub fn write(&mut self, count: usize, out: &mut Vec<u8>) {
        match self {
            Self::Synthetic(generator) => generator.write(count, out),
            Self::Recorded { media, position, pass, retimer } => {
                out.reserve(count * PACKET_SIZE);
                for _ in 0..count {
                    let start = out.len();
                    out.extend_from_slice(&media.ts[*position..*position + PACKET_SIZE]);
                    if let Ok(packet) = <&mut [u8; PACKET_SIZE]>::try_from(&mut out[start..]) {
                        retimer.packet(packet, *pass, media.span);
                    }
                    *position += PACKET_SIZE;
                    if *position == media.ts.len() {
                        *position = 0;
                        *pass += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_media_loops_whole_packets_with_continuous_counters() {
        // Three packets on PIDs 1, 2, 3, each with payload and counter 5.
        let packets: Vec<u8> = (1u8..4)
            .flat_map(|pid| [[0x47, 0, pid, 0x15].as_slice(), &[pid; PACKET_SIZE - 4]].concat())
            .collect();
        let media = Media::new(Bytes::from(packets.clone())).unwrap();
        assert_eq!(media.bitrate_bps(), None, "no timestamps");
        let mut source = Source::recorded_from(media, 0);
        let mut out = Vec::new();
        source.write(5, &mut out);
        assert_eq!(out.len(), 5 * PACKET_SIZE);
        assert_eq!(&out[..3 * PACKET_SIZE], &packets[..], "the first pass as recorded");
        for (i, p) in out[3 * PACKET_SIZE..].chunks(PACKET_SIZE).enumerate() {
            assert_eq!(&p[..4], &[0x47, 0, i as u8 + 1, 0x16], "second pass: next counter");
            assert_eq!(&p[4..], &packets[i * PACKET_SIZE + 4..(i + 1) * PACKET_SIZE]);
        }
    }

    #[test]
    fn the_sample_plays_at_its_own_rate() {
        let rate = Media::sample().bitrate_bps().unwrap();
        assert!((500_000..600_000).contains(&rate), "{rate}");
    }

    #[test]
    fn refuses_what_is_not_ts() {
        assert!(Media::new(Bytes::from_static(b"")).is_err());
        assert!(Media::new(Bytes::from(vec![0x47; 100])).is_err());
        assert!(Media::new(Bytes::from(vec![0u8; 188])).is_err());
    }
}
