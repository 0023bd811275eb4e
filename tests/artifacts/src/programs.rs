//! External programs some tests run (ffmpeg and ffprobe today). Where one
//! is missing, the test says so on stderr (written past the test harness's
//! capture, so it shows) and skips; when `ACEMUX_REQUIRE_PROGRAMS` is set
//! — `.ci/run` sets it, after installing them all — a missing program
//! fails the test instead, so CI can never skip silently.

use std::io::Write;
use std::path::Path;

/// Set (to anything) to make a missing program a test failure.
pub const REQUIRE_VAR: &str = "ACEMUX_REQUIRE_PROGRAMS";

/// Whether every one of `programs` is on `PATH`. If not: one line naming
/// `test`, the programs and the Debian `package` to install, then `false`
/// (the caller returns: skipped); or a panic under [`REQUIRE_VAR`].
pub fn available(test: &str, programs: &[&str], package: &str) -> bool {
    available_by(test, programs, &format!("Debian's `{package}` package: apt-get install {package}"))
}

/// Like [`available`], for a program installed another way (`how`, e.g.
/// `pip install componentize-py==0.25.0`).
pub fn available_by(test: &str, programs: &[&str], how: &str) -> bool {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !on_path(p)).collect();
    missing.is_empty() || skip(test, &missing.join(", "), how)
}

/// Like [`available_by`], for a program at a known place (one a package
/// manager put in a project directory, e.g. `node_modules/.bin`).
pub fn available_at(test: &str, program: &Path, how: &str) -> bool {
    is_executable(program) || skip(test, &program.display().to_string(), how)
}

/// Says that `test` skips for want of `missing`, and returns `false`; or
/// panics under [`REQUIRE_VAR`].
fn skip(test: &str, missing: &str, how: &str) -> bool {
    let message = format!("SKIPPED {test}: needs {missing} (install {how})");
    if std::env::var_os(REQUIRE_VAR).is_some() {
        panic!("{message}; {REQUIRE_VAR} is set, so a missing program is a failure");
    }
    // Straight to the process's stderr: libtest captures only the print macros.
    let _ = writeln!(std::io::stderr(), "{message}");
    false
}

/// Where `program` is on `PATH` (for a child whose environment is cleared).
pub fn path_of(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn on_path(program: &str) -> bool {
    path_of(program).is_some()
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_every_machine_has() {
        assert!(on_path("sh"));
        assert!(!on_path("acemux-no-such-program"));
    }
}
