//! Crash-safe dual-channel call recording: WAV, 8 kHz, 16-bit PCM, the lead on the left
//! channel and the agent on the right (or one channel with both mixed).
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> switchboard_recordings::Result<()> {
//! use switchboard_recordings::{Channel, Recorder, RecorderOptions};
//! let rec = Recorder::start("/var/lib/switchboard/recordings/call.wav", RecorderOptions::default())?;
//! let lead = rec.channel_sink(Channel::Left); // → StreamConfig::sink / StreamHandle::set_sink
//! let agent = rec.channel_sink(Channel::Right); // may come later: the agent leg starts later
//! # drop((lead, agent));
//! rec.pause()?; // e.g. while card details are read out
//! rec.resume()?;
//! let info = rec.stop()?; // or stop_async().await on a tokio runtime
//! println!("{} s, {} bytes", info.duration.as_secs_f64(), info.bytes);
//! # Ok(()) }
//! ```
//!
//! # How
//!
//! - **Placement** (`sink.rs`): each channel's frames are placed by RTP timestamp, relative to
//!   the channel's first packet, which is placed at its arrival time since the recording
//!   started. Gaps (loss, silence suppression, a leg that has not started yet) are silence;
//!   reordered frames go back to their place; a new SSRC or a timestamp jump re-anchors at
//!   arrival; drift beyond ±60 ms is corrected. The channels never drift apart.
//! - **Off the media loop**: a [`ChannelSink`] runs on the media loop and only copies each
//!   packet's samples into a lock-free ring of atomics (no lock, allocation or channel hop per
//!   packet). One writer thread ([`RecordingWriter`]) serves many recordings: every 50 ms it
//!   drains the rings into each recording's window, writes the audio that is settled (older
//!   than 200 ms, so reordered frames still find their place) every 500 ms, and rewrites the
//!   header every [`RecorderOptions::flush_every`].
//! - **Length**: the file covers the recording's wall-clock time from [`Recorder::start`] to
//!   [`Recorder::stop`] (minus paused time with [`PauseMode::Skip`]), both channels, whatever
//!   arrived. With the call's media running over that time, the length is its media time.
//! - **Crash safety**: audio reaches the file every 500 ms and the header's sizes every
//!   `flush_every` (both are `write`s to the kernel, which survive the process being killed;
//!   set [`RecorderOptions::sync`] to also survive power loss). After a crash,
//!   [`repair_dir`](crate::repair_dir) at start-up sets the sizes from the file length.
//! - **Pause**: [`PauseMode::Skip`] (default, like Twilio's `skip`) cuts paused time out of the
//!   file; [`PauseMode::Silence`] keeps it as silence. Audio received while paused is never
//!   written.
//! - Frames that come after their place was written, or that the writer could not keep up
//!   with, are dropped and counted in [`RecordingInfo`].

mod ring;
mod sink;
mod timeline;
mod writer;

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Instant;

pub use sink::ChannelSink;

use crate::{Error, Result};
use sink::Shared;
use writer::Command;

/// Samples per second of every recording.
pub const SAMPLE_RATE: u32 = 8000;

/// A channel of a two-party recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The lead (the called party): the left channel.
    Left,
    /// The agent: the right channel.
    Right,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Left => 0,
            Channel::Right => 1,
        }
    }
}

/// What happens to paused time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PauseMode {
    /// Paused time is cut out of the file.
    #[default]
    Skip,
    /// Paused time is written as silence (the file keeps the call's timing).
    Silence,
}

/// How to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderOptions {
    /// How often the header's sizes are rewritten (default 2 s): the most a crash can leave
    /// out of the header. Audio itself reaches the file every 500 ms (or this, if shorter).
    pub flush_every: Duration,
    /// One channel with both legs mixed (clipped sum) instead of two.
    pub mono: bool,
    /// What paused time becomes.
    pub pause: PauseMode,
    /// `fdatasync` at every header flush and at the end (survives power loss; costs a disk
    /// round trip per flush, which the writer thread of every recording waits for).
    pub sync: bool,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(2),
            mono: false,
            pause: PauseMode::Skip,
            sync: false,
        }
    }
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// The file.
    pub path: PathBuf,
    /// Playing time.
    pub duration: Duration,
    /// Size of the file.
    pub bytes: u64,
    /// 2, or 1 for a mono mix.
    pub channels: u16,
    /// Always [`SAMPLE_RATE`].
    pub sample_rate: u32,
    /// Sample frames in the file.
    pub frames: u64,
    /// Samples dropped because they arrived after their place had been written.
    pub late_samples: u64,
    /// Packets dropped because the writer fell behind (its hand-off ring was full) or because
    /// a second sink fed a channel that another sink owned.
    pub dropped_packets: u64,
    /// Times a channel's placement was re-anchored (new SSRC, timestamp jump, drift).
    pub reanchors: u64,
}

/// The writer thread serving recordings (see the module docs). Cheap to clone; the thread
/// ends when the last clone and the last recording of it are gone, after finishing every
/// recording still open.
#[derive(Debug, Clone)]
pub struct RecordingWriter {
    commands: mpsc::Sender<Command>,
}

impl RecordingWriter {
    /// Starts a writer thread.
    pub fn start() -> Result<RecordingWriter> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sb-recorder".into())
            .spawn(move || writer::run(rx))
            .map_err(|source| Error::Io {
                path: PathBuf::new(),
                source,
            })?;
        Ok(RecordingWriter { commands: tx })
    }

    /// The process-wide writer used by [`Recorder::start`], started on first use.
    pub fn shared() -> Result<RecordingWriter> {
        static SHARED: OnceLock<RecordingWriter> = OnceLock::new();
        if let Some(w) = SHARED.get() {
            return Ok(w.clone());
        }
        let w = RecordingWriter::start()?;
        Ok(SHARED.get_or_init(|| w).clone())
    }

    /// Starts recording into a new file at `path` (its directory is created if missing; an
    /// existing file is an error, [`std::io::ErrorKind::AlreadyExists`]). The recording's
    /// time starts now. Blocking, but only for creating the file and writing its header.
    pub fn record(&self, path: impl AsRef<Path>, options: RecorderOptions) -> Result<Recorder> {
        let path = path.as_ref().to_path_buf();
        if options.flush_every.is_zero() {
            return Err(Error::InvalidRecorderOptions {
                reason: "flush_every must be positive",
            });
        }
        let file = writer::create(&path, if options.mono { 1 } else { 2 })?;
        let started = Instant::now();
        let shared = Arc::new(Shared::new(started));
        let id = writer::next_id();
        self.commands
            .send(Command::Start(Box::new(writer::Start {
                id,
                shared: shared.clone(),
                file,
                path: path.clone(),
                options,
            })))
            .map_err(|_| Error::RecorderGone)?;
        Ok(Recorder {
            id,
            shared,
            path,
            commands: self.commands.clone(),
            stopped: false,
        })
    }
}

/// One recording in progress. Dropping it without [`stop`](Self::stop) finishes the file
/// all the same (in the background).
pub struct Recorder {
    id: u64,
    shared: Arc<Shared>,
    path: PathBuf,
    commands: mpsc::Sender<Command>,
    stopped: bool,
}

impl core::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Recorder {
    /// Starts a recording on the process-wide [`RecordingWriter::shared`] writer.
    pub fn start(path: impl AsRef<Path>, options: RecorderOptions) -> Result<Recorder> {
        RecordingWriter::shared()?.record(path, options)
    }

    /// A sink feeding `channel` (see [`ChannelSink`]). Call it when the channel's stream
    /// starts; it may be called again later for the same channel (e.g. to swap sinks): the
    /// new sink takes over when the previous one is closed.
    pub fn channel_sink(&self, channel: Channel) -> ChannelSink {
        ChannelSink::new(self.shared.clone(), channel)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Time since the recording started.
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    fn send(&self, c: Command) -> Result<()> {
        self.commands.send(c).map_err(|_| Error::RecorderGone)
    }

    /// Pauses from now on (no effect if paused).
    pub fn pause(&self) -> Result<()> {
        self.send(Command::Pause {
            id: self.id,
            at: Instant::now(),
        })
    }

    /// Resumes from now on (no effect if not paused).
    pub fn resume(&self) -> Result<()> {
        self.send(Command::Resume {
            id: self.id,
            at: Instant::now(),
        })
    }

    fn finish(
        &mut self,
        reply: Option<tokio::sync::oneshot::Sender<Result<RecordingInfo>>>,
    ) -> Result<()> {
        self.stopped = true;
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.send(Command::Stop {
            id: self.id,
            at: Instant::now(),
            reply,
        })
    }

    /// Ends the recording now: writes everything received, finalizes the header, closes the
    /// file. Blocks until the writer is done with it (a few ms; longer with
    /// [`RecorderOptions::sync`]). Do not call it from an async task: use
    /// [`stop_async`](Self::stop_async) there.
    pub fn stop(mut self) -> Result<RecordingInfo> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.finish(Some(tx))?;
        rx.blocking_recv().map_err(|_| Error::RecorderGone)?
    }

    /// [`stop`](Self::stop) for async callers: the stop time is taken now, the wait does not
    /// block the runtime.
    pub async fn stop_async(mut self) -> Result<RecordingInfo> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.finish(Some(tx))?;
        rx.await.map_err(|_| Error::RecorderGone)?
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.finish(None);
        }
    }
}

/// [`RecordingInfo::duration`] of `frames` sample frames.
fn duration_of(frames: u64) -> Duration {
    Duration::from_nanos(frames * 1_000_000_000 / u64::from(SAMPLE_RATE))
}
