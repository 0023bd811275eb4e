//! Three `acemux` processes sharing Redis, behind HAProxy, in front of
//! simulated engines: one engine session per content and each engine's cap
//! over all instances together; a request at the wrong instance redirected
//! or proxied; an instance killed with SIGKILL and Redis killed and
//! restarted under load. Real `redis-server` and `haproxy`, started here on
//! loopback (skipped loudly without them, failed under
//! `ACEMUX_REQUIRE_PROGRAMS`).

mod cluster_support;

use std::time::{Duration, Instant};

use acemux_test_artifacts::programs;
use cluster_support::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_players_over_ten_contents_make_ten_engine_sessions_and_caps_hold_cluster_wide() {
    if !have_programs("cluster::sixty_players_over_ten_contents", true) {
        return;
    }
    let engines = engines(3).await;
    let redis = Redis::start(free_port()).await;
    let instances = Instance::start_all(&["a", "b", "c"], &redis, &engines).await;
    let haproxy = Haproxy::start(&instances).await;

    let players: Vec<Player> = (0..60)
        .map(|i| Player::open(haproxy.url(&format!("/ace/getstream?id={}", content_id(i % 10))), false))
        .collect();
    assert!(all_receive(&players, 20_000, Duration::from_secs(20)).await, "not every player got data");
    assert_eq!(starts(&engines), 10, "one engine session per content over all instances");
    assert_eq!(engines.iter().map(|e| e.counters().superseded).sum::<u64>(), 0);
    let mut per_instance = Vec::new();
    for instance in &instances {
        per_instance.push(instance.session_count().await);
    }
    assert_eq!(
        per_instance.iter().sum::<usize>(),
        10,
        "each content on exactly one instance: {per_instance:?}"
    );
    assert_caps_held(&engines);

    // Ten new contents at the same instant, straight at different instances:
    // 12 slots in all, 10 taken, so exactly two can start.
    let http = reqwest::Client::new();
    let requests = (10..20).map(|n| {
        let url = instances[n as usize % 3].url(&format!("/ace/getstream?id={}", content_id(n)));
        let http = http.clone();
        async move { http.get(url).send().await.map(|r| (r.status().as_u16(), r)) }
    });
    let answers = futures_util::future::join_all(requests).await;
    let codes: Vec<u16> = answers.iter().map(|a| a.as_ref().map_or(0, |(c, _)| *c)).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 2, "answers: {codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 503), "answers: {codes:?}");
    assert_caps_held(&engines);
    assert!(live_sessions(&engines) <= 3 * CAP);
    let status = instances[0].status().await;
    assert_eq!(status["instance_id"], "a");
    assert_eq!(status["cluster"]["redis"], "connected");
    assert_eq!(status["cluster"]["instances"], 3);
    let metrics = reqwest::get(instances[1].url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("acemux_instance_info{instance=\"b\"} 1"), "{metrics}");
    assert!(metrics.contains("acemux_cluster_redis_up 1"));
    drop(answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_another_instance_is_redirected_or_proxied_to_the_owner_session() {
    if !have_programs("cluster::a_request_at_another_instance", false) {
        return;
    }
    let engines = engines(2).await;
    let redis = Redis::start(free_port()).await;
    let owner = Instance::start("owner", &redis, &engines, &[]).await;
    let other = Instance::start("other", &redis, &engines, &[]).await;
    let proxying = Instance::start("proxying", &redis, &engines, &["--cluster-forward", "proxy"]).await;
    let id = content_id(1);
    let first = Player::open(owner.url(&format!("/ace/getstream?id={id}")), false);
    assert!(all_receive(std::slice::from_ref(&first), 20_000, Duration::from_secs(10)).await);

    let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in [
        format!("/ace/getstream?id={id}&name=x"),
        format!("/pid/{id}/stream.ts"),
        format!("/ace/manifest.m3u8?id={id}"),
        format!("/hls/{id}/index.m3u8"),
    ] {
        let r = no_follow.get(other.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 307, "{path}");
        assert_eq!(r.headers()["location"], owner.url(&path).as_str(), "{path}");
    }
    // Followed, and passed through: both play the owner's one session.
    let redirected = Player::open(other.url(&format!("/ace/getstream?id={id}")), false);
    let proxied = Player::open(proxying.url(&format!("/ace/getstream?id={id}")), false);
    let players = [first, redirected, proxied];
    assert!(all_receive(&players, 20_000, Duration::from_secs(10)).await);
    assert_eq!(starts(&engines), 1);
    assert_eq!(other.session_count().await + proxying.session_count().await, 0);
    let status = owner.status().await;
    assert_eq!(status["total_clients"], 3, "{status}");

    // An owner that stops normally gives its leases back at once: the
    // content starts on another instance without waiting for a lapse.
    drop(players);
    let pid = owner.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut owner = owner;
    let _ = tokio::time::timeout(Duration::from_secs(10), owner.child.wait()).await.expect("owner exits");
    let r = no_follow.get(other.url(&format!("/ace/getstream?id={id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "the content should start here at once");

    // Killed and restarted at the same address under a new id (a crash and
    // a service restart): the new process takes its address's leases
    // instead of redirecting players to itself until they lapse.
    let mut other = other;
    other.child.kill().await.unwrap();
    drop(r);
    let other = Instance::start_at(other.port, "other-again", &redis.url(), &engines, &[]).await;
    let r = no_follow.get(other.url(&format!("/ace/getstream?id={id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "a restarted instance must not redirect to its own address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_of_a_killed_instance_play_again_elsewhere_and_its_engine_sessions_are_stopped() {
    if !have_programs("cluster::players_of_a_killed_instance", true) {
        return;
    }
    let engines = engines(3).await;
    let redis = Redis::start(free_port()).await;
    let mut instances = Instance::start_all(&["a", "b", "c"], &redis, &engines).await;
    let haproxy = Haproxy::start(&instances).await;
    let players: Vec<Player> = (0..20)
        .map(|i| Player::open(haproxy.url(&format!("/ace/getstream?id={}", content_id(i % 10))), true))
        .collect();
    assert!(all_receive(&players, 20_000, Duration::from_secs(20)).await);
    assert_eq!(starts(&engines), 10);

    // Kill the instance with the most contents.
    let mut counts = Vec::new();
    for instance in &instances {
        counts.push(instance.session_count().await);
    }
    let victim = (0..3).max_by_key(|i| counts[*i]).unwrap();
    let killed_at = Instant::now();
    instances[victim].child.start_kill().unwrap();
    // Lease 2 s, HAProxy notices within 2 s: everyone plays again well
    // within lease + a few seconds.
    assert!(all_receive(&players, 20_000, Duration::from_secs(8)).await, "players did not recover");
    let recovered = killed_at.elapsed();
    // No engine session is left without an owner: the dead instance's
    // sessions are superseded or stopped by a survivor.
    let until = Instant::now() + Duration::from_secs(10);
    while live_sessions(&engines) != 10 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let one_each = killed_at.elapsed();
    assert_eq!(
        live_sessions(&engines),
        10,
        "engine sessions left behind ({} contents had died)",
        counts[victim]
    );
    let survivors: Vec<&Instance> = (0..3).filter(|i| *i != victim).map(|i| &instances[i]).collect();
    let mut sessions = 0;
    for s in &survivors {
        sessions += s.session_count().await;
    }
    assert_eq!(sessions, 10);
    assert_caps_held(&engines);
    // Each of the dead instance's engine sessions was ended: stopped by a
    // survivor's sweep, or replaced by a new start of its content on the
    // same engine.
    let ended: u64 = engines.iter().map(|e| e.counters().stops + e.counters().superseded).sum();
    assert!(ended >= counts[victim] as u64, "{ended} ended of {} left behind", counts[victim]);
    eprintln!(
        "cluster: {} contents moved; players played again {recovered:?} after SIGKILL, \
         one engine session per content again after {one_each:?} (lease 2 s, HAProxy checks every 1 s, down after 2)",
        counts[victim]
    );
    // Within two leases (and the noise of a shared machine).
    assert!(one_each < Duration::from_secs(6), "the dead instance's sessions ran on for {one_each:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_play_on_while_redis_is_down_and_shared_accounting_resumes() {
    if !have_programs("cluster::streams_play_on_while_redis_is_down", false) {
        return;
    }
    let engines = engines(2).await;
    let port = free_port();
    let mut redis = Redis::start(port).await;
    let a = Instance::start("a", &redis, &engines, &[]).await;
    let b = Instance::start("b", &redis, &engines, &[]).await;
    let mut players = vec![
        Player::open(a.url(&format!("/ace/getstream?id={}", content_id(1))), false),
        Player::open(b.url(&format!("/ace/getstream?id={}", content_id(2))), false),
    ];
    assert!(all_receive(&players, 20_000, Duration::from_secs(10)).await);
    redis.kill().await;
    // Every player keeps receiving, second by second.
    for _ in 0..3 {
        assert!(all_receive(&players, 5_000, Duration::from_secs(2)).await, "a player stalled without Redis");
    }
    // A new stream starts with local accounting.
    players.push(Player::open(a.url(&format!("/ace/getstream?id={}", content_id(3))), false));
    assert!(all_receive(&players, 5_000, Duration::from_secs(10)).await, "no new stream without Redis");
    let status = a.status().await;
    assert_eq!(status["cluster"]["redis"], "unreachable", "{}", status["cluster"]);

    let _redis = Redis::start(port).await;
    // Back: each instance sees the other's streams on the engines again.
    let until = Instant::now() + Duration::from_secs(10);
    let total_load =
        |s: Value| s["engines"].as_array().unwrap().iter().map(|e| e["load"].as_u64().unwrap()).sum::<u64>();
    loop {
        let (sa, sb) = (a.status().await, b.status().await);
        if sa["cluster"]["redis"] == "connected" && total_load(sa) == 3 && total_load(sb) == 3 {
            break;
        }
        assert!(Instant::now() < until, "shared accounting did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(all_receive(&players, 5_000, Duration::from_secs(5)).await);
    assert_eq!(starts(&engines), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_url_with_tls_and_a_password_is_honoured() {
    if !have_programs("cluster::a_redis_url_with_tls", false)
        || !programs::available("cluster::a_redis_url_with_tls", &["openssl"], "openssl")
    {
        return;
    }
    let dir = std::env::temp_dir().join(format!("acemux-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _redis = Redis::start_tls(port, &dir, "s3cret").await;
    let engines = engines(1).await;
    let good = format!("rediss://:s3cret@127.0.0.1:{port}/#insecure");
    let bad = format!("rediss://:wrong@127.0.0.1:{port}/#insecure");
    let a = Instance::start_with("tls", &good, &engines, &[]).await;
    let b = Instance::start_with("badpass", &bad, &engines, &[]).await;
    let player = Player::open(a.url(&format!("/ace/getstream?id={}", content_id(7))), false);
    assert!(all_receive(std::slice::from_ref(&player), 20_000, Duration::from_secs(10)).await);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (sa, sb) = (a.status().await, b.status().await);
        // The TLS instance counts itself and its slot in Redis; the one with
        // the wrong password cannot, says why, and still serves.
        if sa["cluster"]["redis"] == "connected"
            && sa["cluster"]["instances"] == 1
            && sa["cluster"]["held_slots"] == 1
            && sb["cluster"]["redis"] == "unreachable"
        {
            let error = sb["cluster"]["redis_error"].as_str().unwrap_or_default().to_lowercase();
            assert!(error.contains("auth") || error.contains("password"), "{error}");
            break;
        }
        assert!(Instant::now() < until, "{} / {}", sa["cluster"], sb["cluster"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
