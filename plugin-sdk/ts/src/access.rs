//! Random-access points: the video packets a decoder can start from.
//!
//! A player that starts reading a live stream anywhere else sees frames
//! that refer to pictures it never got, and decoders report errors until the
//! next keyframe. Two signals mark a start point, and encoders set either:
//! the adaptation field's random_access_indicator, or a PES whose first
//! packet carries an H.264 IDR / H.265 IRAP picture (or the parameter sets
//! that precede one) or an MPEG-2 sequence header (what broadcasters send
//! before each I picture). Both are only meaningful on a video PID: muxers such
//! as ffmpeg set the indicator on every audio frame too.

use crate::packet::Packet;

/// The video codecs whose pictures this module can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// MPEG-1 or MPEG-2 video (DVB's SD channels).
    Mpeg2,
    H264,
    H265,
    /// Any other video stream type: only the indicator counts.
    Other,
}

impl VideoCodec {
    /// The codec a PMT stream type declares.
    pub fn of_stream_type(stream_type: u8) -> Self {
        match stream_type {
            0x01 | 0x02 => Self::Mpeg2,
            0x1B => Self::H264,
            0x24 => Self::H265,
            _ => Self::Other,
        }
    }
}

/// The video elementary stream of a program: where keyframes are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoStream {
    pub pid: u16,
    pub codec: VideoCodec,
}

/// Whether a packet of a video PID starts a picture a decoder can begin
/// with. Only packets that start a PES qualify, so a player sent the
/// stream from this packet on gets the PES header too.
pub fn is_random_access(packet: &Packet<'_>, codec: VideoCodec) -> bool {
    if !packet.pusi() || packet.scrambling() != 0 {
        return false;
    }
    if packet.random_access() {
        return true;
    }
    match codec {
        VideoCodec::Other => false,
        codec => pes_elementary_data(packet.payload())
            .is_some_and(|data| nal_types(data, codec).any(|t| starts_decoding(t, codec))),
    }
}

/// The elementary-stream bytes of a PES packet start, after its header.
fn pes_elementary_data(payload: &[u8]) -> Option<&[u8]> {
    if payload.get(..3)? != [0, 0, 1] {
        return None;
    }
    // Video stream ids (0xE0..=0xEF) always carry the optional header.
    if *payload.get(3)? & 0xF0 != 0xE0 {
        return None;
    }
    let header_len = usize::from(*payload.get(8)?);
    payload.get(9 + header_len..)
}

/// The type of every unit that starts in `data`: NAL unit types for H.264
/// and H.265, start code values for MPEG-2.
fn nal_types(data: &[u8], codec: VideoCodec) -> impl Iterator<Item = u8> + '_ {
    data.windows(4).filter(|w| w[..3] == [0, 0, 1]).map(move |w| match codec {
        VideoCodec::H265 => (w[3] >> 1) & 0x3F,
        VideoCodec::Mpeg2 => w[3],
        _ => w[3] & 0x1F,
    })
}

fn starts_decoding(nal_type: u8, codec: VideoCodec) -> bool {
    match codec {
        // IDR slice; sequence parameter set (sent before an IDR or an
        // open-GOP I picture).
        VideoCodec::H264 => matches!(nal_type, 5 | 7),
        // IRAP pictures (BLA, IDR, CRA); VPS / SPS.
        VideoCodec::H265 => matches!(nal_type, 16..=21 | 32 | 33),
        // Sequence header.
        VideoCodec::Mpeg2 => nal_type == 0xB3,
        VideoCodec::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PACKET_SIZE;

    /// A video packet starting a PES whose elementary data begins with `es`.
    fn pes_start(es: &[u8], rai: bool) -> [u8; PACKET_SIZE] {
        let mut p = [0xFFu8; PACKET_SIZE];
        let mut at = 4;
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        if rai {
            p[3] = 0x30;
            p[4..6].copy_from_slice(&[1, 0x40]);
            at = 6;
        }
        let pes = [0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
        p[at..at + pes.len()].copy_from_slice(&pes);
        at += pes.len();
        p[at..at + es.len()].copy_from_slice(es);
        p
    }

    fn check(p: &[u8; PACKET_SIZE], codec: VideoCodec) -> bool {
        is_random_access(&Packet::new(p).unwrap(), codec)
    }

    #[test]
    fn h264_idr_and_sps_start_decoding_other_slices_do_not() {
        let aud = [0, 0, 0, 1, 0x09, 0xF0];
        let idr = [aud.as_slice(), &[0, 0, 0, 1, 0x67, 0x4D], &[0, 0, 1, 0x68, 0xEE], &[0, 0, 1, 0x65, 0x88]]
            .concat();
        assert!(check(&pes_start(&idr, false), VideoCodec::H264));
        let bare_idr = [aud.as_slice(), &[0, 0, 1, 0x65, 0x88]].concat();
        assert!(check(&pes_start(&bare_idr, false), VideoCodec::H264));
        let p_slice = [aud.as_slice(), &[0, 0, 1, 0x41, 0x9A]].concat();
        assert!(!check(&pes_start(&p_slice, false), VideoCodec::H264));
        // Read as H.265, 0x65 is not an IRAP type.
        assert!(!check(&pes_start(&bare_idr, false), VideoCodec::H265));
    }

    #[test]
    fn h265_irap_starts_decoding() {
        let aud = [0, 0, 0, 1, 0x46, 0x01, 0x50];
        let idr_w_radl = [aud.as_slice(), &[0, 0, 1, 19 << 1, 0x01]].concat();
        assert!(check(&pes_start(&idr_w_radl, false), VideoCodec::H265));
        let trail = [aud.as_slice(), &[0, 0, 1, 1 << 1, 0x01]].concat();
        assert!(!check(&pes_start(&trail, false), VideoCodec::H265));
    }

    #[test]
    fn mpeg2_sequence_header_starts_decoding() {
        let sequence = [0, 0, 1, 0xB3, 0x0A, 0x00];
        assert!(check(&pes_start(&sequence, false), VideoCodec::Mpeg2));
        let picture = [0, 0, 1, 0x00, 0x01, 0xFF];
        assert!(!check(&pes_start(&picture, false), VideoCodec::Mpeg2));
        assert_eq!(VideoCodec::of_stream_type(0x02), VideoCodec::Mpeg2);
    }

    #[test]
    fn indicator_counts_for_any_codec_but_only_at_a_pes_start() {
        let p = pes_start(&[0, 0, 1, 0x41], true);
        assert!(check(&p, VideoCodec::Other));
        let mut continuation = p;
        continuation[1] &= !0x40;
        assert!(!check(&continuation, VideoCodec::H264));
        let mut scrambled = p;
        scrambled[3] |= 0x80;
        assert!(!check(&scrambled, VideoCodec::H264));
    }

    #[test]
    fn garbage_never_panics() {
        let mut p = [0u8; PACKET_SIZE];
        for seed in 0u32..2000 {
            for (i, b) in p.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).wrapping_add(i as u32 * 97) >> 13) as u8;
            }
            p[0] = 0x47;
            p[1] |= 0x40;
            let _ = check(&p, VideoCodec::H264);
            let _ = check(&p, VideoCodec::H265);
        }
    }
}
