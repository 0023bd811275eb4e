//! An engine as a selector sees it: what acemux gave with the engine list
//! (`set-engines`) and the load it gave with this selection, in one value.

/// An engine that can take the stream now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// `host:port`; what [`crate::Selection::Engine`] names.
    pub id: String,
    pub host: String,
    pub port: u16,
    pub labels: Vec<(String, String)>,
    /// Port-forwarded engines have more peers.
    pub forwarded: bool,
    /// Always true for a candidate (acemux offers only healthy engines).
    pub healthy: bool,
    /// Streams running on the engine.
    pub active_streams: u32,
    /// Streams whose start on the engine is under way.
    pub pending_streams: u32,
    /// Streams the engine may carry in all.
    pub capacity: u32,
}

impl Engine {
    /// The value of a label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Streams on the engine, starting ones included.
    pub fn load(&self) -> u32 {
        self.active_streams + self.pending_streams
    }
}
