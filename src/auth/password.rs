//! Passwords: the 72-byte bcrypt limit, the policy for new passwords, and hashing off the
//! async workers.

use tokio::task::spawn_blocking;

use super::AuthError;

/// bcrypt reads only this many bytes; a longer password would be silently truncated.
pub const MAX_BYTES: usize = 72;

/// A password bcrypt can hash without truncation: non-empty and at most 72 bytes of UTF-8.
/// Never trimmed or case-folded.
pub struct Password(String);

impl Password {
    /// The error completes a sentence that starts with the field name.
    pub fn parse(raw: &str) -> Result<Password, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > MAX_BYTES {
            return Err(format!(
                "must be at most {MAX_BYTES} bytes (bcrypt ignores the rest)"
            ));
        }
        Ok(Password(raw.to_owned()))
    }
}

/// Deliberately hides the password from `{:?}`, so it cannot reach a log by accident.
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Rules a new password (signup, reset) must meet on top of [`Password::parse`].
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// In characters, as people count them, not bytes.
    pub min_length: usize,
}

impl PasswordPolicy {
    pub fn new_password(&self, raw: &str) -> Result<Password, String> {
        let password = Password::parse(raw)?;
        if raw.chars().count() < self.min_length {
            return Err(format!("must be at least {} characters", self.min_length));
        }
        Ok(password)
    }
}

/// Hashes with bcrypt at `cost` on a blocking thread.
pub async fn hash(password: Password, cost: u32) -> Result<String, AuthError> {
    Ok(spawn_blocking(move || bcrypt::hash(&password.0, cost)).await??)
}

/// Checks `candidate` against `hash` on a blocking thread. `None` (a password that could not be
/// parsed) still pays for one full verification, so a refusal takes as long as a wrong password.
pub async fn verify(candidate: Option<Password>, hash: String) -> Result<bool, AuthError> {
    Ok(spawn_blocking(move || match candidate {
        Some(password) => bcrypt::verify(&password.0, &hash),
        None => bcrypt::verify("", &hash).map(|_| false),
    })
    .await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventy_two_bytes_are_accepted_and_seventy_three_refused() {
        assert!(Password::parse(&"a".repeat(72)).is_ok());
        let err = Password::parse(&"a".repeat(73)).unwrap_err();
        assert!(err.contains("72 bytes"), "{err}");
    }

    #[test]
    fn the_limit_counts_utf8_bytes_not_characters() {
        // 24 three-byte characters are 72 bytes; one more ASCII byte is over.
        let euros = "€".repeat(24);
        assert!(Password::parse(&euros).is_ok());
        assert!(Password::parse(&format!("{euros}a")).is_err());
    }

    #[test]
    fn passwords_are_not_trimmed() {
        let policy = PasswordPolicy { min_length: 3 };
        assert!(policy.new_password(" a ").is_ok());
        assert!(policy.new_password("").is_err());
    }

    #[test]
    fn the_minimum_counts_characters() {
        let policy = PasswordPolicy { min_length: 8 };
        assert_eq!(
            policy.new_password("short").unwrap_err(),
            "must be at least 8 characters"
        );
        assert!(policy.new_password("ééééééé").is_err());
        assert!(policy.new_password("éééééééé").is_ok());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::parse("hunter2").unwrap();
        assert_eq!(format!("{password:?}"), "Password(..)");
    }

    #[rocket::async_test]
    async fn a_hash_verifies_its_password_only() {
        let hashed = hash(Password::parse("correct horse").unwrap(), 4)
            .await
            .unwrap();
        assert!(hashed.starts_with("$2b$04$"));
        let check = |p: &str| verify(Some(Password::parse(p).unwrap()), hashed.clone());
        assert!(check("correct horse").await.unwrap());
        assert!(!check("correct horsE").await.unwrap());
        assert!(!verify(None, hashed.clone()).await.unwrap());
    }

    #[rocket::async_test]
    async fn a_72_byte_password_differs_from_its_71_byte_prefix() {
        let long = "b".repeat(72);
        let hashed = hash(Password::parse(&long).unwrap(), 4).await.unwrap();
        let prefix = Password::parse(&long[..71]).unwrap();
        assert!(!verify(Some(prefix), hashed).await.unwrap());
    }
}
