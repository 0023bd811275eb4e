//! Drops null packets (PID 0x1FFF): stuffing that costs every player
//! bandwidth and carries nothing. Logs the bytes saved every 10 000 packets
//! and counts them on acemux's `/metrics`
//! (`acemux_plugin_null_packets_dropped_total`, and the packets per batch
//! in `acemux_plugin_batch_packets`).

use acemux_plugin_sdk::metrics::{Counter, Histogram};
use acemux_plugin_sdk::{Batch, Filter, Stream, info};

static DROPPED: Counter =
    Counter::new("null_packets_dropped_total", "Null packets dropped, all streams.", &[]);
static BATCH: Histogram = Histogram::new(
    "batch_packets",
    "Packets per batch reaching the filter.",
    &[],
    &[7.0, 70.0, 350.0, 1400.0],
);

pub struct NullStrip {
    stream: String,
    dropped: u64,
}

impl Filter for NullStrip {
    fn new(stream: &Stream) -> Self {
        Self { stream: stream.content_key.clone(), dropped: 0 }
    }

    fn process(&mut self, batch: &mut Batch) {
        let before = batch.len();
        batch.retain(|p| !p.is_null());
        let dropped = (before - batch.len()) as u64;
        BATCH.observe(before as f64);
        if dropped > 0 {
            DROPPED.add(dropped as f64);
        }
        if (self.dropped + dropped) / 10_000 > self.dropped / 10_000 {
            info!(
                "stream {}: {} null packets dropped, {} bytes saved",
                self.stream,
                self.dropped + dropped,
                (self.dropped + dropped) * 188
            );
        }
        self.dropped += dropped;
    }
}

acemux_plugin_sdk::export!(NullStrip: filter);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::stream;
    use acemux_plugin_sdk::ts::NULL_PACKET;

    #[test]
    fn drops_only_null_packets() {
        let mut video = NULL_PACKET;
        video[1] = 0x01;
        let mut batch = Batch::from_packets([&NULL_PACKET, &video, &NULL_PACKET, &video]);
        let mut f = NullStrip::new(&stream("ab"));
        f.process(&mut batch);
        assert_eq!(batch.len(), 2);
        assert!(batch.packets().all(|p| !p.is_null()));
        assert_eq!(f.dropped, 2);
        assert_eq!(acemux_plugin_sdk::testing::metric_value("null_packets_dropped_total", &[]), Some(2.0));
        assert_eq!(acemux_plugin_sdk::testing::histogram_value("batch_packets", &[]), Some((1, 4.0)));
    }
}
