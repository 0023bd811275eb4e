//! Settings of the HLS output: how long segments and parts are, how many a
//! live playlist lists, and when a viewer who stopped fetching is gone.

use std::time::Duration;

use crate::values::{self, format_duration};

/// See the module docs.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct HlsSettings {
    /// HLS target segment length (1–60 s); a segment ends at the first
    /// keyframe at least this long after its start, so a longer GOP makes
    /// longer segments.
    #[arg(long, env = "ACEMUX_HLS_SEGMENT", default_value = "4s", value_parser = segment_length)]
    pub hls_segment: Duration,
    /// Low-Latency HLS part target (0.4 s up to half the segment length),
    /// or `off`: parts of at most this length are listed as they are cut,
    /// with blocking playlist reloads; players without LL-HLS ignore them.
    /// Parts end at buffer chunks, so `--chunk-max-delay` bounds how short
    /// they can be.
    #[arg(long, env = "ACEMUX_HLS_PART", default_value = "1s", value_parser = part_length)]
    pub hls_part: std::option::Option<Duration>,
    /// Segments listed in an HLS live playlist (3–100); three more stay
    /// fetchable after they leave it.
    #[arg(long, env = "ACEMUX_HLS_WINDOW", default_value = "6", value_parser = window)]
    pub hls_window: usize,
    /// An HLS viewer that fetches no playlist for this long is gone (at
    /// least twice the segment length).
    #[arg(long, env = "ACEMUX_HLS_VIEWER_TIMEOUT", default_value = "30", value_parser = values::positive_duration)]
    pub hls_viewer_timeout: Duration,
}

impl HlsSettings {
    /// What only two settings together can make wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.hls_viewer_timeout < 2 * self.hls_segment {
            anyhow::bail!(
                "invalid setting {}: {} must be at least twice the HLS segment length ({}), \
                 or viewers are dropped between two playlist fetches",
                values::setting_names::<Self>("hls_viewer_timeout"),
                format_duration(self.hls_viewer_timeout),
                format_duration(self.hls_segment),
            );
        }
        if let Some(part) = self.hls_part
            && part * 2 > self.hls_segment
        {
            anyhow::bail!(
                "invalid setting {}: {} must be at most half the HLS segment length ({}), or `off`",
                values::setting_names::<Self>("hls_part"),
                format_duration(part),
                format_duration(self.hls_segment),
            );
        }
        Ok(())
    }
}

fn part_length(s: &str) -> Result<Option<Duration>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    values::duration_within(s, Duration::from_millis(400), Duration::from_secs(30)).map(Some)
}

fn segment_length(s: &str) -> Result<Duration, String> {
    values::duration_within(s, Duration::from_secs(1), Duration::from_secs(60))
}

fn window(s: &str) -> Result<usize, String> {
    values::whole_number_within(s, 3, 100)
}
