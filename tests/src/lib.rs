//! Helpers for acemux's end-to-end tests: start simulated engines and an
//! acemux in-process on loopback, open players over real HTTP, and check
//! what they received.

pub mod browser;
pub mod files;
pub mod floor;
pub mod hls;
pub mod hls_load;
pub mod ll_hls_load;
pub mod load;
pub mod log_capture;
pub mod orchestrator;
pub mod plugins;
pub mod recording;
pub mod soak;
pub mod toolchains;
pub mod vlc;

use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine, video_counter};
use acemux::Acemux;
use acemux::config::Settings;
use acemux_ts::{NULL_PID, PACKET_SIZE, SYNC_BYTE, pid};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A content id for test `n` (40 hex characters).
pub fn content_id(n: u32) -> String {
    format!("{n:08x}{}", "a".repeat(32))
}

/// A fresh, empty directory for one test (removed on drop).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("acemux-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Simulated engines and an acemux in front of them.
pub struct Harness {
    pub engines: Vec<SimEngine>,
    pub acemux: Option<Acemux>,
    pub base: String,
    pub http: reqwest::Client,
}

impl Harness {
    /// One engine with `sim`, acemux with test-friendly settings changed by `tweak`.
    pub async fn start(sim: SimConfig, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::start_many(vec![sim], tweak).await
    }

    /// One engine per config.
    pub async fn start_many(sims: Vec<SimConfig>, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut engines = Vec::new();
        for sim in sims {
            engines.push(SimEngine::start(sim).await.expect("simulated engine starts"));
        }
        let endpoints: Vec<String> = engines.iter().map(SimEngine::endpoint).collect();
        let mut settings = Settings::with_engines(&endpoints).expect("valid settings");
        settings.front.listen = "127.0.0.1:0".parse().unwrap();
        settings.stream.grace_period = Duration::from_millis(500);
        settings.stream.retry_wait = Duration::from_millis(100);
        settings.engines.connection_timeout = Duration::from_secs(3);
        settings.stream.init_timeout = Duration::from_secs(10);
        settings.front.shutdown_timeout = Duration::from_secs(3);
        settings.plugins.plugins_dir = acemux::values::OrNone(None);
        // Tests that want the compile cache give it a directory of their own.
        settings.plugins.plugin_cache = Some(acemux::values::OrNone(None));
        // Every test player comes from 127.0.0.1; the cap has tests of its own.
        settings.front.max_connections_per_client = acemux::values::OrNone(None);
        // `ACEMUX_TEST_ZERO_COPY=off cargo test` runs every test on the
        // copying path (tests that choose a path still choose).
        if let Some(on) =
            std::env::var("ACEMUX_TEST_ZERO_COPY").ok().and_then(|v| acemux::values::on_off(&v).ok())
        {
            settings.stream.zero_copy = on;
        }
        tweak(&mut settings);
        let acemux = Acemux::start(settings).await.expect("acemux starts");
        let base = format!("http://{}", acemux.addr());
        Self { engines, acemux: Some(acemux), base, http: reqwest::Client::new() }
    }

    pub fn engine(&self) -> &SimEngine {
        &self.engines[0]
    }

    /// Index of the one engine that got exactly this many starts, if unique.
    pub fn engine_with_starts(&self, starts: u64) -> Option<usize> {
        let hits: Vec<usize> =
            (0..self.engines.len()).filter(|i| self.engines[*i].counters().starts == starts).collect();
        (hits.len() == 1).then(|| hits[0])
    }

    /// `host:port` of engine `i`, as acemux names it.
    pub fn engine_id(&self, i: usize) -> String {
        self.engines[i].endpoint()
    }

    /// The `engines` entry of `/proxy/status` for engine `i`.
    pub async fn engine_status(&self, i: usize) -> Value {
        let id = self.engine_id(i);
        let status = self.status().await;
        status["engines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn stream_url(&self, id: &str) -> String {
        self.url(&format!("/ace/getstream?id={id}"))
    }

    /// Opens a player; panics unless the answer is 200.
    pub async fn player(&self, id: &str) -> PlayerClient {
        let response = self.http.get(self.stream_url(id)).send().await.expect("request sent");
        assert_eq!(response.status(), 200, "stream request failed: {:?}", response.text().await);
        PlayerClient::new(response)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    pub async fn status(&self) -> Value {
        self.get_json("/proxy/status").await.1
    }

    /// Number of sessions acemux holds.
    pub async fn session_count(&self) -> usize {
        self.status().await["sessions"].as_array().map_or(0, Vec::len)
    }

    /// Polls `check` every 50 ms until it holds or `limit` passes.
    pub async fn wait_for<F, Fut>(&self, limit: Duration, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if check().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        check().await
    }

    /// Shuts acemux down and waits for it.
    pub async fn shutdown(&mut self) {
        if let Some(a) = self.acemux.take() {
            a.shutdown().await;
        }
    }
}

/// A player reading over HTTP.
pub struct PlayerClient {
    pub response: reqwest::Response,
    pub received: Vec<u8>,
    pub opened_at: Instant,
    pub first_byte_at: Option<Instant>,
}

impl PlayerClient {
    pub fn new(response: reqwest::Response) -> Self {
        Self { response, received: Vec::new(), opened_at: Instant::now(), first_byte_at: None }
    }

    /// Reads until at least `bytes` arrived, the body ended, or `limit` passed.
    /// Returns false if the body ended.
    pub async fn read_at_least(&mut self, bytes: usize, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        while self.received.len() < bytes {
            match tokio::time::timeout_at(until, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    self.first_byte_at.get_or_insert_with(Instant::now);
                    self.received.extend_from_slice(&chunk);
                }
                Ok(_) => return false,
                Err(_) => return true,
            }
        }
        true
    }

    /// Reads for `time` (or until the body ends), returning the longest
    /// wait between two arrivals after the first byte.
    pub async fn longest_gap(&mut self, time: Duration) -> Duration {
        let until = tokio::time::Instant::now() + time;
        let mut last = Instant::now();
        let mut longest = Duration::ZERO;
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, self.response.chunk()).await {
            if self.received.is_empty() {
                self.first_byte_at = Some(Instant::now());
            } else {
                longest = longest.max(last.elapsed());
            }
            last = Instant::now();
            self.received.extend_from_slice(&chunk);
        }
        longest
    }

    /// Reads for `time`; returns false if the body ended first.
    pub async fn read_for(&mut self, time: Duration) -> bool {
        self.read_at_least(usize::MAX, time).await
    }

    /// Reads until the body ends or `limit` passes; true if it ended.
    pub async fn read_to_end(&mut self, limit: Duration) -> bool {
        !self.read_at_least(usize::MAX, limit).await
    }

    pub fn report(&self) -> TsReport {
        TsReport::of(&self.received)
    }
}

/// What a player received, as the simulated engine's TS.
#[derive(Debug, Default, Clone)]
pub struct TsReport {
    pub bytes: usize,
    /// Bytes form whole packets, each starting with the sync byte.
    pub aligned: bool,
    pub packets: usize,
    pub null_packets: usize,
    pub video_packets: usize,
    pub first_counter: Option<u64>,
    pub last_counter: Option<u64>,
    /// Places where the video counter did not go up by exactly one.
    pub gaps: usize,
    /// Null packets before the first video packet.
    pub leading_nulls: usize,
}

impl TsReport {
    pub fn of(bytes: &[u8]) -> Self {
        // A reader that stops mid-packet cuts the last one: only whole
        // packets are judged.
        let mut r = TsReport { bytes: bytes.len(), aligned: true, ..Default::default() };
        for p in bytes.chunks_exact(PACKET_SIZE) {
            if p[0] != SYNC_BYTE {
                r.aligned = false;
                continue;
            }
            r.packets += 1;
            if pid(p) == NULL_PID {
                r.null_packets += 1;
                if r.video_packets == 0 {
                    r.leading_nulls += 1;
                }
            }
            if let Some(c) = video_counter(p) {
                r.video_packets += 1;
                if let Some(last) = r.last_counter
                    && c != last + 1
                {
                    r.gaps += 1;
                }
                r.first_counter.get_or_insert(c);
                r.last_counter = Some(c);
            }
        }
        r
    }

    /// Whole packets, real video, and no counter gap.
    pub fn assert_clean(&self, who: &str) {
        assert!(self.aligned, "{who}: bytes are not whole TS packets: {self:?}");
        assert!(self.video_packets > 0, "{who}: no video packets: {self:?}");
        assert_eq!(self.gaps, 0, "{who}: video counter gaps: {self:?}");
    }
}

/// A player on a raw socket with a tiny receive buffer, speaking HTTP/1.0
/// (so the body is plain TS, delimited by the connection's close). It reads
/// only when told to, which makes it as slow or as stalled as a test needs.
pub struct RawPlayer {
    stream: TcpStream,
    head: Vec<u8>,
    pub body: Vec<u8>,
    pub ended: bool,
}

impl RawPlayer {
    pub async fn connect(base: &str, id: &str) -> Self {
        let addr = base.trim_start_matches("http://").parse().expect("socket address");
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small receive buffer");
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!("GET /ace/getstream?id={id} HTTP/1.0\r\nHost: acemux\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("request");
        Self { stream, head: Vec::new(), body: Vec::new(), ended: false }
    }

    /// Reads at most `max` bytes (waiting up to `limit` for them).
    pub async fn read_some(&mut self, max: usize, limit: Duration) {
        let mut buf = vec![0u8; max];
        match tokio::time::timeout(limit, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => self.ended = true,
            Ok(Ok(n)) => {
                if self.head.ends_with(b"\r\n\r\n") {
                    self.body.extend_from_slice(&buf[..n]);
                } else {
                    self.head.extend_from_slice(&buf[..n]);
                    if let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") {
                        self.body.extend_from_slice(&self.head[end + 4..]);
                        self.head.truncate(end + 4);
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// The response head (status line and headers).
    pub fn head(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    pub fn report(&self) -> TsReport {
        TsReport::of(&self.body)
    }
}
