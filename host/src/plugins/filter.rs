//! One stream's filter chain: its own state in every active filter plugin,
//! rebuilt at a batch boundary whenever the plugin set changes.

use std::sync::Arc;

use bytes::Bytes;

use super::bindings::Stream;
use super::host::PluginHost;
use super::plugin::StreamFilter;
use super::settings::FailMode;

/// See the module docs.
pub struct FilterChain {
    host: Arc<PluginHost>,
    stream: Stream,
    generation: u64,
    filters: Vec<StreamFilter>,
}

impl FilterChain {
    /// The filters are made at the first batch (guest constructors run
    /// off the async threads, like every plugin call).
    pub fn new(host: Arc<PluginHost>, stream: Stream) -> Self {
        Self { host, stream, generation: u64::MAX, filters: Vec::new() }
    }

    /// Rebuilds the chain if the plugin set changed since it was built.
    fn refresh(&mut self) {
        let generation = self.host.generation();
        if generation == self.generation {
            return;
        }
        let set = self.host.current();
        self.filters = set
            .plugins
            .iter()
            .filter(|p| p.capabilities.filter && p.is_active())
            .filter_map(|p| p.stream_filter(&self.stream).ok())
            .collect();
        self.generation = generation;
    }

    /// Runs a chunk of whole packets through every filter in order. A
    /// failing filter passes the packets on unchanged (fail-open) or drops
    /// the batch (fail-closed). `None`: nothing left to send.
    pub fn process(&mut self, chunk: Bytes) -> Option<Bytes> {
        if self.filters.is_empty() && self.generation == self.host.generation() {
            // No filter plugins: no call, no thread hand-off.
            return Some(chunk);
        }
        super::runtime::off_async(|| self.process_here(chunk))
    }

    fn process_here(&mut self, chunk: Bytes) -> Option<Bytes> {
        self.refresh();
        let mut data = chunk;
        for filter in &mut self.filters {
            if !filter.plugin.is_active() {
                continue;
            }
            match filter.process(&data) {
                Ok(out) => data = Bytes::from(out),
                Err(_) if filter.plugin.settings.fail_mode == FailMode::Open => {}
                Err(_) => return None,
            }
            if data.is_empty() {
                return None;
            }
        }
        Some(data)
    }
}
