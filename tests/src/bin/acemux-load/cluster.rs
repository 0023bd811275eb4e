//! `acemux-load --cluster`: the same players against one acemux alone and
//! then through HAProxy in front of three instances sharing Redis, back to
//! back on this machine, with what each run cost.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ace_sim::SimEngine;
use acemux_tests::content_id;
use acemux_tests::load::{LoadPlan, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Args, Child_, free_port, print_report, start_acemux, start_acemux_at};

const HAPROXY_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cluster/haproxy.cfg");
const INSTANCES: usize = 3;

pub async fn compare(args: &Args, engine: &SimEngine) -> anyhow::Result<()> {
    let plan = |target: SocketAddr, content_base: u32| LoadPlan {
        target,
        players: args.players,
        contents: args.contents.max(1),
        slow_players: args.slow,
        slow_rate: args.slow_rate,
        ramp: Duration::from_secs_f64(args.ramp),
        duration: Duration::from_secs_f64(args.duration),
        stall_after: Duration::from_secs(2),
        content_base,
        allowed_gaps: 0,
        recorded: args.media.is_some(),
    };

    // One instance alone.
    let (addr, alone) = start_acemux(args, engine, None, None).await?;
    let before = alone.cpu_seconds();
    let report = run(&plan(addr, 1000)).await;
    let cpu = alone.cpu_seconds().zip(before).map(|(a, b)| a - b);
    alone.stop();
    println!("== one instance alone");
    print_report(&report, cpu, None, None);
    anyhow::ensure!(report.clean(), "the single-instance run was not clean");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Three instances, Redis, HAProxy.
    let redis_port = free_port()?;
    let redis = spawn_redis(redis_port)?;
    wait_for(|| async { redis_command(redis_port, "PING").await.is_some() }, "redis-server").await?;
    let mut instances = Vec::new();
    for i in 0..INSTANCES {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let extra = [
            "--redis-url".to_owned(),
            format!("redis://127.0.0.1:{redis_port}/"),
            "--advertise-url".to_owned(),
            format!("http://{addr}"),
            "--instance-id".to_owned(),
            format!("load{i}"),
        ];
        instances.push(start_acemux_at(addr, &extra, args, engine, None, None).await?);
    }
    let front: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut haproxy = Command::new("haproxy");
    haproxy.args(["-db", "-f", HAPROXY_CFG]).env("ACEMUX_FRONT", front.to_string());
    for (i, (addr, _)) in instances.iter().enumerate() {
        haproxy.env(format!("ACEMUX_{}", i + 1), addr.to_string());
    }
    let haproxy = Child_ { child: haproxy.stdout(Stdio::null()).stderr(Stdio::null()).spawn()? };
    wait_for(
        || async { reqwest::get(format!("http://{front}/healthz")).await.is_ok_and(|r| r.status() == 200) },
        "haproxy",
    )
    .await?;

    let cpu_before: Vec<Option<f64>> = instances.iter().map(|(_, c)| c.cpu_seconds()).collect();
    let haproxy_before = haproxy.cpu_seconds();
    let commands_before = redis_commands(redis_port).await;
    let sample_at = Duration::from_secs_f64(args.ramp + args.duration / 2.0);
    let addrs: Vec<SocketAddr> = instances.iter().map(|(a, _)| *a).collect();
    let sampler = async {
        tokio::time::sleep(sample_at).await;
        let mut seen = Vec::new();
        for addr in &addrs {
            let status: serde_json::Value =
                reqwest::get(format!("http://{addr}/proxy/status")).await.ok()?.json().await.ok()?;
            seen.push((status["total_clients"].as_u64()?, status["sessions"].as_array()?.len()));
        }
        Some(seen)
    };
    let started = Instant::now();
    let cluster_plan = plan(front, 2000);
    let (report, seen) = tokio::join!(run(&cluster_plan), sampler);
    let seconds = started.elapsed().as_secs_f64();
    let commands = redis_commands(redis_port).await.zip(commands_before).map(|(a, b)| a - b);
    println!("== three instances behind HAProxy, sharing Redis");
    print_report(&report, None, None, None);
    let gb = report.bytes_total as f64 / 1e9;
    let mut total = 0.0;
    for (i, ((_, child), before)) in instances.iter().zip(&cpu_before).enumerate() {
        let cpu = child.cpu_seconds().zip(*before).map(|(a, b)| a - b).unwrap_or(0.0);
        total += cpu;
        let (players, contents) = seen.as_ref().and_then(|s| s.get(i).copied()).unwrap_or_default();
        println!("instance load{i}: {players} players on {contents} contents mid-run, CPU {cpu:.2} s");
    }
    println!("instances together: CPU {total:.2} s, {:.3} CPU-s per GB delivered", total / gb);
    if let Some(h) = haproxy.cpu_seconds().zip(haproxy_before).map(|(a, b)| a - b) {
        println!("haproxy: CPU {h:.2} s, {:.3} CPU-s per GB", h / gb);
    }
    if let Some(n) = commands {
        println!("redis: {n} calls in {seconds:.1} s ({:.1}/s)", n as f64 / seconds);
    }

    redirect_ttfb(&addrs).await?;
    commands_per_start(&addrs, redis_port).await?;

    haproxy.stop();
    for (_, child) in instances {
        child.stop();
    }
    redis.stop();
    anyhow::ensure!(report.clean(), "the cluster run was not clean");
    Ok(())
}

/// Time to first byte of a player that joins a running content at its
/// owner, and at another instance (a 307, then the owner), 20 times each.
async fn redirect_ttfb(addrs: &[SocketAddr]) -> anyhow::Result<()> {
    let id = content_id(3000);
    let http = reqwest::Client::new();
    let mut keep = http.get(format!("http://{}/ace/getstream?id={id}", addrs[0])).send().await?;
    keep.chunk().await?;
    let ttfb = |url: String| {
        let http = http.clone();
        async move {
            let t = Instant::now();
            let mut r = http.get(url).send().await?;
            r.chunk().await?;
            Ok::<_, anyhow::Error>(t.elapsed())
        }
    };
    let (mut direct, mut redirected) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        direct.push(ttfb(format!("http://{}/ace/getstream?id={id}", addrs[0])).await?);
        redirected.push(ttfb(format!("http://{}/ace/getstream?id={id}", addrs[1])).await?);
        keep.chunk().await?;
    }
    direct.sort();
    redirected.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "ttfb joining a running content: at its owner median {:.2} ms, via another instance (307) median {:.2} ms \
         (+{:.2} ms)",
        ms(direct[10]),
        ms(redirected[10]),
        ms(redirected[10]) - ms(direct[10])
    );
    Ok(())
}

/// Redis calls that ten stream starts cost, less the keeper's own calls
/// over the same time with nothing starting (renewals of the new streams
/// within the window count as theirs).
async fn commands_per_start(addrs: &[SocketAddr], redis_port: u16) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let window = Duration::from_secs(3);
    let idle_before = redis_commands(redis_port).await;
    tokio::time::sleep(window).await;
    let idle = redis_commands(redis_port).await.zip(idle_before).map(|(a, b)| a - b);
    let before = redis_commands(redis_port).await;
    let t = Instant::now();
    let mut players = Vec::new();
    for n in 0..10 {
        let url =
            format!("http://{}/ace/getstream?id={}", addrs[n % addrs.len()], content_id(4000 + n as u32));
        let mut r = http.get(url).send().await?;
        r.chunk().await?;
        players.push(r);
    }
    tokio::time::sleep(window.saturating_sub(t.elapsed())).await;
    let busy = redis_commands(redis_port).await.zip(before).map(|(a, b)| a - b);
    if let (Some(idle), Some(busy)) = (idle, busy) {
        println!(
            "redis calls per stream start: {:.1} ({busy} with 10 starts vs {idle} idle in {:.0} s)",
            (busy as f64 - idle as f64) / 10.0,
            window.as_secs_f64()
        );
    }
    Ok(())
}

/// A `redis-server` on loopback at `port`, without persistence.
pub(super) fn spawn_redis(port: u16) -> anyhow::Result<Child_> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Child_ { child })
}

pub(super) async fn wait_for<F, Fut>(check: F, what: &str) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(10);
    while !check().await {
        anyhow::ensure!(Instant::now() < until, "{what} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Calls acemux made (scripts and plain `GET`s) from `INFO commandstats`:
/// round trips, not the commands inside the scripts.
async fn redis_commands(port: u16) -> Option<u64> {
    let info = redis_command(port, "INFO commandstats").await?;
    let calls = |name: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Some(calls("evalsha") + calls("eval") + calls("get"))
}

/// One inline command; the whole answer as text.
pub(super) async fn redis_command(port: u16, command: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("{command}\r\n").as_bytes()).await.ok()?;
    let mut buf = vec![0; 16384];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}
