//! What acemux logged, as a test in the same process sees it: a tracing
//! layer that keeps the message of every event with a `plugin` field (the
//! host tags plugin logs so), in order, and one that keeps every event of
//! every level with all its fields (to check what must never be logged).

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

type Lines = Arc<Mutex<Vec<(String, String)>>>;

/// The process's plugin log (installed once, as the global subscriber).
pub fn plugin_log() -> PluginLog {
    PluginLog(captured().0.clone())
}

/// Every event logged in this process so far, each as its fields.
pub fn everything_logged() -> Vec<String> {
    captured().1.lock().clone()
}

/// Starts capturing (once per process; before acemux starts, or its first
/// events are missed): the plugin lines and every event.
pub fn capture() {
    captured();
}

fn captured() -> &'static (Lines, Arc<Mutex<Vec<String>>>) {
    static CAPTURED: OnceLock<(Lines, Arc<Mutex<Vec<String>>>)> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let lines = Lines::default();
        let all = Arc::new(Mutex::new(Vec::new()));
        let plugins = Capture(lines.clone()).with_filter(LevelFilter::INFO);
        let every = Every(all.clone()).with_filter(LevelFilter::TRACE);
        tracing::subscriber::set_global_default(Registry::default().with(plugins).with(every))
            .expect("no other global subscriber in this test binary");
        (lines, all)
    })
}

/// Keeps every event, all its fields rendered.
struct Every(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Every {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut text = AllFields(String::new());
        event.record(&mut text);
        self.0.lock().push(format!("{} {}", event.metadata().target(), text.0));
    }
}

struct AllFields(String);

impl Visit for AllFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
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
