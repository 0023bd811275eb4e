//! Write acemux plugins in Rust.
//!
//! A plugin implements one trait per phase it takes part in — [`Selector`]
//! (choose an engine for a new stream), [`Filter`] (process each stream's
//! TS packets), [`EventHook`] (hear what happened) or [`ChannelSource`]
//! (give acemux channels) — and exports itself with one macro:
//!
//! ```ignore
//! use acemux_plugin_sdk::{Engine, Request, Selection, Selector};
//!
//! struct FirstForwarded;
//!
//! impl Selector for FirstForwarded {
//!     fn select<'a>(_request: &Request, candidates: &'a [Engine]) -> Selection<'a> {
//!         match candidates.iter().find(|e| e.forwarded) {
//!             Some(e) => Selection::Engine(e),
//!             None => Selection::NoOpinion,
//!         }
//!     }
//! }
//!
//! acemux_plugin_sdk::export!(FirstForwarded: selector);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and drop the
//! `.wasm` into acemux's plugin directory. Trait impls are plain Rust, so
//! `cargo test` on the host target tests them (see [`testing`]).

mod batch;
#[doc(hidden)]
pub mod bindings;
mod engine;
mod event;
mod host;
pub mod metrics;
mod selection;
pub mod testing;

pub use acemux_ts as ts;
pub use batch::{Batch, Packet};
pub use bindings::access_only::exports::acemux::plugin::access::{Decision, Limits, Viewer};
pub use bindings::channel_source_only::exports::acemux::plugin::channel_source::Channel;
pub use bindings::selector_only::acemux::plugin::types::{KeyType, PlayerKind, Request, Stream};
pub use engine::Engine;
pub use event::{Event, StreamStats};
pub use host::{Level, config, config_json, log};

/// A selector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<'a> {
    /// Use this engine: one of the candidates the selector was given (a
    /// reference to a copy of one names none, and counts as a failed call).
    Engine(&'a Engine),
    /// Let the next selector, then acemux's built-in rule, decide.
    NoOpinion,
    /// Refuse the stream; the player gets 403 with this reason.
    Refuse(String),
}

/// Engine selection: runs when a player asks for a content that has no
/// stream yet, before acemux's built-in rule.
pub trait Selector {
    /// `candidates` are healthy, not draining and below capacity; never
    /// empty. The default has no opinion.
    fn select<'a>(request: &Request, candidates: &'a [Engine]) -> Selection<'a> {
        let _ = (request, candidates);
        Selection::NoOpinion
    }
}

/// TS processing with state per stream: acemux makes one value per stream
/// with [`Filter::new`] and passes it every batch of whole packets.
pub trait Filter: Sized + 'static {
    /// A stream starts (or the plugin was reloaded under a running stream).
    fn new(stream: &Stream) -> Self;

    /// Changes the batch in place: drop, change or add packets. The default
    /// passes everything through.
    fn process(&mut self, batch: &mut Batch) {
        let _ = batch;
    }
}

/// Hears what happens, in order and off the stream path.
pub trait EventHook {
    /// The default ignores every event.
    fn on_event(event: &Event) {
        let _ = event;
    }
}

/// Gives acemux channels: called on each refresh of every `[[sources]]`
/// table with `kind = "plugin"` naming this plugin.
pub trait ChannelSource {
    /// The channels now; `source` is the `[[sources]]` table's name. An
    /// error keeps the last good channels and is shown as the source's
    /// error.
    fn channels(source: &str) -> Result<Vec<Channel>, String>;
}

/// Decides who may watch: asked for every new player after acemux's own
/// checks (token, groups), before anything starts.
pub trait AccessCheck {
    /// [`Decision::Allow`], [`Decision::Deny`] with the reason the player
    /// gets (403), or [`Decision::AllowWithin`] tighter limits for the
    /// player's user. A panic denies (unless the operator chose
    /// otherwise).
    fn check(viewer: &Viewer) -> Decision;
}

/// Exports a type as an acemux plugin. Name the phase it implements:
/// `selector`, `filter`, `events`, `channel_source` or `access`. (One phase per `.wasm`; a plugin that
/// needs two phases ships two files.)
#[macro_export]
macro_rules! export {
    ($ty:ident: selector) => {
        $crate::__impl_selector!($ty, $crate::bindings::selector_only::exports::acemux::plugin::selector);
        // Component exports exist only on wasm; natively the trait impl is
        // what a plugin's unit tests call.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::selector_only::export_selector!($ty with_types_in $crate::bindings::selector_only);
    };
    ($ty:ident: filter) => {
        $crate::__impl_filter!($ty, $crate::bindings::filter_only::exports::acemux::plugin::filter);
        // Component exports exist only on wasm; natively the trait impl is
        // what a plugin's unit tests call.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::filter_only::export_filter!($ty with_types_in $crate::bindings::filter_only);
    };
    ($ty:ident: events) => {
        $crate::__impl_events!($ty, $crate::bindings::events_only::exports::acemux::plugin::events);
        // Component exports exist only on wasm; natively the trait impl is
        // what a plugin's unit tests call.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::events_only::export_events!($ty with_types_in $crate::bindings::events_only);
    };
    ($ty:ident: channel_source) => {
        const _: () = {
            use $crate::bindings::channel_source_only::exports::acemux::plugin::channel_source as iface;
            impl iface::Guest for $ty {
                fn channels(source: ::std::string::String) -> ::std::result::Result<::std::vec::Vec<$crate::Channel>, ::std::string::String> {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::ChannelSource>::channels(&source)
                }
            }
        };
        // Component exports exist only on wasm; natively the trait impl is
        // what a plugin's unit tests call.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::channel_source_only::export_channel_source!($ty with_types_in $crate::bindings::channel_source_only);
    };
    ($ty:ident: access) => {
        const _: () = {
            use $crate::bindings::access_only::exports::acemux::plugin::access as iface;
            impl iface::Guest for $ty {
                fn check(viewer: $crate::Viewer) -> $crate::Decision {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::AccessCheck>::check(&viewer)
                }
            }
        };
        // Component exports exist only on wasm; natively the trait impl is
        // what a plugin's unit tests call.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::access_only::export_access!($ty with_types_in $crate::bindings::access_only);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_selector {
    ($ty:ty, $iface:path) => {
        const _: () = {
            use $iface as iface;
            impl iface::Guest for $ty {
                fn set_engines(engines: ::std::vec::Vec<$crate::__private::WitEngine>) {
                    $crate::__private::install_panic_hook();
                    $crate::__private::set_engines(engines);
                }

                fn select(
                    request: $crate::Request,
                    candidates: ::std::vec::Vec<$crate::__private::WitCandidate>,
                ) -> $crate::__private::WitSelection {
                    $crate::__private::install_panic_hook();
                    $crate::__private::choose(&candidates, |engines| {
                        <$ty as $crate::Selector>::select(&request, engines)
                    })
                }
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_filter {
    ($ty:ty, $iface:path) => {
        const _: () = {
            use $iface as iface;
            impl iface::Guest for $ty {
                type StreamFilter = $crate::__private::FilterCell<$ty>;
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_events {
    ($ty:ty, $iface:path) => {
        const _: () = {
            use $iface as iface;
            impl iface::Guest for $ty {
                fn on_event(event: iface::Event) {
                    $crate::__private::install_panic_hook();
                    <$ty as $crate::EventHook>::on_event(&$crate::__private::convert_event!(iface, event));
                }
            }
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::selector_only::acemux::plugin::types::Engine as WitEngine;
    pub use crate::bindings::selector_only::exports::acemux::plugin::selector::{
        Candidate as WitCandidate, Selection as WitSelection,
    };
    pub use crate::event::convert_event;
    pub use crate::host::install_panic_hook;
    pub use crate::selection::{choose, set_engines};

    /// Per-stream filter state, as the WIT resource (which acemux calls
    /// through `&self`).
    pub struct FilterCell<F>(std::cell::RefCell<F>);

    impl<F: crate::Filter> FilterCell<F> {
        pub fn new(filter: F) -> Self {
            Self(std::cell::RefCell::new(filter))
        }
    }

    impl<F: crate::Filter> crate::bindings::filter_only::exports::acemux::plugin::filter::GuestStreamFilter
        for FilterCell<F>
    {
        fn new(stream: crate::Stream) -> Self {
            install_panic_hook();
            Self::new(F::new(&stream))
        }

        fn process(&self, packets: Vec<u8>) -> Vec<u8> {
            let mut batch = crate::Batch::from_bytes(packets);
            self.0.borrow_mut().process(&mut batch);
            batch.into_bytes()
        }
    }
}
