//! acemux under a low open-file limit and a flood of players: the
//! connection cap keeps descriptors for engine traffic, so health probes
//! keep working and a healthy engine is never marked unhealthy.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_acemux");

/// Status code of a GET on a fresh connection; 0 when refused unanswered.
async fn status_of(addr: &str, path: &str) -> (u16, Value) {
    let Ok(mut tcp) = TcpStream::connect(addr).await else { return (0, Value::Null) };
    let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return (0, Value::Null);
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_flood_under_a_low_descriptor_limit_leaves_engines_healthy() {
    // This test's own 400 sockets.
    rlimit::increase_nofile_limit(4096).unwrap();
    let engine = SimEngine::start(SimConfig { bitrate_bps: 500_000, ..SimConfig::default() }).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    // `ulimit -n 256` (soft and hard), as the reproduction.
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\"", BIN])
        .args(["--listen", &addr, "--engine", &engine.endpoint(), "--plugins", "none"])
        .args(["--health-interval", "0.5", "--health-failures", "1", "--max-connections-per-client", "0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while status_of(&addr, "/healthz").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "acemux did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 400 players of one content at once, reading nothing after the first bytes.
    let request = format!("GET /ace/getstream?id={} HTTP/1.1\r\nHost: a\r\n\r\n", "ab".repeat(20));
    let mut players = Vec::new();
    for _ in 0..400 {
        if let Ok(mut tcp) = TcpStream::connect(&addr).await {
            let _ = tcp.write_all(request.as_bytes()).await;
            players.push(tcp);
        }
    }
    let mut answered = std::collections::BTreeMap::<String, usize>::new();
    for p in players.iter_mut() {
        let mut head = [0u8; 12];
        let what = match tokio::time::timeout(Duration::from_secs(3), p.read_exact(&mut head)).await {
            Ok(Ok(_)) => String::from_utf8_lossy(&head).into_owned(),
            _ => "closed".into(),
        };
        *answered.entry(what).or_default() += 1;
    }
    eprintln!("400 players against ulimit -n 256: {answered:?}");
    // Several health probes run while the flood holds every player place.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Streams are answered HTTP/1.0 (a body until the connection closes).
    let streaming = answered.get("HTTP/1.0 200").copied().unwrap_or(0);
    assert!((100..=192).contains(&streaming), "cap = 256 - 64 reserved: {answered:?}");
    assert!(answered.get("HTTP/1.1 503").copied().unwrap_or(0) > 0, "{answered:?}");
    drop(players);

    // Right after the flood: the engine is healthy and takes new contents.
    let status = loop {
        let (code, body) = status_of(&addr, "/proxy/status").await;
        if code == 200 {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "status refused: {code} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let engine_status = &status["engines"][0];
    assert_eq!(engine_status["healthy"], true, "{engine_status}");
    assert!(engine_status["last_error"].is_null(), "{engine_status}");
    let (code, body) = status_of(&addr, &format!("/ace/getstream?id={}", "cd".repeat(20))).await;
    // A stream answers 200 and keeps the body open: the read times out.
    assert_eq!(code, 200, "{body}");

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
}
