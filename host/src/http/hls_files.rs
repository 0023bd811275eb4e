//! HLS media files: segments (`<n>.ts`) and Low-Latency HLS parts
//! (`<n>.<i>.ts`), the same URL for every viewer.
//!
//! A complete segment or part is its shared slices one after another, with
//! a length and an entity tag. A part still being cut (the one a playlist's
//! `EXT-X-PRELOAD-HINT` names) is answered at once and streamed as the
//! segmenter appends to it, ending when it is complete; if the end of a
//! timeline cuts it short after some of it went out, the response is broken
//! off rather than ended, so no player or cache keeps bytes the part does
//! not have.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;

use crate::hls::parts::Part;
use crate::hls::{HlsOutput, PartState};

use super::hls::{cors, error};
use super::{ApiError, AppState};

/// A part request waits this many part targets for the part to begin.
const PART_WAIT_TARGETS: u32 = 3;

/// What a media file name asks for.
enum MediaFile {
    Segment(u64),
    Part(u64, usize),
}

fn parse(name: &str) -> Option<MediaFile> {
    let stem = name.strip_suffix(".ts")?;
    match stem.split_once('.') {
        None => stem.parse().ok().map(MediaFile::Segment),
        Some((n, i)) => Some(MediaFile::Part(n.parse().ok()?, i.parse().ok()?)),
    }
}

/// `GET /hls/{id}/<n>.ts` or `<n>.<i>.ts`; `None` if `name` is neither.
pub(super) async fn serve(
    app: &AppState,
    method: &Method,
    id: &str,
    name: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let file = parse(name)?;
    let Some(output) = app.hls.find(id) else {
        return Some(error(ApiError::not_found(format!(
            "no HLS output for `{id}` (open its playlist first)"
        ))));
    };
    let held = app.hls.segments_held() as u64 * output.target_duration();
    Some(match file {
        MediaFile::Segment(n) => segment(&output, method, n, held, headers),
        MediaFile::Part(n, i) => part(output, method, n, i, held, headers).await,
    })
}

/// Headers of a media file: type, long-lived caching, CORS.
fn media_headers(max_age: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    // Never changes; held for the window's length.
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}, immutable")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    cors(&mut h);
    h
}

/// A complete file: `304` for a matching `If-None-Match`, else its slices;
/// and whether the body goes out.
fn complete(
    mut h: HeaderMap,
    etag: String,
    bytes: usize,
    slices: Vec<Bytes>,
    method: &Method,
    headers: &HeaderMap,
) -> (Response, bool) {
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return ((StatusCode::NOT_MODIFIED, h).into_response(), false);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
    if method == Method::HEAD {
        return ((h, Body::empty()).into_response(), false);
    }
    let body = Body::from_stream(stream::iter(slices.into_iter().map(Ok::<_, std::io::Error>)));
    ((h, body).into_response(), true)
}

/// A segment: its shared slices, one after another (no copy).
fn segment(
    output: &HlsOutput,
    method: &Method,
    sequence: u64,
    max_age: u64,
    headers: &HeaderMap,
) -> Response {
    let Some(segment) = output.segment(sequence) else {
        return error(ApiError::not_found(format!(
            "segment {sequence} is not held (too old, or not cut yet)"
        )));
    };
    let etag = format!("\"{}-{}\"", segment.sequence, segment.cut.bytes);
    let slices = segment.cut.slices().cloned().collect();
    let (response, sent) = complete(media_headers(max_age), etag, segment.cut.bytes, slices, method, headers);
    if sent {
        output.served(&segment);
    }
    response
}

/// A part: complete, or being cut (streamed as it grows), or next to be
/// cut (waited for, a few part targets at most).
async fn part(
    output: Arc<HlsOutput>,
    method: &Method,
    sequence: u64,
    index: usize,
    max_age: u64,
    headers: &HeaderMap,
) -> Response {
    let Some(target) = output.part_target() else {
        return error(ApiError::not_found("Low-Latency HLS is off (`--hls-part off`): no parts are cut"));
    };
    let wait = target * PART_WAIT_TARGETS;
    let missing = || {
        error(ApiError::not_found(format!(
            "part {index} of segment {sequence} is not held (too old, not cut, or never to be)"
        )))
    };
    match output.part(sequence, index, 0, wait).await {
        PartState::Done(part) => {
            let etag = format!("\"{sequence}.{index}-{}\"", part.bytes);
            let (response, sent) =
                complete(media_headers(max_age), etag, part.bytes, part.slices.clone(), method, headers);
            if sent {
                output.part_served(part.bytes);
            }
            response
        }
        PartState::Open(first) => {
            let h = media_headers(max_age);
            if method == Method::HEAD {
                return (h, Body::empty()).into_response();
            }
            let growing = Growing {
                output,
                sequence,
                index,
                wait,
                pending: first.into(),
                have: 0,
                sent: 0,
                complete: false,
            };
            (h, Body::from_stream(stream::unfold(growing, Growing::next))).into_response()
        }
        PartState::Next | PartState::Missing => missing(),
    }
}

/// A part streamed while it is cut.
struct Growing {
    output: Arc<HlsOutput>,
    sequence: u64,
    index: usize,
    /// Longest wait for the part to grow.
    wait: Duration,
    /// Slices taken, not yet sent.
    pending: VecDeque<Bytes>,
    /// Slices taken, and their bytes.
    have: usize,
    sent: usize,
    /// The part is complete: what is pending is its end.
    complete: bool,
}

impl Growing {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        loop {
            if let Some(slice) = self.pending.pop_front() {
                self.have += 1;
                self.sent += slice.len();
                return Some((Ok(slice), self));
            }
            if self.complete {
                return None;
            }
            match self.output.part(self.sequence, self.index, self.have, self.wait).await {
                PartState::Open(more) => self.pending.extend(more),
                PartState::Done(part) => {
                    if !self.sent_is_prefix_of(&part) {
                        return Some((Err(broken("the part was cut short at the end of a timeline")), self));
                    }
                    self.output.part_served(part.bytes);
                    self.pending.extend(part.slices[self.have..].iter().cloned());
                    self.complete = true;
                }
                PartState::Next | PartState::Missing => {
                    return Some((Err(broken("the part did not complete")), self));
                }
            }
        }
    }

    /// Whether what went out is the part's first slices, unchanged.
    fn sent_is_prefix_of(&self, part: &Part) -> bool {
        part.slices.len() >= self.have
            && part.slices[..self.have].iter().map(Bytes::len).sum::<usize>() == self.sent
    }
}

fn broken(why: &str) -> std::io::Error {
    std::io::Error::other(why.to_owned())
}
