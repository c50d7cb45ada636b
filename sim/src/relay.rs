//! Network jitter for one call's RTP, which the media runtime cannot make itself: it sends
//! every stream's packets at its 20 ms tick, so packets leave on time by design.
//!
//! A [`JitterRelay`] is a UDP socket the simulated party advertises in its SDP in place of its
//! stream's own. Packets from the stream to the caller are held for a random delay in
//! `[0, jitter]` (so with `jitter` above 20 ms they may also be reordered, as on a real
//! network); packets from the caller go straight to the stream. RTCP is not relayed.
//!
//! Buffers come from a fixed pool allocated at start; when all are in flight a packet is
//! dropped (and counted), never allocated for.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::rng::Rng;
use crate::{Error, Result};

/// Packets that can be held at once.
const POOL: usize = 64;
const BUF: usize = 1500;

/// Counters of a relay.
#[derive(Debug, Default)]
pub struct RelayCounts {
    /// Packets delayed and forwarded to the caller.
    pub delayed: AtomicU64,
    /// Packets forwarded from the caller to the stream.
    pub forwarded: AtomicU64,
    /// Packets dropped because the pool was full.
    pub dropped: AtomicU64,
}

/// A running relay; dropping it stops it.
#[derive(Debug)]
pub struct JitterRelay {
    addr: SocketAddr,
    counts: Arc<RelayCounts>,
    task: JoinHandle<()>,
}

impl JitterRelay {
    /// Binds on `ip` (any port) and relays between `stream` (the local RTP stream) and
    /// `caller` (its media address from SDP; re-learnt from the caller's packets).
    pub async fn start(
        ip: IpAddr,
        stream: SocketAddr,
        caller: SocketAddr,
        jitter: Duration,
        rng: Rng,
    ) -> Result<JitterRelay> {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(Error::io("bind jitter relay"))?;
        let addr = sock.local_addr().map_err(Error::io("bind jitter relay"))?;
        let counts = Arc::new(RelayCounts::default());
        let task = tokio::spawn(run(sock, stream, caller, jitter, rng, Arc::clone(&counts)));
        Ok(JitterRelay { addr, counts, task })
    }

    /// The address to advertise in SDP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counts(&self) -> &RelayCounts {
        &self.counts
    }
}

impl Drop for JitterRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    sock: UdpSocket,
    stream: SocketAddr,
    mut caller: SocketAddr,
    jitter: Duration,
    mut rng: Rng,
    counts: Arc<RelayCounts>,
) {
    let mut pool: Vec<Box<[u8; BUF]>> = (0..POOL).map(|_| Box::new([0u8; BUF])).collect();
    let mut lens = [0usize; POOL];
    let mut free: Vec<usize> = (0..POOL).collect();
    // (due, arrival order, slot)
    let mut held: BinaryHeap<Reverse<(Instant, u64, usize)>> = BinaryHeap::with_capacity(POOL);
    let mut order = 0u64;
    let mut rx = Box::new([0u8; BUF]);
    let jitter_us = jitter.as_micros() as u64;
    loop {
        let next_due = held.peek().map(|Reverse((at, _, _))| *at);
        tokio::select! {
            r = sock.recv_from(&mut rx[..]) => {
                let Ok((n, from)) = r else { continue };
                if from == stream {
                    let Some(slot) = free.pop() else {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    pool[slot][..n].copy_from_slice(&rx[..n]);
                    lens[slot] = n;
                    let delay = Duration::from_micros(rng.between(0, jitter_us));
                    order += 1;
                    held.push(Reverse((Instant::now() + delay, order, slot)));
                } else {
                    caller = from;
                    if sock.send_to(&rx[..n], stream).await.is_ok() {
                        counts.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            () = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                while let Some(Reverse((at, _, slot))) = held.peek().copied() {
                    if at > now {
                        break;
                    }
                    held.pop();
                    if sock.send_to(&pool[slot][..lens[slot]], caller).await.is_ok() {
                        counts.delayed.fetch_add(1, Ordering::Relaxed);
                    }
                    free.push(slot);
                }
            }
        }
    }
}
