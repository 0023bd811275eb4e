//! Plugin call costs: a selector call with 8 engines, and a 64 KiB batch
//! through a filter including the host's output check.
//!
//! `cargo bench -p acemux --bench plugins`
//!
//! With `ACEMUX_BENCH_PLUGINS=<dir>`, also every `<name>.wasm` in that
//! directory (with its `<name>.toml`): a selector call, a 64 KiB batch
//! through a filter, the instantiation of one instance, and the memory one
//! instance holds — how `tests/bench/plugin-languages.sh` compares the
//! Python and JavaScript examples with the Rust ones. With
//! `ACEMUX_BENCH_COMPILER=winch`, every plugin is compiled by Winch
//! instead of Cranelift (and the time each compile took is printed).

use std::hint::black_box;
use std::sync::Arc;

use acemux::engine::pool::EngineView;
use acemux::engine::select::{EngineSelector, SelectRequest};
use acemux::plugins::bindings::{KeyType, Stream};
use acemux::plugins::host_settings::PluginCompiler;
use acemux::plugins::{FilterChain, PluginHost, PluginSelector};
use acemux_ts::NULL_PACKET;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Plugin calls are futures with a deadline: the bench awaits them on a
/// current-thread runtime, as a stream's task would (criterion's async
/// runner: one `block_on` per batch of iterations, not one per call, which
/// cost 0.1-0.3 us of each selector call and is no part of acemux's).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn host_with(name: &str, wasm: &str) -> Arc<PluginHost> {
    let dir = std::env::temp_dir().join(format!("acemux-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
    let toml = std::path::Path::new(wasm).with_extension("toml");
    if toml.exists() {
        std::fs::copy(&toml, dir.join(format!("{name}.toml"))).unwrap();
    }
    let compiler = match std::env::var("ACEMUX_BENCH_COMPILER").as_deref() {
        Ok("winch") => PluginCompiler::Winch,
        _ => PluginCompiler::Cranelift,
    };
    let host = PluginHost::new(dir, None, compiler, false, Vec::new()).unwrap();
    assert!(runtime().block_on(host.scan()), "plugin did not load");
    let plugin = &host.current().plugins[0];
    println!("{name}: compiled by {compiler:?} in {:.0} ms", plugin.compile_time.as_secs_f64() * 1e3);
    host
}

fn engines(n: usize) -> Vec<EngineView> {
    (0..n)
        .map(|i| EngineView {
            serial: i as u64,
            id: format!("10.0.0.{i}:6878"),
            host: format!("10.0.0.{i}"),
            port: 6878,
            // The Python and JavaScript examples' settings send 127.0.0.1
            // to region `local`, tier `gold`: every other engine.
            labels: [
                ("region".to_string(), if i % 2 == 1 { "local" } else { "eu" }.to_string()),
                ("tier".to_string(), if i % 2 == 1 { "gold" } else { "silver" }.to_string()),
            ]
            .into_iter()
            .collect(),
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

fn request() -> SelectRequest {
    SelectRequest {
        content: Some(acemux::content::ContentKey::new(
            acemux::content::KeyType::ContentId,
            "0123456789abcdef0123456789abcdef01234567",
        )),
        client: Some("127.0.0.1:40000".parse().unwrap()),
        ..SelectRequest::default()
    }
}

fn stream() -> Stream {
    Stream { content_key: "ab".into(), key_type: KeyType::ContentId, engine_id: None, channel: None }
}

/// 348 packets (64 KiB): one null in eight, like a padded broadcast.
fn batch() -> Bytes {
    let mut video = NULL_PACKET;
    video[1] = 0x01;
    (0..348).flat_map(|i| if i % 8 == 0 { NULL_PACKET } else { video }).collect::<Vec<u8>>().into()
}

fn bench_selector(c: &mut Criterion, name: &str, host: Arc<PluginHost>) {
    let selector = PluginSelector { host };
    let (candidates, request, rt) = (engines(8), request(), runtime());
    c.bench_function(&format!("selector call, {name}, 8 engines"), |b| {
        b.to_async(&rt).iter(|| async { black_box(selector.select(&request, &candidates).await) })
    });
}

fn bench_filter(c: &mut Criterion, name: &str, host: Arc<PluginHost>) {
    let mut chain = FilterChain::new(host, stream());
    let (batch, rt) = (batch(), runtime());
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function(format!("{name}, 64 KiB batch, with output check"), |b| {
        b.iter(|| black_box(rt.block_on(chain.process(batch.clone()))))
    });
    group.finish();
}

fn selector(c: &mut Criterion) {
    bench_selector(c, "sticky-engine", host_with("sticky", acemux_test_artifacts::STICKY_ENGINE));
}

fn filter(c: &mut Criterion) {
    bench_filter(c, "null-strip", host_with("nullstrip", acemux_test_artifacts::NULL_STRIP));
}

/// The components in `ACEMUX_BENCH_PLUGINS`, each in every phase it exports.
fn other_languages(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("ACEMUX_BENCH_PLUGINS") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let host = host_with(&name, file.to_str().unwrap());
        let plugin = host.current().plugins[0].clone();
        let rt = runtime();
        c.bench_function(&format!("instantiate, {name}"), |b| {
            b.iter(|| rt.block_on(plugin.try_instantiate()).unwrap())
        });
        if plugin.capabilities.selector {
            bench_selector(c, &name, host.clone());
        }
        if plugin.capabilities.filter {
            bench_filter(c, &name, host.clone());
        }
        // One instance, as a stream's filter or an idle selector holds it,
        // after a call.
        let mut chain = plugin.capabilities.filter.then(|| FilterChain::new(host.clone(), stream()));
        if let Some(chain) = &mut chain {
            rt.block_on(chain.process(batch()));
        }
        let memory = plugin.memory.view();
        println!(
            "{name}: component {} bytes, native code {} bytes, {} live instance(s) holding {} bytes of linear memory",
            std::fs::metadata(&file).unwrap().len(),
            plugin.code_bytes,
            memory.instances,
            memory.linear_bytes
        );
    }
}

criterion_group!(benches, selector, filter, other_languages);
criterion_main!(benches);
