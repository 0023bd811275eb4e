//! The load generator behind `acemux-load` and the CI smoke test.
//!
//! Opens N players on M contents over raw HTTP/1.0 sockets (cheap enough to
//! run 1000 of them beside acemux on a small machine), reads continuously,
//! checks every byte as simulated-engine TS (whole packets, video counter
//! without gaps), and reports time to first byte, throughput and stalls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acemux_ts::access::{VideoStream, is_random_access};
use acemux_ts::{PACKET_SIZE, Packet, SYNC_BYTE, psi};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::content_id;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub target: SocketAddr,
    pub players: usize,
    pub contents: usize,
    /// Players that read at only `slow_rate` bytes per second.
    pub slow_players: usize,
    pub slow_rate: usize,
    /// Time over which the players connect.
    pub ramp: Duration,
    /// Time every player reads after the ramp.
    pub duration: Duration,
    /// A player that gets no byte for this long after its first is stalled.
    pub stall_after: Duration,
    /// First content number (so runs can use fresh contents).
    pub content_base: u32,
    /// Counter gaps each player may show without counting as TS errors
    /// (one per deliberate engine failover: a new engine is at another
    /// live position).
    pub allowed_gaps: u64,
    /// The engine serves a recording, not the counter stream: no counter
    /// check; instead, count players whose first video packet after the
    /// first PAT and PMT is not a keyframe (a decoder could not start there).
    pub recorded: bool,
}

/// One player's outcome.
#[derive(Debug, Clone, Default)]
struct PlayerResult {
    slow: bool,
    /// Connected before any other player of its content had its first byte.
    first_of_content: bool,
    ttfb: Option<Duration>,
    bytes: u64,
    stalls: u32,
    misaligned: u64,
    counter_gaps: u64,
    /// Whether the first video packet after PAT and PMT was a keyframe.
    starts_at_keyframe: Option<bool>,
    error: Option<String>,
}

/// Min/median/p99/max in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    pub count: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    pub fn of(mut v: Vec<Duration>) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
        Self {
            count: v.len(),
            min_ms: ms(v[0]),
            median_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: ms(v[v.len() - 1]),
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} min {:.1} / median {:.1} / p99 {:.1} / max {:.1} ms",
            self.count, self.min_ms, self.median_ms, self.p99_ms, self.max_ms
        )
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub players: usize,
    pub contents: usize,
    pub seconds: f64,
    pub ttfb_first_player: Spread,
    pub ttfb_late_joiners: Spread,
    pub bytes_total: u64,
    pub bytes_per_player_min: u64,
    pub bytes_per_player_median: u64,
    pub aggregate_mb_per_s: f64,
    pub stalls: u64,
    pub misaligned_bytes: u64,
    pub counter_gaps: u64,
    /// With a recording: players a decoder could not start from the first
    /// video packet.
    pub starts_not_at_keyframe: Option<u64>,
    pub errors: Vec<String>,
}

impl LoadReport {
    /// True when nothing went wrong (no stall among normal players, no TS
    /// error, no connection error).
    pub fn clean(&self) -> bool {
        self.stalls == 0
            && self.misaligned_bytes == 0
            && self.counter_gaps == 0
            && self.starts_not_at_keyframe.unwrap_or(0) == 0
            && self.errors.is_empty()
    }
}

/// Runs the plan and reports.
pub async fn run(plan: &LoadPlan) -> LoadReport {
    let started = Instant::now();
    let end = started + plan.ramp + plan.duration;
    let first_byte_seen: Arc<Vec<std::sync::atomic::AtomicBool>> =
        Arc::new((0..plan.contents).map(|_| std::sync::atomic::AtomicBool::new(false)).collect());
    let mut tasks = Vec::with_capacity(plan.players);
    for i in 0..plan.players {
        let delay = plan.ramp.mul_f64(i as f64 / plan.players.max(1) as f64);
        let content = i % plan.contents.max(1);
        let slow = i >= plan.players - plan.slow_players.min(plan.players);
        let plan = plan.clone();
        let seen = first_byte_seen.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Late joiners are those that connect after some player of the
            // same content already had bytes.
            let first_of_content = !seen[content].load(std::sync::atomic::Ordering::Relaxed);
            let mut r = play(&plan, content, slow, end, &seen[content]).await;
            r.first_of_content = first_of_content;
            r
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(
            t.await.unwrap_or_else(|e| PlayerResult { error: Some(e.to_string()), ..Default::default() }),
        );
    }
    summarize(plan, &results, started.elapsed())
}

fn summarize(plan: &LoadPlan, results: &[PlayerResult], elapsed: Duration) -> LoadReport {
    let normal: Vec<&PlayerResult> = results.iter().filter(|r| !r.slow).collect();
    let mut per_player: Vec<u64> = normal.iter().map(|r| r.bytes).collect();
    per_player.sort_unstable();
    let bytes_total: u64 = results.iter().map(|r| r.bytes).sum();
    LoadReport {
        players: plan.players,
        contents: plan.contents,
        seconds: elapsed.as_secs_f64(),
        ttfb_first_player: Spread::of(
            results.iter().filter(|r| r.first_of_content).filter_map(|r| r.ttfb).collect(),
        ),
        ttfb_late_joiners: Spread::of(
            results.iter().filter(|r| !r.first_of_content).filter_map(|r| r.ttfb).collect(),
        ),
        bytes_total,
        bytes_per_player_min: per_player.first().copied().unwrap_or(0),
        bytes_per_player_median: per_player.get(per_player.len() / 2).copied().unwrap_or(0),
        aggregate_mb_per_s: bytes_total as f64 / 1e6 / elapsed.as_secs_f64(),
        stalls: normal.iter().map(|r| u64::from(r.stalls)).sum(),
        misaligned_bytes: results.iter().map(|r| r.misaligned).sum(),
        // A slow player skips by design; its gaps are expected.
        counter_gaps: normal.iter().map(|r| r.counter_gaps.saturating_sub(plan.allowed_gaps)).sum(),
        starts_not_at_keyframe: plan.recorded.then(|| {
            results.iter().filter(|r| r.bytes > 0 && r.starts_at_keyframe != Some(true)).count() as u64
        }),
        errors: results.iter().filter_map(|r| r.error.clone()).collect(),
    }
}

/// One player: connect, read until `end`, check the TS as it comes.
async fn play(
    plan: &LoadPlan,
    content: usize,
    slow: bool,
    end: Instant,
    content_has_bytes: &std::sync::atomic::AtomicBool,
) -> PlayerResult {
    let mut r = PlayerResult { slow, ..Default::default() };
    let id = content_id(plan.content_base + content as u32);
    let opened = Instant::now();
    let mut stream = match TcpStream::connect(plan.target).await {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            return r;
        }
    };
    let request = format!("GET /ace/getstream?id={id} HTTP/1.0\r\nHost: acemux\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        r.error = Some(format!("request: {e}"));
        return r;
    }
    let mut checker = TsChecker { check_counters: !plan.recorded, ..TsChecker::default() };
    let mut head = Vec::new();
    let mut in_body = false;
    let mut buf = vec![0u8; if slow { 4096 } else { 64 * 1024 }];
    let mut last_byte = Instant::now();
    let mut stalled = false;
    let end = tokio::time::Instant::from_std(end);
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(plan.stall_after, stream.read(&mut buf)) => read,
            _ = tokio::time::sleep_until(end) => break,
        };
        let n = match read {
            Err(_) => {
                if r.ttfb.is_some() && !stalled {
                    r.stalls += 1;
                    stalled = true;
                }
                continue;
            }
            Ok(Ok(0)) => {
                r.error = Some(format!("content {content}: stream ended after {} bytes", r.bytes));
                break;
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                r.error = Some(format!("content {content}: read: {e}"));
                break;
            }
        };
        stalled = false;
        let data = &buf[..n];
        if !in_body {
            head.extend_from_slice(data);
            let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
                r.error = Some(format!("content {content}: {}", String::from_utf8_lossy(&head[..pos])));
                break;
            }
            in_body = true;
            let body = head.split_off(pos + 4);
            if body.is_empty() {
                continue;
            }
            checker.feed(&body);
            r.bytes += body.len() as u64;
            r.ttfb.get_or_insert(opened.elapsed());
            content_has_bytes.store(true, std::sync::atomic::Ordering::Relaxed);
            last_byte = Instant::now();
            continue;
        }
        if r.ttfb.is_none() {
            r.ttfb = Some(opened.elapsed());
            content_has_bytes.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if last_byte.elapsed() > plan.stall_after && !slow {
            r.stalls += 1;
        }
        last_byte = Instant::now();
        r.bytes += data.len() as u64;
        checker.feed(data);
        if slow {
            let pause = Duration::from_secs_f64(n as f64 / plan.slow_rate.max(1) as f64);
            tokio::time::sleep(pause).await;
        }
    }
    r.misaligned = checker.misaligned;
    r.counter_gaps = checker.gaps;
    r.starts_at_keyframe = checker.start.verdict;
    r
}

/// Incremental check of simulated-engine TS across reads.
#[derive(Default)]
struct TsChecker {
    check_counters: bool,
    start: StartCheck,
    carry: Vec<u8>,
    last_counter: Option<u64>,
    misaligned: u64,
    gaps: u64,
}

impl TsChecker {
    fn feed(&mut self, mut data: &[u8]) {
        if !self.carry.is_empty() {
            let take = (PACKET_SIZE - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < PACKET_SIZE {
                return;
            }
            let packet = std::mem::take(&mut self.carry);
            self.packet(&packet);
        }
        let whole = data.len() / PACKET_SIZE * PACKET_SIZE;
        for p in data[..whole].chunks_exact(PACKET_SIZE) {
            self.packet(p);
        }
        self.carry.extend_from_slice(&data[whole..]);
    }

    fn packet(&mut self, p: &[u8]) {
        if p[0] != SYNC_BYTE {
            self.misaligned += PACKET_SIZE as u64;
            return;
        }
        if !self.check_counters {
            self.start.packet(p);
            return;
        }
        if let Some(c) = ace_sim::video_counter(p) {
            if self.last_counter.is_some_and(|last| c != last + 1) {
                self.gaps += 1;
            }
            self.last_counter = Some(c);
        }
    }
}

/// Follows PAT and PMT up to the first video packet, and tells whether a
/// decoder can start there.
#[derive(Default)]
struct StartCheck {
    pmt_pid: Option<u16>,
    video: Option<VideoStream>,
    verdict: Option<bool>,
}

impl StartCheck {
    fn packet(&mut self, raw: &[u8]) {
        let Some(packet) = Packet::new(raw) else { return };
        if self.verdict.is_some() {
            return;
        }
        let pid = packet.pid();
        if pid == 0 {
            self.pmt_pid = psi::parse_pat(&packet).and_then(|programs| programs.first().map(|p| p.1));
        } else if Some(pid) == self.pmt_pid {
            self.video = psi::parse_pmt(&packet).and_then(|map| map.video());
        } else if let Some(video) = self.video
            && pid == video.pid
        {
            self.verdict = Some(is_random_access(&packet, video.codec));
        }
    }
}
