//! `acemux plugin check|filter|select`: the author's bench, run as the
//! binary, on real components built by the test build.

use std::process::Command;

use acemux_test_artifacts as wasm;

const BIN: &str = env!("CARGO_BIN_EXE_acemux");
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/h264-aac.ts");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).arg("plugin").args(args).env("RUST_LOG", "off").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_names_the_contract_the_phases_the_grants_and_the_costs() {
    let (code, text) = run(&["check", wasm::NULL_STRIP]);
    assert_eq!(code, 0, "{text}");
    let version = acemux::plugins::contract::PACKAGE_VERSION;
    assert!(text.contains(&format!("contract:    acemux:plugin@{version}")), "{text}");
    assert!(text.contains("phases:      filter"), "{text}");
    assert!(text.contains("wasi:cli/environment") && text.contains("sees only [grants] env"), "{text}");
    assert!(text.contains("of native code") && text.contains("one instance:"), "{text}");
    let (code, text) = run(&["check", wasm::NET_PROBE]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("needs [grants] network = true"), "{text}");
}

#[test]
fn filter_replays_a_capture_in_batches_and_writes_what_the_filter_made() {
    let dir = std::env::temp_dir().join(format!("acemux-plugin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A capture with null packets between its packets: the filter strips them.
    let input = std::fs::read(FIXTURE).unwrap();
    let whole = input.len() / 188 * 188;
    let mut padded = Vec::new();
    for packet in input[..whole].chunks(188) {
        padded.extend_from_slice(packet);
        padded.extend_from_slice(&acemux_ts::null_packets(1));
    }
    let (in_path, out_path) = (dir.join("in.ts"), dir.join("out.ts"));
    std::fs::write(&in_path, &padded).unwrap();
    let (code, text) = run(&[
        "filter",
        wasm::NULL_STRIP,
        "--input",
        in_path.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("failures:  0") && text.contains("per batch: median") && text.contains("% of it"),
        "{text}"
    );
    // The plugin's own metrics after the run: every null packet counted
    // (but the last, the unconfirmed end of the capture).
    let nulls = whole / 188 - 1;
    assert!(text.contains("metrics:   2 declared, 2 series (of 1000), 0 calls refused"), "{text}");
    let counted = format!("acemux_plugin_null_packets_dropped_total{{plugin=\"null_strip\"}} {nulls}.0");
    assert!(text.lines().any(|l| l.trim() == counted), "no `{counted}` in {text}");
    let out = std::fs::read(&out_path).unwrap();
    assert!(acemux_ts::is_whole_packets(&out));
    assert!(out.chunks(188).all(|p| acemux_ts::pid(p) != 0x1FFF), "null packets left");
    // Every real packet but the last (unconfirmed at the end) is there.
    assert!(out.len() >= whole - 188 && out.len() <= whole, "{} of {whole}", out.len());
    // A failing filter: counted, reported, exit 1.
    let (code, text) = run(&[
        "filter",
        wasm::TRAP_FILTER,
        "--input",
        in_path.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("trapped"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn select_says_what_the_selector_answers() {
    let (code, text) = run(&["select", wasm::MOODY_SELECTOR, "--engines", "a:6878,b:6878=2"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no opinion"), "{text}");
    let (code, text) = run(&["select", wasm::PANIC_SELECTOR, "--engines", "a:6878"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("failed: trapped") && text.contains("fall through"), "{text}");
    let (code, text) = run(&["select", wasm::LIAR_SELECTOR, "--engines", "a:6878"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("past the last candidate"), "{text}");
    let (code, text) = run(&["select", wasm::NULL_STRIP, "--engines", "a:6878"]);
    assert_ne!(code, 0);
    assert!(text.contains("exports no selector"), "{text}");
}
