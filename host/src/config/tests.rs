use std::time::Duration;

use super::*;
use crate::engine::EngineSetting;
use crate::plugins::host_settings::PluginCompiler;
use crate::stream::{JoinAt, LagPolicy};

fn settings(args: &[&str]) -> anyhow::Result<Settings> {
    Settings::from_args(std::iter::once("acemux").chain(args.iter().copied()))
}

#[test]
fn defaults_are_valid() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.front.listen, "0.0.0.0:8000".parse().unwrap());
    assert_eq!(s.engines.engines, vec![EngineSetting::new("127.0.0.1", 6878)]);
    assert_eq!(s.orchestrator.orchestrator_url.as_deref(), None);
    assert_eq!(s.front.admin_token, None);
    assert_eq!(s.stream.chunk_bytes % 188, 0);
    assert_eq!(s.stream.grace_period, Duration::from_secs(5));
    assert_eq!(s.stream.lag_policy, LagPolicy::Skip);
    assert_eq!(s.stream.join_at, JoinAt::Keyframe);
    assert_eq!(s.front.socket_send_buffer.get(), Some(256 << 10));
    assert_eq!(s.front.max_connections.get(), None);
    assert_eq!(s.front.max_connections_per_client.get(), Some(64));
    assert_eq!(s.stream.max_streams.get(), None);
    assert!(s.dashboard.dashboard);
    assert_eq!(s.cluster.instance_id.len(), 12, "a random id when none is given");
}

#[test]
fn join_at_names_its_setting_when_wrong() {
    assert_eq!(settings(&["--join-at", "chunk"]).unwrap().stream.join_at, JoinAt::Chunk);
    let err = settings(&["--join-at", "idr"]).unwrap_err().to_string();
    assert!(err.contains("--join-at") && err.contains("ACEMUX_JOIN_AT"), "{err}");
    assert!(err.contains("file key `join_at`"), "{err}");
}

#[test]
fn plugin_compiler_is_cranelift_unless_named_and_names_its_setting_when_wrong() {
    assert_eq!(settings(&[]).unwrap().plugins.plugin_compiler, PluginCompiler::Cranelift);
    assert_eq!(
        settings(&["--plugin-compiler", "winch"]).unwrap().plugins.plugin_compiler,
        PluginCompiler::Winch
    );
    let err = settings(&["--plugin-compiler", "llvm"]).unwrap_err().to_string();
    assert!(err.contains("--plugin-compiler") && err.contains("ACEMUX_PLUGIN_COMPILER"), "{err}");
    assert!(err.contains("`cranelift`, `winch`"), "{err}");
}

#[test]
fn seed_chunk_size_is_refused_by_name() {
    let err = settings(&["--chunk-size", "1061472"]).unwrap_err().to_string();
    assert!(err.contains("PROXY_BUFFER_CHUNK_SIZE"), "{err}");
    assert!(err.contains("not a multiple of 188"), "{err}");
    assert!(err.contains("1061448") && err.contains("1061636"), "{err}");
}

#[test]
fn cli_beats_file_beats_default() {
    let dir = std::env::temp_dir().join(format!("acemux-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.toml");
    std::fs::write(&path, "grace_period = 7\nretry_wait = \"250ms\"\nengines = [\"e1:1\", \"e2:2\"]\n")
        .unwrap();
    let p = path.to_str().unwrap();
    let s = settings(&["--config", p, "--grace-period", "1.5"]).unwrap();
    assert_eq!(s.stream.grace_period, Duration::from_millis(1500));
    assert_eq!(s.stream.retry_wait, Duration::from_millis(250));
    assert_eq!(s.engines.engines.len(), 2);
    let s = settings(&["--config", p, "--engine", "e3:3"]).unwrap();
    assert_eq!(s.engines.engines, vec![EngineSetting::new("e3", 3)], "the flag beats the file");
    std::fs::write(
        &path,
        "orchestrator_url = \"http://orch:8000/\"\n[[engines]]\naddress = \"e1:6878\"\ncontainer_id = \"c1\"\nlabels = { \"acestream.forwarded\" = \"true\", region = \"eu\" }\n",
    )
    .unwrap();
    let s = settings(&["--config", p]).unwrap();
    assert_eq!(s.orchestrator.orchestrator_url.as_deref(), Some("http://orch:8000"));
    assert_eq!(s.engines.engines[0].container_id.as_deref(), Some("c1"));
    assert_eq!(s.engines.engines[0].labels["acestream.forwarded"], "true");
    std::fs::write(&path, "[[engines]]\naddres = \"e1:1\"\n").unwrap();
    let err = settings(&["--config", p]).unwrap_err().to_string();
    assert!(err.contains("unknown engine key `addres`") && err.contains("ACEMUX_ENGINES"), "{err}");
    std::fs::write(
        &path,
        "[[channels]]\nname = \"A\"\nid = \"0123456789abcdef0123456789abcdef01234567\"\ngroup = \"G\"\n",
    )
    .unwrap();
    let s = settings(&["--config", p]).unwrap();
    assert_eq!(s.channels.channels[0].name, "A");
    assert_eq!(s.channels.channels[0].group.as_deref(), Some("G"));
    let (a, b) = ("0123456789abcdef0123456789abcdef01234567", "89abcdef0123456789abcdef0123456789abcdef");
    std::fs::write(
        &path,
        format!("[[channels]]\nname = \"S\"\nid = \"{a}\"\nids = [\"infohash:{b}\", \"acestream://{b}\"]\n"),
    )
    .unwrap();
    let s = settings(&["--config", p]).unwrap();
    let c = &s.channels.channels[0];
    let ids: Vec<(crate::content::KeyType, &str)> = c.ids().map(|k| (k.key_type, k.id.as_str())).collect();
    use crate::content::KeyType::{ContentId, Infohash};
    assert_eq!(ids, [(ContentId, a), (Infohash, b), (ContentId, b)]);
    assert_eq!(c.play_key().key_type, crate::content::KeyType::Channel);
    for (ids, why) in [
        (format!("[\"{a}\", \"{a}\"]"), "given twice"),
        ("[]".to_owned(), "`ids` is empty"),
        ("\"x\"".to_owned(), "must be a list"),
        (format!("[\"{a}\", 7]"), "entries are strings"),
        ("[\"infohash:zz\"]".to_owned(), "`infohash` must be 40 hexadecimal"),
        (
            format!("[{}]", (0..17).map(|i| format!("\"{i:040}\"")).collect::<Vec<_>>().join(",")),
            "more than 16 ids",
        ),
    ] {
        std::fs::write(&path, format!("[[channels]]\nname = \"S\"\nids = {ids}\n")).unwrap();
        let err = settings(&["--config", p]).unwrap_err().to_string();
        assert!(err.contains("`channels` entry 1") && err.contains(why), "{ids}: {err}");
    }
    std::fs::write(&path, "[[channels]]\nname = \"A\"\nid = \"abc\"\n").unwrap();
    let err = settings(&["--config", p]).unwrap_err().to_string();
    assert!(err.contains("`channels` entry 1") && err.contains("40 hexadecimal"), "{err}");
    std::fs::write(&path, "grace_priod = 7\n").unwrap();
    let err = settings(&["--config", p]).unwrap_err().to_string();
    assert!(err.contains("unknown key `grace_priod`") && err.contains("grace_period"), "{err}");
    std::fs::write(&path, "grace_period = \"soon\"\n").unwrap();
    let err = settings(&["--config", p]).unwrap_err().to_string();
    assert!(err.contains("file key `grace_period`") && err.contains("`soon`"), "{err}");
    std::fs::write(&path, "epg_url = \"\"\ndashboard = false\nmax_streams = 4\n").unwrap();
    let s = settings(&["--config", p]).unwrap();
    assert_eq!(s.channels.epg_url.as_deref(), None, "an empty value is no value");
    assert!(!s.dashboard.dashboard);
    assert_eq!(s.stream.max_streams.get(), Some(4));
    std::fs::write(&path, "demo = true\n").unwrap();
    let err = settings(&["--config", p]).unwrap_err().to_string();
    assert!(err.contains("unknown key `demo`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_orchestrator_alone_brings_its_own_engines() {
    let s = settings(&["--orchestrator-url", "http://orch:8000"]).unwrap();
    assert!(s.engines.engines.is_empty());
    let s = settings(&["--orchestrator-url", "http://orch:8000", "--engine", "e1:1"]).unwrap();
    assert_eq!(s.engines.engines.len(), 1);
}

#[test]
fn bad_values_name_the_setting() {
    for (args, needle) in [
        (vec!["--grace-period", "soon"], "PROXY_GRACE_PERIOD"),
        (vec!["--lag-policy", "wait"], "ACEMUX_LAG_POLICY"),
        (vec!["--engine", "nohost"], "ACEMUX_ENGINES"),
        (vec!["--listen", "8000"], "ACEMUX_LISTEN"),
        (vec!["--ring-size", "100000", "--chunk-size", "65424"], "ACEMUX_RING_SIZE"),
        (vec!["--max-streams-per-engine", "0"], "MAX_STREAMS_PER_ENGINE"),
        (vec!["--client-timeout", "0"], "ACEMUX_CLIENT_TIMEOUT"),
        (vec!["--orchestrator-url", "orch:8000"], "ORCHESTRATOR_URL"),
        (vec!["--health-failures", "0"], "ACEMUX_HEALTH_FAILURES"),
        (vec!["--hls-segment", "4", "--hls-viewer-timeout", "5"], "ACEMUX_HLS_VIEWER_TIMEOUT"),
        (vec!["--redis-url", "redis://r:6379"], "ACEMUX_ADVERTISE_URL"),
        (vec!["--admin-token", ""], "set but empty"),
    ] {
        let err = settings(&args).unwrap_err().to_string();
        assert!(err.contains(needle) && err.starts_with("invalid setting"), "{args:?}: {err}");
    }
}

#[test]
fn the_environment_is_read_only_by_a_real_start() {
    // `Settings::from_args` ignores the environment (tests and embedding
    // get the same settings whatever is set), `Cli::load` reads it. No
    // variable is set here (that would race other tests): the command
    // `from_args` parses must have no environment names left.
    let stripped = file::without_environment(Cli::command());
    assert!(stripped.get_arguments().all(|a| a.get_env().is_none()));
    assert!(Cli::command().get_arguments().filter(|a| a.get_env().is_some()).count() > 40);
}

#[test]
fn every_setting_that_hides_its_environment_value_is_a_secret_plugins_never_get() {
    for arg in Cli::command().get_arguments().filter(|a| a.is_hide_env_values_set()) {
        let env = arg.get_env().unwrap().to_string_lossy().into_owned();
        assert!(
            SECRET_VARIABLES.contains(&env.as_str()),
            "{env} hides its value but plugins may be granted it"
        );
    }
}
