//! VLC (`cvlc`) as tests run it: with no video or audio output, and as
//! `nobody` when the tests run as root, since VLC refuses to run as root.

use std::os::unix::fs::MetadataExt;

use tokio::process::Command;

/// Whether `cvlc` (and `setpriv`, to drop root) are installed; otherwise
/// says so for `test` and returns false (see `programs::available`).
pub fn available(test: &str) -> bool {
    acemux_test_artifacts::programs::available(test, &["cvlc", "setpriv"], "vlc-bin vlc-plugin-base")
}

/// `cvlc` playing `url` for `seconds` then exiting, with no interface,
/// video or audio output; `extra` arguments go before the URL.
pub fn command(url: &str, seconds: u64, extra: &[&str]) -> Command {
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut c = if as_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cvlc"]);
        // Its configuration and cache directories, which `nobody` cannot
        // write under root's home: left out, as VLC does when it cannot.
        c.env_remove("HOME");
        c
    } else {
        Command::new("cvlc")
    };
    c.args(["--intf", "dummy", "--vout", "dummy", "--aout", "dummy", "--play-and-exit"])
        .arg(format!("--run-time={seconds}"))
        .args(extra)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    c
}
