//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3).

use crate::error::{Error, Result};
use crate::message::{Method, Request, Response};

/// The RFC 3261 branch prefix; branches without it come from RFC 2543 peers, which we do not
/// match (their requests get no transaction and are dropped by the caller).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies a transaction: the top Via branch, the sent-by (server side only) and the method.
///
/// On the server side an ACK maps to the INVITE it acknowledges (same branch for a non-2xx
/// ACK), and a CANCEL has its own transaction whose target is found with
/// [`TransactionKey::cancel_target`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    pub branch: String,
    /// Lower-cased `host[:port]` of the top Via; `None` for client keys.
    pub sent_by: Option<String>,
    pub method: Method,
}

fn branch_of(branch: Option<&str>) -> Result<String> {
    let branch = branch.ok_or(Error::InvalidHeader("Via"))?;
    if !branch.starts_with(MAGIC_COOKIE) {
        return Err(Error::LegacyBranch);
    }
    Ok(branch.to_owned())
}

impl TransactionKey {
    /// Key of a client transaction for the request it sends.
    pub fn client(req: &Request) -> Result<TransactionKey> {
        let via = req.headers.top_via()?;
        Ok(TransactionKey {
            branch: branch_of(via.branch())?,
            sent_by: None,
            method: req.method.clone(),
        })
    }

    /// The client transaction a received response belongs to: top Via branch and CSeq method.
    pub fn for_response(resp: &Response) -> Result<TransactionKey> {
        let via = resp.headers.top_via()?;
        Ok(TransactionKey {
            branch: branch_of(via.branch())?,
            sent_by: None,
            method: resp.headers.cseq()?.method,
        })
    }

    /// The server transaction a received request belongs to: branch, sent-by and method,
    /// where ACK counts as INVITE.
    pub fn server(req: &Request) -> Result<TransactionKey> {
        let via = req.headers.top_via()?;
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        Ok(TransactionKey {
            branch: branch_of(via.branch())?,
            sent_by: Some(via.sent_by().to_ascii_lowercase()),
            method,
        })
    }

    /// The INVITE server transaction a CANCEL targets (RFC 3261 §9.2).
    pub fn cancel_target(cancel: &Request) -> Result<TransactionKey> {
        let mut key = TransactionKey::server(cancel)?;
        key.method = Method::Invite;
        Ok(key)
    }
}
