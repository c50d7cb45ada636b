//! Storage keys: built from ids only, so no caller input can escape the recordings namespace.

use std::fmt;

use crate::{AudioFormat, Error, Result};

/// A validated object key of the form `tenants/{tenant_uuid}/calls/{call_uuid}.{ext}`.
///
/// Both ids must be hyphenated UUIDs (36 characters, hex digits and four hyphens), `ext` one of
/// `wav`, `mp3`, `ogg`, `webm`, `flac`. Ids are lower-cased, so the same call always maps to
/// the same key. Nothing else ever reaches a key: no `/`, `..`, `%` or NUL is possible.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    path: String,
    format: AudioFormat,
}

impl Key {
    /// The key of a call's recording.
    pub fn for_call(tenant_id: &str, call_id: &str, ext: &str) -> Result<Key> {
        let tenant = canonical_uuid(tenant_id).ok_or(Error::InvalidId { field: "tenant_id" })?;
        let call = canonical_uuid(call_id).ok_or(Error::InvalidId { field: "call_id" })?;
        let format = AudioFormat::from_ext(ext).ok_or(Error::InvalidExtension)?;
        let path = format!("tenants/{tenant}/calls/{call}.{}", format.ext());
        Ok(Key { path, format })
    }

    /// Re-validates a key string read back from storage (e.g. a database row).
    ///
    /// Accepts exactly what [`Key::for_call`] produces, nothing else.
    pub fn parse(key: &str) -> Result<Key> {
        let rest = key.strip_prefix("tenants/").ok_or(Error::InvalidKey)?;
        let (tenant, rest) = rest.split_once("/calls/").ok_or(Error::InvalidKey)?;
        let (call, ext) = rest.split_once('.').ok_or(Error::InvalidKey)?;
        let rebuilt = Key::for_call(tenant, call, ext).map_err(|_| Error::InvalidKey)?;
        if rebuilt.path == key {
            Ok(rebuilt)
        } else {
            Err(Error::InvalidKey)
        }
    }

    /// The key as a string, e.g. for storing it in a database row.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The audio format named by the key's extension.
    pub fn format(&self) -> AudioFormat {
        self.format
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.path
    }
}

/// `Some(lower-cased id)` if `id` is a hyphenated UUID (8-4-4-4-12 hex digits).
fn canonical_uuid(id: &str) -> Option<String> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let well_formed = bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    well_formed.then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0190a6a4-3c1e-7b6a-9f00-1234567890ab";
    const C: &str = "0190A6A4-3C1E-7B6A-9F00-ABCDEF012345";

    #[test]
    fn builds_the_documented_layout() {
        let key = Key::for_call(T, C, "wav").unwrap();
        assert_eq!(
            key.as_str(),
            "tenants/0190a6a4-3c1e-7b6a-9f00-1234567890ab/calls/0190a6a4-3c1e-7b6a-9f00-abcdef012345.wav"
        );
        assert_eq!(key.format(), AudioFormat::Wav);
        assert_eq!(Key::parse(key.as_str()).unwrap(), key);
        for ext in ["wav", "mp3", "ogg", "webm", "flac"] {
            assert!(Key::for_call(T, C, ext).unwrap().as_str().ends_with(ext));
        }
    }

    #[test]
    fn rejects_anything_that_is_not_a_uuid() {
        let bad = [
            "",
            "..",
            "../../etc/passwd",
            "0190a6a4-3c1e-7b6a-9f00-1234567890a/",
            "0190a6a4-3c1e-7b6a-9f00-1234567890a.",
            "0190a6a4/3c1e-7b6a-9f00-1234567890ab",
            "0190a6a4-3c1e-7b6a-9f00-1234567890abc",
            "0190a6a43c1e7b6a9f001234567890ab",
            "0190a6a4-3c1e-7b6a-9f00-1234567890a\0",
            "0190a6a4-3c1e-7b6a-9f00-1234567890aé",
            "{190a6a4-3c1e-7b6a-9f00-1234567890ab}",
            "zzzzzzzz-3c1e-7b6a-9f00-1234567890ab",
            "0190a6a4-3c1e-7b6a-9f00-12345%2e%2e/",
        ];
        for id in bad {
            assert!(
                matches!(
                    Key::for_call(id, C, "wav"),
                    Err(Error::InvalidId { field: "tenant_id" })
                ),
                "tenant {id:?}"
            );
            assert!(
                matches!(
                    Key::for_call(T, id, "wav"),
                    Err(Error::InvalidId { field: "call_id" })
                ),
                "call {id:?}"
            );
        }
    }

    #[test]
    fn rejects_unknown_extensions() {
        for ext in [
            "", "WAV", "exe", "wav/../x", "wav.exe", ".wav", "m4a", "mp4", "txt",
        ] {
            assert!(
                matches!(Key::for_call(T, C, ext), Err(Error::InvalidExtension)),
                "{ext:?}"
            );
        }
    }

    #[test]
    fn parse_accepts_only_canonical_keys() {
        let good = Key::for_call(T, C, "mp3").unwrap();
        let upper = good.as_str().replace("abcdef", "ABCDEF");
        for bad in [
            "",
            "tenants/",
            &format!("/{good}"),
            &format!("{good}/.."),
            &format!("../{good}"),
            &upper,
            &good.as_str().replace("/calls/", "/calls//"),
            &good.as_str().replace(".mp3", ".mp3.wav"),
        ] {
            assert!(matches!(Key::parse(bad), Err(Error::InvalidKey)), "{bad:?}");
        }
    }
}
