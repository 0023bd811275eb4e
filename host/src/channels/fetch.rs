//! Reading a source's or a guide's bytes from a file or an `http(s)` URL,
//! bounded in size and time, and asking the server only for what changed.
//!
//! A URL is asked with the validators of the last good answer
//! (`If-None-Match`, `If-Modified-Since`); `304 Not Modified` keeps what
//! acemux has. Redirects are followed at most [`MAX_REDIRECTS`] times; a
//! body past its bound is an error, not a truncated list.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// Longest validator kept (a server's `ETag` or `Last-Modified`).
const MAX_VALIDATOR: usize = 256;

/// What the last good answer said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// An answer.
#[derive(Debug)]
pub enum Fetched {
    /// The whole body, and what to ask with next time.
    Body(Vec<u8>, Validators),
    /// The server says nothing changed since `validators`.
    NotModified,
}

/// The client every source and guide fetch goes through: redirects
/// bounded, compression off (bodies are bounded as they arrive).
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("acemux/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// GETs `url` within `timeout`, reading at most `max_bytes`.
pub async fn url(
    client: &reqwest::Client,
    url: &str,
    since: &Validators,
    max_bytes: usize,
    timeout: Duration,
) -> anyhow::Result<Fetched> {
    tokio::time::timeout(timeout, get(client, url, since, max_bytes))
        .await
        .map_err(|_| anyhow::anyhow!("no whole answer within {}", crate::values::format_duration(timeout)))?
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    since: &Validators,
    max_bytes: usize,
) -> anyhow::Result<Fetched> {
    let Some((answer, validators)) = conditional_get(client.get(url), since).await? else {
        return Ok(Fetched::NotModified);
    };
    if let Some(length) = answer.content_length()
        && length > max_bytes as u64
    {
        anyhow::bail!("the answer is {length} bytes, more than the {max_bytes} allowed");
    }
    let mut body = Vec::new();
    let mut chunks = answer.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("reading the answer: {}", without_url(e)))?;
        anyhow::ensure!(
            body.len() + chunk.len() <= max_bytes,
            "the answer is more than the {max_bytes} bytes allowed"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body(body, validators))
}

/// Sends `request` with the validators of the last good answer: none
/// when the server says nothing changed (`304`), else the successful
/// answer, its body unread, and its own validators. Anything but a 2xx is
/// an error naming the status.
pub async fn conditional_get(
    mut request: reqwest::RequestBuilder,
    since: &Validators,
) -> anyhow::Result<Option<(reqwest::Response, Validators)>> {
    if let Some(etag) = &since.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(date) = &since.last_modified {
        request = request.header(IF_MODIFIED_SINCE, date);
    }
    let answer = request.send().await.map_err(|e| anyhow::anyhow!("{}", without_url(e)))?;
    let status = answer.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    anyhow::ensure!(status.is_success(), "the server answered {status}");
    let header = |name| {
        answer
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .filter(|v| v.len() <= MAX_VALIDATOR)
            .map(str::to_owned)
    };
    let validators = Validators { etag: header(ETAG), last_modified: header(LAST_MODIFIED) };
    Ok(Some((answer, validators)))
}

/// reqwest's message and its causes, without the URL (which may carry
/// a user's token).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Reads a local file of at most `max_bytes`, off the runtime threads.
pub async fn file(path: &Path, max_bytes: usize) -> anyhow::Result<Vec<u8>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let file =
            std::fs::File::open(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let mut body = Vec::new();
        file.take(max_bytes as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        anyhow::ensure!(
            body.len() <= max_bytes,
            "{} is more than the {max_bytes} bytes allowed",
            path.display()
        );
        Ok(body)
    })
    .await?
}
