//! Helpers for a plugin's native unit tests (`cargo test` on the host).

use std::cell::RefCell;

use crate::{Engine, KeyType, Request, Stream};

thread_local! {
    static CONFIG: RefCell<String> = RefCell::new("{}".to_owned());
}

/// What [`crate::config`] returns in this thread's tests (JSON).
pub fn set_config(json: &str) {
    CONFIG.with(|c| *c.borrow_mut() = json.to_owned());
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn config_for_tests() -> String {
    CONFIG.with(|c| c.borrow().clone())
}

/// A healthy engine `id` (`host:port`) with `load` running streams.
pub fn engine(id: &str, load: u32) -> Engine {
    let (host, port) = id.rsplit_once(':').unwrap_or((id, "6878"));
    Engine {
        id: id.to_owned(),
        host: host.to_owned(),
        port: port.parse().unwrap_or(6878),
        labels: Vec::new(),
        forwarded: false,
        healthy: true,
        active_streams: load,
        pending_streams: 0,
        capacity: 3,
    }
}

/// `engine` with labels.
pub fn engine_with_labels(id: &str, load: u32, labels: &[(&str, &str)]) -> Engine {
    let mut e = engine(id, load);
    e.labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    e
}

/// A request for a content id.
pub fn request(content_key: &str) -> Request {
    Request {
        content_key: content_key.to_owned(),
        key_type: KeyType::ContentId,
        client_address: None,
        query: Vec::new(),
        user: None,
    }
}

/// A TS player of `user` (none: anyone, in open mode) from `address`
/// (`ip:port`) asking for a content id.
pub fn viewer(user: Option<&str>, address: &str, content_key: &str) -> crate::Viewer {
    crate::Viewer {
        user: user.map(str::to_owned),
        client_address: Some(address.to_owned()),
        content_key: content_key.to_owned(),
        key_type: KeyType::ContentId,
        channel_name: None,
        channel_group: None,
        kind: crate::PlayerKind::Ts,
        query: Vec::new(),
    }
}

/// A stream of a content id.
pub fn stream(content_key: &str) -> Stream {
    Stream {
        content_key: content_key.to_owned(),
        key_type: KeyType::ContentId,
        engine_id: None,
        channel: None,
    }
}
