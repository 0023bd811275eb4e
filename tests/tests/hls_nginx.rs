//! `deploy/nginx/acemux-hls-cache.conf` in front of acemux, as the file
//! ships (only its addresses and cache directory changed): viewers asking
//! for the part being cut cost acemux one request between them and get the
//! same bytes as acemux serves; a segment is served from the cache the
//! second time; a blocking playlist reload passes through and answers when
//! its part is cut; playlists are never cached.
//!
//! Needs Debian's `nginx-light` (`.ci/run` installs it).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use acemux_tests::recording::recorded;
use acemux_tests::{Harness, TempDir, content_id};

/// The shipped configuration with acemux at `upstream`, nginx on `listen`
/// and its cache under `dir`, in a minimal nginx.conf of its own.
fn configure(dir: &Path, upstream: &str, listen: u16) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/acemux-hls-cache.conf"),
    )
    .expect("deploy/nginx/acemux-hls-cache.conf");
    let cache = dir.join("cache");
    let site = [
        ("server 127.0.0.1:8000;", format!("server {upstream};")),
        ("listen 8080;", format!("listen 127.0.0.1:{listen};")),
        ("/var/cache/nginx/acemux-hls", cache.display().to_string()),
    ]
    .iter()
    .fold(shipped.clone(), |text, (from, to)| {
        assert!(text.contains(from), "the shipped file no longer has `{from}`");
        text.replace(from, to)
    });
    std::fs::write(dir.join("acemux-hls-cache.conf"), site).unwrap();
    for sub in ["cache", "temp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        // nginx's workers drop root (to `nobody`) and must write here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let temp = dir.join("temp").display().to_string();
    let main = format!(
        "pid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\nworker_processes 1;\nevents {{}}\n\
         http {{\n  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n  \
         fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n  \
         include {dir}/acemux-hls-cache.conf;\n}}\n",
        dir = dir.display()
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    conf
}

/// nginx's master process; stopped (SIGTERM, which it passes on to its
/// workers) when dropped, so no worker outlives the test.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: signals our own child, which has not been reaped yet.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_nginx(dir: &Path, conf: &Path, port: u16) -> Nginx {
    let child = std::process::Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs");
    let nginx = Nginx(child);
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < until, "nginx did not listen: {}", log(dir));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nginx
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A counter from acemux's `/metrics`.
async fn metric(h: &Harness, name: &str) -> u64 {
    let text = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

struct Fetched {
    status: u16,
    cache: String,
    body: bytes::Bytes,
}

async fn fetch(http: &reqwest::Client, url: &str) -> Fetched {
    let r = http.get(url).timeout(Duration::from_secs(30)).send().await.expect("answered");
    let status = r.status().as_u16();
    let cache = r.headers().get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    Fetched { status, cache, body: r.bytes().await.expect("a body") }
}

/// A `URI="…"` attribute of the first line starting with `tag`.
fn uri_of<'a>(playlist: &'a str, tag: &str) -> &'a str {
    let line =
        playlist.lines().rfind(|l| l.starts_with(tag)).unwrap_or_else(|| panic!("no {tag} in {playlist}"));
    line.split("URI=\"").nth(1).and_then(|r| r.split('"').next()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_the_shipped_cache_config_collapses_part_requests_and_passes_blocking_reloads() {
    if !acemux_test_artifacts::programs::available("hls_nginx::shipped_config", &["nginx"], "nginx-light") {
        return;
    }
    let h = Harness::start(recorded(1), |s| {
        s.hls.hls_segment = Duration::from_secs(2);
        s.hls.hls_part = Some(Duration::from_millis(500));
        // Behind a proxy every viewer has its address (the file's advice).
        s.front.max_connections_per_client = acemux::values::OrNone(None);
    })
    .await;
    let dir = TempDir::new("hls-nginx");
    let port = free_port();
    let upstream = h.base.trim_start_matches("http://").to_owned();
    let conf = configure(&dir.0, &upstream, port);
    let _nginx = start_nginx(&dir.0, &conf, port).await;
    let front = format!("http://127.0.0.1:{port}");
    let id = content_id(1);

    // A viewer through nginx: master, then its media playlist.
    let master = fetch(&h.http, &format!("{front}/ace/manifest.m3u8?id={id}")).await;
    assert_eq!(master.status, 200, "{}", log(&dir.0));
    let master = String::from_utf8(master.body.to_vec()).unwrap();
    let media = master.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap();
    let media = format!("{front}/{}", media.trim_start_matches("../"));
    let playlist = fetch(&h.http, &media).await;
    assert_eq!((playlist.status, playlist.cache.as_str()), (200, ""), "playlists pass through uncached");
    let playlist = String::from_utf8(playlist.body.to_vec()).unwrap();
    let base = format!("{front}/hls/{id}");

    // Three viewers ask for the part being cut at once: one request reaches
    // acemux; all three get the bytes acemux serves for that part.
    let hinted = uri_of(&playlist, "#EXT-X-PRELOAD-HINT").to_owned();
    let parts_before = metric(&h, "acemux_hls_parts_total").await;
    let hinted_url = format!("{base}/{hinted}");
    let asks: Vec<_> = (0..3).map(|_| fetch(&h.http, &hinted_url)).collect();
    let got = futures_util::future::join_all(asks).await;
    let parts_after = metric(&h, "acemux_hls_parts_total").await;
    let mut caches: Vec<&str> = got.iter().map(|f| f.cache.as_str()).collect();
    caches.sort();
    assert!(
        got.iter().all(|f| f.status == 200),
        "statuses {:?}",
        got.iter().map(|f| f.status).collect::<Vec<_>>()
    );
    assert_eq!(caches, ["HIT", "HIT", "MISS"], "{}", log(&dir.0));
    assert_eq!(parts_after - parts_before, 1, "acemux served the part once for the three");
    let direct = fetch(&h.http, &h.url(&format!("/hls/{id}/{hinted}"))).await;
    assert_eq!(direct.status, 200);
    assert!(!direct.body.is_empty());
    assert!(got.iter().all(|f| f.body == direct.body), "nginx's copies differ from acemux's part");

    // A segment: the second viewer gets it from the cache.
    let segment = playlist.lines().rfind(|l| l.ends_with(".ts") && !l.starts_with('#')).unwrap().to_owned();
    let first = fetch(&h.http, &format!("{base}/{segment}")).await;
    let second = fetch(&h.http, &format!("{base}/{segment}")).await;
    assert_eq!((first.status, first.cache.as_str()), (200, "MISS"));
    assert_eq!((second.status, second.cache.as_str()), (200, "HIT"));
    assert_eq!(first.body, second.body);

    // A blocking reload for the part hinted now waits until it is cut,
    // and lists it.
    let now = String::from_utf8(fetch(&h.http, &media).await.body.to_vec()).unwrap();
    let hinted = uri_of(&now, "#EXT-X-PRELOAD-HINT").to_owned();
    let (msn, index) = hinted.trim_end_matches(".ts").split_once('.').unwrap();
    let asked = Instant::now();
    let reload = fetch(&h.http, &format!("{media}&_HLS_msn={msn}&_HLS_part={index}")).await;
    let waited = asked.elapsed();
    assert_eq!((reload.status, reload.cache.as_str()), (200, ""));
    let reload = String::from_utf8(reload.body.to_vec()).unwrap();
    assert!(
        reload.contains(&format!("URI=\"{hinted}\"")),
        "the reload lists the part it asked for:\n{reload}"
    );
    assert_ne!(uri_of(&reload, "#EXT-X-PRELOAD-HINT"), hinted, "the part is complete, the hint moved on");
    println!(
        "through nginx: three requests for the hinted part, one upstream; blocking reload answered in {waited:?}"
    );
}
