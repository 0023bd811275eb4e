//! A small HTTP file server on loopback standing for the sites operators
//! take their M3U lists and guides from: each file has a body and an
//! `ETag`, answers `304` to `If-None-Match`, can be made to fail, and
//! counts what it was asked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

#[derive(Debug, Clone, Default)]
struct File {
    body: Vec<u8>,
    /// Changes with every new body.
    etag: String,
    /// Answer this status instead of the body.
    failing: Option<u16>,
    requests: u64,
    not_modified: u64,
}

type Files = Arc<Mutex<HashMap<String, File>>>;

/// See the module docs.
pub struct FileServer {
    pub addr: SocketAddr,
    files: Files,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub async fn start() -> Self {
        let files: Files = Arc::default();
        let app = axum::Router::new().route("/{name}", axum::routing::get(serve)).with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, files, task }
    }

    /// `http://127.0.0.1:port/name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Serves `body` at `/name` from now on (a new ETag), answering again.
    pub fn set(&self, name: &str, body: impl Into<Vec<u8>>) {
        let mut files = self.files.lock();
        let file = files.entry(name.to_owned()).or_default();
        file.body = body.into();
        file.etag = format!("\"{}\"", rand::random::<u64>());
        file.failing = None;
    }

    /// Answers `status` at `/name` from now on.
    pub fn fail(&self, name: &str, status: u16) {
        self.files.lock().entry(name.to_owned()).or_default().failing = Some(status);
    }

    /// Requests for `/name`, and how many were answered 304.
    pub fn counts(&self, name: &str) -> (u64, u64) {
        self.files.lock().get(name).map_or((0, 0), |f| (f.requests, f.not_modified))
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(files): State<Files>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let mut files = files.lock();
    let Some(file) = files.get_mut(&name) else { return StatusCode::NOT_FOUND.into_response() };
    file.requests += 1;
    if let Some(status) = file.failing {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    }
    let etag = HeaderValue::from_str(&file.etag).unwrap();
    if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        file.not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    ([(header::ETAG, etag)], file.body.clone()).into_response()
}
