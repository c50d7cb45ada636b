//! Transports of the tokio driver: UDP datagrams and TCP streams (RFC 3261 §18).
//!
//! UDP is one socket owned by the endpoint task. TCP has one task per connection (never per
//! message) that frames the stream by Content-Length ([`Message::parse_stream`], partial reads
//! buffered), writes what the endpoint queues for that peer, and reports messages back on one
//! channel. Connections are reused by remote address, whichever side opened them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::message::Message;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    /// The Via token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Reliable transports run no retransmission timers.
    pub fn is_reliable(self) -> bool {
        self == Transport::Tcp
    }

    /// The `;transport=` URI parameter for Contact (none for UDP, the default).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        }
    }
}

/// What the transports hand to the endpoint task.
#[derive(Debug)]
pub(crate) enum NetEvent {
    Message {
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    },
    /// Bytes that did not frame or parse; the stream is closed after them.
    Malformed {
        bytes: Vec<u8>,
        source: SocketAddr,
    },
    Closed {
        peer: SocketAddr,
    },
}

/// Most bytes buffered for one TCP peer before the connection is dropped.
const MAX_STREAM_BUFFER: usize = 2 * 1024 * 1024;

/// The open TCP connections, by remote address.
#[derive(Debug)]
pub(crate) struct TcpConns {
    conns: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    events: mpsc::UnboundedSender<NetEvent>,
}

impl TcpConns {
    pub fn new(events: mpsc::UnboundedSender<NetEvent>) -> TcpConns {
        TcpConns {
            conns: HashMap::new(),
            events,
        }
    }

    /// Queues `bytes` to `peer`, connecting first when no connection is open.
    pub fn send(&mut self, peer: SocketAddr, bytes: Vec<u8>) {
        if let Some(tx) = self.conns.get(&peer) {
            match tx.send(bytes) {
                Ok(()) => return,
                Err(mpsc::error::SendError(b)) => {
                    self.conns.remove(&peer);
                    return self.connect(peer, b);
                }
            }
        }
        self.connect(peer, bytes);
    }

    fn connect(&mut self, peer: SocketAddr, first: Vec<u8>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(first);
        self.conns.insert(peer, tx);
        let events = self.events.clone();
        tokio::spawn(async move {
            match TcpStream::connect(peer).await {
                Ok(stream) => run_connection(stream, peer, rx, events).await,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "tcp connect failed");
                    let _ = events.send(NetEvent::Closed { peer });
                }
            }
        });
    }

    /// Takes over an accepted connection.
    pub fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.conns.insert(peer, tx);
        tokio::spawn(run_connection(stream, peer, rx, self.events.clone()));
    }

    pub fn closed(&mut self, peer: SocketAddr) {
        self.conns.remove(&peer);
    }
}

async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::UnboundedSender<NetEvent>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'conn: loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Some(bytes) => {
                    if writer.write_all(&bytes).await.is_err() {
                        break 'conn;
                    }
                }
                None => break 'conn,
            },
            read = reader.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    match Message::parse_stream(&buf) {
                        Ok(Some((msg, used))) => {
                            buf.drain(..used);
                            let _ = events.send(NetEvent::Message { msg, source: peer, transport: Transport::Tcp });
                        }
                        Ok(None) if buf.len() <= MAX_STREAM_BUFFER => break,
                        Ok(None) | Err(_) => {
                            // A stream that does not frame cannot be resynchronised.
                            let _ = events.send(NetEvent::Malformed { bytes: std::mem::take(&mut buf), source: peer });
                            break 'conn;
                        }
                    }
                }
            }
        }
    }
    let _ = events.send(NetEvent::Closed { peer });
}

/// `host` and `port` of a SIP URI (`sip:user@host:port;params`, `<...>` allowed), when the
/// host is an IP literal; `default_port` when the URI names none.
pub fn uri_socket_addr(uri: &str, default_port: u16) -> Option<SocketAddr> {
    let (host, port) = uri_host_port(uri)?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port.unwrap_or(default_port)))
}

/// `host` and optional `port` of a SIP URI.
pub fn uri_host_port(uri: &str) -> Option<(&str, Option<u16>)> {
    let u = uri.trim().trim_start_matches('<');
    let u = u.split('>').next()?;
    let rest = u
        .strip_prefix("sips:")
        .or_else(|| u.strip_prefix("sip:"))
        .unwrap_or(u);
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = hostport.split([';', '?']).next()?;
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host, port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((hostport, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_addresses() {
        let a = |u| uri_socket_addr(u, 5060);
        assert_eq!(a("sip:bob@127.0.0.1:5070"), "127.0.0.1:5070".parse().ok());
        assert_eq!(a("<sip:127.0.0.1;lr>"), "127.0.0.1:5060".parse().ok());
        assert_eq!(
            a("sip:alice@[::1]:5080;transport=tcp"),
            "[::1]:5080".parse().ok()
        );
        assert_eq!(a("sip:bob@example.com"), None);
        assert_eq!(
            uri_host_port("sips:carol@host.example:5061?x=y"),
            Some(("host.example", Some(5061)))
        );
        assert_eq!(uri_host_port("sip:bob@1.2.3.4:notaport"), None);
    }
}
