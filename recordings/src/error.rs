//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `switchboard-recordings`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An id used to build a storage key is not UUID-shaped.
    #[error("{field} is not a UUID")]
    InvalidId {
        /// Which id: `"tenant_id"` or `"call_id"`.
        field: &'static str,
    },
    /// The extension of a storage key is not one of the supported audio formats.
    #[error("unsupported recording extension")]
    InvalidExtension,
    /// A stored key string does not have the shape that [`crate::Key::for_call`] produces.
    #[error("malformed storage key")]
    InvalidKey,
    /// No object is stored under this key.
    #[error("recording {key} not found")]
    NotFound {
        /// The storage key that was looked up.
        key: String,
    },
    /// The requested byte range does not overlap the object (HTTP 416).
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// The object's size in bytes, for a `Content-Range: bytes */size` answer.
        size: u64,
    },
    /// A storage backend could not be configured.
    #[error("invalid storage configuration")]
    Config(#[source] object_store::Error),
    /// The storage backend failed (network, permissions, disk...).
    #[error("storage backend error")]
    Storage(#[source] object_store::Error),
    /// Reading or writing a local file failed.
    #[error("i/o error on {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's magic bytes are not one of WAV, MP3, OGG, WebM or FLAC (HTTP 415).
    #[error("unsupported audio format")]
    UnsupportedFormat,
    /// The container could not be parsed (corrupt or truncated file).
    #[error("could not read the audio metadata")]
    Probe(#[source] symphonia::core::errors::Error),
    /// The container holds no audio track, or one without sample rate / channel count.
    #[error("the file has no usable audio track")]
    NoAudioTrack,
    /// The demuxer panicked on malformed input; the panic was contained.
    #[error("the audio parser failed on malformed input")]
    ParserPanic,
    /// A WAV file's RIFF structure is malformed (repair, reading back).
    #[error("{path} is not a usable WAV file: {reason}")]
    InvalidWav {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// Recorder options that cannot work.
    #[error("invalid recorder options: {reason}")]
    InvalidRecorderOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// The recording writer thread is gone (it panicked or could not start).
    #[error("the recording writer thread is gone")]
    RecorderGone,
    /// A blocking task (the probe) could not be joined.
    #[error("background task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
