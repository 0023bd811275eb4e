//! What plugins logged, as a test in the same process as acemux sees it:
//! a tracing layer that keeps the message of every event with a `plugin`
//! field (the host tags plugin logs so), in order.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

type Lines = Arc<Mutex<Vec<(String, String)>>>;

/// The process's plugin log (installed once, as the global subscriber).
pub fn plugin_log() -> PluginLog {
    static LINES: OnceLock<Lines> = OnceLock::new();
    let lines = LINES.get_or_init(|| {
        let lines = Lines::default();
        let layer = Capture(lines.clone()).with_filter(LevelFilter::INFO);
        tracing::subscriber::set_global_default(Registry::default().with(layer))
            .expect("no other global subscriber in this test binary");
        lines
    });
    PluginLog(lines.clone())
}

/// See [`plugin_log`].
#[derive(Clone)]
pub struct PluginLog(Lines);

impl PluginLog {
    /// Every message `plugin` logged so far, oldest first.
    pub fn lines_of(&self, plugin: &str) -> Vec<String> {
        self.0.lock().iter().filter(|(p, _)| p == plugin).map(|(_, m)| m.clone()).collect()
    }
}

struct Capture(Lines);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(plugin) = fields.plugin {
            self.0.lock().push((plugin, fields.message));
        }
    }
}

#[derive(Default)]
struct Fields {
    plugin: Option<String>,
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "plugin" => self.plugin = Some(value.to_owned()),
            "message" => self.message = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "plugin" => self.plugin = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            _ => {}
        }
    }
}
