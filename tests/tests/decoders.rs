//! Real decoders through acemux: ffprobe and ffmpeg read a recorded
//! H.264/AAC stream (`tests/fixtures/h264-aac.ts`) that the simulated
//! engine serves, as a first player and as late joiners; a lagging player's
//! skip is checked packet by packet; and the simulated engine's seamless
//! loop of the recording is checked with ffmpeg too.
//!
//! Needs Debian's `ffmpeg` package (`.ci/run` installs it). A late joiner
//! that starts mid-GOP or without PAT/PMT makes ffmpeg print decode errors
//! at `-v error`; a keyframe join prints nothing.

use std::process::Output;
use std::time::Duration;

use acemux::stream::{JoinAt, LagPolicy};
use acemux_tests::recording::recorded;
use acemux_tests::{Harness, RawPlayer, content_id};
use acemux_ts::access::{VideoCodec, is_random_access};
use acemux_ts::{PACKET_SIZE, Packet};
use tokio::process::Command;

/// Whether ffmpeg and ffprobe can be run (else the test is skipped, loudly).
fn ffmpeg_available(test: &str) -> bool {
    acemux_test_artifacts::programs::available(&format!("decoders::{test}"), &["ffmpeg", "ffprobe"], "ffmpeg")
}

/// Runs an ffmpeg tool to the end (killed after 30 s).
async fn run(tool: &str, args: &[&str]) -> Output {
    let child = Command::new(tool).args(args).stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    match tokio::time::timeout(Duration::from_secs(30), child).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!(
            "cannot run `{tool}` ({e}): these tests need ffmpeg and ffprobe; \
             install Debian's ffmpeg package (`apt-get install ffmpeg`, as .ci/run does)"
        ),
        Err(_) => panic!("`{tool} {}` did not finish within 30 s", args.join(" ")),
    }
}

/// Decodes `seconds` of media time from `url` and returns ffmpeg's
/// diagnostics at error level (empty when every frame decoded).
async fn decode_errors(url: &str, seconds: &str) -> String {
    decode_diagnostics(url, seconds, "error").await
}

/// Decodes `seconds` of media time from `url` and returns what ffmpeg
/// printed at `level` or worse.
async fn decode_diagnostics(url: &str, seconds: &str, level: &str) -> String {
    let out = run(
        "ffmpeg",
        &["-nostdin", "-hide_banner", "-v", level, "-i", url, "-t", seconds, "-f", "null", "-"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() { stderr } else { format!("exit {}: {stderr}", out.status) }
}

/// The codecs of the streams ffprobe finds in `url`.
async fn probe_codecs(url: &str) -> Vec<String> {
    let out = run("ffprobe", &["-hide_banner", "-v", "error", "-show_streams", "-of", "json", url]).await;
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON");
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    streams.iter().map(|s| s["codec_name"].as_str().unwrap_or("?").to_owned()).collect()
}

/// A first player reads from the stream's start; three late joiners come
/// three seconds in, when the ring holds several GOPs, 200 ms apart (0.4 s
/// of media: each joins at another phase of the one-second GOP). Returns
/// the first player's decode errors, each late joiner's, and the session's
/// status entry.
async fn first_player_and_late_joiners(join_at: JoinAt) -> (String, Vec<String>, serde_json::Value) {
    let h = Harness::start(recorded(2), |s| {
        s.stream.join_at = join_at;
        // The session must still be there for the status read at the end.
        s.stream.grace_period = Duration::from_secs(10);
    })
    .await;
    let url = h.stream_url(&content_id(70));
    let decoder = |seconds: &'static str, delay_ms: u64| {
        let url = url.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            decode_errors(&url, seconds).await
        })
    };
    let first = decoder("9", 0);
    let late: Vec<_> = (0..3).map(|i| decoder("3", 3000 + 200 * i)).collect();
    let mut late_errors = Vec::new();
    for joiner in late {
        late_errors.push(joiner.await.unwrap());
    }
    let first = first.await.unwrap();
    let session = h.status().await["sessions"][0].clone();
    (first, late_errors, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_player_and_late_joiners_decode_without_error() {
    if !ffmpeg_available("first_player_and_late_joiners_decode_without_error") {
        return;
    }
    let (first, late, session) = first_player_and_late_joiners(JoinAt::Keyframe).await;
    let counters = &session["counters"];
    assert_eq!(first, "", "the first player's decoder reported errors");
    for errors in late {
        assert_eq!(errors, "", "a late joiner's decoder reported errors");
    }
    assert_eq!(counters["keyframe_joins"], 3, "{counters}");
    assert!(session["buffer"]["keyframes"].as_u64() > Some(3), "{session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_joins_without_keyframe_alignment_show_decode_errors() {
    if !ffmpeg_available("chunk_joins_without_keyframe_alignment_show_decode_errors") {
        return;
    }
    // The control: the same late joiners, started at chunk boundaries. At
    // most one of the three can land just before a keyframe by chance.
    let (first, late, session) = first_player_and_late_joiners(JoinAt::Chunk).await;
    let counters = &session["counters"];
    assert_eq!(first, "", "the first player's decoder reported errors");
    let complaints = late.iter().filter(|errors| !errors.is_empty()).count();
    assert!(
        complaints >= 2,
        "mid-GOP joins should make ffmpeg complain, or the keyframe test proves nothing"
    );
    assert_eq!(counters["keyframe_joins"], 0, "{counters}");
    assert_eq!(counters["chunk_joins"], 4, "{counters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_looped_recording_plays_across_its_seams() {
    if !ffmpeg_available("the_looped_recording_plays_across_its_seams") {
        return;
    }
    // 30 s of media = two and a half passes of the 12 s recording, paced
    // eight times faster than real time. Each pass's timestamps continue
    // the last, so a decoder sees one continuous channel: not even a
    // warning about timestamps going back.
    let mut sim = recorded(2);
    sim.bitrate_bps *= 4;
    let h = Harness::start(sim, |_| {}).await;
    let diagnostics = decode_diagnostics(&h.stream_url(&content_id(72)), "30", "warning").await;
    assert_eq!(diagnostics, "", "ffmpeg reported problems across the loop seams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_finds_video_and_audio_through_every_url_form() {
    if !ffmpeg_available("ffprobe_finds_video_and_audio_through_every_url_form") {
        return;
    }
    let h = Harness::start(recorded(2), |_| {}).await;
    let id = content_id(71);
    // The first probe starts the stream; the others join it, at keyframes.
    for path in [
        format!("/ace/getstream?id={id}"),
        format!("/pid/{id}/channel.ts"),
        format!("/content_id/{id}/channel.ts"),
    ] {
        assert_eq!(probe_codecs(&h.url(&path)).await, ["h264", "aac"], "{path}");
    }
    assert_eq!(h.engine().counters().starts, 1, "one engine session for every probe");
}

/// Where a player's video continuity counter jumps (it skipped), the
/// player gets PAT, PMT and a keyframe: its decoder restarts cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_player_skips_to_a_keyframe_after_pat_and_pmt() {
    if !ffmpeg_available("a_lagging_player_skips_to_a_keyframe_after_pat_and_pmt") {
        return;
    }
    let mut sim = recorded(2);
    // ~30 times real time into a ring of ~0.2 s: about six GOPs.
    sim.bitrate_bps = 16_000_000;
    let h = Harness::start(sim, |s| {
        s.front.socket_send_buffer = acemux::values::OrNone(Some(64 * 1024));
        s.stream.chunk_bytes = 188 * 64;
        s.stream.ring_bytes = 188 * 64 * 32;
        s.stream.lag_policy = LagPolicy::Skip;
    })
    .await;
    let mut slow = RawPlayer::connect(&h.base, &content_id(73)).await;
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until && !slow.ended {
        slow.read_some(4096, Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let skips = h.status().await["sessions"][0]["counters"]["skips"].as_u64().unwrap_or(0);
    assert!(skips > 0, "the slow player never skipped");
    // Catch up on what the sockets still hold, to see the skip itself.
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < until && !slow.ended {
        slow.read_some(64 * 1024, Duration::from_millis(200)).await;
    }

    const VIDEO_PID: u16 = 0x100;
    let packets: Vec<&[u8]> = slow.body.chunks_exact(PACKET_SIZE).collect();
    let mut last_cc = None;
    let mut jumps = 0;
    for (i, raw) in packets.iter().enumerate() {
        let p = Packet::new(raw).expect("whole packets");
        if p.pid() != VIDEO_PID || !p.has_payload() {
            continue;
        }
        let cc = p.continuity_counter();
        if last_cc.is_some_and(|last| cc != (last + 1) & 0x0F) {
            jumps += 1;
            assert!(is_random_access(&p, VideoCodec::H264), "packet {i}: skipped to a non-keyframe");
            let before: Vec<u16> =
                packets[i.saturating_sub(2)..i].iter().map(|b| acemux_ts::pid(b)).collect();
            assert_eq!(before, [0, 0x1000], "packet {i}: PAT and PMT must precede the keyframe");
        }
        last_cc = Some(cc);
    }
    assert!(jumps > 0, "the skip never showed in the bytes ({skips} skips counted)");
}
