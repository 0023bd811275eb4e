//! HLS viewers for `acemux-load --hls`: each opens a master playlist, then
//! polls its media playlist and fetches every new segment in order, as
//! players do (starting three segments from the live end, reloading the
//! playlist about once per segment). Each viewer keeps one HTTP/1.1
//! connection alive over raw sockets, so a thousand of them cost the load
//! tool little beside acemux.
//!
//! A segment fetch is in time when it completes within the segment's own
//! duration (a player downloading slower than it plays stalls); a segment
//! that slid out of the window before the viewer got to it is missed.
//! With `low_latency`, viewers read parts instead (see
//! [`crate::ll_hls_load`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use acemux_ts::access::{VideoCodec, is_random_access};
use acemux_ts::{PACKET_SIZE, Packet, packets};
use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::content_id;
use crate::load::Spread;

/// What to run.
#[derive(Debug, Clone)]
pub struct HlsPlan {
    pub target: SocketAddr,
    pub viewers: usize,
    pub contents: usize,
    pub ramp: Duration,
    pub duration: Duration,
    pub content_base: u32,
    /// The stream is a recording with keyframes: every segment must start
    /// with PAT, PMT and a keyframe.
    pub recorded: bool,
    /// Viewers are Low-Latency HLS players: blocking reloads and parts.
    pub low_latency: bool,
}

/// What a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HlsReport {
    pub viewers: usize,
    pub contents: usize,
    pub seconds: f64,
    /// Master playlist request to its last byte (the stream is started by
    /// the first viewer of a content).
    pub master: Spread,
    /// Segment request to first byte.
    pub segment_ttfb: Spread,
    /// Segment (or part) request to last byte.
    pub segment_fetch: Spread,
    /// Blocking playlist reload to its answer (low latency).
    pub blocking_wait: Spread,
    pub playlists: u64,
    pub segments: u64,
    pub parts: u64,
    /// Fetches that took longer than the segment (or part) lasts.
    pub late_segments: u64,
    /// Segments (parts) that left the playlist before the viewer fetched them.
    pub missed_segments: u64,
    /// Segments not starting with PAT, PMT and a keyframe (recordings only).
    pub bad_segment_starts: u64,
    pub bytes_total: u64,
    pub aggregate_mb_per_s: f64,
    pub errors: Vec<String>,
}

impl HlsReport {
    pub fn clean(&self) -> bool {
        self.late_segments == 0
            && self.missed_segments == 0
            && self.bad_segment_starts == 0
            && self.errors.is_empty()
            && self.segments + self.parts > 0
    }
}

#[derive(Default)]
pub(crate) struct ViewerResult {
    pub master: Option<Duration>,
    pub ttfb: Vec<Duration>,
    pub fetch: Vec<Duration>,
    pub blocking_waits: Vec<Duration>,
    pub playlists: u64,
    pub segments: u64,
    pub parts: u64,
    pub late: u64,
    pub missed: u64,
    pub bad_starts: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

/// Runs the plan and reports.
pub async fn run_hls(plan: &HlsPlan) -> HlsReport {
    let started = Instant::now();
    let end = started + plan.ramp + plan.duration;
    let mut tasks = Vec::with_capacity(plan.viewers);
    for i in 0..plan.viewers {
        let delay = plan.ramp.mul_f64(i as f64 / plan.viewers.max(1) as f64);
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut r = ViewerResult::default();
            let content = content_id(plan.content_base + (i % plan.contents.max(1)) as u32);
            let viewed = if plan.low_latency {
                crate::ll_hls_load::view(&plan, &content, end, &mut r).await
            } else {
                view(&plan, &content, end, &mut r).await
            };
            if let Err(e) = viewed {
                r.error = Some(format!("viewer {i}: {e:#}"));
            }
            r
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(
            t.await.unwrap_or_else(|e| ViewerResult { error: Some(e.to_string()), ..Default::default() }),
        );
    }
    let elapsed = started.elapsed();
    let bytes_total: u64 = results.iter().map(|r| r.bytes).sum();
    HlsReport {
        viewers: plan.viewers,
        contents: plan.contents,
        seconds: elapsed.as_secs_f64(),
        master: Spread::of(results.iter().filter_map(|r| r.master).collect()),
        segment_ttfb: Spread::of(results.iter().flat_map(|r| r.ttfb.iter().copied()).collect()),
        segment_fetch: Spread::of(results.iter().flat_map(|r| r.fetch.iter().copied()).collect()),
        blocking_wait: Spread::of(results.iter().flat_map(|r| r.blocking_waits.iter().copied()).collect()),
        playlists: results.iter().map(|r| r.playlists).sum(),
        segments: results.iter().map(|r| r.segments).sum(),
        parts: results.iter().map(|r| r.parts).sum(),
        late_segments: results.iter().map(|r| r.late).sum(),
        missed_segments: results.iter().map(|r| r.missed).sum(),
        bad_segment_starts: results.iter().map(|r| r.bad_starts).sum(),
        bytes_total,
        aggregate_mb_per_s: bytes_total as f64 / 1e6 / elapsed.as_secs_f64(),
        errors: results.iter().filter_map(|r| r.error.clone()).collect(),
    }
}

/// One viewer until `end`.
async fn view(plan: &HlsPlan, content: &str, end: Instant, r: &mut ViewerResult) -> anyhow::Result<()> {
    let mut http = KeepAlive::new(plan.target);
    let asked = Instant::now();
    let (media_path, base) = media_playlist_path(&mut http, content).await?;
    r.master = Some(asked.elapsed());
    let mut next: Option<u64> = None;
    while Instant::now() < end {
        let response = http.get(&media_path, None).await?;
        r.playlists += 1;
        let playlist = match m3u8_rs::parse_playlist_res(&response.body) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
            _ => bail!("not a media playlist: {}", String::from_utf8_lossy(&response.body)),
        };
        let first = playlist.media_sequence;
        let listed = playlist.segments.len() as u64;
        // Players start three segments from the live end.
        let from = *next.get_or_insert(first + listed.saturating_sub(3));
        if from < first {
            r.missed += first - from;
        }
        let mut fetched_any = false;
        for (i, segment) in playlist.segments.iter().enumerate() {
            let sequence = first + i as u64;
            if sequence < from {
                continue;
            }
            if Instant::now() >= end {
                break;
            }
            let asked = Instant::now();
            let mut ttfb = None;
            let got = http.get(&format!("{base}/{}", segment.uri), Some(&mut ttfb)).await;
            let took = asked.elapsed();
            let got = match got {
                Ok(g) => g,
                // Slid out between the playlist and the fetch: missed.
                Err(e) if e.to_string().contains("404") => {
                    r.missed += 1;
                    next = Some(sequence + 1);
                    continue;
                }
                Err(e) => return Err(e),
            };
            r.segments += 1;
            r.bytes += got.body.len() as u64;
            r.fetch.push(took);
            r.ttfb.extend(ttfb);
            if took.as_secs_f64() > f64::from(segment.duration) {
                r.late += 1;
            }
            if plan.recorded && !starts_cleanly(&got.body) {
                r.bad_starts += 1;
            }
            next = Some(sequence + 1);
            fetched_any = true;
        }
        // Reload after about a segment when there was news, sooner when not.
        let target = Duration::from_secs(playlist.target_duration.max(1));
        let wait = if fetched_any { target } else { target / 2 };
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(left)).await;
    }
    Ok(())
}

/// Opens the master playlist of `content`; the media playlist's path and
/// the directory its segments are in.
pub(crate) async fn media_playlist_path(
    http: &mut KeepAlive,
    content: &str,
) -> anyhow::Result<(String, String)> {
    let master = http.get(&format!("/ace/manifest.m3u8?id={content}"), None).await?;
    let master = match m3u8_rs::parse_playlist_res(&master.body) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        _ => bail!("not a master playlist: {}", String::from_utf8_lossy(&master.body)),
    };
    let variant = &master.variants.first().context("no variant")?.uri;
    // `../hls/<id>/live.m3u8?viewer=…` relative to `/ace/manifest.m3u8`.
    let media_path = format!("/{}", variant.trim_start_matches("../"));
    let base = media_path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
    Ok((media_path, base))
}

/// PAT, PMT, then a video keyframe.
pub(crate) fn starts_cleanly(segment: &[u8]) -> bool {
    let first: Vec<Packet> = packets(segment).take(3).filter_map(Packet::new).collect();
    first.len() == 3
        && first[0].pid() == 0
        && first[2].pusi()
        && (first[2].random_access() || is_random_access(&first[2], VideoCodec::H264))
        && segment.len().is_multiple_of(PACKET_SIZE)
}

pub(crate) struct Response {
    pub body: Vec<u8>,
}

/// One kept-alive HTTP/1.1 connection, reopened when it fails.
pub(crate) struct KeepAlive {
    target: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl KeepAlive {
    pub fn new(target: SocketAddr) -> Self {
        Self { target, conn: None }
    }

    /// GETs `path` (200 expected); records the time to the first body byte.
    pub async fn get(&mut self, path: &str, ttfb: Option<&mut Option<Duration>>) -> anyhow::Result<Response> {
        let limit = Duration::from_secs(30);
        match tokio::time::timeout(limit, self.try_get(path, ttfb)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                bail!("GET {path}: no answer within {limit:?}")
            }
        }
    }

    async fn try_get(
        &mut self,
        path: &str,
        mut ttfb: Option<&mut Option<Duration>>,
    ) -> anyhow::Result<Response> {
        let asked = Instant::now();
        if self.conn.is_none() {
            let tcp = TcpStream::connect(self.target).await?;
            tcp.set_nodelay(true)?;
            self.conn = Some(BufReader::with_capacity(64 * 1024, tcp));
        }
        let conn = self.conn.as_mut().context("connected")?;
        conn.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: acemux\r\n\r\n").as_bytes()).await?;
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = None;
        loop {
            line.clear();
            if conn.read_line(&mut line).await? == 0 {
                bail!("GET {path}: connection closed in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.with_context(|| format!("GET {path}: no content-length"))?;
        let mut body = vec![0u8; length];
        let mut filled = 0;
        while filled < length {
            let n = conn.read(&mut body[filled..]).await?;
            if n == 0 {
                bail!("GET {path}: connection closed after {filled} of {length} bytes");
            }
            if filled == 0
                && let Some(t) = ttfb.as_mut()
            {
                **t = Some(asked.elapsed());
            }
            filled += n;
        }
        if status != "200" {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(Response { body })
    }
}
