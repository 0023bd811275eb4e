//! Tries the environment, the filesystem and the network, and refuses the
//! stream with what it found, e.g. `env=0 fs=denied net=denied`.
use acemux_plugin_sdk::{Engine, Request, Selection, Selector};
pub struct SandboxProbe;
impl Selector for SandboxProbe {
    fn select(_: &Request, _: &[Engine]) -> Selection {
        let env = std::env::vars().count();
        let fs = match std::fs::read_dir("/").or_else(|_| std::fs::read_dir("/probe")) {
            Ok(_) => "allowed",
            Err(_) => "denied",
        };
        let net = match std::net::TcpStream::connect("127.0.0.1:9") {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "allowed",
            Ok(_) => "allowed",
            Err(_) => "denied",
        };
        Selection::Refuse(format!("env={env} fs={fs} net={net}"))
    }
}
acemux_plugin_sdk::export!(SandboxProbe: selector);
