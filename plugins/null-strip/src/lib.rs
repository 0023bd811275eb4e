//! Drops null packets (PID 0x1FFF): stuffing that costs every player
//! bandwidth and carries nothing. Logs the bytes saved every 10 000 packets.

use acemux_plugin_sdk::{Batch, Filter, Stream, info};

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
    }
}
