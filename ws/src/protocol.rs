//! Wire format: the envelope, client messages, and the CRM flavour's renaming.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_engine::events::Event;

/// `{"type", "channel"?, "data", "timestamp"}`.
pub fn envelope(kind: &str, channel: Option<&str>, data: Value) -> String {
    let mut m = json!({"type": kind, "data": data, "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
    if let Some(c) = channel {
        m["channel"] = Value::from(c);
    }
    m.to_string()
}

/// An event on the wire, borrowed from the bus (serialized once per flavour, not per
/// connection).
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a Value,
    timestamp: String,
}

fn wire(kind: &str, channel: Option<&str>, e: &Event) -> Option<String> {
    let empty = json!({});
    let w = Wire {
        kind,
        channel,
        data: if e.data.is_null() { &empty } else { &e.data },
        timestamp: e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    serde_json::to_string(&w).ok()
}

/// An event as `/ws` sends it.
pub fn event_message(e: &Event) -> Option<String> {
    wire(e.kind, Some(e.channel.as_str()), e)
}

/// The `/ws/calls` (CRM spec) name of an event, when it has a counterpart there.
pub fn crm_kind(e: &Event) -> Option<&'static str> {
    match e.kind {
        "callInitiated" => Some("new_call"),
        "callConnected" | "callEnded" | "callUpdated" | "callQualityUpdate" => Some("call_updated"),
        _ => None,
    }
}

/// An event as `/ws/calls` (CRM spec) sends it, when it has a counterpart there.
pub fn crm_message(e: &Event) -> Option<String> {
    wire(crm_kind(e)?, None, e)
}

/// What a client may send.
#[derive(Debug, Deserialize)]
pub struct ClientMessage {
    #[serde(rename = "type")]
    pub kind: String,
    pub channel: Option<String>,
    pub token: Option<String>,
    #[serde(rename = "agentId")]
    pub agent_id: Option<String>,
    pub status: Option<String>,
    #[serde(default)]
    pub data: Value,
}

impl ClientMessage {
    /// `agentId` at the top level (dialer spec) or under `data`.
    pub fn agent(&self) -> Option<String> {
        self.agent_id.clone().or_else(|| {
            self.data
                .get("agentId")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    /// `status` at the top level or under `data`.
    pub fn status_value(&self) -> Option<String> {
        self.status.clone().or_else(|| {
            self.data
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }
}

/// Resident memory of this process in bytes (Linux), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_accept_both_shapes() {
        let a: ClientMessage =
            serde_json::from_str(r#"{"type":"agent:join","agentId":"a1"}"#).unwrap();
        assert_eq!(a.agent().as_deref(), Some("a1"));
        let b: ClientMessage = serde_json::from_str(
            r#"{"type":"agent:status","data":{"agentId":"a2","status":"break"}}"#,
        )
        .unwrap();
        assert_eq!(
            (b.agent().as_deref(), b.status_value().as_deref()),
            (Some("a2"), Some("break"))
        );
        let e: Value =
            serde_json::from_str(&envelope("subscribed", Some("calls"), json!({}))).unwrap();
        assert_eq!(e["channel"], "calls");
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
