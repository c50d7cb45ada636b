//! switchboard-sip: the sans-IO SIP core of Switchboard.
//!
//! Everything in this crate is a plain state machine or a pure function: it takes `now: Instant`
//! and input (bytes, messages) and returns output (messages to send, events, the next deadline).
//! It never reads a clock, opens a socket, spawns a task or takes a lock. The two exceptions are
//! the tokio driver modules [`transport`] and [`endpoint`], which own the sockets and the
//! deadline heap and feed the machines; nothing else in the crate depends on them.
//!
//! Map:
//! - [`message`]: SIP requests and responses, parsing (datagram and stream framing) and
//!   serialization; [`headers`] holds the header collection and the typed header values
//!   ([`Via`], [`NameAddr`], [`CSeq`], ...).
//! - [`timer`]: the closed set of transaction timers and the deadline table.
//! - [`transaction`]: the four RFC 3261 §17 transaction machines with the RFC 6026 fixes.
//! - [`dialog`]: the UAC dialog of an outbound call (INVITE, ACK, BYE, CANCEL, re-INVITE,
//!   session timers, digest retry, redirects), owning its transactions.
//! - [`inbound`]: the UAS side of one inbound call (accept, reject, CANCEL, BYE).
//! - [`sdp`]: SDP (RFC 4566) for audio and the RFC 3264 offer/answer model.
//! - [`registration`]: the REGISTER client of one trunk (digest, refresh, 423, backoff).
//! - [`transport`] (tokio): UDP and TCP with Content-Length framing and connection reuse.
//! - [`endpoint`] (tokio): the task owning sockets, machines and timers; registration, call
//!   and inbound-call handles.
//! - [`digest`]: HTTP digest authentication (RFC 7616 / RFC 2617) for both sides.

pub mod dialog;
pub mod digest;
pub mod endpoint;
mod error;
pub mod headers;
pub mod inbound;
pub mod message;
pub mod outcome;
pub mod registration;
pub mod sdp;
pub mod timer;
pub mod transaction;
pub mod transport;

pub use dialog::{
    AuthCredentials, CallConfig, Dialog, DialogEvent, DialogState, IdSource, TerminationReason,
};
pub use digest::{Algorithm, Challenge, Credentials, Qop};
pub use error::{Error, Result};
pub use headers::{CSeq, HeaderName, Headers, NameAddr, Params, Via};
pub use inbound::{InboundCall, InboundConfig, InboundEnd, InboundEvent, InboundState};
pub use message::{bad_request_response, Message, Method, Request, Response};
pub use outcome::{outcome_for_status, CallOutcome, EndCause};
pub use registration::{
    Registration, RegistrationConfig, RegistrationEvent, RegistrationFailure, RegistrationStatus,
};
pub use timer::{Timer, TimerConfig, TimerTable};
pub use transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState, Event, ServerInvite,
    ServerInviteState, ServerNonInvite, ServerNonInviteState, TransactionKey,
};
