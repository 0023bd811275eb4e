//! Property tests for everything in `acemux-ts` that reads untrusted bytes
//! (an engine's stream, a plugin's output): arbitrary input never panics,
//! and the aligner's output is always whole, synced 188-byte packets that
//! account for every input byte.

use acemux_ts::access::{VideoCodec, is_random_access};
use acemux_ts::psi::{parse_pat, parse_pmt};
use acemux_ts::{Aligner, PACKET_SIZE, Packet, SYNC_BYTE, is_whole_packets};
use bytes::BytesMut;
use proptest::prelude::*;

/// Bytes that look like TS often enough to exercise the parsers: a mix of
/// well-formed packets (random header bits and payload) and raw noise.
fn ts_like() -> impl Strategy<Value = Vec<u8>> {
    let packet =
        (any::<[u8; 3]>(), proptest::collection::vec(any::<u8>(), PACKET_SIZE - 4)).prop_map(|(h, body)| {
            let mut p = vec![SYNC_BYTE];
            p.extend_from_slice(&h);
            p.extend_from_slice(&body);
            p
        });
    let piece = prop_oneof![3 => packet, 1 => proptest::collection::vec(any::<u8>(), 0..400)];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// A packet with a PES start on PID 0x100: random header flags and body.
fn pes_start_packet() -> impl Strategy<Value = [u8; PACKET_SIZE]> {
    (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), PACKET_SIZE - 4)).prop_map(
        |(flags, cc, body)| {
            let mut p = [0u8; PACKET_SIZE];
            p[0] = SYNC_BYTE;
            p[1] = 0x40 | 0x01; // PUSI, PID 0x100
            p[2] = 0x00;
            p[3] = (flags & 0x30) | (cc & 0x0F);
            p[4..].copy_from_slice(&body);
            if body.len() > 8 && flags & 1 == 1 {
                // Often a real PES header: start code and a video stream id.
                p[4..8].copy_from_slice(&[0, 0, 1, 0xE0]);
            }
            p
        },
    )
}

fn codecs() -> impl Strategy<Value = VideoCodec> {
    prop_oneof![
        Just(VideoCodec::H264),
        Just(VideoCodec::H265),
        Just(VideoCodec::Mpeg2),
        Just(VideoCodec::Other)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn aligner_emits_whole_synced_packets_and_accounts_for_every_byte(
        input in ts_like(),
        cuts in proptest::collection::vec(0usize..2000, 0..8),
    ) {
        let mut aligner = Aligner::new();
        let mut out = BytesMut::new();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for to in cuts.into_iter().chain([input.len()]) {
            let before = out.len();
            aligner.push(&input[from..to], &mut out);
            prop_assert!(out.len() >= before, "output only grows");
            from = to;
        }
        prop_assert!(is_whole_packets(&out));
        prop_assert!(out.chunks_exact(PACKET_SIZE).all(|p| p[0] == SYNC_BYTE));
        let stats = aligner.stats();
        prop_assert_eq!(stats.packets as usize * PACKET_SIZE, out.len());
        let accounted = out.len() + stats.discarded_bytes as usize;
        prop_assert!(accounted <= input.len());
        // What is neither emitted nor discarded is waiting: at most the
        // bytes needed to confirm sync.
        prop_assert!(input.len() - accounted < 3 * PACKET_SIZE);
    }

    #[test]
    fn aligner_passes_a_clean_stream_through_unchanged(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), PACKET_SIZE - 1), 3..20),
        cut in 0usize..4000,
    ) {
        let input: Vec<u8> = packets.iter().flat_map(|p| std::iter::once(SYNC_BYTE).chain(p.iter().copied())).collect();
        let cut = cut.min(input.len());
        let mut aligner = Aligner::new();
        let mut out = BytesMut::new();
        aligner.push(&input[..cut], &mut out);
        aligner.push(&input[cut..], &mut out);
        prop_assert!(input.starts_with(&out));
        // Only the last packet may wait for the next one's sync byte.
        prop_assert!(out.len() + PACKET_SIZE >= input.len());
        prop_assert_eq!(aligner.stats().discarded_bytes, 0);
    }

    #[test]
    fn packet_accessors_and_psi_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), PACKET_SIZE), pid0 in any::<bool>()) {
        let mut bytes = bytes;
        bytes[0] = SYNC_BYTE;
        if pid0 {
            bytes[1] &= 0xE0;
            bytes[2] = 0;
        }
        let packet = Packet::new(&bytes).expect("188 bytes");
        let _ = (packet.pid(), packet.pcr(), packet.adaptation_field(), packet.payload(), packet.random_access());
        prop_assert!(packet.payload().len() <= PACKET_SIZE - 4);
        if let Some(programs) = parse_pat(&packet) {
            prop_assert!(programs.iter().all(|(_, pmt)| *pmt <= 0x1FFF));
        }
        if let Some(map) = parse_pmt(&packet) {
            let _ = map.video();
        }
    }

    #[test]
    fn random_access_detection_never_panics(packet in pes_start_packet(), codec in codecs()) {
        let p = Packet::new(&packet).expect("188 bytes");
        let found = is_random_access(&p, codec);
        if p.scrambling() != 0 {
            prop_assert!(!found, "a scrambled packet is never a join point");
        }
    }
}
