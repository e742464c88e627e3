//! Passwords: NFKC normalization, the 72-byte bcrypt limit, the policy for new passwords, and
//! hashing off the async workers behind a bounded queue.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use tokio::runtime::{Builder, Runtime};
use unicode_normalization::UnicodeNormalization;

use super::AuthError;
use crate::metrics::Metrics;

/// bcrypt reads only this many bytes; a longer password would be silently truncated.
pub const MAX_BYTES: usize = 72;

/// Why a text is not a password, or not a new one the policy accepts. Its text completes a
/// sentence that starts with the field name (the API's wording); pages word each case for
/// people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordFault {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_BYTES} bytes (bcrypt ignores the rest)")]
    TooLong,
    #[error("must be at least {0} characters")]
    TooShort(usize),
    #[error("is one of the most common passwords: choose another")]
    Common,
}

/// A password bcrypt can hash without truncation, in Unicode NFKC form (NIST SP 800-63B): the
/// same characters typed on two keyboards, composed or not, full-width or not, are one
/// password. Non-empty, at most 72 bytes of UTF-8 once normalized, never trimmed or case-folded.
pub struct Password {
    /// What is hashed, and what a stored hash is checked against first.
    normalized: String,
    /// The password as typed, when normalizing changed it: hashes stored before passwords were
    /// normalized were made of it, so a login also tries it (and then rehashes the normalized
    /// form; no migration needed).
    typed: Option<String>,
}

impl Password {
    /// A password bcrypt can hash, or why not.
    pub fn parse(raw: &str) -> Result<Password, PasswordFault> {
        if raw.is_empty() {
            return Err(PasswordFault::Empty);
        }
        let normalized: String = raw.nfkc().collect();
        if normalized.len() > MAX_BYTES {
            return Err(PasswordFault::TooLong);
        }
        let typed = (normalized != raw).then(|| raw.to_owned());
        Ok(Password { normalized, typed })
    }

    /// The normalized password, as a new password is hashed.
    fn normalized(&self) -> &str {
        &self.normalized
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
    /// In characters, as people count them, not bytes (of the normalized form).
    pub min_length: usize,
    /// Refuse passwords on the common list (compared case-insensitively).
    pub check_common: bool,
}

impl PasswordPolicy {
    pub fn new_password(&self, raw: &str) -> Result<Password, PasswordFault> {
        let password = Password::parse(raw)?;
        let normalized = password.normalized();
        if normalized.chars().count() < self.min_length {
            return Err(PasswordFault::TooShort(self.min_length));
        }
        if self.check_common && COMMON.contains(normalized.to_lowercase().as_str()) {
            return Err(PasswordFault::Common);
        }
        Ok(password)
    }
}

/// Which form of a password matched a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    No,
    /// The normalized form: the hash is current.
    Normalized,
    /// The form as typed: a hash from before normalization, to be replaced.
    AsTyped,
}

/// The requests allowed to hash at once, waiting ones included: `concurrency` running and
/// `queue` waiting. A default queue (`bcrypt_queue = 0`) holds what the running threads finish
/// within about 5 seconds: 16 per thread at cost 12 (a hash there takes about 0.3 s), twice as
/// many per step of cost below, half as many per step above.
pub fn admitted_at_most(concurrency: usize, queue: usize, cost: u32) -> usize {
    let queue = match queue {
        0 if cost <= 12 => (16 * concurrency) << (12 - cost),
        0 => ((16 * concurrency) >> (cost - 12)).max(1),
        queue => queue,
    };
    concurrency + queue
}

/// bcrypt on a blocking pool of its own, so that its threads, and only they, can run at a lower
/// CPU priority. At most `concurrency` hashes run at once (more would only share the same cores);
/// the rest wait in the pool's queue without holding a thread or a database connection. At
/// `nice` 10 a hash gets about a tenth of the CPU share of a request thread when both want the
/// CPU: a login storm cannot starve page loads, and an idle CPU still goes to hashing whole.
///
/// The queue is bounded: a request takes an [`Admission`] before it hashes, and when as many
/// requests hold one as the hasher admits, it is refused at once ([`AuthError::Busy`]) instead
/// of waiting minutes behind a burst.
#[derive(Clone)]
pub struct Hasher {
    cost: u32,
    pool: Arc<HashPool>,
    load: Arc<Load>,
    metrics: Metrics,
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

/// What the hasher is doing: admitted requests, hashes waiting for a thread, hashes done.
struct Load {
    capacity: usize,
    admitted: AtomicUsize,
    queued: AtomicUsize,
    completed: AtomicU64,
}

/// A request's place among those allowed to hash; dropping it frees the place.
pub struct Admission(Arc<Load>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// A hasher at `cost` with `concurrency` threads at `nice`, admitting `admitted` requests
    /// at once (see [`admitted_at_most`]).
    pub fn new(
        cost: u32,
        concurrency: usize,
        admitted: usize,
        nice: i32,
    ) -> std::io::Result<Hasher> {
        let runtime = Builder::new_current_thread()
            .max_blocking_threads(concurrency.max(1))
            .thread_name("bcrypt")
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        Ok(Hasher {
            cost,
            pool: Arc::new(HashPool(Some(runtime))),
            load: Arc::new(Load {
                capacity: admitted.max(1),
                admitted: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                completed: AtomicU64::new(0),
            }),
            metrics: Metrics::default(),
        })
    }

    /// This hasher, reporting each hash's time to `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Hasher {
        Hasher { metrics, ..self }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// A place to hash, or [`AuthError::Busy`] when the queue is full.
    pub fn admit(&self) -> Result<Admission, AuthError> {
        let load = &self.load;
        load.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < load.capacity).then_some(n + 1)
            })
            .map(|_| Admission(Arc::clone(load)))
            .map_err(|_| AuthError::Busy)
    }

    /// Requests holding an [`Admission`]: hashing, or waiting to.
    pub fn admitted(&self) -> usize {
        self.load.admitted.load(Ordering::Acquire)
    }

    /// Hashes waiting for a thread.
    pub fn queued(&self) -> usize {
        self.load.queued.load(Ordering::Acquire)
    }

    /// Hashes and verifications done since start.
    pub fn completed(&self) -> u64 {
        self.load.completed.load(Ordering::Acquire)
    }

    /// Hashes the normalized password at the configured cost.
    pub async fn hash(&self, password: Password) -> Result<String, AuthError> {
        let cost = self.cost;
        Ok(self
            .run(move || bcrypt::hash(password.normalized(), cost))
            .await??)
    }

    /// Checks `candidate` against `hash`: its normalized form, then, if that fails and it was
    /// typed otherwise, the form as typed. `None` (a password that could not be parsed) still
    /// pays for one full verification, so a refusal takes as long as a wrong password; an
    /// unknown account, checked against the dummy hash, pays for as many as a known one.
    pub async fn verify(
        &self,
        candidate: Option<Password>,
        hash: String,
    ) -> Result<Matched, AuthError> {
        let Some(password) = candidate else {
            self.run(move || bcrypt::verify("", &hash)).await??;
            return Ok(Matched::No);
        };
        let Password { normalized, typed } = password;
        let stored = hash.clone();
        if self
            .run(move || bcrypt::verify(&normalized, &stored))
            .await??
        {
            return Ok(Matched::Normalized);
        }
        let Some(typed) = typed else {
            return Ok(Matched::No);
        };
        Ok(
            match self.run(move || bcrypt::verify(&typed, &hash)).await?? {
                true => Matched::AsTyped,
                false => Matched::No,
            },
        )
    }

    /// Runs `f` on the pool (`spawn_blocking` on the pool's runtime), awaited from any runtime.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let runtime = self
            .pool
            .0
            .as_ref()
            .expect("the pool lives as long as the hasher");
        let (load, metrics) = (Arc::clone(&self.load), self.metrics.clone());
        load.queued.fetch_add(1, Ordering::AcqRel);
        let work = move || {
            load.queued.fetch_sub(1, Ordering::AcqRel);
            let started = std::time::Instant::now();
            let done = f();
            metrics.hash_time(started.elapsed());
            load.completed.fetch_add(1, Ordering::AcqRel);
            done
        };
        Ok(runtime.spawn_blocking(work).await?)
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
        assert_eq!(err, PasswordFault::TooLong);
        assert!(err.to_string().contains("72 bytes"), "{err}");
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
            assert_eq!(err, PasswordFault::Common, "{common}");
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
        let err = policy.new_password("short").unwrap_err();
        assert_eq!(err, PasswordFault::TooShort(8));
        assert_eq!(err.to_string(), "must be at least 8 characters");
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
        let hasher = Hasher::new(4, 2, 8, 0).unwrap();
        let hashed = hasher
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(hashed.starts_with("$2b$04$"));
        let check = |p: &str| hasher.verify(Some(Password::parse(p).unwrap()), hashed.clone());
        assert_eq!(check("correct horse").await.unwrap(), Matched::Normalized);
        assert_eq!(check("correct horsE").await.unwrap(), Matched::No);
        assert_eq!(
            hasher.verify(None, hashed.clone()).await.unwrap(),
            Matched::No
        );
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
        let hasher = Hasher::new(4, 1, 8, 0).unwrap();
        let hashed = hasher.hash(Password::parse(&long).unwrap()).await.unwrap();
        let prefix = Password::parse(&long[..71]).unwrap();
        assert_eq!(
            hasher.verify(Some(prefix), hashed).await.unwrap(),
            Matched::No
        );
    }

    #[rocket::async_test]
    async fn hashes_beyond_the_concurrency_limit_wait_for_a_thread() {
        let hasher = Hasher::new(4, 1, 8, 0).unwrap();
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

    #[test]
    fn the_default_queue_drains_in_about_5_seconds_at_any_cost() {
        assert_eq!(
            admitted_at_most(2, 0, 12),
            2 + 32,
            "16 waiting per thread at cost 12"
        );
        assert_eq!(admitted_at_most(2, 0, 11), 2 + 64);
        assert_eq!(admitted_at_most(2, 0, 14), 2 + 8);
        assert_eq!(admitted_at_most(1, 0, 31), 1 + 1, "always one waiting");
        assert_eq!(admitted_at_most(2, 5, 12), 2 + 5, "as configured");
    }

    #[rocket::async_test]
    async fn a_full_queue_refuses_at_once_and_a_freed_place_admits_again() {
        let hasher = Hasher::new(4, 1, 2, 0).unwrap();
        let first = hasher.admit().unwrap();
        let second = hasher.admit().unwrap();
        assert!(matches!(hasher.admit(), Err(AuthError::Busy)));
        drop(first);
        let third = hasher.admit();
        assert!(third.is_ok());
        drop((second, third));
    }

    #[test]
    fn passwords_are_normalized_to_nfkc() {
        let ligature = Password::parse("\u{FB01}sh").unwrap();
        assert_eq!(ligature.normalized(), "fish");
        assert_eq!(ligature.typed.as_deref(), Some("\u{FB01}sh"));
        let full_width = Password::parse("\u{FF50}\u{FF57}").unwrap();
        assert_eq!(full_width.normalized(), "pw");
        let composed = Password::parse("cafe\u{301}").unwrap();
        assert_eq!(composed.normalized(), "caf\u{E9}");
        assert!(Password::parse("plain").unwrap().typed.is_none());
    }

    #[test]
    fn the_byte_limit_applies_to_the_normalized_form() {
        // U+FDFA normalizes to 18 Arabic letters, 33 bytes; three of them are 99.
        let expanding = "\u{FDFA}".repeat(3);
        assert!(expanding.len() <= MAX_BYTES);
        assert!(Password::parse(&expanding).is_err());
    }

    #[rocket::async_test]
    async fn a_hash_of_the_typed_form_still_verifies_and_says_so() {
        let hasher = Hasher::new(4, 1, 8, 0).unwrap();
        let legacy = bcrypt::hash("\u{FB01}sh", 4).unwrap();
        let typed = Password::parse("\u{FB01}sh").unwrap();
        assert_eq!(
            hasher.verify(Some(typed), legacy.clone()).await.unwrap(),
            Matched::AsTyped
        );
        let normalized = Password::parse("fish").unwrap();
        assert_eq!(
            hasher.verify(Some(normalized), legacy).await.unwrap(),
            Matched::No
        );
        let current = hasher
            .hash(Password::parse("\u{FB01}sh").unwrap())
            .await
            .unwrap();
        let plain = Password::parse("fish").unwrap();
        assert_eq!(
            hasher.verify(Some(plain), current).await.unwrap(),
            Matched::Normalized
        );
    }

    #[cfg(target_os = "linux")]
    #[rocket::async_test]
    async fn hashing_threads_run_at_the_configured_nice_value() {
        // SAFETY: getpriority takes plain integers and touches no memory of ours.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        // Relative to the caller's own (`nice -n 5 cargo test`): lowering the priority needs
        // no privilege, raising it would.
        let before = nice();
        let lower = (before + 2).min(19);
        let hasher = Hasher::new(4, 1, 8, lower).unwrap();
        assert_eq!(hasher.run(nice).await.unwrap(), lower);
        assert_eq!(nice(), before, "the caller's priority is untouched");
    }
}
