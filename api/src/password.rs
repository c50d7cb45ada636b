//! Password rules and argon2id hashing (PHC strings, per-user random salt).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Minimum rules: 8 to 128 characters, at least one letter and one digit, not all the same.
pub fn check_rules(pw: &str) -> Result<(), &'static str> {
    let n = pw.chars().count();
    if n < 8 {
        return Err("must be at least 8 characters");
    }
    if n > 128 {
        return Err("must be at most 128 characters");
    }
    if !pw.chars().any(char::is_alphabetic) || !pw.chars().any(|c| c.is_ascii_digit()) {
        return Err("must contain at least one letter and one digit");
    }
    Ok(())
}

/// Hashes with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane).
pub fn hash(pw: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(pw.as_bytes(), &salt)?
        .to_string())
}

/// True when `pw` matches the stored PHC string; a malformed hash never matches.
pub fn verify(pw: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
}

/// A hash of a random password, verified against when the user does not exist so that
/// a login takes as long for unknown addresses as for known ones.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("dummy-password-1").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_rules("short1").is_err());
        assert!(check_rules("longenough").is_err());
        assert!(check_rules("12345678").is_err());
        assert!(check_rules("securePassword123").is_ok());
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("securePassword123").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("securePassword123", &h));
        assert!(!verify("securePassword124", &h));
        assert!(!verify("securePassword123", "not-a-hash"));
    }
}
