//! How a call ended, in the dialer's terms: the final status mapped to an outcome, keeping the
//! Q.850 cause of a Reason header (RFC 3326).

use crate::dialog::TerminationReason;

/// The dialer's reading of a call's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call was answered and then hung up (by either side).
    Completed,
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// 408, 480, 487 from the far end, or no final response at all.
    NoAnswer,
    /// 404, 484, 604: the number does not exist.
    InvalidNumber,
    /// We cancelled before the answer.
    Cancelled,
    /// Anything else: 403, 503, other 4xx–6xx, auth failure, media failure, transport error.
    Failed,
}

/// Why a call ended: the outcome plus the SIP status and Q.850 cause when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndCause {
    pub outcome: CallOutcome,
    /// The final status of the INVITE, when one ended the call.
    pub status: Option<u16>,
    /// The Q.850 cause of a `Reason: Q.850;cause=N` header.
    pub q850_cause: Option<u16>,
    /// Human readable detail (reason phrase or the local reason).
    pub reason: String,
    /// True when the far end hung up (BYE from the peer).
    pub by_remote: bool,
}

/// The outcome of a final INVITE status.
pub fn outcome_for_status(status: u16) -> CallOutcome {
    match status {
        200..=299 => CallOutcome::Completed,
        486 | 600 => CallOutcome::Busy,
        408 | 480 | 487 => CallOutcome::NoAnswer,
        404 | 484 | 604 => CallOutcome::InvalidNumber,
        _ => CallOutcome::Failed,
    }
}

impl EndCause {
    /// Maps the dialog's termination reason.
    pub fn from_termination(reason: &TerminationReason) -> EndCause {
        let simple = |outcome, text: &str, by_remote| EndCause {
            outcome,
            status: None,
            q850_cause: None,
            reason: text.to_owned(),
            by_remote,
        };
        match reason {
            TerminationReason::Rejected {
                status,
                reason,
                q850_cause,
            } => EndCause {
                outcome: outcome_for_status(*status),
                status: Some(*status),
                q850_cause: *q850_cause,
                reason: reason.clone(),
                by_remote: true,
            },
            TerminationReason::Cancelled => simple(CallOutcome::Cancelled, "cancelled", false),
            TerminationReason::LocalBye => simple(CallOutcome::Completed, "local hangup", false),
            TerminationReason::RemoteBye => simple(CallOutcome::Completed, "remote hangup", true),
            TerminationReason::Timeout => simple(CallOutcome::NoAnswer, "no response", false),
            TerminationReason::TransportError => {
                simple(CallOutcome::Failed, "transport error", false)
            }
            TerminationReason::MediaNegotiationFailed => {
                simple(CallOutcome::Failed, "no common codec", false)
            }
            TerminationReason::AuthenticationFailed { status } => EndCause {
                status: Some(*status),
                ..simple(CallOutcome::Failed, "authentication failed", true)
            },
            TerminationReason::TooManyRedirects => {
                simple(CallOutcome::Failed, "too many redirects", false)
            }
            TerminationReason::SessionExpired => {
                simple(CallOutcome::Completed, "session expired", false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_dialer_outcomes() {
        for (status, outcome) in [
            (486, CallOutcome::Busy),
            (600, CallOutcome::Busy),
            (408, CallOutcome::NoAnswer),
            (480, CallOutcome::NoAnswer),
            (487, CallOutcome::NoAnswer),
            (404, CallOutcome::InvalidNumber),
            (484, CallOutcome::InvalidNumber),
            (604, CallOutcome::InvalidNumber),
            (403, CallOutcome::Failed),
            (503, CallOutcome::Failed),
            (500, CallOutcome::Failed),
        ] {
            assert_eq!(outcome_for_status(status), outcome, "{status}");
        }
    }

    #[test]
    fn rejection_keeps_the_q850_cause() {
        let cause = EndCause::from_termination(&TerminationReason::Rejected {
            status: 486,
            reason: "Busy Here".into(),
            q850_cause: Some(17),
        });
        assert_eq!(cause.outcome, CallOutcome::Busy);
        assert_eq!((cause.status, cause.q850_cause), (Some(486), Some(17)));
        let cancelled = EndCause::from_termination(&TerminationReason::Cancelled);
        assert_eq!(cancelled.outcome, CallOutcome::Cancelled);
        let bye = EndCause::from_termination(&TerminationReason::RemoteBye);
        assert!(bye.by_remote && bye.outcome == CallOutcome::Completed);
    }
}
