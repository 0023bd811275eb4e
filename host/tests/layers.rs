//! The host's import graph against the layers the crate docs declare
//! (`host/src/lib.rs`, "Layers"): a top-level module may use only modules
//! of lower layers, so no circle between modules can come back unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// `module → layer` from the table in lib.rs's docs.
fn declared_layers(lib: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//! |")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Ok(layer) = cells[0].parse::<u32>() else { continue };
        for module in cells[1].split(',') {
            layers.insert(module.trim().trim_matches('`').to_owned(), layer);
        }
    }
    layers
}

/// The modules lib.rs declares.
fn top_level_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `code` names through `crate::` (and, in a file
/// directly under a module's root, through `super::`).
fn used_modules(code: &str, root_file: bool, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in code.lines() {
        // Comments (doc links included) do not make a dependency.
        let line = line.split("//").next().unwrap_or("");
        let mut prefixes = vec!["crate::"];
        if root_file {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            for (at, _) in line.match_indices(prefix) {
                let rest = &line[at + prefix.len()..];
                let name: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if known.contains(&name) {
                    used.insert(name);
                } else if !name.is_empty()
                    && prefix == "crate::"
                    && name.chars().next().is_some_and(char::is_uppercase)
                {
                    used.insert("(crate root)".to_owned());
                }
            }
        }
    }
    used
}

#[test]
fn every_import_points_down_the_declared_layers() {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let layers = declared_layers(&lib);
    let modules = top_level_modules(&lib);
    let mut problems = Vec::new();
    for module in &modules {
        if !layers.contains_key(module) {
            problems.push(format!("module `{module}` is in no layer of lib.rs's table"));
        }
    }
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    for file in files {
        let relative = file.strip_prefix(SRC).unwrap();
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let first = parts.next().unwrap();
        if first == "lib.rs" || first == "main.rs" {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_owned();
        // `events.rs` or `stream/mod.rs`: `super::` there is the crate root.
        let root_file = relative.components().count() == 1
            || relative.ends_with("mod.rs") && relative.components().count() == 2;
        let code = std::fs::read_to_string(&file).unwrap();
        let Some(&own) = layers.get(&module) else { continue };
        for used in used_modules(&code, root_file, &modules) {
            if used == module {
                continue;
            }
            match layers.get(&used) {
                Some(&theirs) if theirs > own => {}
                Some(&theirs) => problems.push(format!(
                    "{} (`{module}`, layer {own}) uses `{used}` (layer {theirs}): only lower layers may be used",
                    relative.display()
                )),
                None => problems.push(format!(
                    "{} (`{module}`) uses {used}, which only the crate root and main may use",
                    relative.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    let known: BTreeSet<String> = ["stream", "events"].map(str::to_owned).into();
    let used = used_modules("use crate::stream::EndReason; // crate::events in a comment", false, &known);
    assert_eq!(used, ["stream".to_owned()].into());
    let used = used_modules("use super::events::StreamEvent;", true, &known);
    assert_eq!(used, ["events".to_owned()].into());
}
