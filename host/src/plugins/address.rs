//! A player's address as the text plugins get (`ip:port`, `[ip]:port`).
//!
//! Every selection carries one, and `SocketAddr`'s `Display` (through the
//! formatting machinery, into a growing string) was a twentieth of a
//! selector call; an IPv4 address is written here digit by digit instead.

use std::net::SocketAddr;

/// `addr` as `Display` writes it.
pub fn address_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => {
            // "255.255.255.255:65535"
            let mut text = String::with_capacity(21);
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                push_decimal(&mut text, octet.into());
            }
            text.push(':');
            push_decimal(&mut text, v4.port());
            text
        }
        SocketAddr::V6(v6) => v6.to_string(),
    }
}

fn push_decimal(text: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        text.push(d as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    proptest! {
        #[test]
        fn writes_an_ipv4_address_as_display_does(ip in any::<u32>(), port in any::<u16>()) {
            let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port));
            prop_assert_eq!(address_text(addr), addr.to_string());
        }

        #[test]
        fn writes_an_ipv6_address_as_display_does(ip in any::<u128>(), port in any::<u16>()) {
            let addr = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0));
            prop_assert_eq!(address_text(addr), addr.to_string());
        }
    }

    #[test]
    fn writes_the_edges() {
        for text in ["0.0.0.0:0", "255.255.255.255:65535", "127.0.0.1:40000", "10.0.0.9:10"] {
            assert_eq!(address_text(text.parse().unwrap()), text);
        }
    }
}
