//! Audio formats and content sniffing by magic bytes.

/// How many leading bytes [`sniff`] looks at; pass at least this many when the file has them.
pub const SNIFF_LEN: usize = 64;

/// The recording formats this crate accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// RIFF/WAVE.
    Wav,
    /// MPEG-1/2 audio (layer I-III), with or without an ID3v2 tag.
    Mp3,
    /// Ogg container (Vorbis, Opus, FLAC...).
    Ogg,
    /// WebM (Matroska with the `webm` doctype).
    WebM,
    /// Native FLAC.
    Flac,
}

impl AudioFormat {
    /// All formats, in a stable order.
    pub const ALL: [AudioFormat; 5] = [
        AudioFormat::Wav,
        AudioFormat::Mp3,
        AudioFormat::Ogg,
        AudioFormat::WebM,
        AudioFormat::Flac,
    ];

    /// The MIME type to serve the file with.
    pub fn mime(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Ogg => "audio/ogg",
            AudioFormat::WebM => "audio/webm",
            AudioFormat::Flac => "audio/flac",
        }
    }

    /// The file extension (lower case, no dot), also used in storage keys.
    pub fn ext(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Ogg => "ogg",
            AudioFormat::WebM => "webm",
            AudioFormat::Flac => "flac",
        }
    }

    /// The format whose [`ext`](Self::ext) is exactly `ext` (lower case, no dot).
    pub fn from_ext(ext: &str) -> Option<AudioFormat> {
        AudioFormat::ALL.into_iter().find(|f| f.ext() == ext)
    }
}

/// Identifies an audio file by its first bytes (pass [`SNIFF_LEN`] of them, or the whole file
/// if shorter). Returns `None` for anything that is not WAV, MP3, OGG, WebM or FLAC, whatever
/// the file's name says.
pub fn sniff(first_bytes: &[u8]) -> Option<AudioFormat> {
    let b = first_bytes;
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        return Some(AudioFormat::Wav);
    }
    if b.starts_with(b"OggS") {
        return Some(AudioFormat::Ogg);
    }
    if b.starts_with(b"fLaC") {
        return Some(AudioFormat::Flac);
    }
    if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        let head = &b[4..b.len().min(SNIFF_LEN)];
        return head
            .windows(4)
            .any(|w| w == b"webm")
            .then_some(AudioFormat::WebM);
    }
    if is_id3v2(b) || is_mpeg_audio_frame(b) {
        return Some(AudioFormat::Mp3);
    }
    None
}

/// `ID3` + a version byte below 0xFF (ID3v2 header).
fn is_id3v2(b: &[u8]) -> bool {
    b.len() >= 4 && &b[0..3] == b"ID3" && b[3] != 0xFF
}

/// An MPEG audio frame header: 11 sync bits, a valid version, a valid layer (layer bits `00`
/// are reserved, which also keeps AAC/ADTS out), and a valid bitrate and sample-rate index.
fn is_mpeg_audio_frame(b: &[u8]) -> bool {
    if b.len() < 3 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return false;
    }
    let version = (b[1] >> 3) & 0b11;
    let layer = (b[1] >> 1) & 0b11;
    let bitrate_index = b[2] >> 4;
    let sample_rate_index = (b[2] >> 2) & 0b11;
    version != 0b01 && layer != 0b00 && bitrate_index != 0b1111 && sample_rate_index != 0b11
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_format() {
        let mut wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
        wav.extend_from_slice(&[0; 20]);
        assert_eq!(sniff(&wav), Some(AudioFormat::Wav));
        assert_eq!(
            sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00"),
            Some(AudioFormat::Mp3)
        );
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz.
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some(AudioFormat::Mp3));
        // MPEG-2 layer III (0xFFF3), 8 kHz-ish header as used by telephony encoders.
        assert_eq!(sniff(&[0xFF, 0xF3, 0x28, 0xC4]), Some(AudioFormat::Mp3));
        // MPEG-2.5 layer III (0xFFE3).
        assert_eq!(sniff(&[0xFF, 0xE3, 0x18, 0xC4]), Some(AudioFormat::Mp3));
        assert_eq!(sniff(b"OggS\x00\x02\x00\x00"), Some(AudioFormat::Ogg));
        assert_eq!(sniff(b"fLaC\x00\x00\x00\x22"), Some(AudioFormat::Flac));
        let webm = [
            0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42,
            0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm',
        ];
        assert_eq!(sniff(&webm), Some(AudioFormat::WebM));
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF"), None);
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00AVI LIST"), None);
        assert_eq!(sniff(b"hello, this is a text file named call.wav\n"), None);
        assert_eq!(sniff(b"<html><body>"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b"PK\x03\x04"), None);
        // AAC ADTS: sync bits but layer 00.
        assert_eq!(sniff(&[0xFF, 0xF1, 0x50, 0x80]), None);
        // Reserved MPEG version 01.
        assert_eq!(sniff(&[0xFF, 0xEB, 0x90, 0x64]), None);
        // Bad bitrate index / reserved sample rate.
        assert_eq!(sniff(&[0xFF, 0xFB, 0xF0, 0x64]), None);
        assert_eq!(sniff(&[0xFF, 0xFB, 0x9C, 0x64]), None);
        // Sync bytes alone are not enough.
        assert_eq!(sniff(&[0xFF, 0xFB]), None);
        // Matroska that is not WebM.
        let mkv = [
            0x1A, 0x45, 0xDF, 0xA3, 0xA3, 0x42, 0x82, 0x88, b'm', b'a', b't', b'r', b'o', b's',
            b'k', b'a',
        ];
        assert_eq!(sniff(&mkv), None);
    }

    #[test]
    fn mime_and_ext_round_trip() {
        for f in AudioFormat::ALL {
            assert_eq!(AudioFormat::from_ext(f.ext()), Some(f));
            assert!(f.mime().starts_with("audio/"));
        }
        assert_eq!(AudioFormat::Mp3.mime(), "audio/mpeg");
        assert_eq!(AudioFormat::from_ext("WAV"), None);
    }
}
