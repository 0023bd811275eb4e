//! Micro-benchmarks of the stream path's own work (no sockets):
//! TS alignment per MB, ring append + read per player, the keyframe scan
//! of a real H.264/AAC stream, and a keyframe join in a full ring.
//!
//! `cargo bench -p acemux --bench stream_path`

use std::hint::black_box;
use std::time::Duration;

use acemux::stream::Ring;
use acemux::stream::media::MediaScanner;
use acemux::stream::ring::Read;
use acemux_ts::{Aligner, NULL_PACKET};
use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn ts_megabyte() -> Vec<u8> {
    NULL_PACKET.iter().copied().cycle().take(188 * 5577).collect()
}

fn align(c: &mut Criterion) {
    let input = ts_megabyte();
    let mut group = c.benchmark_group("aligner");
    group.throughput(Throughput::Bytes(input.len() as u64));
    for read in [8 * 1024, 64 * 1024] {
        group.bench_function(format!("1 MB in {} KiB reads", read / 1024), |b| {
            let mut aligner = Aligner::new();
            let mut out = BytesMut::with_capacity(2 << 20);
            b.iter(|| {
                out.clear();
                for piece in input.chunks(read) {
                    aligner.push(black_box(piece), &mut out);
                }
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn ring(c: &mut Criterion) {
    let chunk = Bytes::from(vec![0x47u8; 65424]);
    let mut group = c.benchmark_group("ring");
    group.bench_function("append 64 KiB chunk", |b| {
        let ring = Ring::new(8 << 20, Duration::from_secs(60));
        b.iter(|| ring.append(black_box(chunk.clone())));
    });
    for players in [1, 1000] {
        group.throughput(Throughput::Elements(players));
        group.bench_function(format!("append + read by {players} players"), |b| {
            let ring = Ring::new(8 << 20, Duration::from_secs(60));
            let mut seq = 0u64;
            b.iter(|| {
                ring.append(chunk.clone());
                for _ in 0..players {
                    match ring.read(seq) {
                        Read::Chunk { data, .. } => {
                            black_box(data);
                        }
                        other => panic!("{other:?}"),
                    }
                }
                seq += 1;
            });
        });
    }
    group.finish();
}

/// The committed fixture: 12 s of H.264/AAC, one keyframe per second.
const RECORDED: &[u8] = include_bytes!("../../tests/fixtures/h264-aac.ts");
const CHUNK: usize = 65424;

fn keyframes(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyframes");
    group.throughput(Throughput::Bytes(RECORDED.len() as u64));
    group.bench_function("scan 823 KB of H.264/AAC in 64 KiB chunks", |b| {
        let mut scanner = MediaScanner::new();
        b.iter(|| {
            let found = RECORDED.chunks(CHUNK).filter_map(|c| scanner.scan(black_box(c)).keyframes).count();
            black_box(found)
        });
    });
    group.finish();

    // A full 8 MiB ring of the recording (128 chunks, ~11 s at 6 Mbit/s):
    // the cost one joining player adds.
    let ring = Ring::new(8 << 20, Duration::from_secs(60));
    let mut scanner = MediaScanner::new();
    let chunks: Vec<Bytes> = RECORDED.chunks_exact(CHUNK).map(Bytes::copy_from_slice).collect();
    for chunk in chunks.iter().cycle().take(128) {
        ring.append_media(chunk.clone(), scanner.scan(chunk), 1);
    }
    let mut group = c.benchmark_group("join");
    for (name, at_keyframe) in [("keyframe", true), ("chunk", false)] {
        group.bench_function(format!("{name} join in a full ring"), |b| {
            b.iter(|| black_box(ring.join(black_box(Duration::ZERO), at_keyframe)))
        });
    }
    group.finish();
}

criterion_group!(benches, align, ring, keyframes);
criterion_main!(benches);
