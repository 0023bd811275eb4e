//! The smallest HTTP/1.0 GET that reads a list: one request, the whole
//! answer up to a bound, status 200 or an error naming the status.

use std::io::{Read, Write};
use std::net::TcpStream;

/// Fetches `url` (`http://host[:port]/path`), at most `max` body bytes.
pub fn get(url: &str, max: usize) -> Result<Vec<u8>, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let mut stream = TcpStream::connect(&address).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let host = authority.split(':').next().unwrap_or(authority);
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: acemux-json-source\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    // Headers take a few KiB at most.
    stream
        .take((max + (16 << 10)) as u64 + 1)
        .read_to_end(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    body_of(&answer, max)
}

/// The body of a whole HTTP/1.x answer with status 200.
pub fn body_of(answer: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the answer has no complete head")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let status = head.lines().next().unwrap_or("").split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("the server answered {status}"));
    }
    let body = &answer[end + 4..];
    if body.len() > max {
        return Err(format!("the list is more than {max} bytes"));
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_of_a_good_answer_and_the_status_of_a_bad_one() {
        assert_eq!(body_of(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n[1]", 10).unwrap(), b"[1]");
        assert_eq!(body_of(b"HTTP/1.0 404 Not Found\r\n\r\n", 10).unwrap_err(), "the server answered 404");
        assert!(body_of(b"HTTP/1.0 200 OK\r\n\r\n0123456789a", 10).is_err());
        assert!(body_of(b"garbage", 10).is_err());
        assert!(get("https://x/", 10).is_err());
    }
}
