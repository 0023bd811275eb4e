//! What the cluster tests share: `redis-server`, `acemux` instances and
//! HAProxy started on loopback, simulated engines, and players that count
//! what they receive.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine};
use acemux_test_artifacts::programs;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_acemux");
pub const HAPROXY_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cluster/haproxy.cfg");
/// Per-engine stream cap in these tests.
pub const CAP: usize = 4;

pub fn content_id(n: u32) -> String {
    format!("{n:08x}{}", "c".repeat(32))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn have_programs(test: &str, haproxy: bool) -> bool {
    programs::available(test, &["redis-server"], "redis-server")
        && (!haproxy || programs::available(test, &["haproxy"], "haproxy"))
}

/// A `redis-server` on loopback, without persistence.
pub struct Redis {
    pub child: Option<Child>,
    pub port: u16,
}

impl Redis {
    pub async fn start(port: u16) -> Self {
        let redis = Self::spawn(port, &["--port", &port.to_string()]);
        let until = Instant::now() + Duration::from_secs(10);
        while redis.command("PING").await.as_deref() != Some("+PONG") {
            assert!(Instant::now() < until, "redis-server did not answer PING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    /// TLS only, with a password: ready once it accepts connections.
    pub async fn start_tls(port: u16, dir: &std::path::Path, password: &str) -> Self {
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let (cert, key) = (file("cert.pem"), file("key.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-keyout", &key, "-out", &cert])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(made.success(), "openssl made no certificate");
        let tls_port = port.to_string();
        let redis = Self::spawn(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &tls_port,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &cert,
                "--tls-auth-clients",
                "no",
                "--requirepass",
                password,
            ],
        );
        let until = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < until, "redis-server (TLS) did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    pub fn spawn(port: u16, args: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs");
        Self { child: Some(child), port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// One inline command; the first line of the answer.
    pub async fn command(&self, command: &str) -> Option<String> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        s.write_all(format!("{command}\r\n").as_bytes()).await.ok()?;
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await.ok()?.ok()?;
        String::from_utf8_lossy(&buf[..n]).lines().next().map(str::to_owned)
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// One `acemux` process of the cluster.
pub struct Instance {
    pub child: Child,
    pub port: u16,
}

impl Instance {
    pub async fn start(id: &str, redis: &Redis, engines: &[SimEngine], extra: &[&str]) -> Self {
        Self::start_with(id, &redis.url(), engines, extra).await
    }

    pub async fn start_with(id: &str, redis_url: &str, engines: &[SimEngine], extra: &[&str]) -> Self {
        Self::start_at(free_port(), id, redis_url, engines, extra).await
    }

    pub async fn start_at(
        port: u16,
        id: &str,
        redis_url: &str,
        engines: &[SimEngine],
        extra: &[&str],
    ) -> Self {
        let mut args: Vec<String> = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--redis-url".into(),
            redis_url.into(),
            "--advertise-url".into(),
            format!("http://127.0.0.1:{port}"),
            "--instance-id".into(),
            id.into(),
            "--cluster-lease".into(),
            "2s".into(),
            "--max-streams-per-engine".into(),
            CAP.to_string(),
            "--plugins".into(),
            "none".into(),
            "--grace-period".into(),
            "1s".into(),
            "--retry-wait".into(),
            "100ms".into(),
            "--dashboard".into(),
            "off".into(),
        ];
        for e in engines {
            args.push("--engine".into());
            args.push(e.endpoint());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(BIN)
            .args(&args)
            .env_clear()
            .env("RUST_LOG", std::env::var("ACEMUX_TEST_LOGS").unwrap_or_else(|_| "acemux=info".into()))
            .stdout(Stdio::null())
            // ACEMUX_TEST_LOGS=1 shows the instances' logs.
            .stderr(if std::env::var_os("ACEMUX_TEST_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("acemux runs");
        let instance = Self { child, port };
        let until = Instant::now() + Duration::from_secs(15);
        while reqwest::get(instance.url("/healthz")).await.map(|r| r.status()).ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(Instant::now() < until, "acemux {id} did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        instance
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn status(&self) -> Value {
        reqwest::get(self.url("/proxy/status")).await.unwrap().json().await.unwrap()
    }

    pub async fn session_count(&self) -> usize {
        self.status().await["sessions"].as_array().map_or(0, Vec::len)
    }
}

/// HAProxy with the committed example configuration.
pub struct Haproxy {
    _child: Child,
    pub port: u16,
}

impl Haproxy {
    pub async fn start(instances: &[Instance]) -> Self {
        let port = free_port();
        let mut command = Command::new("haproxy");
        command.args(["-db", "-f", HAPROXY_CFG]).env("ACEMUX_FRONT", format!("127.0.0.1:{port}"));
        for (i, instance) in instances.iter().enumerate() {
            command.env(format!("ACEMUX_{}", i + 1), format!("127.0.0.1:{}", instance.port));
        }
        let child =
            command.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().expect("haproxy");
        let haproxy = Self { _child: child, port };
        let until = Instant::now() + Duration::from_secs(10);
        while reqwest::get(haproxy.url("/healthz")).await.map(|r| r.status()).ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(Instant::now() < until, "haproxy did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        haproxy
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

pub async fn engines(n: usize) -> Vec<SimEngine> {
    let mut engines = Vec::new();
    for _ in 0..n {
        let config = SimConfig { bitrate_bps: 400_000, ..SimConfig::default() };
        engines.push(SimEngine::start(config).await.unwrap());
    }
    engines
}

/// A player that reads a stream and, when told to, reconnects after the
/// stream ends or fails (as a player behind a load balancer would).
pub struct Player {
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Player {
    pub fn open(url: String, reconnect: bool) -> Self {
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = bytes.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).build().unwrap();
            loop {
                if let Ok(mut r) = http.get(&url).send().await
                    && r.status() == 200
                {
                    while let Ok(Some(chunk)) = r.chunk().await {
                        counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
                if !reconnect {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { bytes, task }
    }

    /// Its one response ended (a player opened without `reconnect`).
    pub fn response_ended(&self) -> bool {
        self.task.is_finished()
    }

    pub fn received(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until every player has received more than `floor[i]` + `more`.
pub async fn all_receive(players: &[Player], more: u64, limit: Duration) -> bool {
    let floor: Vec<u64> = players.iter().map(Player::received).collect();
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if players.iter().zip(&floor).all(|(p, f)| p.received() > f + more) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub fn starts(engines: &[SimEngine]) -> u64 {
    engines.iter().map(|e| e.counters().starts).sum()
}

pub fn live_sessions(engines: &[SimEngine]) -> usize {
    engines.iter().map(SimEngine::live_sessions).sum()
}

pub fn assert_caps_held(engines: &[SimEngine]) {
    for (i, e) in engines.iter().enumerate() {
        let c = e.counters();
        assert!(
            c.peak_sessions <= CAP as u64,
            "engine {i} held {} sessions at once (cap {CAP})",
            c.peak_sessions
        );
    }
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`, …) to a process.
pub fn signal(child: &Child, signal: &str) {
    let pid = child.id().expect("the process runs").to_string();
    let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

impl Redis {
    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("redis-server runs"), "STOP");
    }

    pub fn resume(&self) {
        signal(self.child.as_ref().expect("redis-server runs"), "CONT");
    }

    /// An integer a Lua snippet returns (`EVAL "<lua>" 0`), none if Redis
    /// does not answer.
    pub async fn eval_integer(&self, lua: &str) -> Option<i64> {
        let answer = self.command(&format!("EVAL \"{lua}\" 0")).await?;
        answer.strip_prefix(':')?.parse().ok()
    }

    /// Content leases Redis holds.
    pub async fn content_leases(&self) -> Option<i64> {
        self.eval_integer("return #redis.call('keys', 'acemux:content:*')").await
    }

    /// Engine slots Redis counts, over every engine.
    pub async fn engine_slots(&self) -> Option<i64> {
        self.eval_integer(
            "local n = 0 for _, k in ipairs(redis.call('keys', 'acemux:slots:*')) do n = n + redis.call('zcard', k) end return n",
        )
        .await
    }
}

impl Instance {
    /// One instance per id, sharing `redis` and `engines`.
    pub async fn start_all(ids: &[&str], redis: &Redis, engines: &[SimEngine]) -> Vec<Instance> {
        let mut instances = Vec::new();
        for id in ids {
            instances.push(Instance::start(id, redis, engines, &[]).await);
        }
        instances
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap()
    }

    /// The value of a metric line that starts with `name` (labels included).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        self.metrics().await.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    }
}

/// How many engine sessions each content has over all engines (by the
/// simulation's infohash of it).
pub fn sessions_per_content(engines: &[SimEngine]) -> std::collections::HashMap<String, usize> {
    let mut per = std::collections::HashMap::new();
    for e in engines {
        for c in e.live_contents() {
            *per.entry(c).or_insert(0) += 1;
        }
    }
    per
}

/// Every one of `contents` has exactly one engine session, nothing else
/// runs, and no engine is above its cap right now.
pub fn one_session_per_content(engines: &[SimEngine], contents: usize) -> bool {
    let per = sessions_per_content(engines);
    per.len() == contents && per.values().all(|n| *n == 1) && engines.iter().all(|e| e.live_sessions() <= CAP)
}

/// Waits (up to `limit`) until `done`; how long it took.
pub async fn time_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let from = Instant::now();
    while from.elapsed() < limit {
        if done() {
            return Some(from.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A TCP relay between one instance and Redis that the test can cut: a
/// network partition of that instance from Redis alone, on the test's own
/// ports (no firewall rule, nothing else on the machine touched). Cut,
/// open connections go silent (nothing forwarded either way, as when
/// packets are dropped) and new ones are accepted and left unanswered;
/// healed, those connections are closed and new ones pass again.
pub struct Partition {
    pub port: u16,
    cut: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Partition {
    pub async fn start(redis: &Redis) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = redis.port;
        let cut = Arc::new(tokio::sync::watch::Sender::new(false));
        let state = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    if !*cut.borrow_and_update() {
                        let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                        else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                            _ = cut.wait_for(|c| *c) => {}
                        }
                    }
                    // Silent until healed, then closed.
                    let _ = cut.wait_for(|c| !*c).await;
                });
            }
        });
        Self { port, cut, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.task.abort();
    }
}
