//! A channel source whose instance answers one channel (`[config] id`) on
//! its first call and panics (traps) on every later one: acemux must keep
//! the last good list and say why the refresh failed.

use std::sync::atomic::{AtomicU32, Ordering};

use acemux_plugin_sdk::{Channel, ChannelSource, KeyType, config};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(serde::Deserialize)]
struct Config {
    id: String,
}

pub struct FlakySource;

impl ChannelSource for FlakySource {
    fn channels(_source: &str) -> Result<Vec<Channel>, String> {
        if CALLS.fetch_add(1, Ordering::Relaxed) > 0 {
            panic!("flaky-source fails after its first answer");
        }
        let c: Config = config()?;
        Ok(vec![Channel {
            name: "Flaky".into(),
            id: c.id,
            key_type: KeyType::ContentId,
            group: None,
            logo: None,
            tvg_id: None,
            number: None,
        }])
    }
}

acemux_plugin_sdk::export!(FlakySource: channel_source);
