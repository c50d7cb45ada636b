//! switchboard-recordings: where call recordings are kept and what is known about them.
//!
//! - [`RecordingStore`]: put / get (with byte ranges) / head / delete over the local
//!   filesystem (default, `<data-dir>/recordings/`) or an S3-compatible bucket.
//! - [`Key`]: storage keys built only from UUIDs and a known extension.
//! - [`sniff`]: the audio format from the magic bytes (WAV, MP3, OGG, WebM, FLAC).
//! - [`probe`]: duration, channels, sample rate and bit rate read from the file itself.
//! - [`sign`] / [`verify`]: HMAC-signed, time-limited download links.
//!
//! The crate knows nothing of the database or HTTP.

mod error;
mod format;
mod key;
mod probe;
mod signing;
mod store;

pub use error::{Error, Result};
pub use format::{sniff, AudioFormat, SNIFF_LEN};
pub use key::Key;
pub use probe::{probe, probe_file, AudioInfo};
pub use signing::{sign, verify};
pub use store::{
    ByteRange, ByteStream, Download, ObjectInfo, RecordingStore, S3Config, StorageConfig,
    MULTIPART_THRESHOLD,
};
