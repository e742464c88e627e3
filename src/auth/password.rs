//! Passwords: the 72-byte bcrypt limit, the policy for new passwords, and hashing off the
//! async workers.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use tokio::runtime::{Builder, Runtime};

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

/// bcrypt on a blocking pool of its own, so that its threads, and only they, can run at a lower
/// CPU priority. At most `concurrency` hashes run at once (more would only share the same cores);
/// the rest wait in the pool's queue without holding a thread or a database connection. At
/// `nice` 10 a hash gets about a tenth of the CPU share of a request thread when both want the
/// CPU: a login storm cannot starve page loads, and an idle CPU still goes to hashing whole.
#[derive(Clone)]
pub struct Hasher {
    cost: u32,
    pool: Arc<HashPool>,
}

/// Owns the pool's runtime; dropping it stops the idle threads without waiting (a runtime
/// dropped the usual way would block, which panics inside Rocket's async shutdown).
struct HashPool(Option<Runtime>);

impl Drop for HashPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Hasher {
    pub fn new(cost: u32, concurrency: usize, nice: i32) -> std::io::Result<Hasher> {
        let runtime = Builder::new_current_thread()
            .max_blocking_threads(concurrency.max(1))
            .thread_name("bcrypt")
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        Ok(Hasher {
            cost,
            pool: Arc::new(HashPool(Some(runtime))),
        })
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes at the configured cost.
    pub async fn hash(&self, password: Password) -> Result<String, AuthError> {
        let cost = self.cost;
        Ok(self.run(move || bcrypt::hash(&password.0, cost)).await??)
    }

    /// Checks `candidate` against `hash`. `None` (a password that could not be parsed) still pays
    /// for one full verification, so a refusal takes as long as a wrong password.
    pub async fn verify(
        &self,
        candidate: Option<Password>,
        hash: String,
    ) -> Result<bool, AuthError> {
        Ok(self
            .run(move || match candidate {
                Some(password) => bcrypt::verify(&password.0, &hash),
                None => bcrypt::verify("", &hash).map(|_| false),
            })
            .await??)
    }

    /// Runs `f` on the pool (`spawn_blocking` on the pool's runtime), awaited from any runtime.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let runtime = self
            .pool
            .0
            .as_ref()
            .expect("the pool lives as long as the hasher");
        Ok(runtime.spawn_blocking(f).await?)
    }
}

/// Sets the calling thread's nice value. On Linux it applies to the thread alone; raising it needs
/// no privilege, and a failure only leaves the thread at normal priority.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
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
        let hasher = Hasher::new(4, 2, 0).unwrap();
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
        let hasher = Hasher::new(4, 1, 0).unwrap();
        let hashed = hasher.hash(Password::parse(&long).unwrap()).await.unwrap();
        let prefix = Password::parse(&long[..71]).unwrap();
        assert!(!hasher.verify(Some(prefix), hashed).await.unwrap());
    }

    #[rocket::async_test]
    async fn hashes_beyond_the_concurrency_limit_wait_for_a_thread() {
        let hasher = Hasher::new(4, 1, 0).unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, busy_now) = tokio::sync::oneshot::channel();
        let busy = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                let work = move || {
                    started.send(()).unwrap();
                    released.recv()
                };
                hasher.run(work).await
            }
        });
        busy_now.await.unwrap();
        let password = || Password::parse("pw").unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), hasher.hash(password()));
        assert!(
            waiting.await.is_err(),
            "no hash starts while the only thread is busy"
        );
        release.send(()).unwrap();
        busy.await.unwrap().unwrap().unwrap();
        assert!(hasher.hash(password()).await.is_ok());
    }

    #[cfg(target_os = "linux")]
    #[rocket::async_test]
    async fn hashing_threads_run_at_the_configured_nice_value() {
        // SAFETY: getpriority takes plain integers and touches no memory of ours.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let hasher = Hasher::new(4, 1, 7).unwrap();
        assert_eq!(hasher.run(nice).await.unwrap(), 7);
        assert_eq!(nice(), 0, "the caller's priority is untouched");
    }
}
