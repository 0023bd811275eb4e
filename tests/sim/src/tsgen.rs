//! Generates a valid MPEG-TS program: PAT, PMT, one video PID whose payload
//! starts with a 64-bit packet counter, and some null packets.
//!
//! The counter lets a test check that a player received every video packet
//! in order: consecutive video packets carry consecutive counters.

use acemux_ts::{NULL_PACKET, PACKET_SIZE, SYNC_BYTE, pid};

/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the video elementary stream (carries the counter).
pub const VIDEO_PID: u16 = 0x0100;
/// The packet cycle: PAT, PMT, then video packets, one null packet last.
const CYCLE: u64 = 40;

/// The counter carried by a video packet, or `None` for any other packet.
pub fn video_counter(packet: &[u8]) -> Option<u64> {
    if packet.len() < PACKET_SIZE || packet[0] != SYNC_BYTE || pid(packet) != VIDEO_PID {
        return None;
    }
    Some(u64::from_be_bytes(packet[4..12].try_into().ok()?))
}

/// Writes packets for one playback connection.
pub struct TsGenerator {
    /// Packets generated so far (drives the PAT/PMT/video/null cycle).
    position: u64,
    /// Next video counter.
    video_counter: u64,
    continuity: [u8; 3],
}

impl TsGenerator {
    /// Starts the video counter at `first_counter` (the content's live
    /// position, so a reconnect jumps forward like a live stream does).
    pub fn new(first_counter: u64) -> Self {
        Self { position: 0, video_counter: first_counter, continuity: [0; 3] }
    }

    /// Appends `count` packets to `out`.
    pub fn write(&mut self, count: usize, out: &mut Vec<u8>) {
        for _ in 0..count {
            match self.position % CYCLE {
                0 => self.psi(0, 0, &pat_section(), out),
                1 => self.psi(PMT_PID, 1, &pmt_section(), out),
                n if n == CYCLE - 1 => out.extend_from_slice(&NULL_PACKET),
                _ => self.video(out),
            }
            self.position += 1;
        }
    }

    fn header(&mut self, pid: u16, slot: usize, pusi: bool, out: &mut Vec<u8>) {
        let cc = self.continuity[slot];
        self.continuity[slot] = (cc + 1) & 0x0F;
        out.push(SYNC_BYTE);
        out.push(((pusi as u8) << 6) | ((pid >> 8) as u8 & 0x1F));
        out.push(pid as u8);
        out.push(0x10 | cc);
    }

    fn psi(&mut self, pid: u16, slot: usize, section: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        self.header(pid, slot, true, out);
        out.push(0); // pointer field
        out.extend_from_slice(section);
        out.resize(start + PACKET_SIZE, 0xFF);
    }

    fn video(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.header(VIDEO_PID, 2, false, out);
        out.extend_from_slice(&self.video_counter.to_be_bytes());
        self.video_counter += 1;
        out.resize(start + PACKET_SIZE, 0xAB);
    }
}

/// Number of video packets in `packets` generated packets from the start of
/// a cycle (used to turn elapsed time into a live counter position).
pub(crate) fn video_packets_in(packets: u64) -> u64 {
    packets * (CYCLE - 3) / CYCLE
}

fn pat_section() -> Vec<u8> {
    // program 1 -> PMT PID
    let body = [0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8];
    section(0x00, 0x0001, &body)
}

fn pmt_section() -> Vec<u8> {
    let mut body = vec![0xE0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xF0, 0x00];
    // stream_type H.264 on the video PID, no descriptors
    body.extend_from_slice(&[0x1B, 0xE0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xF0, 0x00]);
    section(0x02, 0x0001, &body)
}

/// A long-form PSI section with CRC.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let length = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xB0 | ((length >> 8) as u8 & 0x0F),
        length as u8,
        (id >> 8) as u8,
        id as u8,
        0xC1, // version 0, current
        0x00,
        0x00,
    ];
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_ts::is_whole_packets;

    #[test]
    fn generates_whole_packets_with_consecutive_counters() {
        let mut g = TsGenerator::new(1000);
        let mut out = Vec::new();
        g.write(100, &mut out);
        assert!(is_whole_packets(&out));
        let counters: Vec<u64> = out.chunks(PACKET_SIZE).filter_map(video_counter).collect();
        assert_eq!(counters.first(), Some(&1000));
        assert!(counters.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(pid(&out[..PACKET_SIZE]), 0);
        assert_eq!(pid(&out[PACKET_SIZE..]), PMT_PID);
    }

    #[test]
    fn crc_matches_known_pat() {
        // CRC-32/MPEG-2 check value for "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }
}
