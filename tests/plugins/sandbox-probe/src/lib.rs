//! Tries the environment, the filesystem and the network, and refuses the
//! stream with what it found, e.g. `env=[] fs=denied net=denied` (`env`
//! lists the names of the variables it sees, sorted).
use acemux_plugin_sdk::{Engine, Request, Selection, Selector};
pub struct SandboxProbe;
impl Selector for SandboxProbe {
    fn select<'a>(_: &Request, _: &'a [Engine]) -> Selection<'a> {
        let mut env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        env.sort();
        let fs = match std::fs::read_dir("/").or_else(|_| std::fs::read_dir("/probe")) {
            Ok(_) => "allowed",
            Err(_) => "denied",
        };
        let net = match std::net::TcpStream::connect("127.0.0.1:9") {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "allowed",
            Ok(_) => "allowed",
            Err(_) => "denied",
        };
        Selection::Refuse(format!("env=[{}] fs={fs} net={net}", env.join(",")))
    }
}
acemux_plugin_sdk::export!(SandboxProbe: selector);
