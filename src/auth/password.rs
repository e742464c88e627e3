//! Passwords: the 72-byte bcrypt limit, the policy for new passwords, and hashing off the
//! async workers.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;
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

/// The 19,646 most common passwords (lower-cased), as shipped by Django
/// (`django/contrib/auth/common-passwords.txt.gz`, BSD-3-Clause), compiled into the binary.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// Rules a new password (signup, reset) must meet on top of [`Password::parse`].
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// In characters, as people count them, not bytes.
    pub min_length: usize,
    /// Refuse passwords on the common list (compared case-insensitively).
    pub check_common: bool,
}

impl PasswordPolicy {
    pub fn new_password(&self, raw: &str) -> Result<Password, String> {
        let password = Password::parse(raw)?;
        if raw.chars().count() < self.min_length {
            return Err(format!("must be at least {} characters", self.min_length));
        }
        if self.check_common && COMMON.contains(raw.to_lowercase().as_str()) {
            return Err("is one of the most common passwords: choose another".into());
        }
        Ok(password)
    }
}

/// bcrypt on blocking threads, at most `concurrency` hashes at a time. More would only share the
/// same cores, making every hash slower and starving every other request of CPU; logins beyond
/// the limit wait here without holding a thread or a database connection.
#[derive(Clone)]
pub struct Hasher {
    cost: u32,
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(cost: u32, concurrency: usize) -> Hasher {
        Hasher {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes at the configured cost.
    pub async fn hash(&self, password: Password) -> Result<String, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let cost = self.cost;
        Ok(spawn_blocking(move || bcrypt::hash(&password.0, cost)).await??)
    }

    /// Checks `candidate` against `hash`. `None` (a password that could not be parsed) still pays
    /// for one full verification, so a refusal takes as long as a wrong password.
    pub async fn verify(
        &self,
        candidate: Option<Password>,
        hash: String,
    ) -> Result<bool, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        Ok(spawn_blocking(move || match candidate {
            Some(password) => bcrypt::verify(&password.0, &hash),
            None => bcrypt::verify("", &hash).map(|_| false),
        })
        .await??)
    }
}

/// The work factor a stored bcrypt hash was made with.
pub fn cost_of(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>()
        .ok()
        .map(|parts| parts.get_cost())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    const LENIENT: PasswordPolicy = PasswordPolicy {
        min_length: 1,
        check_common: false,
    };

    #[test]
    fn the_common_list_has_at_least_10000_entries() {
        assert!(COMMON.len() >= 10_000, "{}", COMMON.len());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        let policy = PasswordPolicy {
            min_length: 8,
            check_common: true,
        };
        for common in ["password", "Password1", "QWERTYUIOP", "iloveyou"] {
            let err = policy.new_password(common).unwrap_err();
            assert!(err.contains("most common"), "{common}: {err}");
        }
        assert!(policy.new_password("correct horse battery staple").is_ok());
        assert!(
            LENIENT.new_password("password").is_ok(),
            "the check can be off"
        );
    }

    #[test]
    fn passwords_are_not_trimmed() {
        let policy = PasswordPolicy {
            min_length: 3,
            check_common: false,
        };
        assert!(policy.new_password(" a ").is_ok());
        assert!(policy.new_password("").is_err());
    }

    #[test]
    fn the_minimum_counts_characters() {
        let policy = PasswordPolicy {
            min_length: 8,
            check_common: false,
        };
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
        let hasher = Hasher::new(4, 2);
        let hashed = hasher
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(hashed.starts_with("$2b$04$"));
        let check = |p: &str| hasher.verify(Some(Password::parse(p).unwrap()), hashed.clone());
        assert!(check("correct horse").await.unwrap());
        assert!(!check("correct horsE").await.unwrap());
        assert!(!hasher.verify(None, hashed.clone()).await.unwrap());
    }

    #[test]
    fn the_cost_of_a_hash_is_read_from_it() {
        let hashed = bcrypt::hash("pw", 5).unwrap();
        assert_eq!(cost_of(&hashed), Some(5));
        assert_eq!(cost_of("not a hash"), None);
    }

    #[rocket::async_test]
    async fn a_72_byte_password_differs_from_its_71_byte_prefix() {
        let long = "b".repeat(72);
        let hasher = Hasher::new(4, 1);
        let hashed = hasher.hash(Password::parse(&long).unwrap()).await.unwrap();
        let prefix = Password::parse(&long[..71]).unwrap();
        assert!(!hasher.verify(Some(prefix), hashed).await.unwrap());
    }

    #[rocket::async_test]
    async fn hashes_beyond_the_concurrency_limit_wait_for_a_permit() {
        let hasher = Hasher::new(4, 1);
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        let password = || Password::parse("pw").unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), hasher.hash(password()));
        assert!(
            waiting.await.is_err(),
            "no hash starts while the only permit is taken"
        );
        drop(held);
        assert!(hasher.hash(password()).await.is_ok());
    }
}
