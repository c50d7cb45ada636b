//! A real caller for the simulator tests: a SIP endpoint and a media runtime on 127.0.0.1,
//! sending synthetic speech and keeping what it receives.
#![allow(dead_code)] // each test file uses a part

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_media::g711::Law;
use switchboard_media::runtime::{
    Clip, FrameSink, MediaHandle, MediaRuntime, ReceivedFrame, RuntimeConfig, StreamConfig,
    StreamHandle,
};
use switchboard_sim::rng::Rng;
use switchboard_sim::script::{Part, Script};
use switchboard_sip::endpoint::{CallConfig, CallEvent, CallHandle, Endpoint, EndpointConfig};
use switchboard_sip::sdp::{Codec, LocalMedia};
use switchboard_sip::EndCause;
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// Keeps every received sample (a lock in a test sink is fine).
#[derive(Clone, Default)]
pub struct Keep(pub Arc<Mutex<Vec<i16>>>);

impl FrameSink for Keep {
    fn on_frame(&mut self, f: &ReceivedFrame<'_>) {
        self.0.lock().expect("lock").extend_from_slice(f.pcm);
    }
}

impl Keep {
    pub fn samples(&self) -> Vec<i16> {
        self.0.lock().expect("lock").clone()
    }

    /// Frames (of 160) with a mean |sample| of at least 200.
    pub fn loud_frames(&self) -> usize {
        self.samples()
            .chunks(160)
            .filter(|f| f.iter().map(|&s| i64::from(s).abs()).sum::<i64>() / 160 >= 200)
            .count()
    }
}

pub struct Caller {
    pub ep: Endpoint,
    pub media: MediaHandle,
}

pub struct Placed {
    pub call: CallHandle,
    pub stream: StreamHandle,
    pub heard: Keep,
}

impl Caller {
    pub async fn new() -> Caller {
        let ep = Endpoint::bind(EndpointConfig::new(lo()))
            .await
            .expect("bind caller");
        let media = MediaRuntime::start(RuntimeConfig {
            loops: 1,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            port_min: 30000,
            port_max: 39999,
            ..RuntimeConfig::default()
        })
        .expect("media");
        Caller { ep, media }
    }

    /// Calls `target` sending talk bursts (so the far end hears speech).
    pub async fn call(&self, target: &str) -> Placed {
        self.call_with(target, |c| c).await
    }

    pub async fn call_with(
        &self,
        target: &str,
        tweak: impl FnOnce(CallConfig) -> CallConfig,
    ) -> Placed {
        let bursts: Arc<[Arc<Clip>]> = (0..3)
            .map(|i| Clip::from_pcm(&switchboard_sim::audio::burst(100 + i)))
            .collect::<Vec<_>>()
            .into();
        let heard = Keep::default();
        let stream = self
            .media
            .open_stream(StreamConfig {
                source: Some(Box::new(Script::new(
                    vec![Part::Talk {
                        bank: bursts,
                        pause_ms: (100, 300),
                    }],
                    Rng::new(5),
                ))),
                sink: Some(Box::new(heard.clone())),
                ..StreamConfig::new(Law::Mu)
            })
            .expect("stream");
        let mut local = LocalMedia::new("127.0.0.1", stream.local_addr().port(), 1);
        local.codecs = vec![Codec::pcmu(), Codec::telephone_event(101)];
        let config = tweak(CallConfig::new(target, "sip:tester@127.0.0.1", local));
        let call = self.ep.call(config).await.expect("call");
        Placed {
            call,
            stream,
            heard,
        }
    }
}

impl Placed {
    pub async fn next(&mut self) -> CallEvent {
        timeout(WAIT, self.call.next_event())
            .await
            .expect("event in time")
            .expect("an event")
    }

    /// Waits for the answer (pointing the stream at the far end); the events before it.
    pub async fn answered(&mut self) -> Vec<CallEvent> {
        let mut seen = Vec::new();
        loop {
            let ev = self.next().await;
            match &ev {
                CallEvent::Answered { media, .. } => {
                    let ip: IpAddr = media.remote_address.parse().expect("ip");
                    self.stream
                        .set_remote(SocketAddr::new(ip, media.remote_port))
                        .expect("remote");
                    seen.push(ev);
                    return seen;
                }
                CallEvent::Ended(cause) => panic!("ended before the answer: {cause:?}"),
                _ => seen.push(ev),
            }
        }
    }

    /// Waits for the end; the events before it and the cause.
    pub async fn ended(&mut self) -> (Vec<CallEvent>, EndCause) {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                CallEvent::Ended(cause) => return (seen, cause),
                ev => seen.push(ev),
            }
        }
    }
}

/// Polls `done` every 20 ms for at most `limit`.
pub async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
