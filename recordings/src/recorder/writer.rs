//! The writer thread: drains every recording's rings, writes settled audio, flushes headers.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::fs::{File, OpenOptions};
use std::io::Write;
#[cfg(not(unix))]
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::sink::Shared;
use super::timeline::Timeline;
use super::{duration_of, RecorderOptions, RecordingInfo, SAMPLE_RATE};
use crate::wavfile::{header, HEADER_LEN, MAX_DATA};
use crate::{Error, Result};

/// How often the rings are drained.
const POLL: Duration = Duration::from_millis(50);
/// How often settled audio is written (at most; `flush_every` if shorter).
const WRITE_EVERY: Duration = Duration::from_millis(500);
/// Audio younger than this is not written yet, so reordered and jittered frames still find
/// their place.
const SETTLE_MARGIN: Duration = Duration::from_millis(200);

pub(crate) enum Command {
    Start(Box<Start>),
    Pause {
        id: u64,
        at: Instant,
    },
    Resume {
        id: u64,
        at: Instant,
    },
    Stop {
        id: u64,
        at: Instant,
        reply: Option<tokio::sync::oneshot::Sender<Result<RecordingInfo>>>,
    },
}

pub(crate) struct Start {
    pub(crate) id: u64,
    pub(crate) shared: Arc<Shared>,
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) options: RecorderOptions,
}

pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Creates the file (and its directory) with an empty header.
pub(crate) fn create(path: &Path, channels: u16) -> Result<File> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    file.write_all(&header(channels, SAMPLE_RATE, 0))
        .map_err(io)?;
    Ok(file)
}

/// Samples between the recording's start and `at`.
fn position(started: Instant, at: Instant) -> i64 {
    let d = at.saturating_duration_since(started);
    (d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as i64
}

struct Active {
    id: u64,
    shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    options: RecorderOptions,
    channels: u16,
    timeline: Timeline,
    /// Audio bytes in the file.
    data_bytes: u64,
    /// Audio bytes the header states.
    stated: u64,
    /// Bytes cut because the file reached the 4 GiB limit of WAV.
    over_limit: u64,
    write_every: Duration,
    next_write: Instant,
    next_flush: Instant,
    error: Option<std::io::Error>,
}

impl Active {
    fn new(s: Start, now: Instant) -> Self {
        let write_every = WRITE_EVERY.min(s.options.flush_every);
        Self {
            id: s.id,
            channels: if s.options.mono { 1 } else { 2 },
            timeline: Timeline::new(s.options.pause),
            shared: s.shared,
            file: s.file,
            path: s.path,
            options: s.options,
            data_bytes: 0,
            stated: 0,
            over_limit: 0,
            write_every,
            next_write: now + write_every,
            next_flush: now + s.options.flush_every,
            error: None,
        }
    }

    fn drain(&mut self) {
        let Active {
            shared, timeline, ..
        } = self;
        for (ch, c) in shared.channels.iter().enumerate() {
            c.ring.drain(|pos, samples| timeline.put(ch, pos, samples));
        }
    }

    /// Writes the audio settled up to input position `upto`.
    fn write(&mut self, upto: i64, scratch: &mut Vec<u8>) {
        scratch.clear();
        self.timeline.settle(upto, self.options.mono, scratch);
        if scratch.is_empty() || self.error.is_some() {
            return;
        }
        let room = (MAX_DATA - self.data_bytes) as usize;
        let room = room - room % usize::from(self.channels * 2);
        let bytes = &scratch[..scratch.len().min(room)];
        self.over_limit += (scratch.len() - bytes.len()) as u64;
        if bytes.is_empty() {
            return;
        }
        let r = write_at(&mut self.file, HEADER_LEN + self.data_bytes, bytes);
        match r {
            Ok(()) => self.data_bytes += bytes.len() as u64,
            Err(e) => self.error = Some(e),
        }
    }

    /// Rewrites the header's sizes.
    fn flush_header(&mut self) {
        if self.error.is_some() || self.stated == self.data_bytes && !self.options.sync {
            return;
        }
        let h = header(self.channels, SAMPLE_RATE, self.data_bytes as u32);
        let r = write_at(&mut self.file, 0, &h).and_then(|()| {
            if self.options.sync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => self.stated = self.data_bytes,
            Err(e) => self.error = Some(e),
        }
    }

    fn poll(&mut self, now: Instant, scratch: &mut Vec<u8>) {
        self.drain();
        let flush = now >= self.next_flush;
        if flush || now >= self.next_write {
            let upto = position(self.shared.started, now) - position_of(SETTLE_MARGIN);
            self.write(upto, scratch);
            self.next_write = now + self.write_every;
        }
        if flush {
            self.flush_header();
            self.next_flush = now + self.options.flush_every;
        }
    }

    /// Writes everything up to `at`, finalizes the header and closes the file.
    fn finish(mut self, at: Instant, scratch: &mut Vec<u8>) -> Result<RecordingInfo> {
        self.drain();
        self.write(position(self.shared.started, at), scratch);
        // The final header is written (and synced when asked) even if nothing changed.
        self.stated = u64::MAX;
        self.flush_header();
        if let Some(source) = self.error.take() {
            return Err(Error::Io {
                path: self.path,
                source,
            });
        }
        let frames = self.data_bytes / u64::from(self.channels * 2);
        let dropped: u64 = self
            .shared
            .channels
            .iter()
            .map(|c| c.ring.overruns() + c.refused.load(Ordering::Relaxed))
            .sum();
        let reanchors = self
            .shared
            .channels
            .iter()
            .map(|c| c.reanchors.load(Ordering::Relaxed))
            .sum();
        Ok(RecordingInfo {
            path: self.path,
            duration: duration_of(frames),
            bytes: HEADER_LEN + self.data_bytes,
            channels: self.channels,
            sample_rate: SAMPLE_RATE,
            frames,
            late_samples: self.timeline.late,
            dropped_packets: dropped,
            reanchors,
        })
    }
}

/// Writes `bytes` at `offset` (one `pwrite` on unix).
fn write_at(file: &mut File, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(bytes, offset)
    }
    #[cfg(not(unix))]
    {
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)
    }
}

fn position_of(d: Duration) -> i64 {
    (d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as i64
}

/// The thread's body: commands and a 50 ms poll, until every sender is gone.
pub(crate) fn run(rx: mpsc::Receiver<Command>) {
    let mut active: Vec<Active> = Vec::new();
    let mut scratch = Vec::new();
    let mut next_poll = Instant::now() + POLL;
    loop {
        let wait = next_poll.saturating_duration_since(Instant::now());
        let first = match rx.recv_timeout(wait) {
            Ok(c) => Some(c),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        for c in first
            .into_iter()
            .chain(core::iter::from_fn(|| rx.try_recv().ok()))
        {
            command(c, &mut active, &mut scratch);
        }
        let now = Instant::now();
        if now >= next_poll {
            for a in &mut active {
                a.poll(now, &mut scratch);
            }
            next_poll = (next_poll + POLL).max(now);
        }
    }
    let now = Instant::now();
    for a in active {
        let _ = a.finish(now, &mut scratch);
    }
}

fn command(c: Command, active: &mut Vec<Active>, scratch: &mut Vec<u8>) {
    let find = |active: &mut Vec<Active>, id| active.iter().position(|a| a.id == id);
    match c {
        Command::Start(s) => active.push(Active::new(*s, Instant::now())),
        // Placement is by position, so it does not matter whether the rings were drained
        // before a pause or resume is applied (see timeline.rs).
        Command::Pause { id, at } => {
            if let Some(i) = find(active, id) {
                let a = &mut active[i];
                a.timeline.pause(position(a.shared.started, at));
            }
        }
        Command::Resume { id, at } => {
            if let Some(i) = find(active, id) {
                let a = &mut active[i];
                a.timeline.resume(position(a.shared.started, at));
            }
        }
        Command::Stop { id, at, reply } => {
            if let Some(i) = find(active, id) {
                let result = active.swap_remove(i).finish(at, scratch);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        }
    }
}
