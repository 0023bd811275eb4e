//! Plugin call costs: a selector call with 8 engines, and a 64 KiB batch
//! through a filter including the host's output check.
//!
//! `cargo bench -p acemux --bench plugins`

use std::hint::black_box;
use std::sync::Arc;

use acemux::engine::pool::EngineView;
use acemux::engine::select::{EngineSelector, SelectRequest};
use acemux::plugins::bindings::{KeyType, Stream};
use acemux::plugins::{FilterChain, PluginHost, PluginSelector};
use acemux_ts::NULL_PACKET;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Plugin calls are futures with a deadline: the bench drives them on a
/// current-thread runtime, as a stream's task would.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn host_with(name: &str, wasm: &str) -> Arc<PluginHost> {
    let dir = std::env::temp_dir().join(format!("acemux-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
    let host = PluginHost::new(dir, None).unwrap();
    assert!(runtime().block_on(host.scan()), "plugin did not load");
    host
}

fn engines(n: usize) -> Vec<EngineView> {
    (0..n)
        .map(|i| EngineView {
            serial: i as u64,
            id: format!("10.0.0.{i}:6878"),
            host: format!("10.0.0.{i}"),
            port: 6878,
            labels: [("region".to_string(), "eu".to_string())].into_iter().collect(),
            container_id: None,
            forwarded: i % 2 == 0,
            healthy: true,
            draining: false,
            load: i % 3,
            load_elsewhere: 0,
            pending: 0,
            capacity: 3,
            last_error: None,
        })
        .collect()
}

fn selector(c: &mut Criterion) {
    let selector = PluginSelector { host: host_with("sticky", acemux_test_artifacts::STICKY_ENGINE) };
    let candidates = engines(8);
    let request = SelectRequest {
        content: Some(acemux::content::ContentKey {
            key_type: acemux::content::KeyType::ContentId,
            id: "0123456789abcdef0123456789abcdef01234567".into(),
        }),
        ..SelectRequest::default()
    };
    let rt = runtime();
    c.bench_function("selector call, sticky-engine, 8 engines", |b| {
        b.iter(|| black_box(rt.block_on(selector.select(&request, &candidates))))
    });
}

fn filter(c: &mut Criterion) {
    let host = host_with("nullstrip", acemux_test_artifacts::NULL_STRIP);
    let stream = Stream { content_key: "ab".into(), key_type: KeyType::ContentId, engine_id: None };
    let mut chain = FilterChain::new(host, stream);
    // 348 packets (64 KiB): one null in eight, like a padded broadcast.
    let mut video = NULL_PACKET;
    video[1] = 0x01;
    let batch: Vec<u8> = (0..348).flat_map(|i| if i % 8 == 0 { NULL_PACKET } else { video }).collect();
    let batch = Bytes::from(batch);
    let rt = runtime();
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("null-strip, 64 KiB batch, with output check", |b| {
        b.iter(|| black_box(rt.block_on(chain.process(batch.clone()))))
    });
    group.finish();
}

criterion_group!(benches, selector, filter);
criterion_main!(benches);
