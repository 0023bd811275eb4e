//! Just enough PAT/PMT parsing to know which PIDs carry what.

use crate::access::{VideoCodec, VideoStream};
use crate::packet::Packet;

/// What an elementary stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Video,
    Audio,
    /// DVB subtitles or teletext (private data with a descriptor saying so).
    Subtitles,
    Other,
}

/// One elementary stream of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementaryStream {
    pub pid: u16,
    pub stream_type: u8,
    pub kind: StreamKind,
}

/// A parsed PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramMap {
    pub program: u16,
    pub pcr_pid: u16,
    pub streams: Vec<ElementaryStream>,
}

impl ProgramMap {
    /// The program's first video stream and its codec.
    pub fn video(&self) -> Option<VideoStream> {
        let video = self.streams.iter().find(|s| s.kind == StreamKind::Video)?;
        Some(VideoStream { pid: video.pid, codec: VideoCodec::of_stream_type(video.stream_type) })
    }
}

/// The section in a PSI packet that starts one (PUSI set); `None` otherwise.
fn section<'a>(packet: &Packet<'a>) -> Option<&'a [u8]> {
    if !packet.pusi() {
        return None;
    }
    let payload = packet.payload();
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    let len = (usize::from(*s.get(1)? & 0x0F) << 8) | usize::from(*s.get(2)?);
    // The whole section must be in this packet (true for the small tables
    // live streams carry); CRC not checked.
    s.get(..3 + len).filter(|_| len >= 9)
}

/// `(program number, PMT PID)` of a PAT packet.
pub fn parse_pat(packet: &Packet<'_>) -> Option<Vec<(u16, u16)>> {
    if packet.pid() != 0 {
        return None;
    }
    let s = section(packet)?;
    if s[0] != 0x00 {
        return None;
    }
    let entries = s.get(8..s.len() - 4)?;
    Some(
        entries
            .chunks_exact(4)
            .map(|e| (u16::from_be_bytes([e[0], e[1]]), u16::from_be_bytes([e[2] & 0x1F, e[3]])))
            .filter(|(program, _)| *program != 0)
            .collect(),
    )
}

/// Parses a PMT packet (a packet on a PMT PID that starts the section).
pub fn parse_pmt(packet: &Packet<'_>) -> Option<ProgramMap> {
    let s = section(packet)?;
    if s[0] != 0x02 {
        return None;
    }
    let program = u16::from_be_bytes([s[3], s[4]]);
    let pcr_pid = u16::from_be_bytes([*s.get(8)? & 0x1F, *s.get(9)?]);
    let info_len = (usize::from(*s.get(10)? & 0x0F) << 8) | usize::from(*s.get(11)?);
    let mut rest = s.get(12 + info_len..s.len() - 4)?;
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        let stream_type = rest[0];
        let pid = u16::from_be_bytes([rest[1] & 0x1F, rest[2]]);
        let es_len = (usize::from(rest[3] & 0x0F) << 8) | usize::from(rest[4]);
        let descriptors = rest.get(5..5 + es_len)?;
        streams.push(ElementaryStream { pid, stream_type, kind: kind_of(stream_type, descriptors) });
        rest = &rest[5 + es_len..];
    }
    Some(ProgramMap { program, pcr_pid, streams })
}

fn kind_of(stream_type: u8, descriptors: &[u8]) -> StreamKind {
    match stream_type {
        0x01 | 0x02 | 0x10 | 0x1B | 0x24 | 0x42 | 0xEA => StreamKind::Video,
        0x03 | 0x04 | 0x0F | 0x11 | 0x81 | 0x87 => StreamKind::Audio,
        0x06 => {
            // Private data: the descriptors say what it is.
            let mut d = descriptors;
            while d.len() >= 2 {
                match d[0] {
                    0x56 | 0x59 => return StreamKind::Subtitles, // teletext, DVB subtitles
                    0x6A | 0x7A | 0x7C => return StreamKind::Audio, // AC-3, E-AC-3, AAC
                    _ => {}
                }
                d = d.get(2 + usize::from(d[1])..).unwrap_or(&[]);
            }
            StreamKind::Other
        }
        _ => StreamKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PACKET_SIZE;

    fn psi_packet(pid: u16, section: &[u8]) -> [u8; PACKET_SIZE] {
        let mut p = [0xFFu8; PACKET_SIZE];
        p[..4].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10]);
        p[4] = 0;
        p[5..5 + section.len()].copy_from_slice(section);
        p
    }

    fn with_len(table: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table, 0xB0, len as u8, (id >> 8) as u8, id as u8, 0xC1, 0, 0];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked)
        s
    }

    #[test]
    fn parses_pat_and_pmt_kinds() {
        let pat = psi_packet(0, &with_len(0, 1, &[0x00, 0x01, 0xF0, 0x00]));
        assert_eq!(parse_pat(&Packet::new(&pat).unwrap()), Some(vec![(1, 0x1000)]));
        let body = [
            0xE1, 0x00, 0xF0, 0x00, // PCR PID 0x100, no program info
            0x1B, 0xE1, 0x00, 0xF0, 0x00, // H.264 on 0x100
            0x0F, 0xE1, 0x01, 0xF0, 0x00, // AAC on 0x101
            0x06, 0xE1, 0x02, 0xF0, 0x02, 0x56, 0x00, // teletext on 0x102
        ];
        let pmt = psi_packet(0x1000, &with_len(2, 1, &body));
        let map = parse_pmt(&Packet::new(&pmt).unwrap()).unwrap();
        assert_eq!(map.pcr_pid, 0x100);
        let kinds: Vec<(u16, StreamKind)> = map.streams.iter().map(|s| (s.pid, s.kind)).collect();
        assert_eq!(
            kinds,
            vec![(0x100, StreamKind::Video), (0x101, StreamKind::Audio), (0x102, StreamKind::Subtitles)]
        );
        assert_eq!(
            map.video(),
            Some(crate::access::VideoStream { pid: 0x100, codec: crate::access::VideoCodec::H264 })
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u32;
        for _ in 0..2000 {
            let mut p = [0u8; PACKET_SIZE];
            for b in p.iter_mut() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (seed >> 16) as u8;
            }
            p[1] |= 0x40;
            let v = Packet::new(&p).unwrap();
            let _ = (parse_pat(&v), parse_pmt(&v));
        }
    }
}
