//! `acemux plugin …`: a plugin author's bench, without a running acemux.
//!
//! - `check FILE.wasm`: the contract version, the phases (worlds) it
//!   exports, the sandbox openings it imports and what grant each needs,
//!   compile time, native code size, and the memory of one instance.
//! - `filter FILE.wasm --input IN.ts --output OUT.ts`: replays a capture
//!   through a filter at full speed, in acemux's batches (whole packets,
//!   resynchronised on 0x47), and prints calls, time per batch, the
//!   budget's headroom and failures.
//! - `select FILE.wasm --engines a:6878,b:6878`: asks a selector which
//!   engine it would choose for a content.
//!
//! Each runs the plugin as acemux would: the same runtime, sandbox, time
//! budget, memory cap and failure accounting, with the settings of
//! `<name>.toml` beside the file or `--config`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::BytesMut;
use clap::Parser;

use super::bindings::{KeyType, Request, Stream};
use super::candidates::Candidates;
use super::host_settings::PluginCompiler;
use super::metrics::MetricsScope;
use super::plugin::Plugin;
use super::runtime::Runtime;
use super::settings::PluginSettings;
use crate::engine::pool::EngineView;
use crate::engine::select::Selection;
use crate::values;

/// See the module docs.
#[derive(Debug, Parser)]
#[command(name = "acemux plugin", about = "Check and try a plugin without a running acemux")]
struct PluginCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The plugin: a WebAssembly component.
    file: PathBuf,
    /// Its settings (the `<name>.toml` format) [default: `<name>.toml`
    /// beside the file, if there is one].
    #[arg(long)]
    config: Option<PathBuf>,
    /// `cranelift` or `winch`.
    #[arg(long, default_value = "cranelift", value_parser = values::choice(&[("cranelift", PluginCompiler::Cranelift), ("winch", PluginCompiler::Winch)]))]
    compiler: PluginCompiler,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Contract version, phases, imports and grants, compile time, code size
    /// and the memory of one instance.
    Check(Common),
    /// Replays a TS capture through a filter plugin.
    Filter {
        #[command(flatten)]
        common: Common,
        /// The capture to replay.
        #[arg(long)]
        input: PathBuf,
        /// Where the filtered stream goes.
        #[arg(long)]
        output: PathBuf,
        /// Bytes per batch, as acemux's `--chunk-size` (a multiple of 188).
        #[arg(long, default_value = "65424")]
        batch: usize,
    },
    /// Asks a selector plugin for an engine.
    Select {
        #[command(flatten)]
        common: Common,
        /// The candidates, `host:port[=streams]` (streams they run now).
        #[arg(long, value_delimiter = ',', required = true)]
        engines: Vec<String>,
        /// The content asked for (40 hex characters).
        #[arg(long, default_value = "0000000000000000000000000000000000000000")]
        content: String,
    },
}

/// Runs `acemux plugin …` (`args` from the word after `plugin`).
pub async fn main(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let cli = PluginCli::try_parse_from(std::iter::once(OsString::from("acemux plugin")).chain(args))
        .unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Check(common) => check(&common).await,
        Command::Filter { common, input, output, batch } => filter(&common, &input, &output, batch).await,
        Command::Select { common, engines, content } => select(&common, &engines, &content).await,
    }
}

/// Compiles the plugin as acemux loads it.
async fn load(common: &Common) -> anyhow::Result<(Arc<Plugin>, Vec<u8>)> {
    let bytes =
        std::fs::read(&common.file).with_context(|| format!("cannot read {}", common.file.display()))?;
    let settings_file = common.config.clone().unwrap_or_else(|| common.file.with_extension("toml"));
    let settings = PluginSettings::load(&settings_file)?;
    super::host::check_digest(&common.file, &bytes, settings.sha256.as_deref(), false)?;
    let runtime = Runtime::new(None, common.compiler)?;
    let name = common.file.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_owned();
    let file = common.file.clone();
    let compile_bytes = bytes.clone();
    let plugin = tokio::task::spawn_blocking(move || {
        let metrics = MetricsScope::standalone(&name);
        Plugin::compile(&runtime, &name, file, &compile_bytes, settings, [0; 32], metrics)
    })
    .await??;
    plugin.try_instantiate().await?;
    Ok((Arc::new(plugin), bytes))
}

async fn check(common: &Common) -> anyhow::Result<ExitCode> {
    print!("{}", check_report(&common.file, common.config.as_deref(), common.compiler).await?);
    Ok(ExitCode::SUCCESS)
}

/// What `acemux plugin check` prints (for an SDK's own tests too).
pub async fn check_report(
    file: &Path,
    config: Option<&Path>,
    compiler: PluginCompiler,
) -> anyhow::Result<String> {
    use std::fmt::Write;
    let common = Common { file: file.to_owned(), config: config.map(Path::to_owned), compiler };
    let (plugin, bytes) = load(&common).await?;
    let phases: Vec<&str> = [
        ("selector", plugin.capabilities.selector),
        ("filter", plugin.capabilities.filter),
        ("events", plugin.capabilities.events),
        ("channel-source", plugin.capabilities.channel_source),
        ("access", plugin.capabilities.access),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let mut out = String::new();
    let _ = writeln!(out, "file:        {} ({} bytes)", file.display(), bytes.len());
    let _ = writeln!(
        out,
        "contract:    acemux:plugin@{} (this acemux speaks {})",
        plugin.version,
        super::contract::PACKAGE_VERSION
    );
    let _ = writeln!(out, "phases:      {}", phases.join(", "));
    let _ = writeln!(
        out,
        "compiled by: {compiler:?} in {:.0} ms, {} of native code",
        plugin.compile_time.as_secs_f64() * 1e3,
        values::format_size(plugin.code_bytes)
    );
    let _ = writeln!(out, "imports:");
    for import in super::contract::component_imports(&bytes) {
        let grant = grant_needed(&import).map(|g| format!("  ({g})")).unwrap_or_default();
        let _ = writeln!(out, "  {import}{grant}");
    }
    // One instance of its first phase, kept while its memory is read.
    let _instance = one_instance(&plugin).await;
    let memory = plugin.memory.view();
    let _ = writeln!(
        out,
        "one instance: {} of linear memory (memory_limit {})",
        values::format_size(memory.linear_bytes),
        values::format_size(plugin.settings.memory_limit)
    );
    let _ = writeln!(out, "time budget: {} per call", values::format_duration(plugin.settings.time_budget));
    Ok(out)
}

/// Holds one instance of the plugin's first phase that keeps one.
async fn one_instance(plugin: &Arc<Plugin>) -> Option<Box<dyn std::any::Any + Send>> {
    if plugin.capabilities.filter {
        return plugin.stream_filter(&test_stream()).await.ok().map(|f| Box::new(f) as _);
    }
    if plugin.capabilities.events {
        return plugin.event_sink().await.ok().map(|s| Box::new(s) as _);
    }
    if plugin.capabilities.selector {
        // A selection keeps its instance idle for the next.
        let views = [engine_view("127.0.0.1:6878", 0)];
        let _ = plugin.select(&request("0".repeat(40)), &Candidates::of(&views)).await;
    }
    None
}

async fn filter(common: &Common, input: &Path, output: &Path, batch: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        batch >= 188 && batch.is_multiple_of(188),
        "--batch must be a multiple of 188 (got {batch})"
    );
    let (plugin, _) = load(common).await?;
    anyhow::ensure!(plugin.capabilities.filter, "{} exports no filter", common.file.display());
    let capture = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut aligned = BytesMut::with_capacity(capture.len());
    let mut aligner = acemux_ts::Aligner::new();
    aligner.push(&capture, &mut aligned);
    let mut filter = plugin.stream_filter(&test_stream()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::with_capacity(aligned.len());
    let mut times = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let started = Instant::now();
    for chunk in aligned.chunks(batch) {
        let t = Instant::now();
        let result = filter.process(chunk).await;
        times.push(t.elapsed());
        match result {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(e) => {
                // As acemux does: `fail_mode` decides.
                if plugin.settings.fail_mode == super::settings::FailMode::Open {
                    out.extend_from_slice(chunk);
                }
                failures.push(e.to_string());
            }
        }
    }
    let wall = started.elapsed();
    std::fs::write(output, &out).with_context(|| format!("cannot write {}", output.display()))?;
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let budget = plugin.settings.time_budget;
    let worst = times.last().copied().unwrap_or_default();
    println!(
        "batches:   {} of up to {batch} bytes ({} packets in, {} out)",
        times.len(),
        aligned.len() / 188,
        out.len() / 188
    );
    println!(
        "time:      {:.1} ms in all, {:.0} MB/s",
        wall.as_secs_f64() * 1e3,
        aligned.len() as f64 / wall.as_secs_f64().max(1e-9) / 1e6
    );
    if !times.is_empty() {
        println!("per batch: median {}, p99 {}, max {}", micros(at(0.5)), micros(at(0.99)), micros(worst));
        println!(
            "budget:    {} per call; the slowest batch used {:.1} % of it",
            values::format_duration(budget),
            worst.as_secs_f64() / budget.as_secs_f64() * 100.0
        );
    }
    if aligned.len() < capture.len() {
        println!(
            "input:     {} bytes were not whole packets (resynchronised on 0x47, or the unconfirmed last packet): left out",
            capture.len() - aligned.len()
        );
    }
    println!("failures:  {}", failures.len());
    for (i, f) in failures.iter().take(5).enumerate() {
        println!("  {}: {f}", i + 1);
    }
    if plugin.is_disabled() {
        println!("the plugin would be disabled after {} failures in a row", plugin.settings.max_failures);
    }
    print_metrics(&plugin);
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn select(common: &Common, engines: &[String], content: &str) -> anyhow::Result<ExitCode> {
    let (plugin, _) = load(common).await?;
    anyhow::ensure!(plugin.capabilities.selector, "{} exports no selector", common.file.display());
    anyhow::ensure!(
        content.len() == 40 && content.bytes().all(|b| b.is_ascii_hexdigit()),
        "--content must be 40 hexadecimal characters"
    );
    let mut views = Vec::new();
    for e in engines {
        let (address, streams) = match e.split_once('=') {
            Some((a, n)) => (a, n.parse().with_context(|| format!("`{e}`: streams must be a number"))?),
            None => (e.as_str(), 0),
        };
        views.push(engine_view(address, streams));
    }
    let started = Instant::now();
    let answer = plugin.select(&request(content.to_ascii_lowercase()), &Candidates::of(&views)).await;
    let took = started.elapsed();
    match answer {
        Ok(Selection::Engine(id)) => println!("engine: {id} (in {})", micros(took)),
        Ok(Selection::NoOpinion) => {
            println!("no opinion: the next selector or the built-in rule decides (in {})", micros(took))
        }
        Ok(Selection::Refuse(reason)) => println!("refused: {reason} (in {})", micros(took)),
        Err(e) => {
            println!("failed: {e} (in {}); acemux would fall through to the next selector", micros(took));
            return Ok(ExitCode::from(1));
        }
    }
    print_metrics(&plugin);
    Ok(ExitCode::SUCCESS)
}

/// The plugin's own metrics after the run, as `/metrics` would publish
/// them, and the calls refused.
fn print_metrics(plugin: &Plugin) {
    let mut text = String::new();
    super::metrics_text::write(&mut text, plugin.metrics.registry());
    let view = plugin.metrics.own.view();
    if text.is_empty() && view.refused == 0 {
        return;
    }
    println!(
        "metrics:   {} declared, {} series (of {}), {} calls refused",
        view.metrics, view.series, view.max_series, view.refused
    );
    if let Some(last) = view.last_refusal {
        println!("  last refused: {last}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        println!("  {line}");
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn test_stream() -> Stream {
    Stream { content_key: "0".repeat(40), key_type: KeyType::ContentId, engine_id: None, channel: None }
}

fn request(content: String) -> Request {
    Request {
        content_key: content,
        key_type: KeyType::ContentId,
        client_address: None,
        query: Vec::new(),
        user: None,
    }
}

fn engine_view(address: &str, streams: usize) -> EngineView {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "6878"));
    EngineView {
        serial: 0,
        id: address.to_owned(),
        host: host.to_owned(),
        port: port.parse().unwrap_or(6878),
        labels: Default::default(),
        container_id: None,
        forwarded: false,
        healthy: true,
        draining: false,
        load: streams,
        load_elsewhere: 0,
        pending: 0,
        capacity: usize::MAX,
        last_error: None,
    }
}

/// The grant an import needs to do anything (without it the call fails).
fn grant_needed(import: &str) -> Option<&'static str> {
    let interface = import.split('@').next().unwrap_or(import);
    match interface {
        i if i.starts_with("wasi:sockets/") => Some("needs [grants] network = true"),
        i if i.starts_with("wasi:filesystem/") => Some("sees only [grants] dirs"),
        "wasi:cli/environment" => Some("sees only [grants] env"),
        _ => None,
    }
}
