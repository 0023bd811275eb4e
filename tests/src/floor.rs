//! The fan-out floor: a bare server that writes one shared stream to every
//! client and does nothing else, so acemux's cost per GB can be compared
//! with the least any server could spend on the same machine in the same
//! run (`acemux-load --floor`).
//!
//! One task makes the simulated engine's TS at the set bitrate in chunks
//! of the same size acemux uses and broadcasts each chunk as a shared
//! `Bytes`; one task per client reads its request head, answers a bare
//! HTTP/1.0 header and `write_all`s every chunk. No ring, no timeouts, no
//! keepalive, no accounting: what is left is the kernel's work and the
//! wake-ups.

use std::time::{Duration, Instant};

use ace_sim::TsGenerator;
use acemux_ts::PACKET_SIZE;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Serves until the process ends.
pub async fn serve_floor(listener: TcpListener, bitrate_bps: u64, chunk_bytes: usize) -> anyhow::Result<()> {
    let (tx, _) = broadcast::channel::<Bytes>(256);
    let producer = tx.clone();
    let packets = (chunk_bytes / PACKET_SIZE).max(1);
    let period = Duration::from_secs_f64((packets * PACKET_SIZE * 8) as f64 / bitrate_bps.max(1) as f64);
    tokio::spawn(async move {
        let mut generator = TsGenerator::new(0);
        let started = Instant::now();
        let mut sent = 0u32;
        loop {
            let mut chunk = Vec::with_capacity(packets * PACKET_SIZE);
            generator.write(packets, &mut chunk);
            let _ = producer.send(Bytes::from(chunk));
            sent += 1;
            tokio::time::sleep_until((started + period * sent).into()).await;
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let mut head = [0u8; 4096];
            let mut got = 0;
            while !head[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < head.len() {
                match socket.read(&mut head[got..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
            }
            if socket.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n").await.is_err() {
                return;
            }
            loop {
                match rx.recv().await {
                    Ok(chunk) => {
                        if socket.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}
