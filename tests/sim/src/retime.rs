//! Timestamps and continuity counters of a recording played in a loop.
//!
//! A recording played again from its start jumps back in time and breaks
//! every PID's continuity counter: decoders drop frames or stall at the
//! seam. Played by [`Retimer`], each pass's PCRs, PTSs and DTSs are shifted
//! by the recording's length and the counters keep counting, so the loop
//! plays like one endless live channel.

use std::collections::HashMap;

use acemux_ts::{PACKET_SIZE, Packet, packets, set_continuity_counter};

/// 33-bit MPEG timestamps wrap at this (90 kHz units).
const TIMESTAMP_WRAP: u64 = 1 << 33;

/// The PTS and DTS of a PES start, with their byte offsets in the packet.
fn pes_timestamps(packet: &[u8; PACKET_SIZE]) -> Vec<(usize, u64)> {
    let p = Packet(packet);
    if !p.pusi() {
        return Vec::new();
    }
    let start = PACKET_SIZE - p.payload().len();
    let pes = &packet[start..];
    if pes.len() < 14 || pes[..3] != [0, 0, 1] || pes[6] & 0xC0 != 0x80 {
        return Vec::new();
    }
    let read = |at: usize| {
        let b = &pes[at..at + 5];
        (u64::from(b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1)
    };
    match pes[7] >> 6 {
        2 => vec![(start + 9, read(9))],
        3 if pes.len() >= 19 => vec![(start + 9, read(9)), (start + 14, read(14))],
        _ => Vec::new(),
    }
}

fn write_timestamp(b: &mut [u8], ts: u64) {
    b[0] = (b[0] & 0xF0) | (((ts >> 30) & 7) as u8) << 1 | 1;
    b[1] = (ts >> 22) as u8;
    b[2] = ((ts >> 15) as u8) << 1 | 1;
    b[3] = (ts >> 7) as u8;
    b[4] = (ts as u8) << 1 | 1;
}

/// Shifts the PCR (if any) of a packet by `ticks` (90 kHz).
fn shift_pcr(packet: &mut [u8; PACKET_SIZE], ticks: u64) {
    let Some(pcr) = Packet(packet).pcr() else { return };
    let base = (pcr / 300 + ticks) % TIMESTAMP_WRAP;
    let ext = pcr % 300;
    packet[6] = (base >> 25) as u8;
    packet[7] = (base >> 17) as u8;
    packet[8] = (base >> 9) as u8;
    packet[9] = (base >> 1) as u8;
    packet[10] = ((base & 1) as u8) << 7 | 0x7E | (ext >> 8) as u8;
    packet[11] = ext as u8;
}

/// How long one pass of a recording lasts, in 90 kHz units: from its
/// earliest timestamp to the end of its last frame, the latest over all
/// PIDs. A PID's frame length is the smallest step between its PTSs, so
/// this is exact when every PES holds one frame (video always does; ffmpeg's
/// `-pes_payload_size 0` does it for audio) and otherwise a little long,
/// which leaves a short gap at the seam instead of overlapping frames.
/// Zero without PTSs.
pub(crate) fn loop_span(ts: &[u8]) -> u64 {
    let mut by_pid: HashMap<u16, Vec<u64>> = HashMap::new();
    for raw in packets(ts) {
        let Ok(packet) = <&[u8; PACKET_SIZE]>::try_from(raw) else { continue };
        if let Some(&(_, pts)) = pes_timestamps(packet).first() {
            by_pid.entry(Packet(packet).pid()).or_default().push(pts);
        }
    }
    let mut first = u64::MAX;
    let mut end = 0;
    for pts in by_pid.values_mut() {
        pts.sort_unstable();
        pts.dedup();
        let frame = pts.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
        first = first.min(pts[0]);
        end = end.max(pts[pts.len() - 1] + frame);
    }
    end.saturating_sub(first)
}

/// Rewrites packets of pass `n` of a loop. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Retimer {
    /// Next continuity counter per PID.
    continuity: HashMap<u16, u8>,
}

impl Retimer {
    /// Fixes up one packet of pass `pass` (0 = first) of a recording whose
    /// passes last `span` (90 kHz units).
    pub fn packet(&mut self, packet: &mut [u8; PACKET_SIZE], pass: u64, span: u64) {
        let p = Packet(packet);
        let pid = p.pid();
        if p.is_null() {
            return;
        }
        // The counter advances with each packet that has a payload.
        let has_payload = p.has_payload();
        let next = self.continuity.entry(pid).or_insert(p.continuity_counter());
        if has_payload {
            set_continuity_counter(packet, *next);
            *next = (*next + 1) & 0x0F;
        } else {
            set_continuity_counter(packet, next.wrapping_sub(1) & 0x0F);
        }
        let shift = pass.wrapping_mul(span) % TIMESTAMP_WRAP;
        if shift == 0 {
            return;
        }
        shift_pcr(packet, shift);
        for (at, ts) in pes_timestamps(packet) {
            write_timestamp(&mut packet[at..at + 5], (ts + shift) % TIMESTAMP_WRAP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDING: &[u8] = include_bytes!("../../fixtures/h264-aac.ts");

    #[test]
    fn the_fixture_lasts_as_long_as_its_audio() {
        // 564 AAC frames of 1024 samples at 48 kHz.
        assert_eq!(loop_span(RECORDING), 564 * 1920);
    }

    #[test]
    fn three_passes_play_as_one_stream() {
        let span = loop_span(RECORDING);
        let mut retimer = Retimer::default();
        let mut last_pts: HashMap<u16, u64> = HashMap::new();
        let mut last_pcr = 0;
        let mut last_cc: HashMap<u16, u8> = HashMap::new();
        for pass in 0..3 {
            for raw in RECORDING.chunks_exact(PACKET_SIZE) {
                let mut packet: [u8; PACKET_SIZE] = raw.try_into().unwrap();
                retimer.packet(&mut packet, pass, span);
                let p = Packet(&packet);
                if let Some(pcr) = p.pcr() {
                    assert!(pcr > last_pcr, "PCR goes back in pass {pass}");
                    last_pcr = pcr;
                }
                if let Some(&(_, pts)) = pes_timestamps(&packet).first() {
                    let previous = last_pts.insert(p.pid(), pts);
                    // Video PTS are in presentation order only per GOP;
                    // across a seam each PID must move forward.
                    if p.pid() == 0x101 {
                        assert!(previous.is_none_or(|prev| pts > prev), "audio PTS goes back in pass {pass}");
                    }
                }
                if p.has_payload()
                    && let Some(prev) = last_cc.insert(p.pid(), p.continuity_counter())
                {
                    assert_eq!(p.continuity_counter(), (prev + 1) & 0x0F, "CC of PID {}", p.pid());
                }
            }
        }
        assert!(last_pcr / 300 > 2 * span, "the third pass is two spans later");
    }

    #[test]
    fn timestamps_survive_a_round_trip() {
        let mut b = [0x21, 0, 1, 0, 1];
        for ts in [0, 1, 90_000, TIMESTAMP_WRAP - 1] {
            write_timestamp(&mut b, ts);
            let mut packet = [0u8; PACKET_SIZE];
            packet[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
            packet[4..13].copy_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
            packet[13..18].copy_from_slice(&b);
            assert_eq!(pes_timestamps(&packet), vec![(13, ts)]);
        }
    }
}
