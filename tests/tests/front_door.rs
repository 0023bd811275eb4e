//! The front door against unlucky engines and hostile clients: keepalive
//! while an engine holds back its playback answer, connection caps, the
//! admin token and status redaction, and ambiguous content ids.

use std::time::Duration;

use ace_sim::SimConfig;
use acemux::http::StatusAccess;
use acemux_tests::{Harness, content_id};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_covers_an_engine_that_answers_playback_late() {
    // Headers only after a 2.5 s prebuffer: before the fix players got the
    // first null packets and then nothing until the engine answered.
    let sim =
        SimConfig { prebuffer: Duration::from_millis(2500), late_headers: true, ..SimConfig::default() };
    let h = Harness::start(sim, |_| {}).await;
    let mut p = h.player(&content_id(1600)).await;
    let gap = p.longest_gap(Duration::from_secs(4)).await;
    let r = p.report();
    eprintln!("longest gap between bytes with a late-answering engine: {gap:?}");
    assert!(gap < Duration::from_millis(1500), "player waited {gap:?} between bytes");
    assert!(r.aligned && r.video_packets > 100, "the stream itself never came: {r:?}");
    assert!(h.status().await["sessions"][0]["counters"]["keepalives"].as_u64().unwrap() >= 2);
}

/// Sends a GET for `path` on a fresh connection and returns the status
/// code and the JSON body of a short answer.
async fn raw_get(base: &str, path: &str) -> (u16, Value) {
    let mut tcp = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: acemux\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_are_answered_503() {
    let h = Harness::start(SimConfig::default(), |s| {
        s.front.max_connections = acemux::values::OrNone(Some(12));
        s.front.max_connections_per_client = acemux::values::OrNone(Some(8));
    })
    .await;
    let addr = h.base.trim_start_matches("http://").to_owned();
    // Eight idle connections from 127.0.0.1: the per-address cap.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, body) = raw_get(&h.base, "/healthz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["code"], "too_many_connections");
    assert_eq!(body["error"], "too many connections from your address (limit 8)");

    // From another loopback address: the total cap (12) is reached at 12.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut from_other = vec![other.connect(addr.parse().unwrap()).await.unwrap()];
    for _ in 0..3 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        from_other.push(s.connect(addr.parse().unwrap()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 7 + 4 = 11 open: one place left; this takes it…
    let mut last = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …and the next is over the total cap.
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut extra = s.connect(addr.parse().unwrap()).await.unwrap();
    extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("at its connection limit (12)"), "{answer}");

    // Once connections close, places come back.
    last.shutdown().await.unwrap();
    drop(last);
    drop(idle);
    drop(from_other);
    let back =
        h.wait_for(Duration::from_secs(5), || async { raw_get(&h.base, "/healthz").await.0 == 200 }).await;
    assert!(back, "places never came back");
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for cap in ["per_client", "total"] {
        let refused = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("acemux_connections_refused_total{{cap=\"{cap}\"}} ")))
            .and_then(|n| n.parse::<u64>().ok());
        assert!(refused >= Some(1), "{cap}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_addresses_and_engine_sessions_only_with_the_token() {
    let h = Harness::start(SimConfig::default(), |s| s.front.admin_token = Some("s3cret".into())).await;
    let id = content_id(1700);
    let mut p = h.player(&id).await;
    assert!(p.read_at_least(1000, Duration::from_secs(5)).await);

    let anonymous = h.status().await;
    assert_eq!(anonymous["redacted"], true);
    let session = &anonymous["sessions"][0];
    assert_eq!(session["ace_id"], id.as_str(), "the content itself is not secret");
    for field in ["engine_id", "engine_host", "engine_port", "playback_session_id", "container_id"] {
        assert!(session[field].is_null(), "{field} shown without the token: {session}");
    }
    assert!(session["players"][0]["client"].is_null(), "{session}");
    assert!(session["players"][0]["bytes_sent"].as_u64().unwrap() > 0, "numbers stay: {session}");
    let engine = &anonymous["engines"][0];
    assert!(engine["host"].is_null() && engine["id"].is_null() && engine["healthy"] == true, "{engine}");
    let text = anonymous.to_string();
    assert!(!text.contains(&h.engine().addr().to_string()), "engine address leaked: {text}");
    let (_, one) = h.get_json(&format!("/proxy/sessions/{id}")).await;
    assert!(one["playback_session_id"].is_null() && one["players"][0]["client"].is_null(), "{one}");
    // Metrics follow the same rule: engines by serial, not by address.
    let engine_addr = h.engine().addr().to_string();
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains(&engine_addr), "engine address in metrics without the token: {metrics}");
    assert!(metrics.contains("acemux_engine_load{engine=\"engine-"), "{metrics}");
    let metrics =
        h.http.get(h.url("/metrics")).bearer_auth("s3cret").send().await.unwrap().text().await.unwrap();
    let full_label = format!("acemux_engine_load{{engine=\"{}\"}} 1", h.engine_id(0));
    assert!(metrics.contains(&full_label), "{metrics}");

    // With the token (any case of the scheme): everything.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let full: Value = h
            .http
            .get(h.url("/proxy/status"))
            .header("Authorization", format!("{scheme} s3cret"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = &full["sessions"][0];
        assert_eq!(full["redacted"], false);
        assert!(session["playback_session_id"].is_string(), "{scheme}: {session}");
        assert_eq!(session["players"][0]["client"].as_str().map(|c| c.starts_with("127.0.0.1:")), Some(true));
        assert_eq!(full["engines"][0]["port"], h.engine().addr().port());
    }
    // A wrong token sees what anonymous callers see; DELETE needs the right one.
    let r = h.http.delete(h.url(&format!("/proxy/sessions/{id}"))).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = h
        .http
        .delete(h.url(&format!("/proxy/sessions/{id}")))
        .header("Authorization", "bearer s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "lower-case scheme refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_access_token_requires_the_token() {
    let h = Harness::start(SimConfig::default(), |s| {
        s.front.admin_token = Some("s3cret".into());
        s.front.status_access = StatusAccess::Token;
    })
    .await;
    let (code, body) = h.get_json("/proxy/status").await;
    assert_eq!(code, 401, "{body}");
    let (code, _) = h.get_json(&format!("/proxy/sessions/{}", content_id(1))).await;
    assert_eq!(code, 401);
    let r = h.http.get(h.url("/proxy/status")).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (code, body) = h.get_json("/metrics").await;
    assert_eq!((code, &body["code"]), (401, &Value::from("unauthorized")), "{body}");
    let r = h.http.get(h.url("/metrics")).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Players and liveness need no token.
    assert_eq!(h.get_json("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_or_conflicting_ids_are_refused() {
    let h = Harness::start(SimConfig::default(), |_| {}).await;
    let (a, b) = (content_id(1800), content_id(1801));
    for query in [
        format!("id={a}&id={b}"),
        format!("id={a}&id={a}"),
        format!("id={a}&infohash={b}"),
        format!("content_id={a}&id={a}"),
    ] {
        let (code, body) = h.get_json(&format!("/ace/getstream?{query}")).await;
        assert_eq!(code, 400, "{query}: {body}");
        assert_eq!(body["code"], "bad_content_id", "{query}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with("give exactly one of"), "{body}");
        let head = h.http.head(h.url(&format!("/ace/getstream?{query}"))).send().await.unwrap();
        assert_eq!(head.status(), 400, "HEAD {query}");
    }
    assert_eq!(h.engine().counters().starts, 0, "an ambiguous request started a stream");
    // Other repeated parameters are the player's business.
    let mut p = h.player(&format!("{a}&foo=1&foo=2")).await;
    assert!(p.read_at_least(1000, Duration::from_secs(5)).await);
}
