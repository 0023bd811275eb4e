//! An HLS viewer for tests and the load tool: opens a master playlist,
//! follows it to the viewer's media playlist, parses both with a real
//! parser (`m3u8-rs`), and fetches segments, the way players do.

use std::time::Duration;

use anyhow::{Context, bail};
use m3u8_rs::{MediaPlaylist, Playlist};

/// One viewer: its media playlist URL (with its token) and an HTTP client.
#[derive(Clone)]
pub struct HlsViewer {
    pub http: reqwest::Client,
    /// The master playlist URL the viewer opened.
    pub master_url: String,
    /// The media playlist URL the master playlist sent it to.
    pub media_url: String,
}

/// A fetched segment.
pub struct FetchedSegment {
    pub sequence: u64,
    pub bytes: bytes::Bytes,
    pub headers: reqwest::header::HeaderMap,
}

impl HlsViewer {
    /// Opens `master_url` (e.g. `http://…/ace/manifest.m3u8?id=…`).
    pub async fn open(http: &reqwest::Client, master_url: &str) -> anyhow::Result<Self> {
        let response = http.get(master_url).timeout(Duration::from_secs(30)).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("master playlist: {status}: {}", String::from_utf8_lossy(&body));
        }
        let master = match m3u8_rs::parse_playlist_res(&body) {
            Ok(Playlist::MasterPlaylist(m)) => m,
            Ok(Playlist::MediaPlaylist(_)) => bail!("expected a master playlist, got a media playlist"),
            Err(e) => bail!("unparsable master playlist ({e:?}): {}", String::from_utf8_lossy(&body)),
        };
        let variant = master.variants.first().context("master playlist lists no variant")?;
        let media_url = reqwest::Url::parse(master_url)?.join(&variant.uri)?.to_string();
        Ok(Self { http: http.clone(), master_url: master_url.to_owned(), media_url })
    }

    /// Fetches and parses the media playlist (which keeps the viewer present).
    pub async fn playlist(&self) -> anyhow::Result<MediaPlaylist> {
        let response = self.http.get(&self.media_url).timeout(Duration::from_secs(30)).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("media playlist: {status}: {}", String::from_utf8_lossy(&body));
        }
        match m3u8_rs::parse_playlist_res(&body) {
            Ok(Playlist::MediaPlaylist(m)) => Ok(m),
            Ok(Playlist::MasterPlaylist(_)) => bail!("expected a media playlist, got a master playlist"),
            Err(e) => bail!("unparsable media playlist ({e:?}): {}", String::from_utf8_lossy(&body)),
        }
    }

    /// The absolute URL of a segment URI from the media playlist.
    pub fn segment_url(&self, uri: &str) -> anyhow::Result<String> {
        Ok(reqwest::Url::parse(&self.media_url)?.join(uri)?.to_string())
    }

    /// Fetches segment `uri` of playlist `playlist` (its position gives the number).
    pub async fn segment(&self, playlist: &MediaPlaylist, index: usize) -> anyhow::Result<FetchedSegment> {
        let uri = &playlist.segments.get(index).context("no such segment")?.uri;
        let response = self.http.get(self.segment_url(uri)?).timeout(Duration::from_secs(30)).send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            bail!("segment {uri}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(FetchedSegment { sequence: playlist.media_sequence + index as u64, bytes, headers })
    }
}
