//! switchboard-recordings: where call recordings are kept and what is known about them.
//!
//! - [`RecordingStore`]: put / get (with byte ranges) / head / delete over the local
//!   filesystem (default, `<data-dir>/recordings/`) or an S3-compatible bucket.
//! - [`Key`]: storage keys built only from UUIDs and a known extension.
//! - [`sniff`]: the audio format from the magic bytes (WAV, MP3, OGG, WebM, FLAC).
//! - [`probe`]: duration, channels, sample rate and bit rate read from the file itself.
//! - [`sign`] / [`verify`]: HMAC-signed, time-limited download links.
//! - [`Recorder`]: crash-safe dual-channel WAV recording of a call, fed by media-runtime
//!   sinks ([`ChannelSink`]) and written off the media loop by a [`RecordingWriter`] thread.
//! - [`repair_file`] / [`repair_dir`]: the start-up pass that fixes the header sizes of WAV
//!   files left unfinished by a crash.
//! - [`read_pcm16`] / [`wav_layout`]: reading a 16-bit PCM WAV back, and a WAV's chunk layout.
//!
//! The crate knows nothing of the database or HTTP.

mod error;
mod format;
mod key;
mod probe;
mod recorder;
mod repair;
mod signing;
mod store;
mod wavfile;

pub use error::{Error, Result};
pub use format::{sniff, AudioFormat, SNIFF_LEN};
pub use key::Key;
pub use probe::{probe, probe_file, AudioInfo};
pub use recorder::{
    Channel, ChannelSink, PauseMode, Recorder, RecorderOptions, RecordingInfo, RecordingWriter,
    SAMPLE_RATE,
};
pub use repair::{repair_dir, repair_file, DirRepair, Repaired};
pub use signing::{sign, verify};
pub use store::{
    ByteRange, ByteStream, Download, ObjectInfo, RecordingStore, S3Config, StorageConfig,
    MULTIPART_THRESHOLD,
};
pub use wavfile::{layout as wav_layout, read_pcm16, Layout as WavLayout, Pcm16};
