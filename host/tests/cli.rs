//! The `acemux` binary itself: settings errors at start, shutdown on
//! SIGTERM with every engine session stopped, and the demo mode.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine};

const BIN: &str = env!("CARGO_BIN_EXE_acemux");

/// Runs acemux with a clean settings environment; it must exit within 10 s.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("acemux runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("acemux {args:?} did not exit with a settings error");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_settings_fail_at_start_naming_the_setting() {
    let (code, err) = run_with(&["--listen", "127.0.0.1:0"], &[("PROXY_BUFFER_CHUNK_SIZE", "1061472")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PROXY_BUFFER_CHUNK_SIZE") && err.contains("multiple of 188"), "{err}");

    let (code, err) = run_with(&["--grace-period", "later"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--grace-period") && err.contains("PROXY_GRACE_PERIOD"), "{err}");

    let (code, err) = run_with(&["--config", "/nonexistent/acemux.toml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/acemux.toml"), "{err}");

    // Negative numbers reach the setting's own parser, which names it.
    for (flag, env) in [
        ("--grace-period", "PROXY_GRACE_PERIOD"),
        ("--max-retries", "PROXY_MAX_RETRIES"),
        ("--max-streams", "ACEMUX_MAX_STREAMS"),
        ("--max-connections", "ACEMUX_MAX_CONNECTIONS"),
        ("--ring-size", "ACEMUX_RING_SIZE"),
    ] {
        let (code, err) = run_with(&[flag, "-1"], &[]);
        assert_eq!(code, 2, "{flag} -1: {err}");
        assert!(err.contains(flag) && err.contains(env) && err.contains("`-1`"), "{flag} -1: {err}");
    }
    // Engine addresses are checked at start.
    for bad in ["a b:1", "host:0", "[zz]:80", "ho$t:80", "host-:80", "host:port"] {
        let (code, err) = run_with(&["--engine", bad], &[]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--engine") && err.contains(bad), "{bad}: {err}");
    }
    // An empty secret is refused, not taken as "no token".
    for (env, flag) in [("ACEMUX_ADMIN_TOKEN", "--admin-token"), ("API_KEY", "--api-key")] {
        let (code, err) = run_with(&["--listen", "127.0.0.1:0"], &[(env, "")]);
        assert_eq!(code, 2, "{env}=: {err}");
        assert!(err.contains(flag) && err.contains(env) && err.contains("set but empty"), "{err}");
    }
    let (code, err) = run_with(&["--status-access", "everyone"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("ACEMUX_STATUS_ACCESS") && err.contains("`redacted`"), "{err}");
}

/// Starts the binary on a free loopback port with `args`; returns the
/// child and its `host:port`.
fn spawn_acemux(args: &[&str]) -> (std::process::Child, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args(["--listen", &listen, "--plugins", "none"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("acemux starts");
    (child, listen)
}

/// GETs `url` until acemux answers (it may still be starting).
async fn get_when_up(url: &str) -> reqwest::Response {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        match http.get(url).send().await {
            Ok(r) => return r,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("acemux never answered: {e}"),
        }
    }
}

async fn terminate(child: std::process::Child) -> std::process::ExitStatus {
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let mut child = child;
    tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_upstream_then_exits() {
    let engine = SimEngine::start(SimConfig::default()).await.unwrap();
    let (child, listen) = spawn_acemux(&["--engine", &engine.endpoint()]);
    let url = format!("http://{listen}/ace/getstream?id={}", "ab".repeat(20));
    let mut response = get_when_up(&url).await;
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());
    assert_eq!(engine.counters().starts, 1);

    let exit = terminate(child).await;
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(engine.counters().stops, 1, "engine stop must be sent before exit");
    // The player's stream ended with the process.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "player stream still open after exit");
}

#[test]
fn legacy_settings_it_does_not_use_are_named_at_start() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--engine", "127.0.0.1:9", "--plugins", "none"])
        .env("PROXY_CHUNK_SIZE", "8192")
        .env("PROXY_HEARTBEAT_INTERVAL", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("acemux starts");
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("does not use it"))
            .take(2)
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.join().unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("PROXY_CHUNK_SIZE") && lines[0].contains("PROXY_BUFFER_CHUNK_SIZE"),
        "{lines:?}"
    );
    assert!(lines[1].contains("PROXY_HEARTBEAT_INTERVAL") && lines[1].contains("ACEMUX_CLIENT_TIMEOUT"));
}

/// Runs ffmpeg's `tool` to the end (at most 30 s).
async fn run_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(tool).args(args).kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| panic!("{tool} did not finish in 30 s"))
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): install Debian's ffmpeg package, as .ci/run does")
        })
}

/// The README's first command: `--demo` needs no AceStream and plays a
/// real picture and sound (checked with ffprobe and ffmpeg, as a player).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_plays_real_video_without_an_engine() {
    let test = "cli::demo_mode_plays_real_video_without_an_engine";
    if !acemux_test_artifacts::programs::available(test, &["ffmpeg", "ffprobe"], "ffmpeg") {
        return;
    }
    let (child, listen) = spawn_acemux(&["--demo"]);
    let url = format!("http://{listen}/ace/getstream?id=0123456789abcdef0123456789abcdef01234567");
    assert_eq!(get_when_up(&format!("http://{listen}/healthz")).await.status(), 200);
    let probe =
        run_tool("ffprobe", &["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", &url])
            .await;
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(codecs.contains("h264") && codecs.contains("aac"), "{codecs}");
    // Two seconds of real-time play through a joined session.
    let decode =
        run_tool("ffmpeg", &["-nostdin", "-v", "error", "-i", &url, "-t", "2", "-f", "null", "-"]).await;
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );
    assert!(terminate(child).await.success());
}

#[test]
fn a_named_plugin_cache_that_cannot_be_used_is_refused() {
    let plugins = std::env::temp_dir().join(format!("acemux-cli-plugins-{}", std::process::id()));
    let dir = plugins.to_str().unwrap();
    // Named and not creatable: a settings error naming it.
    let (code, err) =
        run_with(&["--listen", "127.0.0.1:0", "--plugins", dir, "--plugin-cache", "/proc/nope"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--plugin-cache") && err.contains("/proc/nope"), "{err}");
    // Inside the plugin directory, where untrusted files are dropped: refused.
    let inside = format!("{dir}/cache");
    let (code, err) =
        run_with(&["--listen", "127.0.0.1:0", "--plugins", dir, "--plugin-cache", &inside], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("inside the plugin directory"), "{err}");
    let _ = std::fs::remove_dir_all(&plugins);
}
