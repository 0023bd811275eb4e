//! Zero-copy fan-out: every player of a stream is fed from the same kernel
//! pages instead of the kernel copying each chunk into each player's
//! socket, which is most of what fan-out costs once the proxy itself does
//! little (`docs/benchmarks.md`, *Zero-copy fan-out*).
//!
//! Two halves meet through memory addresses: [`pages::PageStore`] keeps a
//! stream's chunks in an append-only `memfd` and hands the ring `Bytes`
//! that are mappings of it; [`socket::SendfileSocket`], under hyper,
//! recognises such a buffer ([`mappings::find`]) and sends it with
//! `sendfile(2)` from the file. Everything above the ring (sequence
//! numbers, keyframe joins, lag policy, HLS segments sharing chunks) sees
//! `Bytes` as before; anything not in a mapping is written as before, so
//! the path falls back by itself (`--zero-copy off`, a chunk the kernel
//! would not take).

pub mod folios;
pub mod mappings;
pub mod pages;
pub mod socket;
