//! The `acemux` binary itself: settings errors at start, and shutdown on
//! SIGTERM with every engine session stopped.

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_upstream_then_exits() {
    let engine = SimEngine::start(SimConfig::default()).await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["--listen", &listen, "--engine", &engine.endpoint(), "--plugins", "none"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("acemux starts");
    let http = reqwest::Client::new();
    let url = format!("http://{listen}/ace/getstream?id={}", "ab".repeat(20));
    let started = Instant::now();
    let mut response = loop {
        match http.get(&url).send().await {
            Ok(r) => break r,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("acemux never answered: {e}"),
        }
    };
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());
    assert_eq!(engine.counters().starts, 1);

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(engine.counters().stops, 1, "engine stop must be sent before exit");
    // The player's stream ended with the process.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "player stream still open after exit");
}
