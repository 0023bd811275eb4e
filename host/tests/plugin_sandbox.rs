//! The plugin sandbox seen from outside the `acemux` process: its secrets
//! never reach a plugin's environment, plugin calls blocked in a host call
//! hold no threads, and shutdown with such calls in flight is clean.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ace_sim::{SimConfig, SimEngine};
use acemux_test_artifacts as wasm;

const BIN: &str = env!("CARGO_BIN_EXE_acemux");

/// A running `acemux` binary and everything it wrote to stderr.
struct Running {
    child: Child,
    listen: String,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(plugins: &Path, engine: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(BIN)
            .args(["--listen", &listen, "--engine", engine, "--plugins"])
            .arg(plugins)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("acemux starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self { child, listen, stderr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    /// `/plugins` once acemux answers and lists `n` plugin files.
    async fn plugins(&self, n: usize) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(self.url("/plugins")).await {
                let body: serde_json::Value = r.json().await.unwrap();
                let list = body["plugins"].as_array().cloned().unwrap_or_default();
                if list.len() == n {
                    return list;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(15), "plugins not loaded: {}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM; waits for the exit (at most `limit`).
    async fn terminate(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("acemux did not exit within {limit:?} of SIGTERM: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Let the reader thread take the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, self.log())
    }
}

fn copy_plugin(dir: &Path, name: &str, wasm: &str, settings: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), settings).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("acemux-bin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acemux_secrets_never_reach_a_plugin() {
    let engine = SimEngine::start(SimConfig::default()).await.unwrap();
    let dir = temp_dir("env");
    copy_plugin(&dir, "probe", wasm::SANDBOX_PROBE, "[grants]\nenv = [\"ACEMUX_TEST_VISIBLE\"]\n");
    copy_plugin(&dir, "greedy", wasm::SANDBOX_PROBE, "order = 1\n[grants]\nenv = [\"API_KEY\"]\n");
    let secrets = [("ACEMUX_ADMIN_TOKEN", "t0ken"), ("API_KEY", "k3y"), ("ACEMUX_TEST_VISIBLE", "yes")];
    let acemux = Running::start(&dir, &engine.endpoint(), &secrets);
    let plugins = acemux.plugins(2).await;
    let greedy = plugins.iter().find(|p| p["name"] == "greedy").unwrap();
    assert_eq!(greedy["status"], "failed", "{greedy}");
    assert!(greedy["error"].as_str().unwrap().contains("`API_KEY` holds acemux's own secret"), "{greedy}");

    let r = reqwest::get(acemux.url(&format!("/ace/getstream?id={}", "cd".repeat(20)))).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "stream refused: env=[ACEMUX_TEST_VISIBLE] fs=denied net=denied");
    assert!(acemux.terminate(Duration::from_secs(15)).await.0.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_plugin_calls_hold_no_threads_and_shutdown_is_clean() {
    let engine =
        SimEngine::start(SimConfig { bitrate_bps: 2_000_000, ..SimConfig::default() }).await.unwrap();
    let dir = temp_dir("threads");
    // Both wait in WASI's clock, far longer than the test; the selector's
    // budget keeps every new content's start waiting 5 s on it.
    copy_plugin(&dir, "slow-select", wasm::SLEEP_SELECTOR, "time_budget = \"5s\"\nmax_failures = 1000\n");
    copy_plugin(
        &dir,
        "slow-filter",
        wasm::SLEEP_FILTER,
        "time_budget = \"3s\"\nmax_failures = 1000\n[config]\nsleep_ms = 600000\n",
    );
    let acemux = Running::start(&dir, &engine.endpoint(), &[]);
    acemux.plugins(2).await;
    let before = acemux.threads();
    let requests: Vec<_> = (0..12u32)
        .map(|n| tokio::spawn(reqwest::get(acemux.url(&format!("/ace/getstream?id={n:040x}")))))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = acemux.threads();
    eprintln!("acemux threads: {before} before, {during} with 12 selector calls blocked in WASI");
    assert!(during <= before + 4, "threads piled up: {before} → {during}");

    // Let streams start, so filter calls are in flight too, then stop.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, log) = acemux.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "a panic at shutdown:\n{log}");
    for r in requests {
        r.abort();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
