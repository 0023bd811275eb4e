//! The soak scenario behind `acemux-load --soak`: a long run of the
//! traffic that wears a proxy down — zapping over many contents, players
//! arriving and leaving, slow readers, readers that stop reading — while
//! the caller kills and restores an engine and reloads plugins. It samples
//! the acemux process (resident memory, descriptors, threads, tasks,
//! sessions) so a leak shows as a slope, and checks that the process is
//! back where it started once the load is gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::content_id;

/// What the soak does.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub target: SocketAddr,
    pub duration: Duration,
    /// Contents the zappers pick from.
    pub contents: u32,
    /// Players that zap: a content for 0.5–3 s, then the next.
    pub zappers: usize,
    /// Players that watch one of a few popular contents for 10–60 s, then
    /// leave and come back.
    pub watchers: usize,
    /// Watchers reading at only 50 KB/s (they fall behind and skip).
    pub slow: usize,
    /// Players that read the headers, then nothing for 40 s (longer than
    /// acemux's client timeout), then hang up.
    pub stalled: usize,
    pub sample_every: Duration,
    /// The acemux process to sample.
    pub pid: u32,
}

/// The acemux process and its sessions at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub at_s: f64,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    pub tasks: u64,
    pub sessions: u64,
    pub players: u64,
    pub connections: u64,
}

/// What the players did.
#[derive(Debug, Default, Serialize)]
pub struct SoakCounts {
    pub zaps: AtomicU64,
    pub watches: AtomicU64,
    pub stalls_dropped: AtomicU64,
    pub bytes: AtomicU64,
    /// Answers other than 200 (with the status line), and broken connections.
    pub failures: AtomicU64,
}

/// Samples `pid` and acemux's `/metrics` (via `target`).
pub async fn sample(pid: u32, target: SocketAddr, since: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    let scrape = async { reqwest::get(format!("http://{target}/metrics")).await?.text().await };
    let metrics = match tokio::time::timeout(Duration::from_secs(5), scrape).await {
        Ok(Ok(text)) => text,
        _ => String::new(),
    };
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Sample {
        at_s: since.elapsed().as_secs_f64(),
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
        tasks: gauge("acemux_tasks"),
        sessions: gauge("acemux_streams"),
        players: gauge("acemux_players"),
        // Less the scrape's own connection.
        connections: gauge("acemux_connections").saturating_sub(1),
    }
}

/// Runs the players until the plan's duration has passed, sampling as it
/// goes; returns the samples (the caller adds the idle ones around it).
pub async fn run(plan: &SoakPlan, counts: Arc<SoakCounts>, samples: &mut Vec<Sample>, since: Instant) {
    let end = Instant::now() + plan.duration;
    let mut players = tokio::task::JoinSet::new();
    for _ in 0..plan.zappers {
        players.spawn(zapper(plan.clone(), counts.clone(), end));
    }
    for i in 0..plan.watchers {
        players.spawn(watcher(plan.clone(), counts.clone(), end, i < plan.slow));
    }
    for _ in 0..plan.stalled {
        players.spawn(stalled(plan.clone(), counts.clone(), end));
    }
    let mut tick = tokio::time::interval(plan.sample_every);
    while Instant::now() < end {
        tick.tick().await;
        let s = sample(plan.pid, plan.target, since).await;
        println!(
            "{:7.0} s  rss {:6.1} MiB  fds {:4}  threads {:3}  tasks {:5}  sessions {:3}  players {:4}  zaps {}",
            s.at_s,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads,
            s.tasks,
            s.sessions,
            s.players,
            counts.zaps.load(Ordering::Relaxed)
        );
        samples.push(s);
    }
    while players.join_next().await.is_some() {}
}

/// Opens a stream; returns the connection once the 200 headers are read.
/// A `307` to another instance of a cluster is followed once, as players do.
async fn open(target: SocketAddr, content: u32, counts: &SoakCounts) -> Option<TcpStream> {
    let mut target = target;
    for _ in 0..2 {
        match request(target, content).await {
            Answer::Stream(tcp) => return Some(tcp),
            Answer::Redirect(next) => target = next,
            Answer::Failed(why) => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: content {content}: {why}");
                return None;
            }
        }
    }
    counts.failures.fetch_add(1, Ordering::Relaxed);
    eprintln!("soak: content {content}: redirected twice");
    None
}

enum Answer {
    Stream(TcpStream),
    Redirect(SocketAddr),
    Failed(String),
}

async fn request(target: SocketAddr, content: u32) -> Answer {
    let request = format!("GET /ace/getstream?id={} HTTP/1.1\r\nHost: acemux\r\n\r\n", content_id(content));
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        let mut tcp = TcpStream::connect(target).await?;
        tcp.write_all(request.as_bytes()).await?;
        std::io::Result::Ok(tcp)
    });
    let Ok(Ok(mut tcp)) = connected.await else { return Answer::Failed("cannot connect".into()) };
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        match tokio::time::timeout_at(deadline, tcp.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    // Streams are answered HTTP/1.0 (close-delimited), anything else 1.1.
    if head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200") {
        return Answer::Stream(tcp);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    if text.starts_with("HTTP/1.1 307") {
        let location = text.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location").then(|| value.trim().to_owned())
        });
        let addr =
            location.as_deref().and_then(|l| l.strip_prefix("http://")?.split('/').next()?.parse().ok());
        if let Some(addr) = addr {
            return Answer::Redirect(addr);
        }
    }
    let line = text.lines().next().unwrap_or_default().to_owned();
    Answer::Failed(if line.is_empty() { "no answer".into() } else { line })
}

/// Reads for `time` at most `rate` bytes per second (`None`: as fast as it comes).
async fn read_for(tcp: &mut TcpStream, time: Duration, rate: Option<usize>, counts: &SoakCounts) -> bool {
    let until = tokio::time::Instant::now() + time;
    let mut buf = vec![0u8; rate.map_or(64 * 1024, |r| (r / 10).max(1))];
    // A slow reader always has a backlog, so its reads never wait: check
    // the deadline between reads too.
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout_at(until, tcp.read(&mut buf)).await {
            Err(_) => return true,
            Ok(Ok(0)) | Ok(Err(_)) => return false,
            Ok(Ok(n)) => {
                counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        if rate.is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    true
}

fn random_secs(range: std::ops::Range<f64>) -> Duration {
    Duration::from_secs_f64(rand::rng().random_range(range))
}

async fn zapper(plan: SoakPlan, counts: Arc<SoakCounts>, end: Instant) {
    while Instant::now() < end {
        let content = 5000 + rand::rng().random_range(0..plan.contents);
        if let Some(mut tcp) = open(plan.target, content, &counts).await {
            counts.zaps.fetch_add(1, Ordering::Relaxed);
            read_for(&mut tcp, random_secs(0.5..3.0), None, &counts).await;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn watcher(plan: SoakPlan, counts: Arc<SoakCounts>, end: Instant, slow: bool) {
    while Instant::now() < end {
        let content = 6000 + rand::rng().random_range(0..5);
        let left = end.saturating_duration_since(Instant::now());
        if let Some(mut tcp) = open(plan.target, content, &counts).await {
            counts.watches.fetch_add(1, Ordering::Relaxed);
            let rate = slow.then_some(50_000);
            if !read_for(&mut tcp, random_secs(10.0..60.0).min(left), rate, &counts).await && !slow {
                // A fast watcher's stream should not end under it.
                counts.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: content {content}: stream ended under a watcher");
            }
        }
        tokio::time::sleep(random_secs(0.0..2.0)).await;
    }
}

async fn stalled(plan: SoakPlan, counts: Arc<SoakCounts>, end: Instant) {
    while Instant::now() + Duration::from_secs(40) < end {
        let content = 6000 + rand::rng().random_range(0..5);
        if let Some(tcp) = open(plan.target, content, &counts).await {
            tokio::time::sleep(Duration::from_secs(40)).await;
            counts.stalls_dropped.fetch_add(1, Ordering::Relaxed);
            drop(tcp);
        }
    }
}
