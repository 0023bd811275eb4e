//! Which version of the plugin contract (the `acemux:plugin` WIT package)
//! a component speaks, and whether this host speaks it too.
//!
//! The check reads the component's top-level export names straight from
//! its bytes, before anything is compiled: a Python or JavaScript plugin is
//! a component of 12–20 MB that takes Cranelift seconds to compile, and one
//! built against another minor version must be refused at once, with both
//! versions named, whatever language it was written in.

use anyhow::bail;
use wasmparser::{Parser, Payload};

/// The WIT package version this host speaks, as a literal (for `concat!`).
macro_rules! package_version {
    () => {
        "0.10.0"
    };
}

/// The WIT package this host speaks.
pub const PACKAGE: &str = "acemux:plugin";
pub const PACKAGE_VERSION: &str = package_version!();

/// `acemux --version`: the release and the plugin contract it speaks.
pub const ACEMUX_VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (plugins: WIT package acemux:plugin@", package_version!(), ")");

/// Semver compatibility while 0.x: the same minor version.
pub fn compatible(version: &str) -> bool {
    let mut ours = PACKAGE_VERSION.split('.');
    let mut theirs = version.split('.');
    ours.next() == theirs.next() && ours.next() == theirs.next()
}

/// Refuses a component that exports an `acemux:plugin` interface of a
/// version this host does not speak. Bytes that are not a component pass
/// (compiling them says what is wrong with more detail).
pub fn refuse_other_versions(bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(version) = exported_versions(bytes).into_iter().find(|v| !compatible(v)) {
        bail!(
            "built for {PACKAGE}@{version}; this acemux speaks {PACKAGE}@{PACKAGE_VERSION} (rebuild the plugin against a matching SDK or wit/)"
        );
    }
    Ok(())
}

/// The versions in the component's own (outermost) exports of
/// `acemux:plugin/<interface>@<version>`.
fn exported_versions(bytes: &[u8]) -> Vec<String> {
    let prefix = format!("{PACKAGE}/");
    let mut versions = Vec::new();
    for_each_top_level(bytes, |payload| {
        if let Payload::ComponentExportSection(exports) = payload {
            for export in exports.into_iter().flatten() {
                if let Some(rest) = export.name.name.strip_prefix(&prefix) {
                    versions.push(rest.split_once('@').map(|(_, v)| v).unwrap_or("").to_owned());
                }
            }
        }
    });
    versions
}

/// The component's own (outermost) imports, by name, sorted: the host
/// interfaces and sandbox openings it asks for (`acemux plugin check`).
pub fn component_imports(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for_each_top_level(bytes, |payload| {
        if let Payload::ComponentImportSection(imports) = payload {
            names.extend(imports.into_iter().flatten().map(|i| i.name.name.to_owned()));
        }
    });
    names.sort();
    names.dedup();
    names
}

/// Calls `f` with each payload of the component itself: nested modules
/// and components have imports and exports of their own, only depth 0 is
/// the component's interface. Stops at the first unreadable payload.
fn for_each_top_level(bytes: &[u8], mut f: impl FnMut(Payload<'_>)) {
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            other if depth == 0 => f(other),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_speaks_the_version_of_wit() {
        let wit = include_str!("../../../wit/plugin.wit");
        assert!(wit.contains(&format!("package {PACKAGE}@{PACKAGE_VERSION};")));
    }

    #[test]
    fn only_the_same_minor_version_is_compatible() {
        assert!(compatible("0.10.0"));
        assert!(compatible("0.10.3"));
        assert!(!compatible("0.9.0"));
        assert!(!compatible("0.11.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible(""));
    }

    #[test]
    fn bytes_that_are_no_component_are_left_to_the_compiler() {
        assert!(refuse_other_versions(b"not wasm").is_ok());
        assert!(exported_versions(&[]).is_empty());
    }
}
