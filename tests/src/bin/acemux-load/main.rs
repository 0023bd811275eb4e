//! `acemux-load`: load and churn acemux in front of the simulated engine,
//! and report what players saw and what acemux spent.
//!
//! By default it starts a simulated engine in this process and the
//! `acemux` binary (built beside this one) as a child, so acemux's CPU time
//! and peak memory can be read from /proc. `--target` points it at an
//! acemux that is already running instead.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine};
use acemux_tests::content_id;
use acemux_tests::hls_load::{HlsPlan, HlsReport, run_hls};
use acemux_tests::load::{LoadPlan, LoadReport, run};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Load-test acemux with simulated players and a simulated engine")]
struct Args {
    /// Players in all.
    #[arg(long, default_value_t = 100)]
    players: usize,
    /// Contents the players spread over.
    #[arg(long, default_value_t = 1)]
    contents: usize,
    /// Of the players, how many read slowly.
    #[arg(long, default_value_t = 0)]
    slow: usize,
    /// Bytes per second a slow player reads.
    #[arg(long, default_value_t = 50_000)]
    slow_rate: usize,
    /// Seconds over which players connect.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// Seconds every player reads after the ramp.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stream bitrate of the simulated engine, bits per second.
    #[arg(long, default_value_t = 8_000_000)]
    bitrate: u64,
    /// The simulated engine serves this MPEG-TS recording, looped (e.g.
    /// `tests/fixtures/h264-aac.ts`), instead of its counter stream: no
    /// counter check, but every player's first video packet after PAT and
    /// PMT must be a keyframe (keyframe joins).
    #[arg(long)]
    media: Option<std::path::PathBuf>,
    /// Seconds the simulated engine prebuffers before the first byte.
    #[arg(long, default_value_t = 0.0)]
    prebuffer: f64,
    /// Failover under load: run two engines and kill the one carrying the
    /// streams this many seconds into the run.
    #[arg(long)]
    kill_engine_after: Option<f64>,
    /// Plugin reload under load: start acemux with the `null-strip` filter
    /// and replace it (write + rename) with a pass-through filter this many
    /// seconds into the run.
    #[arg(long)]
    reload_plugin_after: Option<f64>,
    /// Instead of a load run: this many rapid connect/disconnect cycles,
    /// then check that every session and engine session is gone.
    #[arg(long)]
    churn: Option<usize>,
    /// Instead of a load run: a soak of this many seconds (zapping over 30
    /// contents, watchers arriving and leaving, slow and stalled players,
    /// the busier of two engines killed and restored every 5 minutes, the
    /// filter plugin replaced every minute), sampling acemux's memory,
    /// descriptors, threads and tasks; fails if they do not come back.
    #[arg(long)]
    soak: Option<f64>,
    /// The players are HLS viewers: each opens `/ace/manifest.m3u8`, then
    /// polls its playlist and fetches every new segment, as players do.
    #[arg(long)]
    hls: bool,
    /// With `--hls`: the viewers are Low-Latency HLS players (as hls.js in
    /// `lowLatencyMode`): blocking playlist reloads for the next part, and
    /// every part fetched as it is listed.
    #[arg(long, requires = "hls")]
    low_latency: bool,
    /// After the run, also run the same players against the fan-out floors
    /// (`acemux_tests::floor`: a bare server writing one shared stream, and
    /// the same sending it with `sendfile` from a memfd), each a child
    /// process, and report every cost per GB and the ratios.
    #[arg(long)]
    floor: bool,
    /// Internal: be the fan-out floor server on this address.
    #[arg(long, hide = true)]
    serve_floor: Option<SocketAddr>,
    /// Internal: with `--serve-floor`, the zero-copy floor.
    #[arg(long, hide = true)]
    zero_copy_floor: bool,
    /// After the run, wait this many seconds with no player and report
    /// acemux's resident memory then (is memory given back?).
    #[arg(long)]
    settle: Option<f64>,
    /// An acemux already running (no child, no CPU/RSS figures).
    #[arg(long)]
    target: Option<SocketAddr>,
    /// The acemux binary to start [default: `acemux` beside this binary].
    #[arg(long)]
    acemux_bin: Option<std::path::PathBuf>,
    /// Extra arguments for the acemux child (repeat; e.g. `--acemux-arg=--chunk-size=37600`).
    #[arg(long = "acemux-arg", allow_hyphen_values = true)]
    acemux_args: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of one acemux: the same players against one instance alone,
    /// then through HAProxy (`deploy/cluster/haproxy.cfg`) in front of three
    /// instances sharing a `redis-server`; reports CPU per GB of each, the
    /// added time to first byte of a redirected player and Redis commands
    /// per stream start. With --soak: the cluster soak (three instances,
    /// HAProxy, Redis, a fault every minute; see `cluster_soak.rs`).
    #[arg(long)]
    cluster: bool,
}

/// The acemux child process and its resource use.
struct Child_ {
    child: Child,
}

impl Child_ {
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks())
    }

    fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_acemux(
    args: &Args,
    engine: &SimEngine,
    spare: Option<&SimEngine>,
    plugins: Option<&std::path::Path>,
) -> anyhow::Result<(SocketAddr, Child_)> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    start_acemux_at(addr, &[], args, engine, spare, plugins).await
}

/// [`start_acemux`] on a given address, with `extra` arguments first.
async fn start_acemux_at(
    addr: SocketAddr,
    extra: &[String],
    args: &Args,
    engine: &SimEngine,
    spare: Option<&SimEngine>,
    plugins: Option<&std::path::Path>,
) -> anyhow::Result<(SocketAddr, Child_)> {
    let bin = match &args.acemux_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("acemux"),
    };
    anyhow::ensure!(bin.exists(), "no acemux binary at {} (build it, or pass --acemux-bin)", bin.display());
    let mut engines = engine.endpoint();
    if let Some(spare) = spare {
        engines = format!("{engines},{}", spare.endpoint());
    }
    let plugins = plugins.map_or_else(|| "none".to_owned(), |p| p.display().to_string());
    // `--acemux-arg=--plugins=DIR` replaces the default of no plugins.
    let plugins_given = args.acemux_args.iter().any(|a| a.starts_with("--plugins"));
    let plugin_args = if plugins_given { vec![] } else { vec!["--plugins".to_owned(), plugins] };
    let child = Command::new(&bin)
        .args(["--listen", &addr.to_string(), "--engine", &engines])
        .args(&plugin_args)
        .args(extra)
        // Fail over fast: one retry, short waits.
        .env("PROXY_MAX_RETRIES", "1")
        .env("PROXY_RETRY_WAIT_INTERVAL", "0.1")
        .env("PROXY_CONNECTION_TIMEOUT", "1")
        // Defaults through the environment, so `--acemux-arg` flags win.
        .env("MAX_STREAMS_PER_ENGINE", "10000")
        .env("PROXY_GRACE_PERIOD", "1")
        // Every simulated player comes from 127.0.0.1.
        .env("ACEMUX_MAX_CONNECTIONS_PER_CLIENT", "0")
        .args(&args.acemux_args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()?;
    let child = Child_ { child };
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(10);
    while http.get(format!("http://{addr}/healthz")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < until, "acemux did not come up on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((addr, child))
}

/// Rapid connect/disconnect; then every session must be gone.
async fn churn(
    target: SocketAddr,
    cycles: usize,
    contents: usize,
    engine: Option<&SimEngine>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let concurrency = 20;
    let mut next = 0;
    let mut tasks = tokio::task::JoinSet::new();
    while next < cycles || !tasks.is_empty() {
        while next < cycles && tasks.len() < concurrency {
            let url =
                format!("http://{target}/ace/getstream?id={}", content_id(5000 + (next % contents) as u32));
            let http = http.clone();
            let read_some = next % 2 == 0;
            tasks.spawn(async move {
                let mut r = http.get(url).send().await?;
                anyhow::ensure!(r.status() == 200, "status {}", r.status());
                if read_some {
                    let _ = tokio::time::timeout(Duration::from_secs(2), r.chunk()).await;
                }
                Ok(())
            });
            next += 1;
        }
        if let Some(done) = tasks.join_next().await {
            done??;
        }
    }
    println!("churn: {cycles} cycles in {:.1} s", started.elapsed().as_secs_f64());
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let status: serde_json::Value =
            http.get(format!("http://{target}/proxy/status")).send().await?.json().await?;
        let sessions = status["sessions"].as_array().map_or(0, Vec::len);
        let engine_sessions = engine.map_or(0, SimEngine::live_sessions);
        if sessions == 0 && engine_sessions == 0 {
            let c = engine.map(SimEngine::counters);
            println!("churn: 0 sessions left, every engine session stopped ({c:?})");
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < until,
            "leak after churn: {sessions} acemux sessions, {engine_sessions} engine sessions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_report(report: &LoadReport, cpu: Option<f64>, rss_kib: Option<u64>, base_rss_kib: Option<u64>) {
    println!("players {} on {} contents, {:.1} s", report.players, report.contents, report.seconds);
    println!("ttfb first player : {}", report.ttfb_first_player);
    println!("ttfb late joiners : {}", report.ttfb_late_joiners);
    println!(
        "bytes: total {:.1} MB, per player min {:.2} MB median {:.2} MB, aggregate {:.1} MB/s",
        report.bytes_total as f64 / 1e6,
        report.bytes_per_player_min as f64 / 1e6,
        report.bytes_per_player_median as f64 / 1e6,
        report.aggregate_mb_per_s
    );
    println!(
        "stalls {} | misaligned bytes {} | counter gaps {} | errors {}",
        report.stalls,
        report.misaligned_bytes,
        report.counter_gaps,
        report.errors.len()
    );
    if let Some(n) = report.starts_not_at_keyframe {
        println!("players whose first video packet after PAT/PMT was not a keyframe: {n}");
    }
    for e in report.errors.iter().take(5) {
        println!("  error: {e}");
    }
    if let Some(cpu) = cpu {
        println!(
            "acemux CPU: {cpu:.2} s, {:.3} CPU-s per GB delivered",
            cpu / (report.bytes_total as f64 / 1e9)
        );
    }
    if let (Some(peak), Some(base)) = (rss_kib, base_rss_kib) {
        let per_player = (peak.saturating_sub(base) * 1024) as f64 / report.players.max(1) as f64;
        println!(
            "acemux peak RSS: {:.1} MiB (idle {:.1} MiB; {:.1} KiB per player above idle, ring included)",
            peak as f64 / 1024.0,
            base as f64 / 1024.0,
            per_player / 1024.0
        );
    }
}

fn print_hls_report(
    report: &HlsReport,
    cpu: Option<f64>,
    rss_kib: Option<u64>,
    base_rss_kib: Option<u64>,
    status: Option<&serde_json::Value>,
) {
    println!("HLS viewers {} on {} contents, {:.1} s", report.viewers, report.contents, report.seconds);
    println!("master playlist   : {}", report.master);
    println!("segment ttfb      : {}", report.segment_ttfb);
    println!("segment fetch     : {}", report.segment_fetch);
    if report.parts > 0 {
        println!("blocking reload   : {}", report.blocking_wait);
    }
    println!(
        "playlists {} | segments {} | parts {} | late {} | missed {} | bad starts {} | errors {}",
        report.playlists,
        report.segments,
        report.parts,
        report.late_segments,
        report.missed_segments,
        report.bad_segment_starts,
        report.errors.len()
    );
    for e in report.errors.iter().take(5) {
        println!("  error: {e}");
    }
    println!(
        "bytes: total {:.1} MB, aggregate {:.1} MB/s",
        report.bytes_total as f64 / 1e6,
        report.aggregate_mb_per_s
    );
    if let Some(cpu) = cpu {
        println!(
            "acemux CPU: {cpu:.2} s, {:.3} CPU-s per GB delivered",
            cpu / (report.bytes_total as f64 / 1e9)
        );
    }
    if let (Some(peak), Some(base)) = (rss_kib, base_rss_kib) {
        println!("acemux peak RSS: {:.1} MiB (idle {:.1} MiB)", peak as f64 / 1024.0, base as f64 / 1024.0);
    }
    for s in status.and_then(|s| s["sessions"].as_array()).into_iter().flatten() {
        let hls = &s["hls"];
        println!(
            "stream {}: {} segments held, window {:.1} MiB (ring {:.1} MiB), target duration {} s",
            s["ace_id"].as_str().unwrap_or("?"),
            hls["segments"],
            hls["window_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
            s["buffer"]["bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
            hls["target_duration"],
        );
    }
}

/// Starts a fan-out floor as a child process (this binary, `--serve-floor`).
async fn start_floor(bitrate: u64, zero_copy: bool) -> anyhow::Result<(SocketAddr, Child_)> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["--serve-floor", &addr.to_string(), "--bitrate", &bitrate.to_string()])
        .args(zero_copy.then_some("--zero-copy-floor"))
        .stdin(Stdio::null())
        .spawn()?;
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(Instant::now() < until, "the floor server did not come up on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((addr, Child_ { child }))
}

mod cluster;
mod cluster_soak;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(addr) = args.serve_floor {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        if args.zero_copy_floor {
            return acemux_tests::floor::serve_zero_copy_floor(listener, args.bitrate, 65424).await;
        }
        return acemux_tests::floor::serve_floor(listener, args.bitrate, 65424).await;
    }
    if let Some(seconds) = args.soak {
        if args.cluster {
            return cluster_soak::soak(&args, Duration::from_secs_f64(seconds)).await;
        }
        return soak(&args, Duration::from_secs_f64(seconds)).await;
    }
    let config = SimConfig {
        media: args.media.as_deref().map(ace_sim::Media::read).transpose()?,
        bitrate_bps: args.bitrate,
        prebuffer: Duration::from_secs_f64(args.prebuffer.max(0.0)),
        ..SimConfig::default()
    };
    let engine = match args.target {
        Some(_) => None,
        None => Some(SimEngine::start(config.clone()).await?),
    };
    // The spare engine takes the streams when the first one is killed.
    let spare = match (args.target, args.kill_engine_after) {
        (None, Some(_)) => Some(SimEngine::start(config).await?),
        _ => None,
    };
    let plugin_dir = args.reload_plugin_after.map(|_| {
        let dir = std::env::temp_dir().join(format!("acemux-load-plugins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("plugin directory");
        std::fs::copy(acemux_test_artifacts::NULL_STRIP, dir.join("filter.wasm"))
            .expect("install null-strip");
        dir
    });
    let (target, child) = match (args.target, &engine) {
        (Some(t), _) => (t, None),
        (None, Some(e)) => {
            let (addr, child) = start_acemux(&args, e, spare.as_ref(), plugin_dir.as_deref()).await?;
            (addr, Some(child))
        }
        (None, None) => unreachable!("an engine is started without --target"),
    };
    if args.cluster {
        let (Some(engine), Some(alone)) = (&engine, child) else {
            anyhow::bail!("--cluster starts its own instances (no --target)");
        };
        alone.stop();
        return cluster::compare(&args, engine).await;
    }
    if let Some(cycles) = args.churn {
        let result = churn(target, cycles, args.contents.max(1), engine.as_ref()).await;
        if let Some(c) = child {
            c.stop();
        }
        return result;
    }
    let base_rss = child.as_ref().and_then(Child_::peak_rss_kib);
    let cpu_before = child.as_ref().and_then(Child_::cpu_seconds);
    if args.hls {
        let plan = HlsPlan {
            target,
            viewers: args.players,
            contents: args.contents.max(1),
            ramp: Duration::from_secs_f64(args.ramp),
            duration: Duration::from_secs_f64(args.duration),
            content_base: 1000,
            recorded: args.media.is_some(),
            low_latency: args.low_latency,
        };
        let report = run_hls(&plan).await;
        let cpu = child.as_ref().and_then(Child_::cpu_seconds).zip(cpu_before).map(|(a, b)| a - b);
        let rss = child.as_ref().and_then(Child_::peak_rss_kib);
        let status: Option<serde_json::Value> =
            match reqwest::get(format!("http://{target}/proxy/status")).await {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        print_hls_report(&report, cpu, rss, base_rss, status.as_ref());
        if let Some(c) = child {
            c.stop();
        }
        anyhow::ensure!(report.clean(), "the HLS run saw late or missed segments, bad segments or errors");
        return Ok(());
    }
    let plan = LoadPlan {
        target,
        players: args.players,
        contents: args.contents.max(1),
        slow_players: args.slow,
        slow_rate: args.slow_rate,
        ramp: Duration::from_secs_f64(args.ramp),
        duration: Duration::from_secs_f64(args.duration),
        stall_after: Duration::from_secs(2),
        content_base: 1000,
        allowed_gaps: u64::from(args.kill_engine_after.is_some()),
        recorded: args.media.is_some(),
    };
    let disruption = async {
        if let (Some(after), Some(first), Some(spare)) = (args.kill_engine_after, &engine, &spare) {
            tokio::time::sleep(Duration::from_secs_f64(args.ramp + after)).await;
            let carrying = if first.counters().starts > 0 { first } else { spare };
            carrying.kill();
            println!(
                "killed the engine carrying the streams ({}) at {:.1} s",
                carrying.endpoint(),
                args.ramp + after
            );
        }
        if let (Some(after), Some(dir)) = (args.reload_plugin_after, &plugin_dir) {
            tokio::time::sleep(Duration::from_secs_f64(args.ramp + after)).await;
            let tmp = dir.join(".filter.tmp");
            std::fs::copy(acemux_test_artifacts::PASS_FILTER, &tmp).expect("copy pass-filter");
            std::fs::rename(&tmp, dir.join("filter.wasm")).expect("rename into place");
            println!("replaced the filter plugin at {:.1} s", args.ramp + after);
        }
    };
    let (report, ()) = tokio::join!(run(&plan), disruption);
    if let Some(dir) = &plugin_dir {
        let status: serde_json::Value =
            reqwest::get(format!("http://{target}/plugins")).await?.json().await?;
        let plugin = &status["plugins"][0];
        println!(
            "plugin after the run: status {} calls {} errors {} reload_error {}",
            plugin["status"], plugin["stats"]["calls"], plugin["stats"]["errors"], plugin["reload_error"]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    let cpu = child.as_ref().and_then(Child_::cpu_seconds).zip(cpu_before).map(|(a, b)| a - b);
    let rss = child.as_ref().and_then(Child_::peak_rss_kib);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    print_report(&report, cpu, rss, base_rss);
    if let (Some(seconds), Some(c)) = (args.settle, &child) {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        if let Some(now) = c.rss_kib() {
            println!("acemux RSS {seconds:.0} s after the players left: {:.1} MiB", now as f64 / 1024.0);
        }
    }
    if let Some(c) = child {
        c.stop();
    }
    if args.floor {
        let per_gb = |cpu: f64, bytes: u64| cpu / (bytes as f64 / 1e9);
        for (name, zero_copy) in [("floor", false), ("zero-copy floor", true)] {
            let (addr, floor) = start_floor(args.bitrate, zero_copy).await?;
            let before = floor.cpu_seconds();
            let floor_report = run(&LoadPlan { target: addr, ..plan.clone() }).await;
            let floor_cpu = floor.cpu_seconds().zip(before).map(|(a, b)| a - b);
            floor.stop();
            if let Some(f) = floor_cpu {
                let floor_per_gb = per_gb(f, floor_report.bytes_total);
                println!(
                    "{name}: {:.1} MB delivered, stalls {}, CPU {f:.2} s, {floor_per_gb:.3} CPU-s per GB",
                    floor_report.bytes_total as f64 / 1e6,
                    floor_report.stalls
                );
                if let Some(a) = cpu {
                    println!("acemux / {name}: {:.2}x", per_gb(a, report.bytes_total) / floor_per_gb);
                }
            }
        }
    }
    if !report.clean() {
        anyhow::bail!("the run saw stalls, TS errors or failed players");
    }
    Ok(())
}

/// `--soak`: see the flag's doc and `acemux_tests::soak`.
async fn soak(args: &Args, duration: Duration) -> anyhow::Result<()> {
    use acemux_tests::soak::{self, SoakCounts, SoakPlan};
    let config = SimConfig { bitrate_bps: args.bitrate, ..SimConfig::default() };
    let mut engines = [SimEngine::start(config.clone()).await?, SimEngine::start(config.clone()).await?];
    let dir = std::env::temp_dir().join(format!("acemux-soak-plugins-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(acemux_test_artifacts::NULL_STRIP, dir.join("filter.wasm"))?;
    std::fs::copy(acemux_test_artifacts::STICKY_ENGINE, dir.join("sticky.wasm"))?;
    let (target, child) = start_acemux(args, &engines[0], Some(&engines[1]), Some(&dir)).await?;
    let pid = child.child.id();
    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_before = soak::sample(pid, target, since).await;
    println!("idle before: {idle_before:?}");
    let plan = SoakPlan {
        target,
        duration,
        contents: 30,
        zappers: 20,
        watchers: 40,
        slow: 5,
        stalled: 5,
        sample_every: Duration::from_secs(30).min(duration / 4),
        pid,
    };
    let counts = std::sync::Arc::new(SoakCounts::default());
    let mut samples = Vec::new();
    let (kills, reloads) = {
        let disruptions = async {
            let (mut kills, mut reloads) = (0u32, 0u32);
            let end = Instant::now() + duration;
            let mut next_kill = Instant::now() + Duration::from_secs(120).min(duration / 3);
            let mut next_reload = Instant::now() + Duration::from_secs(60).min(duration / 5);
            let mut pass_filter = true;
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if Instant::now() >= next_reload {
                    let wasm = if pass_filter {
                        acemux_test_artifacts::PASS_FILTER
                    } else {
                        acemux_test_artifacts::NULL_STRIP
                    };
                    pass_filter = !pass_filter;
                    let tmp = dir.join(".filter.tmp");
                    std::fs::copy(wasm, &tmp).expect("copy a filter");
                    std::fs::rename(&tmp, dir.join("filter.wasm")).expect("rename into place");
                    reloads += 1;
                    next_reload += Duration::from_secs(60).min(duration / 5);
                }
                if Instant::now() >= next_kill {
                    // The busier engine dies; 30 s later it is back on its address.
                    let busier = usize::from(engines[1].live_sessions() > engines[0].live_sessions());
                    let addr = engines[busier].addr();
                    engines[busier].kill();
                    engines[busier].wait_stopped().await;
                    println!("soak: killed engine {addr} at {:.0} s", since.elapsed().as_secs_f64());
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    engines[busier] =
                        SimEngine::bind(addr, config.clone()).await.expect("engine back on its address");
                    println!("soak: engine {addr} back at {:.0} s", since.elapsed().as_secs_f64());
                    kills += 1;
                    next_kill += Duration::from_secs(300).min(duration / 2);
                }
            }
            (kills, reloads)
        };
        let (_, disrupted) = tokio::join!(soak::run(&plan, counts.clone(), &mut samples, since), disruptions);
        disrupted
    };
    // Everyone has left: sessions end after the grace period, engines are told.
    let settle = Instant::now() + Duration::from_secs(60);
    loop {
        let s = soak::sample(pid, target, since).await;
        let engine_sessions: usize = engines.iter().map(SimEngine::live_sessions).sum();
        if (s.sessions == 0 && engine_sessions == 0) || Instant::now() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_after = soak::sample(pid, target, since).await;
    let engine_sessions: usize = engines.iter().map(SimEngine::live_sessions).sum();
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let o = std::sync::atomic::Ordering::Relaxed;
    println!(
        "soak {:.0} s: {} zaps, {} watches, {} stalled players dropped, {:.1} GB delivered, {} failures, {kills} engine kills, {reloads} plugin reloads",
        duration.as_secs_f64(),
        counts.zaps.load(o),
        counts.watches.load(o),
        counts.stalls_dropped.load(o),
        counts.bytes.load(o) as f64 / 1e9,
        counts.failures.load(o)
    );
    println!("idle before: {idle_before:?}");
    println!("idle after : {idle_after:?}");
    println!("peak RSS under load: {:.1} MiB; engine sessions left: {engine_sessions}", peak as f64 / 1024.0);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "idle_before": idle_before, "idle_after": idle_after, "samples": samples,
                "counts": &*counts, "kills": kills, "reloads": reloads, "engine_sessions_left": engine_sessions,
            }))?
        );
    }
    child.stop();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(idle_after.sessions == 0 && engine_sessions == 0, "sessions left after the soak");
    anyhow::ensure!(
        idle_after.fds <= idle_before.fds + 2,
        "descriptors grew: {} → {}",
        idle_before.fds,
        idle_after.fds
    );
    anyhow::ensure!(
        idle_after.tasks <= idle_before.tasks + 2,
        "tasks grew: {} → {}",
        idle_before.tasks,
        idle_after.tasks
    );
    anyhow::ensure!(
        idle_after.threads <= idle_before.threads + 4,
        "threads grew: {} → {}",
        idle_before.threads,
        idle_after.threads
    );
    Ok(())
}
