//! Media timestamps: the PTS of a PES header and arithmetic on the 33-bit,
//! 90 kHz clock that PTS, DTS and PCR bases share.
//!
//! Durations of cut segments (HLS `#EXTINF`) come from these timestamps,
//! never from when bytes happened to arrive. The clock wraps every
//! 2^33 / 90 000 s (about 26.5 hours), so differences are taken modulo
//! 2^33.

use crate::packet::Packet;

/// Ticks per second of the PTS/DTS clock.
pub const CLOCK_HZ: u64 = 90_000;
/// The PTS/DTS/PCR-base clock wraps at 2^33 ticks.
pub const CLOCK_WRAP: u64 = 1 << 33;

/// The presentation timestamp of a packet that starts a PES, if its
/// header carries one.
pub fn pes_pts(packet: &Packet<'_>) -> Option<u64> {
    if !packet.pusi() || packet.scrambling() != 0 {
        return None;
    }
    let p = packet.payload();
    if p.get(..3)? != [0, 0, 1] {
        return None;
    }
    // Stream ids without the optional header (padding, private stream 2,
    // ECM/EMM, directory...) carry no timestamps.
    if matches!(p[3], 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF) {
        return None;
    }
    let flags = *p.get(7)?;
    if flags & 0x80 == 0 {
        return None;
    }
    let t = p.get(9..14)?;
    // '001x' or '0011' marker nibble, then 3+15+15 bits with marker bits.
    if t[0] & 0x01 == 0 || t[2] & 0x01 == 0 || t[4] & 0x01 == 0 {
        return None;
    }
    Some(
        (u64::from(t[0] >> 1 & 0x07) << 30)
            | (u64::from(t[1]) << 22)
            | (u64::from(t[2] >> 1) << 15)
            | (u64::from(t[3]) << 7)
            | u64::from(t[4] >> 1),
    )
}

/// The PCR of a packet on the 90 kHz clock (its 27 MHz value / 300).
pub fn pcr_90khz(packet: &Packet<'_>) -> Option<u64> {
    packet.pcr().map(|pcr| pcr / 300)
}

/// `later − earlier` on the wrapping 33-bit clock, as a signed number of
/// ticks: the shorter way round, so a small step back is negative and a
/// step across the wrap is small and positive.
pub fn clock_diff(later: u64, earlier: u64) -> i64 {
    let d = later.wrapping_sub(earlier) & (CLOCK_WRAP - 1);
    if d >= CLOCK_WRAP / 2 { d as i64 - CLOCK_WRAP as i64 } else { d as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PACKET_SIZE;

    /// A packet starting a video PES with `pts`.
    fn pes_with_pts(pts: u64) -> [u8; PACKET_SIZE] {
        let mut p = [0xFFu8; PACKET_SIZE];
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        let t = [
            0x21 | ((pts >> 29) as u8 & 0x0E),
            (pts >> 22) as u8,
            ((pts >> 14) as u8 & 0xFE) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8 & 0xFE) | 1,
        ];
        p[4..13].copy_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
        p[13..18].copy_from_slice(&t);
        p
    }

    #[test]
    fn reads_the_pts_of_a_pes_header() {
        for pts in [0, 1, 90_000, CLOCK_WRAP - 1, 0x1_2345_6789 & (CLOCK_WRAP - 1)] {
            let p = pes_with_pts(pts);
            assert_eq!(pes_pts(&Packet::new(&p).unwrap()), Some(pts), "pts {pts}");
        }
        // Not a PES start, or no PTS flag: nothing.
        let mut p = pes_with_pts(5);
        p[1] = 0x01;
        assert_eq!(pes_pts(&Packet::new(&p).unwrap()), None);
        let mut p = pes_with_pts(5);
        p[11] = 0;
        assert_eq!(pes_pts(&Packet::new(&p).unwrap()), None);
    }

    #[test]
    fn differences_go_the_short_way_round_the_wrap() {
        assert_eq!(clock_diff(100, 40), 60);
        assert_eq!(clock_diff(40, 100), -60);
        assert_eq!(clock_diff(10, CLOCK_WRAP - 10), 20);
        assert_eq!(clock_diff(CLOCK_WRAP - 10, 10), -20);
    }

    #[test]
    fn fixture_timestamps_advance_one_second_per_keyframe() {
        let ts = include_bytes!("../../../tests/fixtures/h264-aac.ts");
        let video: Vec<u64> = crate::packets(ts)
            .filter_map(Packet::new)
            .filter(|p| p.pid() == 0x100 && p.random_access())
            .filter_map(|p| pes_pts(&p))
            .collect();
        assert_eq!(video.len(), 12);
        for pair in video.windows(2) {
            assert_eq!(clock_diff(pair[1], pair[0]), 90_000, "one IDR a second");
        }
    }
}
