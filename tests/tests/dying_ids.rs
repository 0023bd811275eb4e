//! How one content id dies, as the simulated engine plays it (a dead id,
//! an id that stalls, an id that loses its peers), and what acemux does
//! with a single id today: the baseline that failover between a channel's
//! ids builds on.

use std::collections::HashMap;
use std::time::Duration;

use ace_sim::{ContentBehaviour, SimConfig};
use acemux_tests::{Harness, PlayerClient, content_id};

fn sim(contents: HashMap<String, ContentBehaviour>) -> SimConfig {
    SimConfig { bitrate_bps: 1_000_000, contents, ..SimConfig::default() }
}

#[tokio::test]
async fn a_dead_id_is_refused_with_the_engine_s_message_while_others_play() {
    let dead = content_id(1);
    let behaviour =
        ContentBehaviour { start_error: Some("failed to load content".into()), ..Default::default() };
    let h = Harness::start(sim([(dead.clone(), behaviour)].into()), |_| {}).await;
    let r = h.http.get(h.stream_url(&dead)).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("failed to load content"), "{body}");
    let mut good = h.player(&content_id(2)).await;
    assert!(good.read_at_least(20_000, Duration::from_secs(5)).await);
    assert_eq!(h.engine().counters().failed_starts, 1);
}

#[tokio::test]
async fn an_id_that_loses_its_peers_says_so_in_status() {
    let lonely = content_id(3);
    let h = Harness::start(
        sim([(lonely.clone(), ContentBehaviour { peers: Some(0), ..Default::default() })].into()),
        |_| {},
    )
    .await;
    let mut a = h.player(&lonely).await;
    let mut b = h.player(&content_id(4)).await;
    assert!(
        a.read_at_least(10_000, Duration::from_secs(5)).await
            && b.read_at_least(10_000, Duration::from_secs(5)).await
    );
    let peers_of = |status: &serde_json::Value, id: &str| {
        status["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ace_id"] == id)
            .and_then(|s| s["engine_stats"]["peers"].as_u64())
    };
    let seen = h
        .wait_for(Duration::from_secs(10), || async {
            let status = h.status().await;
            peers_of(&status, &lonely) == Some(0) && peers_of(&status, &content_id(4)).is_some_and(|p| p >= 5)
        })
        .await;
    assert!(seen, "{}", h.status().await);
}

#[tokio::test]
async fn a_stalling_id_ends_its_players_and_leaves_no_engine_session() {
    let stalling = content_id(5);
    let behaviour = ContentBehaviour { stall_after: Some(Duration::from_secs(2)), ..Default::default() };
    let h = Harness::start(sim([(stalling.clone(), behaviour)].into()), |s| {
        s.engines.connection_timeout = Duration::from_secs(1);
        s.stream.max_retries = 1;
    })
    .await;
    let mut player = PlayerClient::new(h.http.get(h.stream_url(&stalling)).send().await.unwrap());
    assert!(player.read_at_least(50_000, Duration::from_secs(5)).await, "it plays before it stalls");
    // With one id, acemux reconnects, finds no other engine, and ends the
    // stream: the player's response ends (issue 29 moves such a channel to
    // its next id instead).
    assert!(player.read_to_end(Duration::from_secs(20)).await, "the response ends");
    player.report().assert_clean("a stalled id's player");
    let gone = h
        .wait_for(Duration::from_secs(10), || async {
            let c = h.engine().counters();
            h.session_count().await == 0 && c.open_playbacks == 0 && c.stops >= 1
        })
        .await;
    assert!(gone, "no session left on either side: {:?}", h.engine().counters());
}
