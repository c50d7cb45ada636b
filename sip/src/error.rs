//! The one error type of the crate.

/// Everything that can go wrong in `switchboard-sip`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input holds no message at all (only whitespace or nothing).
    #[error("empty message")]
    Empty,
    /// The head of a datagram does not end with an empty line.
    #[error("message head is not terminated by an empty line")]
    UnterminatedHead,
    /// The head (start line and headers) is not valid UTF-8.
    #[error("message head is not valid UTF-8")]
    NonUtf8Head,
    /// The head is larger than the parser accepts.
    #[error("message head exceeds {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// The body is larger than the parser accepts.
    #[error("message body of {declared} bytes exceeds {limit} bytes")]
    BodyTooLarge { declared: usize, limit: usize },
    /// The start line is neither a request line nor a status line.
    #[error("invalid start line")]
    InvalidStartLine,
    /// The start line names a SIP version other than SIP/2.0.
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    /// The status code is not three digits in 100..=699.
    #[error("invalid status code")]
    InvalidStatusCode,
    /// A method is not a token.
    #[error("invalid method")]
    InvalidMethod,
    /// A header line has no colon, an empty or non-token name, or a continuation with no header.
    #[error("invalid header line {line}")]
    InvalidHeaderLine { line: usize },
    /// The Content-Length value is not a decimal number.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// A stream message carries no Content-Length (RFC 3261 §18.3 requires it there).
    #[error("Content-Length is required on a stream transport")]
    MissingContentLength,
    /// The body is shorter than the declared Content-Length.
    #[error("body truncated: Content-Length {declared}, {available} bytes present")]
    TruncatedBody { declared: usize, available: usize },
    /// A header the operation needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but its value does not parse.
    #[error("invalid {0} header")]
    InvalidHeader(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// The top Via branch lacks the RFC 3261 magic cookie `z9hG4bK` (RFC 2543 peers).
    #[error("Via branch lacks the z9hG4bK magic cookie")]
    LegacyBranch,
    /// A transaction was asked to do something its kind or state does not allow.
    #[error("transaction cannot {action} in state {state}")]
    InvalidState {
        action: &'static str,
        state: &'static str,
    },
    /// An authentication header uses a scheme other than Digest.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A digest header lacks a required parameter or has a malformed one.
    #[error("digest parameter {0} is missing or malformed")]
    DigestParam(&'static str),
    /// The digest algorithm is not one we implement.
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    /// The challenge offers no qop we implement.
    #[error("unsupported digest qop")]
    UnsupportedQop,
    /// An SDP line is malformed (`line` is 1-based; 0 for the body as a whole).
    #[error("invalid SDP at line {line}: {field}")]
    InvalidSdp { line: usize, field: &'static str },
    /// A mandatory SDP field is absent.
    #[error("SDP lacks the {0}= field")]
    MissingSdpField(&'static str),
    /// Offer/answer found no codec both sides support; answer 488 Not Acceptable Here.
    #[error("no common codec")]
    NoCommonCodec,
    /// The SDP holds no usable audio stream; answer 488 Not Acceptable Here.
    #[error("no audio stream")]
    NoAudioStream,
    /// An INVITE response or request needed a body that was absent or not SDP.
    #[error("missing SDP body")]
    MissingSdp,
    /// A socket operation of the endpoint failed.
    #[error("{op} failed: {kind}")]
    Io {
        op: &'static str,
        kind: std::io::ErrorKind,
    },
    /// The endpoint task is gone (shut down or panicked).
    #[error("endpoint is closed")]
    EndpointClosed,
    /// No final response arrived before the transaction gave up (Timer F for `{0}`).
    #[error("no response to {0} (transaction timeout)")]
    Timeout(&'static str),
}

impl Error {
    /// The status a UAS answers an INVITE with when this error refused its offer.
    pub fn offer_rejection_status(&self) -> u16 {
        match self {
            Error::NoCommonCodec | Error::NoAudioStream | Error::MissingSdp => 488,
            _ => 400,
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
