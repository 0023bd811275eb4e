//! Micro-benchmarks of the stream path's own work (no sockets):
//! TS alignment per MB, and ring append + read per player.
//!
//! `cargo bench -p acemux --bench stream_path`

use std::hint::black_box;
use std::time::Duration;

use acemux::stream::Ring;
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

criterion_group!(benches, align, ring);
criterion_main!(benches);
