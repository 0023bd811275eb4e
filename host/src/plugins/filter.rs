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
    /// The filters are made at the first batch.
    pub fn new(host: Arc<PluginHost>, stream: Stream) -> Self {
        Self { host, stream, generation: u64::MAX, filters: Vec::new() }
    }

    /// Rebuilds the chain if the plugin set changed since it was built.
    async fn refresh(&mut self) {
        let generation = self.host.generation();
        if generation == self.generation {
            return;
        }
        let set = self.host.current();
        self.filters.clear();
        for plugin in set.plugins.iter().filter(|p| p.capabilities.filter && p.is_active()) {
            if let Ok(filter) = plugin.stream_filter(&self.stream).await {
                self.filters.push(filter);
            }
        }
        self.generation = generation;
    }

    /// The plugins of the chain in the order a batch goes through them
    /// (each sees the previous one's output), and the plugin set they were
    /// built from.
    pub fn names(&self) -> (u64, Vec<Arc<str>>) {
        (self.generation, self.filters.iter().map(|f| f.plugin.name.clone()).collect())
    }

    /// Runs a chunk of whole packets through every filter in order. A
    /// failing filter passes the packets on unchanged (fail-open) or drops
    /// the batch (fail-closed). `None`: nothing left to send. Each call is
    /// bounded by its plugin's time budget, so a chunk waits at most the
    /// sum of the chain's budgets.
    pub async fn process(&mut self, chunk: Bytes) -> Option<Bytes> {
        if self.filters.is_empty() && self.generation == self.host.generation() {
            // No filter plugins: no call.
            return Some(chunk);
        }
        self.refresh().await;
        let mut data = chunk;
        for filter in &mut self.filters {
            if !filter.plugin.is_active() {
                continue;
            }
            match filter.process(&data).await {
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
