//! An access plugin: each user may watch only from the networks its entry
//! lists; players without a user (open mode) and users without an entry
//! from `others`; anyone else is denied, naming the address.
//!
//! ```toml
//! # plugins.d/network-allow.toml
//! [config]
//! others = ["192.168.0.0/16"]            # default: nobody else
//! [config.users]
//! grandma = ["203.0.113.0/24", "2001:db8::/32"]
//! tom = ["0.0.0.0/0", "::/0"]             # anywhere
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use acemux_plugin_sdk::{AccessCheck, Decision, Viewer, config};
use ipnet::IpNet;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// User name → the networks it may watch from.
    users: BTreeMap<String, Vec<IpNet>>,
    /// Where everyone else may watch from.
    others: Vec<IpNet>,
}

pub struct NetworkAllow;

impl AccessCheck for NetworkAllow {
    fn check(viewer: &Viewer) -> Decision {
        // A configuration that does not read denies: better no access than
        // access nobody meant (acemux logs the reason).
        let config = match config::<Config>() {
            Ok(c) => c,
            Err(e) => return Decision::Deny(format!("network-allow is misconfigured: {e}")),
        };
        let networks = viewer.user.as_ref().and_then(|u| config.users.get(u)).unwrap_or(&config.others);
        let address = viewer.client_address.as_deref().and_then(ip_of);
        match address {
            Some(ip) if networks.iter().any(|n| n.contains(&ip)) => Decision::Allow,
            Some(ip) => Decision::Deny(format!("not allowed to watch from {ip}")),
            None => Decision::Deny("the player's address is unknown".into()),
        }
    }
}

/// The IP address of `ip:port` (or of a bare address), IPv4-mapped IPv6
/// addresses as IPv4.
fn ip_of(text: &str) -> Option<IpAddr> {
    let ip = text.parse::<SocketAddr>().map(|a| a.ip()).or_else(|_| text.parse::<IpAddr>()).ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

acemux_plugin_sdk::export!(NetworkAllow: access);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::{set_config, viewer};

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn each_user_from_its_networks_and_everyone_else_from_others() {
        set_config(
            r#"{"users": {"grandma": ["10.1.0.0/16", "2001:db8::/32"]}, "others": ["192.168.0.0/16"]}"#,
        );
        let allowed = |user: Option<&str>, address: &str| NetworkAllow::check(&viewer(user, address, ID));
        assert_eq!(allowed(Some("grandma"), "10.1.2.3:5000"), Decision::Allow);
        assert_eq!(allowed(Some("grandma"), "[2001:db8::1]:5000"), Decision::Allow);
        assert_eq!(allowed(Some("grandma"), "[::ffff:10.1.9.9]:80"), Decision::Allow, "mapped IPv4");
        assert!(
            matches!(allowed(Some("grandma"), "192.168.1.1:5000"), Decision::Deny(r) if r.contains("192.168.1.1"))
        );
        assert_eq!(allowed(Some("tom"), "192.168.1.1:5000"), Decision::Allow, "others' networks");
        assert_eq!(allowed(None, "192.168.7.7:1"), Decision::Allow);
        assert!(matches!(allowed(None, "8.8.8.8:1"), Decision::Deny(_)));
    }

    #[test]
    fn a_bad_config_denies() {
        set_config(r#"{"users": {"grandma": ["not a network"]}}"#);
        assert!(
            matches!(NetworkAllow::check(&viewer(Some("grandma"), "10.1.2.3:1", ID)), Decision::Deny(r) if r.contains("misconfigured"))
        );
    }
}
