//! What the carrier and the agent phones share: answering an INVITE with a media stream,
//! ringing while watching for CANCEL, holding a call until either side ends it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use switchboard_media::codec::Codec as MediaCodec;
use switchboard_media::runtime::{FrameSource, MediaHandle, StreamConfig, StreamHandle};
use switchboard_sip::endpoint::IncomingCall;
use switchboard_sip::sdp::{Codec, LocalMedia};
use switchboard_sip::InboundEnd;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::book::{End, EndedBy};
use crate::relay::JitterRelay;
use crate::rng::Rng;
use crate::script::{Meter, MeterCounts};

/// How long to wait for the far end after we sent BYE or a rejection.
const END_GRACE: Duration = Duration::from_secs(40);

/// The user part of a SIP URI (`sip:+15550100007@host` → `+15550100007`); empty if none.
pub fn user_part(uri: &str) -> &str {
    let rest = uri
        .trim()
        .trim_start_matches('<')
        .split_once(':')
        .map_or("", |(_, r)| r);
    match rest.split_once('@') {
        Some((user, _)) => user.split(';').next().unwrap_or(user),
        None => "",
    }
}

/// The caller's view of how an inbound call ended.
pub(crate) fn ending(end: Option<InboundEnd>) -> End {
    let (by, reason, status) = match end {
        Some(InboundEnd::Rejected { status }) => (EndedBy::Sim, "rejected", Some(status)),
        Some(InboundEnd::Cancelled) => (EndedBy::Caller, "cancelled", Some(487)),
        Some(InboundEnd::RemoteBye) => (EndedBy::Caller, "caller_bye", None),
        Some(InboundEnd::LocalBye) => (EndedBy::Sim, "sim_bye", None),
        Some(InboundEnd::AckTimeout) => (EndedBy::Sim, "no_ack", None),
        Some(InboundEnd::Timeout) => (EndedBy::Sim, "timeout", None),
        None => (EndedBy::Sim, "shutdown", None),
    };
    End { by, reason, status }
}

/// An answered call's media.
pub(crate) struct Leg {
    pub stream: StreamHandle,
    pub meter: Arc<MeterCounts>,
    _relay: Option<JitterRelay>,
}

impl Leg {
    /// RTP packets sent so far (0 if the stream is gone).
    pub async fn sent(&self) -> u64 {
        self.stream
            .stats()
            .await
            .map_or(0, |r| r.counters.packets_sent)
    }
}

/// Why an INVITE could not be answered: the status to reject it with.
pub(crate) type Refusal = (u16, &'static str);

/// Media options of the answering side.
pub(crate) struct MediaPlan<'a> {
    pub media: &'a MediaHandle,
    /// Address for RTP and SDP.
    pub ip: IpAddr,
    /// Jitter to add (0: none) and the generator for it.
    pub jitter: Duration,
    pub rng: Rng,
    /// Answer with opus when the offer has it, wherever it stands there.
    pub prefer_opus: bool,
}

/// Negotiates from the caller's offer (its first codec of PCMU, PCMA and opus), opens the
/// stream playing `source`, and answers 200 OK. On failure the caller should reject with the
/// returned status.
pub(crate) async fn answer(
    inc: &IncomingCall,
    plan: MediaPlan<'_>,
    source: Box<dyn FrameSource>,
) -> Result<Leg, Refusal> {
    const NOT_ACCEPTABLE: Refusal = (488, "Not Acceptable Here");
    let offer = inc.offer.as_ref().ok_or(NOT_ACCEPTABLE)?;
    let mut local = LocalMedia::new(&plan.ip.to_string(), 9, plan.rng.clone().next_u64() >> 1);
    // LocalMedia's codecs: PCMU, PCMA, opus and telephone-event, all carried by the runtime.
    if plan.prefer_opus {
        let opus_only = vec![
            Codec::opus(switchboard_media::codec::DEFAULT_OPUS_PAYLOAD_TYPE),
            Codec::telephone_event(101),
        ];
        let all = core::mem::replace(&mut local.codecs, opus_only);
        if local.answer(offer, 1).is_err() {
            local.codecs = all;
        }
    }
    let probe = local.answer(offer, 1).map_err(|_| NOT_ACCEPTABLE)?;
    let c = &probe.media.codec;
    let codec =
        MediaCodec::from_rtpmap(&c.name, c.clock_rate, c.payload_type).ok_or(NOT_ACCEPTABLE)?;
    let remote_ip: IpAddr = probe
        .media
        .remote_address
        .parse()
        .map_err(|_| NOT_ACCEPTABLE)?;
    let remote = SocketAddr::new(remote_ip, probe.media.remote_port);
    let meter = Meter::default();
    let counts = Arc::clone(&meter.0);
    let stream = plan
        .media
        .open_stream(StreamConfig {
            remote: None,
            codec,
            dtmf_payload_type: probe.media.telephone_event.as_ref().map(|c| c.payload_type),
            source: Some(source),
            sink: Some(Box::new(meter)),
            colocate_with: None,
        })
        .map_err(|e| {
            tracing::warn!(error = %e, "carrier: no media stream");
            (503, "Service Unavailable")
        })?;
    let relay = if plan.jitter.is_zero() {
        None
    } else {
        let relay = JitterRelay::start(plan.ip, stream.local_addr(), remote, plan.jitter, plan.rng)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "carrier: no jitter relay");
                (503, "Service Unavailable")
            })?;
        Some(relay)
    };
    let (advertised, send_to) = match &relay {
        Some(r) => (r.addr().port(), r.addr()),
        None => (stream.local_addr().port(), remote),
    };
    let _ = stream.set_remote(send_to);
    local.port = advertised;
    let answer = local.answer(offer, 1).map_err(|_| NOT_ACCEPTABLE)?;
    inc.accept(&answer.sdp)
        .map_err(|_| (500, "Server Internal Error"))?;
    Ok(Leg {
        stream,
        meter: counts,
        _relay: relay,
    })
}

/// Rings for `ring` (after sending 180 when `send_180`); `Some(end)` if the caller gave up
/// (CANCEL) meanwhile.
pub(crate) async fn ring(inc: &mut IncomingCall, ring: Duration, send_180: bool) -> Option<End> {
    if send_180 {
        let _ = inc.ring();
    }
    if ring.is_zero() {
        return None;
    }
    tokio::select! {
        end = inc.ended() => Some(ending(end)),
        () = tokio::time::sleep(ring) => None,
    }
}

/// Rejects and waits for the end (the ACK).
pub(crate) async fn reject(inc: &mut IncomingCall, status: u16, reason: &str) -> End {
    let _ = inc.reject(status, reason);
    match tokio::time::timeout(END_GRACE, inc.ended()).await {
        Ok(end) => ending(end),
        Err(_) => End {
            by: EndedBy::Sim,
            reason: "rejected",
            status: Some(status),
        },
    }
}

/// Holds an answered call until the caller ends it, `until` passes, or `hangup` is notified
/// (then sends BYE and waits for its answer).
pub(crate) async fn hold(inc: &mut IncomingCall, until: Option<Instant>, hangup: &Notify) -> End {
    let deadline = async {
        match until {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        end = inc.ended() => return ending(end),
        () = deadline => {}
        () = hangup.notified() => {}
    }
    let _ = inc.hangup();
    match tokio::time::timeout(END_GRACE, inc.ended()).await {
        Ok(end) => ending(end),
        Err(_) => End {
            by: EndedBy::Sim,
            reason: "timeout",
            status: None,
        },
    }
}

/// A reason phrase for a final status.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts() {
        assert_eq!(user_part("sip:+15550100007@127.0.0.1:5070"), "+15550100007");
        assert_eq!(user_part("<sip:agent1@10.0.0.1;transport=tcp>"), "agent1");
        assert_eq!(user_part("sip:1234;phone-context=x@h"), "1234");
        assert_eq!(user_part("sip:127.0.0.1"), "");
        assert_eq!(user_part("garbage"), "");
    }
}
