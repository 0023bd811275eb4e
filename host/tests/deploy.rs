//! The deployment files in `deploy/`: the container image (built with
//! podman, then run from its own exported filesystem under chroot, since
//! `podman run` cannot set its rlimits on this kind of machine) and the
//! systemd unit (`systemd-analyze verify`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acemux_test_artifacts::programs;

const BIN: &str = env!("CARGO_BIN_EXE_acemux");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("acemux-deploy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_systemd_unit_verifies() {
    if !programs::available("deploy::the_systemd_unit_verifies", &["systemd-analyze"], "systemd") {
        return;
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = temp_dir("unit");
    let unit = std::fs::read_to_string(repo().join("deploy/acemux.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/acemux\n"),
        "where cargo install --root /usr/local puts it"
    );
    let unit = unit.replace("ExecStart=/usr/local/bin/acemux", &format!("ExecStart={BIN}"));
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=acemux",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(hardening), "{hardening} missing");
    }
    std::fs::write(dir.join("acemux.service"), unit).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(dir.join("acemux.service")).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Builds the image with deploy/build-image.sh, exports its filesystem,
/// and runs its entrypoint under chroot as its own user and environment:
/// `--demo` serves /healthz and a stream, `--healthcheck` passes.
#[test]
fn the_container_image_runs_from_its_own_filesystem() {
    let test = "deploy::the_container_image_runs_from_its_own_filesystem";
    if !programs::available(test, &["podman", "chroot", "tar", "readelf"], "podman")
        || !programs::available(test, &["musl-gcc"], "musl-tools")
    {
        return;
    }
    let uid = run(Command::new("id").arg("-u"));
    if uid.trim() != "0" {
        let why = "SKIPPED deploy::the_container_image_runs_from_its_own_filesystem: chroot needs root";
        assert!(std::env::var_os(programs::REQUIRE_VAR).is_none(), "{why}");
        std::io::Write::write_all(&mut std::io::stderr(), format!("{why}\n").as_bytes()).unwrap();
        return;
    }
    let tag = format!("localhost/acemux-test:{}", std::process::id());
    // Its own target directory: the outer cargo may hold target/'s lock.
    let target_dir = repo().join("target/image-build");
    let built = run(Command::new(repo().join("deploy/build-image.sh"))
        .arg(&tag)
        .env("CARGO_TARGET_DIR", &target_dir));
    eprintln!(
        "{}",
        built.lines().filter(|l| l.contains("MB") || l.starts_with("acemux ")).collect::<Vec<_>>().join("\n")
    );
    assert!(built.contains("(plugins: WIT package acemux:plugin@"), "{built}");

    let env: Vec<String> = serde_json::from_str(&run(Command::new("podman").args([
        "image",
        "inspect",
        &tag,
        "--format",
        "{{json .Config.Env}}",
    ])))
    .unwrap();
    let user = run(Command::new("podman").args(["image", "inspect", &tag, "--format", "{{.Config.User}}"]));
    assert_eq!(user.trim(), "10001:10001", "the image runs as an unprivileged user");
    let container = run(Command::new("podman").args(["create", &tag])).trim().to_owned();
    let root = temp_dir("rootfs");
    let tar = root.with_extension("tar");
    run(Command::new("podman").args(["export", &container, "-o"]).arg(&tar));
    run(Command::new("podman").args(["rm", &container]));
    run(Command::new("podman").args(["rmi", &tag]));
    run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&root));
    let _ = std::fs::remove_file(&tar);
    let files: Vec<String> = walk(&root);
    assert!(
        files.iter().all(|f| ["acemux", "etc/passwd", "etc/group", "plugins/README", "state/README"]
            .contains(&f.as_str())
            || f.starts_with("etc/")
            || f.starts_with("dev/")
            || f.starts_with("proc/")
            || f.starts_with("sys/")
            || f.starts_with("run/")),
        "unexpected files in the image: {files:?}"
    );

    // The image's own environment, user and entrypoint; only the port is ours.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let chroot = programs::path_of("chroot").unwrap();
    let mut acemux = Command::new(&chroot)
        .arg("--userspec=10001:10001")
        .arg(&root)
        .args(["/acemux", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .envs(env.iter().filter_map(|kv| kv.split_once('=')).filter(|(k, _)| *k != "ACEMUX_LISTEN"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{base}/healthz")).await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(15), "/healthz never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut stream =
            reqwest::get(format!("{base}/ace/getstream?id=0123456789abcdef0123456789abcdef01234567")).await?;
        anyhow::ensure!(stream.status() == 200, "stream answered {}", stream.status());
        let mut got = Vec::new();
        while got.len() < 200_000 {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await??;
            got.extend_from_slice(&chunk.ok_or_else(|| anyhow::anyhow!("stream ended"))?);
        }
        anyhow::ensure!(got.chunks_exact(188).all(|p| p[0] == 0x47), "not whole TS packets");
        let plugins: serde_json::Value = reqwest::get(format!("{base}/plugins")).await?.json().await?;
        anyhow::ensure!(plugins["dir"] == "/plugins", "plugin directory: {plugins}");
        // The demo's channel got its number kept in the image's state directory.
        anyhow::ensure!(root.join("state/channel-numbers.json").is_file(), "no channel numbers in /state");
        Ok(())
    });
    let health = Command::new(&chroot)
        .arg("--userspec=10001:10001")
        .arg(&root)
        .args(["/acemux", "--healthcheck", "--listen", &format!("127.0.0.1:{port}")])
        .env_clear()
        .status()
        .unwrap();
    let _ = Command::new("kill").args(["-TERM", &acemux.id().to_string()]).status();
    let exit = acemux.wait().unwrap();
    let _ = std::fs::remove_dir_all(&root);
    result.unwrap();
    assert!(health.success(), "--healthcheck from the image failed");
    assert!(exit.success(), "acemux in the image exited with {exit:?} on SIGTERM");
}

/// Regular files under `root`, relative.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
