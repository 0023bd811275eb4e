//! Generated bindings of `wit/`, one module per single-phase world. Plugin
//! authors use the SDK's types and traits instead; `export!` uses these.
//!
//! wit-bindgen names its exported helper macros after the interfaces, so
//! two modules exporting the same interface cannot live in one crate: the
//! SDK therefore offers the single-phase worlds (the `plugin` world, with
//! all three exports, is there for authors of other languages).

#![allow(missing_docs, clippy::all)]

/// Owns the `types` and `host` bindings the other modules share.
pub mod selector_only {
    wit_bindgen::generate!({
        path: "../wit",
        world: "selector-plugin",
        pub_export_macro: true,
        export_macro_name: "export_selector",
        default_bindings_module: "acemux_plugin_sdk::bindings::selector_only",
    });
}

pub mod filter_only {
    wit_bindgen::generate!({
        path: "../wit",
        world: "filter-plugin",
        with: {
            "acemux:plugin/types@0.10.0": crate::bindings::selector_only::acemux::plugin::types,
            "acemux:plugin/host@0.10.0": crate::bindings::selector_only::acemux::plugin::host,
            "acemux:plugin/metrics@0.10.0": crate::bindings::selector_only::acemux::plugin::metrics,
        },
        pub_export_macro: true,
        export_macro_name: "export_filter",
        default_bindings_module: "acemux_plugin_sdk::bindings::filter_only",
    });
}

pub mod events_only {
    wit_bindgen::generate!({
        path: "../wit",
        world: "event-plugin",
        with: {
            "acemux:plugin/types@0.10.0": crate::bindings::selector_only::acemux::plugin::types,
            "acemux:plugin/host@0.10.0": crate::bindings::selector_only::acemux::plugin::host,
            "acemux:plugin/metrics@0.10.0": crate::bindings::selector_only::acemux::plugin::metrics,
        },
        pub_export_macro: true,
        export_macro_name: "export_events",
        default_bindings_module: "acemux_plugin_sdk::bindings::events_only",
    });
}

pub mod channel_source_only {
    wit_bindgen::generate!({
        path: "../wit",
        world: "channel-source-plugin",
        with: {
            "acemux:plugin/types@0.10.0": crate::bindings::selector_only::acemux::plugin::types,
            "acemux:plugin/host@0.10.0": crate::bindings::selector_only::acemux::plugin::host,
            "acemux:plugin/metrics@0.10.0": crate::bindings::selector_only::acemux::plugin::metrics,
        },
        pub_export_macro: true,
        export_macro_name: "export_channel_source",
        default_bindings_module: "acemux_plugin_sdk::bindings::channel_source_only",
    });
}

pub mod access_only {
    wit_bindgen::generate!({
        path: "../wit",
        world: "access-plugin",
        // Decisions compare in a plugin's own tests.
        additional_derives: [PartialEq, Eq],
        with: {
            "acemux:plugin/types@0.10.0": crate::bindings::selector_only::acemux::plugin::types,
            "acemux:plugin/host@0.10.0": crate::bindings::selector_only::acemux::plugin::host,
            "acemux:plugin/metrics@0.10.0": crate::bindings::selector_only::acemux::plugin::metrics,
        },
        pub_export_macro: true,
        export_macro_name: "export_access",
        default_bindings_module: "acemux_plugin_sdk::bindings::access_only",
    });
}
