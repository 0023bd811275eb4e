//! `ace-sim`: run the simulated AceStream engine on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ace_sim::{Media, SimConfig, SimEngine};
use clap::Parser;

/// A simulated AceStream engine serving valid MPEG-TS.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6878")]
    listen: SocketAddr,
    /// Stream bitrate in bits per second [default: the recording's own
    /// rate with --media, else 2000000].
    #[arg(long)]
    bitrate: Option<u64>,
    /// Seconds from start until the first byte.
    #[arg(long, default_value_t = 0.0)]
    prebuffer: f64,
    /// Answer every start with this error.
    #[arg(long)]
    start_error: Option<String>,
    /// Playback URLs answer with a 302 first.
    #[arg(long)]
    redirect: bool,
    /// Playback response headers only after the prebuffer (as some engines).
    #[arg(long)]
    late_headers: bool,
    /// Abort each playback connection after this many bytes.
    #[arg(long)]
    drop_after: Option<u64>,
    /// Stop sending after this many bytes.
    #[arg(long)]
    stall_after: Option<u64>,
    /// Serve this MPEG-TS file, looped, instead of the synthetic stream
    /// (`tests/fixtures/h264-aac.ts` plays in real players).
    #[arg(long)]
    media: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    if !args.prebuffer.is_finite() || args.prebuffer < 0.0 {
        anyhow::bail!("--prebuffer must be a non-negative number of seconds");
    }
    let media = args.media.as_deref().map(Media::read).transpose()?;
    let bitrate = args.bitrate.or(media.as_ref().and_then(Media::bitrate_bps)).unwrap_or(2_000_000);
    let config = SimConfig {
        media,
        bitrate_bps: bitrate.max(1),
        prebuffer: Duration::from_secs_f64(args.prebuffer),
        start_error: args.start_error,
        redirect: args.redirect,
        late_headers: args.late_headers,
        drop_after_bytes: args.drop_after,
        stall_after_bytes: args.stall_after,
        ..SimConfig::default()
    };
    let engine = SimEngine::bind(args.listen, config).await?;
    eprintln!("ace-sim listening on http://{}", engine.addr());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
