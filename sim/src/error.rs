//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in `switchboard-sim`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SIP endpoint refused an operation.
    #[error("{op}: {source}")]
    Sip {
        op: &'static str,
        source: switchboard_sip::Error,
    },
    /// The media runtime refused an operation.
    #[error("{op}: {source}")]
    Media {
        op: &'static str,
        source: switchboard_media::Error,
    },
    /// A WAV file could not be read.
    #[error("{}: {source}", path.display())]
    Wav {
        path: PathBuf,
        source: switchboard_media::Error,
    },
    /// A file could not be written.
    #[error("{}: {kind}", path.display())]
    File {
        path: PathBuf,
        kind: std::io::ErrorKind,
    },
    /// A socket operation failed.
    #[error("{op}: {kind}")]
    Io {
        op: &'static str,
        kind: std::io::ErrorKind,
    },
    /// A behaviour name in a mix or rule is not known.
    #[error("unknown behaviour {name:?} (human, machine, machine_nobeep, busy, no_answer, unavailable, reject:CODE, ring:MS:BEHAVIOUR)")]
    UnknownBehavior { name: String },
    /// A `--mix` or `--rule` entry does not parse.
    #[error("invalid {what} {input:?}: {reason}")]
    InvalidPlan {
        what: &'static str,
        input: String,
        reason: &'static str,
    },
    /// A command-line value is unusable.
    #[error("--{flag}: {reason}")]
    InvalidArgument { flag: &'static str, reason: String },
    /// The registrar refused the registration.
    #[error("registration failed: {failure}")]
    RegistrationFailed {
        failure: switchboard_sip::RegistrationFailure,
    },
    /// Not every call of `switchboard call` was answered.
    #[error("{answered} of {attempted} calls answered")]
    NotAllAnswered { attempted: u64, answered: u64 },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn sip(op: &'static str) -> impl FnOnce(switchboard_sip::Error) -> Error {
        move |source| Error::Sip { op, source }
    }

    pub(crate) fn media(op: &'static str) -> impl FnOnce(switchboard_media::Error) -> Error {
        move |source| Error::Media { op, source }
    }

    pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |e| Error::Io { op, kind: e.kind() }
    }
}
