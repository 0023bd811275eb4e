//! `acemux-load --soak SECONDS --cluster`: three instances sharing Redis
//! behind HAProxy, zapping and watching players through HAProxy, and one
//! fault a minute in turn: Redis frozen for two leases, an instance frozen
//! for two leases, Redis killed and restarted empty, an instance killed and
//! restarted on its address, an engine killed for 20 s. Then everyone
//! leaves, and each instance's descriptors, tasks and memory, the engines'
//! sessions and Redis's keys must come back to their idle level.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine};
use acemux_tests::soak::{self, Sample, SoakCounts, SoakPlan};

use super::cluster::{redis_command, spawn_redis, wait_for};
use super::{Args, Child_, free_port, start_acemux_at};

const HAPROXY_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cluster/haproxy.cfg");
/// Lease of the instances (acemux's default).
const LEASE: Duration = Duration::from_secs(5);
const FAULTS: [&str; 5] =
    ["redis frozen", "instance frozen", "redis restarted empty", "instance killed", "engine killed"];

struct Cluster {
    redis_port: u16,
    redis: Option<Child_>,
    addrs: Vec<SocketAddr>,
    instances: Vec<Option<Child_>>,
    restarts: u32,
}

impl Cluster {
    fn start_redis(&mut self) -> anyhow::Result<()> {
        self.redis = Some(spawn_redis(self.redis_port)?);
        Ok(())
    }

    async fn start_instance(&mut self, i: usize, args: &Args, engines: &[SimEngine]) -> anyhow::Result<()> {
        let addr = self.addrs[i];
        let extra = [
            "--redis-url".to_owned(),
            format!("redis://127.0.0.1:{}/", self.redis_port),
            "--advertise-url".to_owned(),
            format!("http://{addr}"),
            "--instance-id".to_owned(),
            format!("soak{i}-{}", self.restarts),
        ];
        let (_, child) = start_acemux_at(addr, &extra, args, &engines[0], Some(&engines[1]), None).await?;
        self.instances[i] = Some(child);
        Ok(())
    }

    fn pid(&self, i: usize) -> u32 {
        self.instances[i].as_ref().map_or(0, |c| c.child.id())
    }

    async fn samples(&self, since: Instant) -> Vec<Sample> {
        let mut out = Vec::new();
        for (i, addr) in self.addrs.iter().enumerate() {
            out.push(soak::sample(self.pid(i), *addr, since).await);
        }
        out
    }

    async fn redis_keys(&self) -> Option<u64> {
        let answer = redis_command(self.redis_port, "DBSIZE").await?;
        answer.trim().strip_prefix(':')?.parse().ok()
    }
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
}

pub async fn soak(args: &Args, duration: Duration) -> anyhow::Result<()> {
    let config = SimConfig { bitrate_bps: args.bitrate, ..SimConfig::default() };
    let mut engines = vec![SimEngine::start(config.clone()).await?, SimEngine::start(config.clone()).await?];
    let mut cluster = Cluster {
        redis_port: free_port()?,
        redis: None,
        addrs: (0..3)
            .map(|_| Ok(format!("127.0.0.1:{}", free_port()?).parse()?))
            .collect::<anyhow::Result<_>>()?,
        instances: vec![None, None, None],
        restarts: 0,
    };
    cluster.start_redis()?;
    let port = cluster.redis_port;
    wait_for(|| async move { redis_command(port, "PING").await.is_some() }, "redis-server").await?;
    for i in 0..3 {
        cluster.start_instance(i, args, &engines).await?;
    }
    let front: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut haproxy = Command::new("haproxy");
    haproxy.args(["-db", "-f", HAPROXY_CFG]).env("ACEMUX_FRONT", front.to_string());
    for (i, addr) in cluster.addrs.iter().enumerate() {
        haproxy.env(format!("ACEMUX_{}", i + 1), addr.to_string());
    }
    let haproxy = Child_ { child: haproxy.stdout(Stdio::null()).stderr(Stdio::null()).spawn()? };
    wait_for(
        || async move { reqwest::get(format!("http://{front}/healthz")).await.is_ok_and(|r| r.status() == 200) },
        "haproxy",
    )
    .await?;

    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_before = cluster.samples(since).await;
    let keys_before = cluster.redis_keys().await;
    println!("idle before: {idle_before:?}; redis keys {keys_before:?}");
    let plan = SoakPlan {
        target: front,
        duration,
        contents: 30,
        zappers: 20,
        watchers: 40,
        slow: 5,
        stalled: 5,
        sample_every: Duration::from_secs(30).min(duration / 4),
        pid: cluster.pid(0),
    };
    let counts = Arc::new(SoakCounts::default());
    let mut samples = Vec::new();
    let mut faults = Vec::new();
    {
        let disruptions = async {
            let end = Instant::now() + duration;
            let mut next = Instant::now() + Duration::from_secs(60).min(duration / 6);
            let mut n = 0usize;
            while Instant::now() + Duration::from_secs(30) < end {
                tokio::time::sleep_until(next.into()).await;
                let fault = FAULTS[n % FAULTS.len()];
                let at = since.elapsed().as_secs_f64();
                match fault {
                    "redis frozen" => {
                        let pid = cluster.redis.as_ref().map_or(0, |r| r.child.id());
                        signal(pid, "STOP");
                        tokio::time::sleep(2 * LEASE).await;
                        signal(pid, "CONT");
                    }
                    "instance frozen" => {
                        signal(cluster.pid(1), "STOP");
                        tokio::time::sleep(2 * LEASE).await;
                        signal(cluster.pid(1), "CONT");
                    }
                    "redis restarted empty" => {
                        if let Some(mut redis) = cluster.redis.take() {
                            let _ = redis.child.kill();
                            let _ = redis.child.wait();
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        cluster.start_redis().expect("redis-server restarts");
                    }
                    "instance killed" => {
                        if let Some(mut child) = cluster.instances[2].take() {
                            let _ = child.child.kill();
                            let _ = child.child.wait();
                        }
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        cluster.restarts += 1;
                        cluster.start_instance(2, args, &engines).await.expect("the instance restarts");
                    }
                    _ => {
                        let busier = usize::from(engines[1].live_sessions() > engines[0].live_sessions());
                        let addr = engines[busier].addr();
                        engines[busier].kill();
                        engines[busier].wait_stopped().await;
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        engines[busier] = SimEngine::bind(addr, config.clone()).await.expect("engine back");
                    }
                }
                println!("soak: {fault} at {at:.0} s");
                faults.push((at, fault));
                n += 1;
                next += Duration::from_secs(60).min(duration / 6);
            }
        };
        tokio::join!(soak::run(&plan, counts.clone(), &mut samples, since), disruptions);
    }
    // Everyone has left: every session ends after the grace period, the
    // engines are told, the leases lapse or are given back.
    let settle = Instant::now() + Duration::from_secs(90);
    loop {
        let sessions: u64 = cluster.samples(since).await.iter().map(|s| s.sessions).sum();
        let engine_sessions: usize = engines.iter().map(SimEngine::live_sessions).sum();
        let keys = cluster.redis_keys().await;
        if (sessions == 0 && engine_sessions == 0 && keys <= keys_before) || Instant::now() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Idle connections of the HTTP clients (to engines, to other
    // instances) close after their pools' idle timeout (90 s): what stays
    // longer is a leak.
    let back_by = Instant::now() + Duration::from_secs(150);
    let settled_at = Instant::now();
    let mut idle_after = cluster.samples(since).await;
    while Instant::now() < back_by
        && idle_after.iter().zip(&idle_before).any(|(a, b)| a.fds > b.fds + 2 || a.tasks > b.tasks + 2)
    {
        tokio::time::sleep(Duration::from_secs(5)).await;
        idle_after = cluster.samples(since).await;
    }
    println!(
        "idle level {} after the last session ended",
        if Instant::now() < back_by {
            format!("back {:.0} s", settled_at.elapsed().as_secs_f64())
        } else {
            "NOT back in 150 s".into()
        }
    );
    let keys_after = cluster.redis_keys().await;
    let engine_sessions: usize = engines.iter().map(SimEngine::live_sessions).sum();
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let o = std::sync::atomic::Ordering::Relaxed;
    println!(
        "cluster soak {:.0} s: {} zaps, {} watches, {} stalled players dropped, {:.1} GB delivered, {} failures, {} faults",
        duration.as_secs_f64(),
        counts.zaps.load(o),
        counts.watches.load(o),
        counts.stalls_dropped.load(o),
        counts.bytes.load(o) as f64 / 1e9,
        counts.failures.load(o),
        faults.len(),
    );
    for i in 0..3 {
        println!("instance {i}: idle before {:?}", idle_before[i]);
        println!("instance {i}: idle after  {:?}", idle_after[i]);
    }
    println!(
        "redis keys idle before {keys_before:?}, after {keys_after:?}; engine sessions left {engine_sessions}; \
         peak RSS of instance 0 under load {:.1} MiB",
        peak as f64 / 1024.0
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "idle_before": idle_before, "idle_after": idle_after, "samples": samples, "counts": &*counts,
                "faults": faults, "engine_sessions_left": engine_sessions,
                "redis_keys_before": keys_before, "redis_keys_after": keys_after,
            }))?
        );
    }
    haproxy.stop();
    for child in cluster.instances.into_iter().flatten() {
        child.stop();
    }
    if let Some(redis) = cluster.redis {
        redis.stop();
    }
    anyhow::ensure!(engine_sessions == 0, "engine sessions left after the soak");
    anyhow::ensure!(keys_after <= keys_before, "Redis keys left: {keys_before:?} → {keys_after:?}");
    for i in 0..3 {
        let (b, a) = (idle_before[i], idle_after[i]);
        anyhow::ensure!(a.sessions == 0, "instance {i}: sessions left");
        // Instance 2 was restarted: its idle level is a fresh process's.
        anyhow::ensure!(a.fds <= b.fds + 2, "instance {i}: descriptors grew: {} → {}", b.fds, a.fds);
        anyhow::ensure!(a.tasks <= b.tasks + 2, "instance {i}: tasks grew: {} → {}", b.tasks, a.tasks);
    }
    Ok(())
}
