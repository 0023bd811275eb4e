//! The committed recording (`tests/fixtures/h264-aac.ts`, see
//! [`Media::sample`]) served by the simulated engine at a chosen speed, so
//! players, decoders and the HLS segmenter see real media at a known rate.

use ace_sim::{Media, SimConfig};

/// An engine serving the recording at `speed` times its real-time rate
/// (1 for players that keep to the clock, more to fill buffers sooner).
pub fn recorded(speed: u64) -> SimConfig {
    let media = Media::sample();
    let real_time = media.bitrate_bps().expect("the fixture has timestamps");
    SimConfig { bitrate_bps: speed * real_time, media: Some(media), ..SimConfig::default() }
}
