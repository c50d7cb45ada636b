//! Server transactions driven by untrusted messages and arbitrary virtual time.
//!
//! A server INVITE or non-INVITE transaction is created from a fixed valid request; the input
//! is then read as a script of steps: feed a message parsed from the input, retransmit the
//! original request, send an ACK for it, send a response of some status from the TU, advance
//! virtual time (and run timers), jump to the next deadline, or report a transport error.
//! Property: no panics, and a terminated transaction has no deadline.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchboard_sip::{
    Message, Request, Response, ServerInvite, ServerNonInvite, TimerConfig,
};

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: fuzz-call-1@192.0.2.1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

const ACK: &[u8] = b"ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>;tag=b1\r\n\
Call-ID: fuzz-call-1@192.0.2.1\r\n\
CSeq: 1 ACK\r\n\
Content-Length: 0\r\n\r\n";

const OPTIONS: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz2\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a2\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: fuzz-call-2@192.0.2.1\r\n\
CSeq: 7 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

fn request(bytes: &[u8]) -> Request {
    match Message::parse(bytes) {
        Ok(Message::Request(r)) => r,
        other => panic!("fixture does not parse as a request: {other:?}"),
    }
}

/// The common surface of the two server machines.
trait Machine {
    fn handle_message(&mut self, now: Instant, msg: Message);
    fn send_response(&mut self, now: Instant, resp: Response);
    fn handle_timeout(&mut self, now: Instant);
    fn handle_transport_error(&mut self, now: Instant);
    fn request(&self) -> &Request;
    fn drain(&mut self);
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_terminated(&self) -> bool;
}

macro_rules! machine {
    ($t:ty) => {
        impl Machine for $t {
            fn handle_message(&mut self, now: Instant, msg: Message) {
                <$t>::handle_message(self, now, msg)
            }
            fn send_response(&mut self, now: Instant, resp: Response) {
                let _ = <$t>::send_response(self, now, resp);
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn handle_transport_error(&mut self, now: Instant) {
                <$t>::handle_transport_error(self, now)
            }
            fn request(&self) -> &Request {
                <$t>::request(self)
            }
            fn drain(&mut self) {
                while let Some(m) = self.poll_transmit() {
                    let _ = m.to_bytes();
                }
                while self.poll_event().is_some() {}
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn is_terminated(&self) -> bool {
                <$t>::is_terminated(self)
            }
        }
    };
}
machine!(ServerInvite);
machine!(ServerNonInvite);

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fn run(m: &mut dyn Machine, start: Instant, input: &mut Input<'_>, ack: &Message) {
    let mut now = start;
    m.drain();
    for _ in 0..256 {
        let Some(op) = input.byte() else { break };
        match op % 8 {
            0 => {
                // A message from the wire, length-prefixed.
                let len = usize::from(input.u16().unwrap_or(0));
                if let Ok(msg) = Message::parse(input.take(len)) {
                    m.handle_message(now, msg);
                }
            }
            1 => m.handle_message(now, Message::Request(m.request().clone())),
            2 => m.handle_message(now, ack.clone()),
            3 => {
                let status = 100 + input.u16().unwrap_or(0) % 600;
                let mut resp = Response::from_request(m.request(), status, "Fuzz");
                let _ = resp.set_to_tag("b1");
                m.send_response(now, resp);
            }
            4 => {
                // Any step from 0 to ~65 s, in ms.
                now += Duration::from_millis(u64::from(input.u16().unwrap_or(0)));
                m.handle_timeout(now);
            }
            5 => {
                if let Some(deadline) = m.poll_timeout() {
                    now = now.max(deadline);
                }
                m.handle_timeout(now);
            }
            6 => m.handle_transport_error(now),
            _ => {
                // A timeout call before any deadline (spurious wake-up).
                m.handle_timeout(now);
            }
        }
        m.drain();
        if m.is_terminated() {
            assert_eq!(m.poll_timeout(), None, "terminated transaction keeps a deadline");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(mode) = input.byte() else { return };
    let reliable = mode & 1 != 0;
    let config = TimerConfig::default();
    let start = Instant::now();
    let ack = Message::parse(ACK).expect("ACK fixture");
    if mode & 2 != 0 {
        let mut tx = ServerInvite::new(start, request(INVITE), config, reliable)
            .expect("valid INVITE must create a transaction");
        run(&mut tx, start, &mut input, &ack);
    } else {
        let mut tx = ServerNonInvite::new(start, request(OPTIONS), config, reliable)
            .expect("valid OPTIONS must create a transaction");
        run(&mut tx, start, &mut input, &ack);
    }
});
