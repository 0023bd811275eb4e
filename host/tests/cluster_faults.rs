//! The cluster when its parts fail as production parts fail: Redis frozen,
//! restarted empty or unreachable for long, an instance frozen past its
//! lease or cut off from Redis, an engine found over its cap once Redis
//! answers. Each ends with one engine session per content, no engine above
//! its cap, and the players' responses never ended. Real `redis-server`
//! and several `acemux` processes on loopback (skipped loudly without
//! redis-server, failed under `ACEMUX_REQUIRE_PROGRAMS`).

mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;

/// The lease the instances run with (`Instance::start`).
const LEASE: Duration = Duration::from_secs(2);

fn stream(instance: &Instance, content: u32) -> Player {
    Player::open(instance.url(&format!("/ace/getstream?id={}", content_id(content))), false)
}

fn assert_no_response_ended(players: &[Player]) {
    let ended = players.iter().filter(|p| p.response_ended()).count();
    assert_eq!(ended, 0, "{ended} of {} players lost their response", players.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_while_contents_start_everywhere_ends_with_one_session_per_content() {
    if !have_programs("cluster_faults::redis_frozen", false) {
        return;
    }
    let engines = engines(3).await;
    let redis = Redis::start(free_port()).await;
    let instances = Instance::start_all(&["a", "b", "c"], &redis, &engines).await;
    let mut players: Vec<Player> = (0..3).map(|i| stream(&instances[i], i as u32)).collect();
    assert!(all_receive(&players, 20_000, Duration::from_secs(10)).await);

    redis.pause();
    // Three new contents, each asked at every instance while Redis cannot
    // say who owns it: each instance starts its own session (local
    // accounting), served meanwhile.
    let paused_at = Instant::now();
    for content in 10..13 {
        for instance in &instances {
            players.push(stream(instance, content));
        }
    }
    assert!(all_receive(&players, 20_000, Duration::from_secs(15)).await, "players not served without Redis");
    let duplicates = sessions_per_content(&engines).values().filter(|n| **n > 1).count();
    eprintln!("contents with more than one engine session while Redis was frozen: {duplicates}");
    tokio::time::sleep((2 * LEASE).saturating_sub(paused_at.elapsed())).await;
    redis.resume();
    let resumed_at = Instant::now();

    let settled = time_until(Duration::from_secs(15), || one_session_per_content(&engines, 6)).await;
    let Some(settled) = settled else {
        panic!(
            "not one engine session per content after Redis came back: {:?}",
            sessions_per_content(&engines)
        );
    };
    eprintln!("Redis frozen {:?}: one session per content {settled:?} after it answered again", 2 * LEASE);
    assert!(settled <= 2 * LEASE, "took {settled:?} (lease {LEASE:?})");
    // The players of the instances that lost a content play on, from the
    // owner's stream, on the responses they had.
    let before: Vec<u64> = players.iter().map(Player::received).collect();
    if !all_receive(&players, 50_000, Duration::from_secs(15)).await {
        let stalled: Vec<(usize, u64, bool)> = (0..players.len())
            .filter(|i| players[*i].received() < before[*i] + 50_000)
            .map(|i| (i, players[i].received() - before[i], players[i].response_ended()))
            .collect();
        panic!("players stalled after the handover (index, bytes, response ended): {stalled:?}");
    }
    assert_no_response_ended(&players);
    assert!(one_session_per_content(&engines, 6), "{:?}", sessions_per_content(&engines));
    let mut handovers = 0.0;
    for instance in &instances {
        handovers += instance.metric("acemux_cluster_handovers_total ").await.unwrap_or(0.0);
        let status = instance.status().await;
        assert_eq!(status["cluster"]["redis"], "connected");
    }
    if duplicates > 0 {
        assert!(handovers >= 1.0, "duplicates were resolved without a handover?");
    }
    eprintln!("handovers: {handovers}; {:?} after resume", resumed_at.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_frozen_past_its_lease_hands_its_players_to_the_new_owner_when_it_wakes() {
    if !have_programs("cluster_faults::an_instance_frozen", false) {
        return;
    }
    let engines = engines(2).await;
    let redis = Redis::start(free_port()).await;
    let frozen = Instance::start("frozen", &redis, &engines, &[]).await;
    let other = Instance::start("other", &redis, &engines, &[]).await;
    let first = stream(&frozen, 1);
    assert!(all_receive(std::slice::from_ref(&first), 20_000, Duration::from_secs(10)).await);

    signal(&frozen.child, "STOP");
    tokio::time::sleep(LEASE + LEASE / 2).await;
    // Its lease lapsed: a new player at the other instance starts the
    // content there (and that instance stops the frozen one's engine
    // session, or the engine drops it for the new one).
    let second = stream(&other, 1);
    assert!(all_receive(std::slice::from_ref(&second), 20_000, Duration::from_secs(10)).await);
    signal(&frozen.child, "CONT");
    let woken_at = Instant::now();

    let settled = time_until(Duration::from_secs(10), || one_session_per_content(&engines, 1)).await;
    assert!(settled.is_some(), "{:?}", sessions_per_content(&engines));
    // The woken instance follows the owner's stream: its player plays on
    // its old response; it holds no engine session.
    let players = [first, second];
    assert!(
        all_receive(&players, 50_000, Duration::from_secs(15)).await,
        "the frozen instance's player stalled"
    );
    let played_again = woken_at.elapsed();
    assert_no_response_ended(&players);
    let status = frozen.status().await;
    let session = &status["sessions"][0];
    assert_eq!(session["following"], other.url(""), "{session}");
    assert_eq!(session["engine_id"], serde_json::Value::Null, "{session}");
    assert!(one_session_per_content(&engines, 1));
    assert!(frozen.metric("acemux_cluster_handovers_total ").await >= Some(1.0));
    // Woken, it started nothing on an engine from its stale claim: two
    // starts in all, the frozen instance's first and the new owner's.
    assert_eq!(engines.iter().map(|e| e.counters().starts).sum::<u64>(), 2);
    eprintln!(
        "frozen instance: one session per content {:?} after SIGCONT, its player had 50 kB more {played_again:?} after",
        settled.unwrap()
    );

    // The owner's players gone, the follower's stream ends with it and the
    // follower claims the content and plays it on an engine itself.
    drop(players);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_gets_every_lease_and_slot_back_without_a_new_session() {
    if !have_programs("cluster_faults::redis_restarted_empty", false) {
        return;
    }
    let engines = engines(2).await;
    let port = free_port();
    let mut redis = Redis::start(port).await;
    let instances = Instance::start_all(&["a", "b", "c"], &redis, &engines).await;
    let players: Vec<Player> = (0..6).map(|i| stream(&instances[i % 3], i as u32)).collect();
    assert!(all_receive(&players, 20_000, Duration::from_secs(10)).await);
    assert_eq!(redis.content_leases().await, Some(6));
    assert_eq!(redis.engine_slots().await, Some(6));

    redis.kill().await;
    // Meanwhile each instance says Redis is down, and serves.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let up = instances[0].metric("acemux_cluster_redis_up ").await;
        let status = instances[0].status().await;
        if up == Some(0.0) && status["cluster"]["redis"] == "unreachable" {
            assert!(status["cluster"]["redis_error"].is_string(), "{}", status["cluster"]);
            break;
        }
        assert!(Instant::now() < until, "Redis down not shown: {}", status["cluster"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(all_receive(&players, 5_000, Duration::from_secs(5)).await);

    let redis = Redis::start(port).await;
    let restarted_at = Instant::now();
    let until = restarted_at + Duration::from_secs(10);
    while (redis.content_leases().await, redis.engine_slots().await) != (Some(6), Some(6)) {
        assert!(Instant::now() < until, "leases and slots not rebuilt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "Redis restarted empty: leases and slots rebuilt {:?} after it listened",
        restarted_at.elapsed()
    );
    assert!(all_receive(&players, 20_000, Duration::from_secs(5)).await);
    assert_no_response_ended(&players);
    assert_eq!(
        engines.iter().map(|e| e.counters().starts).sum::<u64>(),
        6,
        "no engine session started again"
    );
    assert!(one_session_per_content(&engines, 6));
    for instance in &instances {
        assert_eq!(instance.status().await["cluster"]["redis"], "connected");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_never_holds_a_request_up_and_the_instance_rejoins() {
    if !have_programs("cluster_faults::a_frozen_redis_never_holds_a_request_up", false) {
        return;
    }
    let engines = engines(2).await;
    let redis = Redis::start(free_port()).await;
    let a = Instance::start("a", &redis, &engines, &[]).await;
    redis.pause();
    // The first request finds Redis silent (one call timeout); after it
    // the instance is alone and asks Redis nothing on a request's path.
    let http = reqwest::Client::new();
    let first = http.get(a.url(&format!("/ace/getstream?id={}", content_id(0)))).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let from = Instant::now();
    let mut answers = Vec::new();
    for n in 1..6 {
        let r = http.get(a.url(&format!("/ace/getstream?id={}", content_id(n)))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        answers.push(r);
    }
    let five = from.elapsed();
    eprintln!("five new contents answered in {five:?} with Redis frozen");
    // A Redis call waits up to 1 s; asking Redis on each request (claim,
    // then slot) would take 10 s.
    assert!(five < Duration::from_secs(5), "requests waited on Redis: {five:?}");
    let status = a.status().await;
    assert_eq!(status["cluster"]["redis"], "unreachable");
    assert_eq!(a.metric("acemux_cluster_redis_up ").await, Some(0.0));

    redis.resume();
    let until = Instant::now() + Duration::from_secs(10);
    while a.status().await["cluster"]["redis"] != "connected" || redis.content_leases().await != Some(6) {
        assert!(Instant::now() < until, "did not rejoin: {}", a.status().await["cluster"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(redis.engine_slots().await, Some(6));
    drop((first, answers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_cut_off_from_redis_serves_alone_then_hands_over_when_the_link_heals() {
    if !have_programs("cluster_faults::an_instance_cut_off_from_redis", false) {
        return;
    }
    let engines = engines(2).await;
    let redis = Redis::start(free_port()).await;
    let link = Partition::start(&redis).await;
    let cut_off = Instance::start_with("cut-off", &link.url(), &engines, &[]).await;
    let other = Instance::start("other", &redis, &engines, &[]).await;
    let first = stream(&cut_off, 1);
    assert!(all_receive(std::slice::from_ref(&first), 20_000, Duration::from_secs(10)).await);

    link.cut();
    tokio::time::sleep(LEASE + LEASE / 2).await;
    // Cut off, it serves its player alone and says so.
    assert_eq!(cut_off.status().await["cluster"]["redis"], "unreachable");
    // Its lease lapsed: the content starts on the other instance for a new
    // player (two sessions while the link is down: neither can know).
    let second = stream(&other, 1);
    let players = [first, second];
    assert!(all_receive(&players, 20_000, Duration::from_secs(10)).await, "not served during the partition");
    tokio::time::sleep((2 * LEASE).saturating_sub(LEASE + LEASE / 2)).await;

    link.heal();
    let healed_at = Instant::now();
    let settled = time_until(Duration::from_secs(15), || one_session_per_content(&engines, 1)).await;
    let Some(settled) = settled else { panic!("{:?}", sessions_per_content(&engines)) };
    assert!(
        all_receive(&players, 50_000, Duration::from_secs(15)).await,
        "a player stalled after the link healed"
    );
    let played_on = healed_at.elapsed();
    assert_no_response_ended(&players);
    let mut following = 0;
    for instance in [&cut_off, &other] {
        let status = instance.status().await;
        assert_eq!(status["cluster"]["redis"], "connected");
        following +=
            status["sessions"].as_array().unwrap().iter().filter(|s| s["following"].is_string()).count();
    }
    assert_eq!(following, 1, "one instance follows the other's stream");
    assert!(one_session_per_content(&engines, 1), "{:?}", sessions_per_content(&engines));
    eprintln!(
        "partition of {:?} healed: one session per content {settled:?} after, every player 50 kB more {played_on:?} after",
        2 * LEASE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_slot_no_longer_fits_the_engine_cap_moves_to_another_engine() {
    if !have_programs("cluster_faults::a_stream_whose_slot_no_longer_fits", false) {
        return;
    }
    let engines = engines(2).await;
    let port = free_port();
    let mut redis = Redis::start(port).await;
    let a = Instance::start("a", &redis, &engines, &[]).await;
    let player = stream(&a, 1);
    assert!(all_receive(std::slice::from_ref(&player), 20_000, Duration::from_secs(10)).await);
    let first = engines.iter().position(|e| e.live_sessions() == 1).unwrap();

    // While the instance is held (shorter than its lease), Redis restarts
    // empty and other instances' streams fill the engine first: the
    // instance's slot, registered again, no longer fits under the cap.
    signal(&a.child, "STOP");
    redis.kill().await;
    redis = Redis::start(port).await;
    let key = format!("acemux:slots:{}", engines[first].endpoint());
    for n in 0..CAP {
        let added = redis.command(&format!("ZADD {key} 99999999999999 elsewhere/{n}")).await;
        assert_eq!(added.as_deref(), Some(":1"));
    }
    signal(&a.child, "CONT");

    let other = 1 - first;
    let moved = time_until(Duration::from_secs(10), || {
        engines[first].live_sessions() == 0 && engines[other].live_sessions() == 1
    })
    .await;
    assert!(moved.is_some(), "the stream did not move off the full engine");
    assert!(
        all_receive(std::slice::from_ref(&player), 50_000, Duration::from_secs(10)).await,
        "the player stalled"
    );
    assert!(!player.response_ended());
    assert_eq!(a.metric("acemux_cluster_slots_revoked_total ").await, Some(1.0));
    assert_eq!(
        redis.engine_slots().await,
        Some(CAP as i64 + 1),
        "the full engine's fakes and the moved slot"
    );
    eprintln!("a slot over the cap: its stream moved {:?} after the instance went on", moved.unwrap());
}
