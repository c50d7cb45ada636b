//! RTP port allocation from a configured range: an even port for RTP and the next odd one for
//! RTCP (or the even port alone with rtcp-mux). A port is free again as soon as its socket is
//! closed, so the allocator keeps no table: it walks the range round-robin from where it last
//! succeeded and skips ports that fail to bind (in use by this process or another).

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicU32, Ordering};
use std::net::UdpSocket;

use crate::{Error, Result};

#[derive(Debug)]
pub(crate) struct PortAllocator {
    ip: IpAddr,
    /// First even port.
    first: u16,
    /// Number of even ports usable (each with its odd neighbour inside the range).
    pairs: u32,
    next: AtomicU32,
    min: u16,
    max: u16,
}

/// The sockets of one stream, non-blocking.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: Option<UdpSocket>,
}

impl PortAllocator {
    pub(crate) fn new(ip: IpAddr, min: u16, max: u16) -> Result<Self> {
        let first = min.saturating_add(min % 2);
        // Even ports p with p + 1 <= max.
        let pairs = if max > first {
            (u32::from(max) - u32::from(first)).div_ceil(2)
        } else {
            0
        };
        if pairs == 0 {
            return Err(Error::InvalidRuntimeConfig {
                reason: "port range holds no even/odd port pair",
            });
        }
        Ok(Self {
            ip,
            first,
            pairs,
            next: AtomicU32::new(0),
            min,
            max,
        })
    }

    /// Number of streams the range can hold.
    pub(crate) fn pairs(&self) -> usize {
        self.pairs as usize
    }

    pub(crate) fn allocate(&self, rtcp_mux: bool) -> Result<Bound> {
        for _ in 0..self.pairs {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pairs;
            let port = self.first + (2 * i) as u16;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            let rtcp = if rtcp_mux {
                None
            } else {
                match UdpSocket::bind(SocketAddr::new(self.ip, port + 1)) {
                    Ok(s) => Some(s),
                    Err(_) => continue,
                }
            };
            let nonblocking = rtp
                .set_nonblocking(true)
                .and_then(|()| rtcp.as_ref().map_or(Ok(()), |s| s.set_nonblocking(true)));
            if let Err(e) = nonblocking {
                return Err(Error::Io { kind: e.kind() });
            }
            return Ok(Bound { rtp, rtcp });
        }
        Err(Error::NoFreePort {
            min: self.min,
            max: self.max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn pairs_and_exhaustion() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(PortAllocator::new(lo, 5001, 5001).is_err());
        let a = PortAllocator::new(lo, 47001, 47006).unwrap();
        // 47002/3 and 47004/5; 47006 has no odd neighbour in range.
        assert_eq!(a.pairs(), 2);
        let mut held = Vec::new();
        while let Ok(b) = a.allocate(false) {
            let port = b.rtp.local_addr().unwrap().port();
            assert_eq!(port % 2, 0);
            assert_eq!(
                b.rtcp.as_ref().unwrap().local_addr().unwrap().port(),
                port + 1
            );
            held.push(b);
        }
        // Both pairs, unless another process holds one.
        assert!(held.len() <= 2);
        assert_eq!(
            a.allocate(true).err(),
            Some(Error::NoFreePort {
                min: 47001,
                max: 47006
            })
        );
        let freed = held.pop().map(|b| b.rtp.local_addr().unwrap().port());
        drop(held);
        if freed.is_some() {
            assert!(a.allocate(true).is_ok());
        }
    }
}
