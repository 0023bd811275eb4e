//! The `acemux` binary: settings, logging, signals.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use acemux::Acemux;
use acemux::config::{Cli, LoadError, Settings};
use acemux::engine::EngineSetting;

fn main() -> std::process::ExitCode {
    // Before any thread allocates: see `acemux::memory`.
    acemux::memory::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acemux: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    runtime.block_on(serve())
}

async fn serve() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("acemux: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<std::process::ExitCode> {
    // `acemux plugin …`: an author's bench, not the server.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "plugin") {
        return acemux::plugins::harness::main(args.collect()).await;
    }
    let cli = match Cli::load(std::env::args_os()) {
        Ok(cli) => cli,
        // Help, version, an unknown flag: clap prints it and exits.
        Err(LoadError::Usage(e)) => e.exit(),
        Err(LoadError::Invalid(e)) => return Err(e),
    };
    let mut settings = cli.settings;
    if cli.healthcheck {
        // 1 = unhealthy, as container health checks expect (2 is reserved).
        return Ok(match healthcheck(&settings).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("acemux: unhealthy: {e:#}");
                std::process::ExitCode::from(1)
            }
        });
    }
    for warning in acemux::config::unused_settings(|name| std::env::var(name).ok()) {
        tracing::warn!("{warning}");
    }
    let _demo_engine = if cli.demo { Some(start_demo_engine(&mut settings).await?) } else { None };
    let acemux = Acemux::start(settings).await?;
    if cli.demo {
        let addr = acemux.addr();
        let port = addr.port();
        eprintln!(
            "demo: try  curl -o /dev/null http://127.0.0.1:{port}/ace/getstream?id={DEMO_ID}\n\
             demo: or   ffplay http://127.0.0.1:{port}/ace/getstream?id={DEMO_ID}\n\
             demo: HLS  ffplay http://127.0.0.1:{port}/ace/manifest.m3u8?id={DEMO_ID}\n\
             demo: dashboard at http://127.0.0.1:{port}/\n\
             demo: status at http://127.0.0.1:{port}/proxy/status"
        );
    }
    wait_for_signal().await?;
    acemux.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The content the demo's hints and channel use.
const DEMO_ID: &str = "0123456789abcdef0123456789abcdef01234567";

#[cfg(feature = "demo")]
async fn start_demo_engine(settings: &mut Settings) -> anyhow::Result<ace_sim::SimEngine> {
    // A real picture and sound (a looped test pattern with a tone), played
    // in real time, so any player shows what acemux does.
    let media = ace_sim::Media::sample();
    let config = ace_sim::SimConfig {
        bitrate_bps: media.bitrate_bps().unwrap_or(2_000_000),
        media: Some(media),
        ..ace_sim::SimConfig::default()
    };
    let engine =
        ace_sim::SimEngine::start(config).await.context("cannot start the simulated engine for --demo")?;
    eprintln!("demo: simulated AceStream engine on http://{}", engine.addr());
    settings.engines.engines = vec![EngineSetting::new(engine.addr().ip().to_string(), engine.addr().port())];
    if settings.channels.channels.is_empty() {
        // Something for the dashboard's channel list and `/playlist.m3u`.
        settings.channels.channels = vec![acemux::channels::Channel {
            name: "Demo test pattern".into(),
            key: acemux::content::ContentKey::new(acemux::content::KeyType::ContentId, DEMO_ID),
            alternates: Vec::new(),
            identity: None,
            group: Some("Demo".into()),
            logo: None,
            tvg_id: None,
            number: None,
        }];
    }
    Ok(engine)
}

#[cfg(not(feature = "demo"))]
async fn start_demo_engine(_: &mut Settings) -> anyhow::Result<()> {
    anyhow::bail!("--demo needs acemux built with the `demo` feature")
}

/// `--healthcheck`: GET /healthz on the listen address (loopback when it
/// is the unspecified address); an error exits non-zero.
async fn healthcheck(settings: &Settings) -> anyhow::Result<()> {
    let mut addr = settings.front.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
    let answer = client.get(&url).send().await.with_context(|| format!("{url} did not answer"))?;
    anyhow::ensure!(answer.status().is_success(), "{url} answered {}", answer.status());
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
