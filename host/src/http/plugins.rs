//! `GET /plugins`: every plugin file, what it does, and how it fares.
//! Read access follows `--status-access` like `/proxy/status`; callers
//! who see the redacted status see no file paths or settings here.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::status::Detail;
use super::{ApiError, AppState};
use crate::plugins::plugin::Plugin;

pub async fn list(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let detail = Detail::for_caller(&app, &headers)?;
    Ok(Json(plugins_json(&app, detail)))
}

/// What a plugin holds: its native code, and its live instances (idle
/// selectors, one per running stream for a filter, one for events) with
/// the linear memory they have grown to.
fn memory_json(p: &Plugin) -> Value {
    let live = p.memory.view();
    json!({
        "code_bytes": p.code_bytes,
        "instances": live.instances,
        "linear_bytes": live.linear_bytes,
        "total_bytes": p.code_bytes + live.linear_bytes,
    })
}

/// The plugin's own metrics: how many, against its cap, and refusals (the
/// last one's text, which may quote a label value, only in full detail).
fn metrics_json(p: &Plugin, detail: Detail) -> Value {
    let view = p.metrics.own.view();
    json!({
        "metrics": view.metrics,
        "series": view.series,
        "max_series": view.max_series,
        "refused": view.refused,
        "last_refusal": detail.show(view.last_refusal),
    })
}

/// Every plugin as `/plugins` shows it (the dashboard's feed too).
pub fn plugins_json(app: &AppState, detail: Detail) -> Value {
    let Some(host) = &app.plugins else {
        return json!({"enabled": false, "plugins": []});
    };
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let failures = host.failures();
    let mut plugins: Vec<Value> = host
        .current()
        .plugins
        .iter()
        .map(|p| {
            let status = if p.is_active() { "active" } else { "disabled" };
            json!({
                "file": detail.show(p.file.display().to_string()),
                "name": &*p.name,
                "version": p.version,
                "capabilities": p.capabilities,
                "status": status,
                "disabled_reason": if p.is_disabled() { p.last_error() } else if !p.settings.enabled { Some("enabled = false".into()) } else { None },
                "last_error": p.last_error(),
                // Relapses, trials and (while disabled) when it is tried again.
                "recovery": p.recovery(),
                "reload_error": failures.get(&p.file).map(|f| f.error.clone()),
                "loaded_at": secs(p.loaded_at),
                "compiled": p.compiled,
                // The --plugin-signers key that signed it.
                "signed_by": p.signed_by,
                // Cranelift or Winch (with `tiered`, Winch until Cranelift's
                // code is swapped in).
                "compiler": p.compiler(),
                "compile_ms": p.compile_time.as_secs_f64() * 1e3,
                "memory": memory_json(p),
                "order": p.settings.order,
                "settings": detail.show(serde_json::to_value(&p.settings).unwrap_or_default()),
                "stats": p.stats.view(),
                "metrics": metrics_json(p, detail),
            })
        })
        .collect();
    // Files that never loaded.
    for (file, f) in
        failures.iter().filter(|(file, _)| !host.current().plugins.iter().any(|p| &p.file == *file))
    {
        plugins.push(json!({
            "file": detail.show(file.display().to_string()),
            "name": file.file_stem().and_then(|s| s.to_str()),
            "status": "failed",
            "error": f.error,
            "failed_at": secs(f.at),
        }));
    }
    // Files being compiled (a running earlier version, if any, is listed above).
    for (file, since) in host.loading() {
        plugins.push(json!({
            "file": detail.show(file.display().to_string()),
            "name": file.file_stem().and_then(|s| s.to_str()),
            "status": "loading",
            "since": secs(since),
        }));
    }
    // Each stream's filter chain, in the order its batches go through it.
    let chains: Vec<Value> = app
        .registry
        .sessions()
        .iter()
        .filter_map(|s| {
            let chain = s.filter_chain.lock().clone();
            (!chain.is_empty()).then(|| json!({"stream": s.key.id, "filters": chain}))
        })
        .collect();
    json!({"enabled": true, "dir": detail.show(host.dir.display().to_string()), "plugins": plugins, "chains": chains})
}
