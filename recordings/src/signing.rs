//! Time-limited signed download URLs for players that cannot send a bearer token.
//!
//! The signature is the lower-case hex HMAC-SHA256 of `"{call_id}:{expires_unix}"` under a
//! server secret. The HTTP layer puts `expires` and `sig` in the query string and calls
//! [`verify`] with the current time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], call_id: &str, expires_unix: i64) -> HmacSha256 {
    // Invariant: HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(call_id.as_bytes());
    mac.update(b":");
    mac.update(expires_unix.to_string().as_bytes());
    mac
}

/// The signature (64 lower-case hex digits) of a download of `call_id` valid until
/// `expires_unix` (seconds since the Unix epoch, exclusive).
pub fn sign(secret: &[u8], call_id: &str, expires_unix: i64) -> String {
    let tag = mac(secret, call_id, expires_unix).finalize().into_bytes();
    let mut out = String::with_capacity(tag.len() * 2);
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0F)]));
    }
    out
}

/// `true` if `sig` is the signature of (`call_id`, `expires_unix`) under `secret` and the link
/// has not expired (`now_unix < expires_unix`). The comparison is constant-time; the hex digits
/// may be of either case.
pub fn verify(secret: &[u8], call_id: &str, expires_unix: i64, sig: &str, now_unix: i64) -> bool {
    if now_unix >= expires_unix {
        return false;
    }
    let Some(tag) = decode_hex_32(sig) else {
        return false;
    };
    mac(secret, call_id, expires_unix)
        .verify_slice(&tag)
        .is_ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex_32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-of-reasonable-length";
    const CALL: &str = "0190a6a4-3c1e-7b6a-9f00-1234567890ab";

    #[test]
    fn matches_an_independently_computed_vector() {
        // Python: hmac.new(SECRET, b"<CALL>:1700000000", hashlib.sha256).hexdigest()
        assert_eq!(
            sign(SECRET, CALL, 1_700_000_000),
            "91f3ba24df87436be02025202e1bb5671b53d335780cf7aa24214bec9aeadb3f"
        );
    }

    #[test]
    fn valid_signature_verifies_until_expiry() {
        let exp = 1_700_000_600;
        let sig = sign(SECRET, CALL, exp);
        assert_eq!(sig.len(), 64);
        assert!(verify(SECRET, CALL, exp, &sig, exp - 600));
        assert!(verify(SECRET, CALL, exp, &sig, exp - 1));
        assert!(verify(
            SECRET,
            CALL,
            exp,
            &sig.to_ascii_uppercase(),
            exp - 1
        ));
        assert!(
            !verify(SECRET, CALL, exp, &sig, exp),
            "expired at the instant"
        );
        assert!(!verify(SECRET, CALL, exp, &sig, exp + 3600), "expired");
    }

    #[test]
    fn tampering_is_rejected() {
        let exp = 1_700_000_600;
        let now = exp - 10;
        let sig = sign(SECRET, CALL, exp);
        assert!(!verify(b"other secret", CALL, exp, &sig, now));
        assert!(!verify(
            SECRET,
            "0190a6a4-3c1e-7b6a-9f00-1234567890ac",
            exp,
            &sig,
            now
        ));
        assert!(!verify(SECRET, CALL, exp + 1, &sig, now), "extended expiry");
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!verify(SECRET, CALL, exp, &flipped, now));
        for bad in [
            "",
            "zz",
            &sig[..62],
            &format!("{sig}00"),
            &sig.replace(|_| true, "g"),
        ] {
            assert!(!verify(SECRET, CALL, exp, bad, now), "{bad:?}");
        }
        // Non-ASCII input of the right byte length must not panic.
        let weird = "é".repeat(32);
        assert_eq!(weird.len(), 64);
        assert!(!verify(SECRET, CALL, exp, &weird, now));
    }
}
