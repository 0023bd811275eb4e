//! One structured log line per event, with durations and bytes.

use acemux_plugin_sdk::{Event, EventHook, PlayerKind, info};

pub struct EventLog;

/// The log line for an event.
pub fn line(event: &Event) -> String {
    let s = event.stream();
    let engine = s.engine_id.as_deref().unwrap_or("-");
    let mut head = format!("event={} content={} engine={engine}", event.name(), s.content_key);
    if let Some(channel) = &s.channel {
        head.push_str(&format!(" channel={channel}"));
    }
    match event {
        Event::StreamEnded { reason, .. } => format!("{head} reason={reason}"),
        Event::PlayerConnected { client_address, kind, user, .. } => format!(
            "{head} kind={} client={} user={}",
            kind_name(*kind),
            client_address.as_deref().unwrap_or("-"),
            user.as_deref().unwrap_or("-")
        ),
        Event::PlayerDisconnected { client_address, kind, user, bytes, duration_ms, .. } => format!(
            "{head} kind={} client={} user={} bytes={bytes} duration_ms={duration_ms}",
            kind_name(*kind),
            client_address.as_deref().unwrap_or("-"),
            user.as_deref().unwrap_or("-")
        ),
        Event::EngineFailed { engine_id, error, .. } | Event::Failover { engine_id, error, .. } => {
            format!("{head} failed_engine={engine_id} error={error:?}")
        }
        Event::StreamStats { stats, .. } => {
            let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            format!(
                "{head} status={} peers={} speed_down_kbps={} speed_up_kbps={}",
                stats.status.as_deref().unwrap_or("-"),
                n(stats.peers),
                n(stats.speed_down),
                n(stats.speed_up)
            )
        }
        Event::ChannelSwitched { channel_name, from_id, to_id, reason, error, backoff_ms, .. } => format!(
            "{head} name={channel_name:?} from={from_id} to={to_id} reason={reason} backoff_ms={backoff_ms} error={:?}",
            error.as_deref().unwrap_or("-")
        ),
        Event::StreamStarted(_) | Event::EngineSelected(_) => head,
    }
}

fn kind_name(kind: PlayerKind) -> &'static str {
    match kind {
        PlayerKind::Ts => "ts",
        PlayerKind::Hls => "hls",
    }
}

impl EventHook for EventLog {
    fn on_event(event: &Event) {
        info!("{}", line(event));
    }
}

acemux_plugin_sdk::export!(EventLog: events);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::stream;

    #[test]
    fn stats_lines_carry_peers_and_speeds() {
        let stats = acemux_plugin_sdk::StreamStats {
            status: Some("dl".into()),
            peers: Some(12),
            speed_down: Some(950),
            ..Default::default()
        };
        let e = Event::StreamStats { stream: stream("ab"), stats };
        assert_eq!(
            line(&e),
            "event=stream-stats content=ab engine=- status=dl peers=12 speed_down_kbps=950 speed_up_kbps=-"
        );
    }

    #[test]
    fn switch_lines_name_the_channel_and_both_ids() {
        let mut s = stream("bb");
        s.channel = Some("cc".into());
        let e = Event::ChannelSwitched {
            stream: s,
            channel_name: "News".into(),
            from_id: "aa".into(),
            to_id: "bb".into(),
            reason: "start-failed".into(),
            error: Some("dead".into()),
            backoff_ms: 10_000,
        };
        assert_eq!(
            line(&e),
            "event=channel-switched content=bb engine=- channel=cc name=\"News\" from=aa to=bb reason=start-failed backoff_ms=10000 error=\"dead\""
        );
    }

    #[test]
    fn lines_carry_bytes_and_durations() {
        let e = Event::PlayerDisconnected {
            stream: stream("ab"),
            client_address: Some("1.2.3.4:5".into()),
            kind: PlayerKind::Hls,
            user: Some("grandma".into()),
            bytes: 1000,
            duration_ms: 42,
        };
        assert_eq!(
            line(&e),
            "event=player-disconnected content=ab engine=- kind=hls client=1.2.3.4:5 user=grandma bytes=1000 duration_ms=42"
        );
    }
}
