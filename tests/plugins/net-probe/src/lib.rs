//! Sends `hello from net-probe` over TCP to `[config] tcp` and in a UDP
//! datagram to `[config] udp`, then refuses the stream with what happened,
//! e.g. `tcp=sent udp=sent` or `tcp=denied(…)`.
use std::io::Write;

use acemux_plugin_sdk::{Engine, Request, Selection, Selector, config};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    tcp: String,
    udp: String,
}

const HELLO: &[u8] = b"hello from net-probe";

fn outcome(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "sent".into(),
        Err(e) => format!("denied({:?})", e.kind()),
    }
}

pub struct NetProbe;

impl Selector for NetProbe {
    fn select<'a>(_: &Request, _: &'a [Engine]) -> Selection<'a> {
        let c = config::<Config>().unwrap_or_default();
        let tcp = outcome(std::net::TcpStream::connect(&c.tcp).and_then(|mut s| s.write_all(HELLO)));
        let udp =
            outcome(std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(HELLO, &c.udp).map(drop)));
        Selection::Refuse(format!("tcp={tcp} udp={udp}"))
    }
}
acemux_plugin_sdk::export!(NetProbe: selector);
