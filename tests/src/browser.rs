//! A real browser for tests: Debian's `chromium`, headless, driven through
//! WebDriver by `chromedriver` with the `fantoccini` client.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::TempDir;

/// A running chromedriver and one browser session; both end on drop
/// (call [`Browser::close`] to end the session cleanly first).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Drop for Browser {
    /// chromedriver runs in a process group of its own, with the chromium
    /// it starts: the whole group goes, so a test that ends without
    /// [`Browser::close`] (a failed assertion) leaves no chromium behind.
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            // SAFETY: signals the process group our own child leads.
            unsafe { libc::kill(-(group as libc::pid_t), libc::SIGKILL) };
        }
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium session
    /// with a `width`×`height` window. Autoplay is allowed (muted video
    /// plays without a click anyway), and chromium's own background
    /// traffic (updates, sync, lookups of Google's hosts) is off.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start chromedriver")?;
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{url}/status")).send().await.is_err() {
            if Instant::now() > until {
                bail!("chromedriver did not answer within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = TempDir::new("chromium");
        let chromium = acemux_test_artifacts::programs::path_of("chromium")
            .map_or_else(|| "/usr/bin/chromium".to_owned(), |p| p.display().to_string());
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--autoplay-policy=no-user-gesture-required".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), json!({"binary": chromium, "args": args}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .context("cannot open a chromium session through chromedriver")?;
        Ok(Self { client, driver, _profile: profile })
    }

    /// Ends the browser session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Runs `script` (a function body returning a value) in the page.
    pub async fn eval(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Polls `script` until it returns `true` or `limit` passes.
    pub async fn wait_until(&self, limit: Duration, script: &str) -> anyhow::Result<bool> {
        let until = Instant::now() + limit;
        loop {
            if self.eval(script).await? == json!(true) {
                return Ok(true);
            }
            if Instant::now() > until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
