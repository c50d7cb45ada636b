//! Metadata read from the recording itself: duration, channels, sample rate, bit rate.
//!
//! Probing never decodes audio. It reads the container's headers with symphonia's demuxers;
//! when the container states no length (e.g. a WebM from a browser's MediaRecorder), it walks
//! the packets and uses the last packet's end time. For WAV the data extent is clamped to the
//! bytes actually present, so a truncated file reports its true, shorter duration.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::{CodecParameters, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::TimeBase;

use crate::{sniff, AudioFormat, Error, Result, SNIFF_LEN};

/// What [`probe`] learns from a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioInfo {
    /// Playing time in seconds.
    pub duration_secs: f64,
    /// Number of channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Bits per second: exact for PCM WAV (`rate × channels × bits`), the file's average for
    /// compressed formats; `None` when the duration is zero.
    pub bit_rate: Option<u32>,
    /// The format found by the magic bytes.
    pub format: AudioFormat,
}

/// Reads a recording's metadata. Blocking (file I/O); see [`probe_file`] for async callers.
///
/// Errors: [`Error::UnsupportedFormat`] if the magic bytes are not an accepted format,
/// [`Error::Probe`] / [`Error::NoAudioTrack`] / [`Error::ParserPanic`] for corrupt files.
pub fn probe(path: &Path) -> Result<AudioInfo> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();

    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let format = sniff(&head).ok_or(Error::UnsupportedFormat)?;

    let wav_data = match format {
        AudioFormat::Wav => Some(wav_data_extent(&mut file, file_len).map_err(io_err)?),
        _ => None,
    };
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;

    // symphonia's demuxers are not hardened against every malformed input (a few `unwrap`s
    // on header fields); a recording upload must never take the process down.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| demux(file, format)));
    let stream = outcome.map_err(|_| Error::ParserPanic)??;

    let duration_secs = match wav_data {
        Some(data) => {
            let frames = data.present_len / u64::from(data.block_align.max(1));
            frames as f64 / f64::from(stream.sample_rate)
        }
        None => stream.duration_secs,
    };

    let bit_rate = match wav_data {
        // Exact for PCM and G.711: bytes per frame × frames per second.
        Some(data) => {
            u32::try_from(u64::from(data.block_align) * 8 * u64::from(stream.sample_rate)).ok()
        }
        None if duration_secs > 0.0 => {
            let avg = file_len as f64 * 8.0 / duration_secs;
            (avg.is_finite() && avg < f64::from(u32::MAX)).then(|| avg.round() as u32)
        }
        None => None,
    };

    Ok(AudioInfo {
        duration_secs,
        channels: stream.channels,
        sample_rate: stream.sample_rate,
        bit_rate,
        format,
    })
}

/// [`probe`] on tokio's blocking pool.
pub async fn probe_file(path: PathBuf) -> Result<AudioInfo> {
    tokio::task::spawn_blocking(move || probe(&path))
        .await
        .map_err(Error::Task)?
}

/// What the demuxer says about the first audio track.
struct StreamInfo {
    channels: u16,
    sample_rate: u32,
    duration_secs: f64,
}

fn demux(file: File, format: AudioFormat) -> Result<StreamInfo> {
    let mut hint = Hint::new();
    hint.with_extension(format.ext());
    let source = MediaSourceStream::new(Box::new(file), Default::default());
    // Gapless: encoder delay and padding are not playing time.
    let options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, source, &options, &MetadataOptions::default())
        .map_err(Error::Probe)?;
    let mut reader = probed.format;

    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL && t.codec_params.sample_rate.is_some())
        .ok_or(Error::NoAudioTrack)?;
    let track_id = track.id;
    let params = track.codec_params.clone();

    let sample_rate = params
        .sample_rate
        .filter(|r| *r > 0)
        .ok_or(Error::NoAudioTrack)?;
    let channels = params
        .channels
        .and_then(|c| u16::try_from(c.count()).ok())
        .filter(|c| *c > 0)
        .ok_or(Error::NoAudioTrack)?;
    let time_base = params
        .time_base
        .unwrap_or_else(|| TimeBase::new(1, sample_rate));

    let duration_secs = match format {
        // WAV's duration comes from the clamped data extent instead.
        AudioFormat::Wav => 0.0,
        _ => match params.n_frames {
            Some(n) => seconds(time_base, n),
            None => seconds(
                time_base,
                end_ts_by_packets(reader.as_mut(), track_id, &params)?,
            ),
        },
    };

    Ok(StreamInfo {
        channels,
        sample_rate,
        duration_secs,
    })
}

fn seconds(time_base: TimeBase, ts: u64) -> f64 {
    let t = time_base.calc_time(ts);
    t.seconds as f64 + t.frac
}

/// The end timestamp of the track, found by reading (not decoding) every packet.
///
/// A stream that ends mid-packet (a truncated upload) ends at the last whole packet.
fn end_ts_by_packets(
    reader: &mut dyn FormatReader,
    track_id: u32,
    params: &CodecParameters,
) -> Result<u64> {
    let mut end = 0u64;
    let mut packets = 0u64;
    loop {
        match reader.next_packet() {
            Ok(packet) if packet.track_id() == track_id => {
                packets += 1;
                end = end.max(packet.ts().saturating_add(packet.dur()));
            }
            Ok(_) => {}
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            // Damage after some good packets: report what is playable.
            Err(_) if packets > 0 => break,
            Err(e) => return Err(Error::Probe(e)),
        }
    }
    Ok(end.saturating_sub(params.start_ts))
}

/// Where the samples of a WAV file are and how many of their bytes the file really holds.
#[derive(Clone, Copy, Debug)]
struct WavData {
    block_align: u16,
    /// `min(declared data length, bytes after the data header)`; the remainder of the file if
    /// the writer never finalised the header (length 0 or 0xFFFFFFFF).
    present_len: u64,
}

/// Walks the RIFF chunks to the `data` chunk (the `fmt ` chunk must come before it).
fn wav_data_extent(file: &mut File, file_len: u64) -> io::Result<WavData> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut pos = 12u64;
    let mut block_align = None;
    loop {
        if pos.saturating_add(8) > file_len {
            return Err(invalid("wav: no data chunk"));
        }
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        file.read_exact(&mut header)?;
        let len = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        let body = pos + 8;
        match &header[0..4] {
            b"fmt " => {
                let mut fmt = [0u8; 16];
                file.read_exact(&mut fmt)?;
                block_align = Some(u16::from_le_bytes([fmt[12], fmt[13]]));
            }
            b"data" => {
                let block_align = block_align
                    .filter(|b| *b > 0)
                    .ok_or_else(|| invalid("wav: data before fmt"))?;
                let available = file_len - body;
                let present_len = if len == 0 || len == u64::from(u32::MAX) {
                    available
                } else {
                    len.min(available)
                };
                return Ok(WavData {
                    block_align,
                    present_len,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body.saturating_add(len).saturating_add(len & 1);
    }
}
