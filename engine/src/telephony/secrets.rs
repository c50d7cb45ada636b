//! Secrets at rest: ChaCha20-Poly1305 (RFC 8439) with a 32-byte key held by the process.
//!
//! A sealed value is `v1:` + base64(nonce ‖ ciphertext ‖ tag) with a fresh random 96-bit nonce
//! per seal. The caller names what the secret belongs to (`context`, e.g. the trunk's tenant
//! and id) and that is bound as associated data, so a ciphertext copied into another row does
//! not open. The key comes from configuration (64 hex digits) or from a file generated once
//! with owner-only permissions ([`SecretBox::load_or_create`]); losing it loses the secrets.

use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::{Error, Result};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// Seals and opens secrets with one key. Cheap to clone; its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box over a 32-byte key.
    pub fn new(key: [u8; 32]) -> SecretBox {
        SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// A new random key.
    pub fn generate_key() -> [u8; 32] {
        ChaCha20Poly1305::generate_key(&mut OsRng).into()
    }

    /// A box over a key written as 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<SecretBox> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(Error::Secret(
                "the secret key must be 64 hex digits (32 bytes)",
            ));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| Error::Secret("the secret key must be 64 hex digits (32 bytes)"))?;
        }
        Ok(SecretBox::new(key))
    }

    /// The key in `path` (64 hex digits); when the file does not exist, a new random key is
    /// written there first, readable by the owner only. An unreadable or malformed file is an
    /// error (it is never replaced: the secrets sealed with it would be lost).
    pub fn load_or_create(path: &Path) -> Result<SecretBox> {
        match std::fs::read_to_string(path) {
            Ok(text) => SecretBox::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let key = SecretBox::generate_key();
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                use std::io::Write;
                opts.open(path)?.write_all(format!("{hex}\n").as_bytes())?;
                tracing::warn!(path = %path.display(), "no secret key configured: generated one; keep it (and back it up) or the stored SIP passwords cannot be read");
                Ok(SecretBox::new(key))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Seals `plaintext` for `context` (bound as associated data).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            // Encryption only fails for inputs beyond 256 GiB.
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// Opens what [`SecretBox::seal`] made for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String> {
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or(Error::Secret("unknown sealed-secret format"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| Error::Secret("sealed secret is not base64"))?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(Error::Secret("sealed secret is truncated"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::Secret("sealed secret does not open with this key (wrong key or tampered)")
            })?;
        String::from_utf8(plain).map_err(|_| Error::Secret("sealed secret is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let b = SecretBox::new(SecretBox::generate_key());
        let a1 = b.seal("trunk:1", "s3cret");
        let a2 = b.seal("trunk:1", "s3cret");
        assert_ne!(a1, a2, "a fresh nonce per seal");
        assert!(a1.starts_with("v1:") && !a1.contains("s3cret"));
        assert_eq!(b.open("trunk:1", &a1).unwrap(), "s3cret");
        assert_eq!(b.open("trunk:1", &a2).unwrap(), "s3cret");
    }

    #[test]
    fn wrong_key_context_or_tampering_do_not_open() {
        let b = SecretBox::new(SecretBox::generate_key());
        let other = SecretBox::new(SecretBox::generate_key());
        let sealed = b.seal("trunk:1", "s3cret");
        assert!(matches!(
            other.open("trunk:1", &sealed),
            Err(Error::Secret(_))
        ));
        assert!(matches!(b.open("trunk:2", &sealed), Err(Error::Secret(_))));
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&sealed[3..])
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        assert!(matches!(
            b.open("trunk:1", &tampered),
            Err(Error::Secret(_))
        ));
        for junk in ["", "v1:", "v1:!!", "v2:AAAA", "v1:AAAA"] {
            assert!(b.open("trunk:1", junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn keys_from_hex_and_from_a_generated_file() {
        let hex = "00".repeat(31) + "ff";
        let b = SecretBox::from_hex(&hex).unwrap();
        let again = SecretBox::from_hex(&format!("{hex}\n")).unwrap();
        assert_eq!(again.open("c", &b.seal("c", "x")).unwrap(), "x");
        assert!(SecretBox::from_hex("abc").is_err());
        assert!(SecretBox::from_hex(&"zz".repeat(32)).is_err());

        let dir = std::env::temp_dir().join(format!("sb-secretbox-{}", uuid::Uuid::now_v7()));
        let path = dir.join("secret_key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let sealed = first.seal("c", "pw");
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(second.open("c", &sealed).unwrap(), "pw", "the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(SecretBox::load_or_create(&path).is_err(), "never replaced");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
        std::fs::remove_dir_all(&dir).ok();
    }
}
