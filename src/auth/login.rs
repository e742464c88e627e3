//! Signing up and logging in: registration, the credential check (the original's
//! `valid_login`), and the throttled login that starts a session.
//!
//! A login is checked against the hash it read, and its session is made, in one transaction
//! with the check that this hash is still the account's: a login with the old password that
//! was in flight while a reset completed fails, and a stale hash's replacement (a raised cost,
//! a password from before normalization) never writes an old password over a new one.

use super::account::VERIFY_TTL_SECS;
use super::audit::Field;
use super::password::{self, Matched, Password};
use super::sessions::{Login, Opening, SessionStart};
use super::throttle::{Reservation, Scope};
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, token};
use crate::db::account_tokens::{self, NewToken, Purpose};
use crate::db::{DbError, Tx, User, devices, now, sessions, users};
use crate::metrics::LoginOutcome;

/// A password found right: its account, and what the write that acts on it must check.
pub(super) struct Verified {
    pub user: User,
    pub check: PasswordCheck,
}

/// A right password that passed the gate ([`Auth::attempt`]).
pub(super) struct Attempt {
    pub verified: Verified,
    /// What the attempt was counted against (the account, or the trusted device): a success
    /// forgives its failures.
    pub budget: (Scope, String),
    /// The attempt's count, to release: it was no failure.
    pub reservation: Reservation,
    /// The digest of the client's device cookie, when it is trusted for this account.
    pub device: Option<[u8; 32]>,
}

/// What a write acting on a verified password checks first, in its own transaction.
pub(super) struct PasswordCheck {
    user_id: i32,
    /// The stored hash the password matched: the write goes ahead only while it is still the
    /// account's.
    matched_hash: String,
    /// A replacement for a stale hash (a cost below the configured one, or a password hashed
    /// before normalization), made from the password just checked; or the hash of a new
    /// password that replaces the checked one ([`PasswordCheck::replace_with`]).
    rehash: Option<String>,
}

impl PasswordCheck {
    /// The stale hash's replacement, if the check writes one.
    pub(super) fn rehash(&self) -> Option<String> {
        self.rehash.clone()
    }

    /// The check that writes `new_hash` (a changed password) over the password verified,
    /// provided it is still the account's.
    pub(super) fn replace_with(self, new_hash: String) -> PasswordCheck {
        PasswordCheck {
            rehash: Some(new_hash),
            ..self
        }
    }

    /// In the caller's transaction: whether the account's password is still the one verified,
    /// writing the stale hash's replacement if there is one. One conditional update either way:
    /// it also locks the account's row until the transaction ends, so a reset cannot slip in
    /// between this check and the session it allows.
    pub(super) fn still_current(&self, tx: &mut Tx<'_>) -> Result<bool, DbError> {
        let new = self.rehash.as_deref().unwrap_or(&self.matched_hash);
        users::replace_password_hash(tx, self.user_id, &self.matched_hash, new)
    }
}

impl Auth {
    /// Creates an account and mails its email a verification link. Signups are limited per
    /// client address (each request counts). The early lookup spares a bcrypt hash for a taken
    /// email; the unique index still decides races, so two concurrent registrations give one
    /// account. A live session the client presents ends with the signup.
    pub async fn register(
        &self,
        caller: &Caller,
        email: &Email,
        password: Password,
    ) -> Result<Account, AuthError> {
        let (user, ()) = self
            .sign_up(caller, email, password, |_, _, _| Ok(()))
            .await?;
        Ok(user.into())
    }

    /// [`Auth::register`], logging the client in: the account and its first session (the
    /// client becomes a trusted device) are stored in one transaction, so a signup the storage
    /// refuses leaves no account behind.
    pub async fn register_and_log_in(
        &self,
        caller: &Caller,
        email: &Email,
        password: Password,
    ) -> Result<Login, AuthError> {
        let opening = Opening::new(caller, None, self.devices_per_account);
        let store = move |tx: &mut Tx<'_>, user: &User, at| {
            opening.store(tx, user.id, at)?;
            Ok(opening)
        };
        let (user, opening) = self.sign_up(caller, email, password, store).await?;
        Ok(opening.login(user))
    }

    /// The signup both make; `also` writes in its transaction, once the account is added.
    async fn sign_up<T: Send + 'static>(
        &self,
        caller: &Caller,
        email: &Email,
        password: Password,
        also: impl FnOnce(&mut Tx<'_>, &User, i64) -> Result<T, DbError> + Send + 'static,
    ) -> Result<(User, T), AuthError> {
        let _admission = self.hasher.admit()?;
        self.gate(vec![(Scope::Signup, caller.address_key())])
            .await
            .map_err(|e| self.throttled(caller, "signup.throttled", e, None))?
            .keep();
        let address = email.to_string();
        if self
            .db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let hashed = self.hasher.hash(password).await?;
        let (address, lifetimes, replaced) =
            (email.to_string(), self.lifetimes, caller.session_digest());
        let verification = token::generate();
        let digest = token::digest(&verification);
        let (user, more) = self
            .db
            .write(move |tx| {
                let at = now();
                if let Some(digest) = replaced {
                    sessions::delete_session(tx, &digest, at, lifetimes)?;
                }
                let user = users::add_user(tx, &address, &hashed)?;
                let verification = NewToken {
                    user_id: user.id,
                    purpose: Purpose::Verify,
                    token_digest: &digest,
                    new_email: None,
                    expires_at: at + VERIFY_TTL_SECS,
                    credential_version: user.credential_version,
                };
                account_tokens::issue(tx, &verification)?;
                let more = also(tx, &user, at)?;
                Ok((user, more))
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "signup", &fields);
        self.metrics.signup();
        self.mailer
            .send_verification_link(&user.email, &verification);
        Ok((user, more))
    }

    /// The account whose password is `password` (the original's `valid_login`, unthrottled).
    /// Unknown emails and unusable passwords cost as much bcrypt as a wrong password, and get
    /// the same error.
    pub async fn valid_login(&self, email: &Email, password: &str) -> Result<User, AuthError> {
        let Verified { mut user, check } = self.verify_password(email, password).await?;
        let rehash = check.rehash();
        if !self.db.write(move |tx| check.still_current(tx)).await? {
            return Err(AuthError::InvalidCredentials);
        }
        if let Some(hash) = rehash {
            user.hashed_password = hash;
        }
        Ok(user)
    }

    /// Checks `password` against the account `email`, and rehashes it if its stored hash is
    /// stale. Unknown emails verify against a dummy hash of the configured cost. A stored hash
    /// of a lower cost (a dormant account, from before the cost was raised) is followed by a
    /// verification at the configured cost when the password is wrong, as by the rehash when
    /// it is right, so neither answer comes sooner than for a current account.
    pub(super) async fn verify_password(
        &self,
        email: &Email,
        password: &str,
    ) -> Result<Verified, AuthError> {
        let address = email.to_string();
        let user = self
            .db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?;
        let stored = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.hashed_password.clone());
        let cheap = password::cost_of(&stored).is_some_and(|c| c < self.hasher.cost());
        let matched = self
            .hasher
            .verify(Password::parse(password).ok(), stored.clone())
            .await?;
        let user = match (user, matched) {
            (Some(user), Matched::Normalized | Matched::AsTyped) => user,
            (_, _) => {
                if cheap {
                    let dummy = self.dummy_hash.clone();
                    self.hasher.verify(None, dummy).await?;
                }
                return Err(AuthError::InvalidCredentials);
            }
        };
        let rehash = if cheap || matched == Matched::AsTyped {
            // It parsed for the verification that matched.
            let password = Password::parse(password).map_err(|e| AuthError::Internal(e.into()))?;
            Some(self.hasher.hash(password).await?)
        } else {
            None
        };
        let check = PasswordCheck {
            user_id: user.id,
            matched_hash: stored,
            rehash,
        };
        Ok(Verified { user, check })
    }

    /// Checks the credentials and starts a session.
    ///
    /// The attempt is counted at the gate ([`Auth::attempt`]). A success releases the count
    /// and forgives the account's (or the device's) failures, ends the session the client
    /// presented, and trusts the device. With `require_verified_email`, an account whose email
    /// is not verified gets no session: it hears so only after its password was right, and a
    /// new verification link goes out (within the account's hourly mail cap).
    pub async fn login(
        &self,
        caller: &Caller,
        email: &Email,
        password: &str,
    ) -> Result<Login, AuthError> {
        let login = self.log_in(caller, email, password).await;
        let outcome = match &login {
            Ok(_) => Some(LoginOutcome::ok),
            Err(AuthError::InvalidCredentials) => Some(LoginOutcome::failed),
            Err(AuthError::Throttled { .. }) => Some(LoginOutcome::throttled),
            Err(AuthError::Busy) => Some(LoginOutcome::busy),
            Err(AuthError::EmailNotVerified) => Some(LoginOutcome::unverified),
            Err(_) => None,
        };
        if let Some(outcome) = outcome {
            self.metrics.login(outcome);
        }
        login
    }

    async fn log_in(
        &self,
        caller: &Caller,
        email: &Email,
        password: &str,
    ) -> Result<Login, AuthError> {
        let _admission = self.hasher.admit()?;
        let Attempt {
            verified,
            budget,
            reservation,
            device,
        } = self
            .attempt(caller, email, password, "login.failed")
            .await?;
        if self.require_verified_email && verified.user.email_verified_at.is_none() {
            self.release(reservation).await;
            let fields = [
                Field::UserId(verified.user.id),
                Field::Email(email.as_str()),
            ];
            self.audit.record(caller, "login.unverified", &fields);
            let account = Account::from(verified.user);
            self.resend_verification_quietly(caller, &account).await;
            return Err(AuthError::EmailNotVerified);
        }
        let start = SessionStart {
            user: verified.user,
            check: Some(verified.check),
            forgive: Some(budget),
            reservation,
            replaced: caller.session_digest(),
            device,
            password_changed: false,
        };
        let Some(login) = self.start_session(caller, start).await? else {
            self.audit
                .record(caller, "login.failed", &[Field::Email(email.as_str())]);
            return Err(AuthError::InvalidCredentials);
        };
        let fields = [
            Field::UserId(login.user.id),
            Field::Email(&login.user.email),
        ];
        self.audit.record(caller, "login", &fields);
        Ok(login)
    }

    /// Checks `password` for the account `email` as every login does, and as every action that
    /// asks for the current password does (a wrong one is a failed login for the account).
    ///
    /// The attempt is counted at the gate, before bcrypt: per account, or per device when the
    /// client presents a device cookie trusted for this account (and then against the ceiling
    /// of all the account's devices), and per address. A device cookie that is not trusted for
    /// the account (unknown, revoked, another account's) counts as none. Beyond a
    /// limit the answer is [`AuthError::Throttled`] without checking the password. A wrong
    /// password keeps the count and is audited as `failed_event`; the caller releases or
    /// spends the reservation of a right one. The caller holds the hasher's admission.
    pub(super) async fn attempt(
        &self,
        caller: &Caller,
        email: &Email,
        password: &str,
        failed_event: &str,
    ) -> Result<Attempt, AuthError> {
        let device = self.trusted_device(caller, email).await?;
        let budget = match &device {
            Some(digest) => (Scope::LoginDevice, hex(digest)),
            None => (Scope::LoginAccount, email.to_string()),
        };
        let mut counted = vec![budget.clone(), (Scope::LoginAddress, caller.address_key())];
        if device.is_some() {
            counted.push((Scope::LoginDevices, email.to_string()));
        }
        let reservation = self
            .gate(counted)
            .await
            .map_err(|e| self.throttled(caller, "login.throttled", e, Some(email.as_str())))?;
        match self.verify_password(email, password).await {
            Ok(verified) => Ok(Attempt {
                verified,
                budget,
                reservation,
                device,
            }),
            Err(AuthError::InvalidCredentials) => {
                reservation.keep();
                self.audit
                    .record(caller, failed_event, &[Field::Email(email.as_str())]);
                Err(AuthError::InvalidCredentials)
            }
            Err(other) => {
                self.release(reservation).await;
                Err(other)
            }
        }
    }

    /// The digest of the caller's device cookie, if it is trusted for the account `email`.
    async fn trusted_device(
        &self,
        caller: &Caller,
        email: &Email,
    ) -> Result<Option<[u8; 32]>, AuthError> {
        let Some(device_token) = &caller.device_token else {
            return Ok(None);
        };
        let (digest, address) = (token::digest(device_token), email.to_string());
        let trusted = self
            .db
            .run(move |c| devices::is_trusted_for(c, &digest, &address, now()))
            .await?;
        Ok(trusted.then_some(digest))
    }
}

/// A digest as a throttling key.
pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ResetRequest;
    use crate::auth::password::Hasher;
    use crate::auth::testing::{auth, auth_with, caller, email, password, stored_hash};
    use crate::db::schema::sessions as sessions_table;
    use crate::db::testing::{conn, write};
    use diesel::prelude::*;
    use std::time::{Duration, Instant};

    #[rocket::async_test]
    async fn register_stores_a_bcrypt_hash_not_the_password() {
        let (auth, db, _dir) = auth().await;
        let user = auth
            .register(&caller(), &email("a@b.com"), password("pw12345"))
            .await
            .unwrap();
        let hash = stored_hash(&db, user.id);
        assert!(hash.starts_with("$2b$04$"));
        assert!(bcrypt::verify("pw12345", &hash).unwrap());
    }

    #[rocket::async_test]
    async fn registering_a_taken_email_fails() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("x"))
            .await
            .unwrap();
        let again = auth
            .register(&caller(), &email("a@b.com"), password("y"))
            .await;
        assert!(matches!(again, Err(AuthError::EmailTaken)));
    }

    #[rocket::async_test]
    async fn a_signup_that_logs_in_stores_the_account_and_its_session_or_neither() {
        let (auth, db, _dir) = auth().await;
        let login = auth
            .register_and_log_in(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        assert!(login.device_token.is_some(), "the browser becomes trusted");
        assert_eq!(
            auth.user_for_session(&login.session_id).await.unwrap().id,
            login.user.id
        );

        // The storage refuses the session's row after taking the account's (on either backend).
        write(&db, |tx| {
            Ok(diesel::sql_query("DROP TABLE sessions").execute(&mut **tx)?)
        });
        let refused = auth
            .register_and_log_in(&caller(), &email("c@d.com"), password("pw"))
            .await;
        assert!(refused.is_err(), "{refused:?}");
        let stored = crate::db::schema::users::table
            .select(crate::db::schema::users::email)
            .load::<String>(&mut **conn(&db))
            .unwrap();
        assert_eq!(stored, ["a@b.com"], "no account without its session");
    }

    #[rocket::async_test]
    async fn concurrent_signups_that_log_in_give_one_account_and_one_session() {
        let (auth, db, _dir) = auth().await;
        let (caller, address) = (caller(), email("a@b.com"));
        let signup = || auth.register_and_log_in(&caller, &address, password("pw"));
        let results = futures::future::join_all((0..6).map(|_| signup())).await;
        let made = results.iter().filter(|r| r.is_ok()).count();
        let taken = results
            .iter()
            .filter(|r| matches!(r, Err(AuthError::EmailTaken)))
            .count();
        assert_eq!((made, taken), (1, 5), "{results:?}");
        let sessions = sessions_table::table
            .count()
            .get_result::<i64>(&mut **conn(&db))
            .unwrap();
        assert_eq!(sessions, 1, "only the stored account got a session");
    }

    #[rocket::async_test]
    async fn valid_login_needs_the_right_password_and_a_known_email() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("right"))
            .await
            .unwrap();
        assert!(auth.valid_login(&email("a@b.com"), "right").await.is_ok());
        for (who, pw) in [
            ("a@b.com", "wrong"),
            ("a@b.com", ""),
            ("nobody@b.com", "right"),
        ] {
            let result = auth.valid_login(&email(who), pw).await;
            assert!(
                matches!(result, Err(AuthError::InvalidCredentials)),
                "{who}"
            );
        }
        let long = "r".repeat(73);
        let result = auth.valid_login(&email("a@b.com"), &long).await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)));
    }

    #[rocket::async_test]
    async fn an_unknown_email_is_verified_against_the_dummy_hash() {
        let (auth, _db, _dir) = auth().await;
        assert_eq!(
            password::cost_of(&auth.dummy_hash),
            Some(4),
            "the configured cost"
        );
        let broken = Auth {
            dummy_hash: "not a bcrypt hash".into(),
            ..auth.clone()
        };
        // Were the dummy verification skipped, this would be a plain InvalidCredentials.
        let result = broken.valid_login(&email("nobody@b.com"), "pw").await;
        assert!(matches!(result, Err(AuthError::Internal(_))), "{result:?}");
        let result = auth.valid_login(&email("nobody@b.com"), "pw").await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)));
    }

    /// Stores an account directly, with a hash of `stored_password` at `cost`.
    fn stored(db: &crate::db::Db, address: &str, stored_password: &str, cost: u32) -> User {
        let hash = bcrypt::hash(stored_password, cost).unwrap();
        write(db, |tx| users::add_user(tx, address, &hash))
    }

    #[rocket::async_test]
    async fn a_wrong_password_for_a_cheap_stored_hash_still_costs_the_configured_work() {
        let (auth, db, _dir) = auth_with(|s| s.bcrypt_cost = 5).await;
        stored(&db, "dormant@b.com", "pw", 4);
        stored(&db, "current@b.com", "pw", 5);
        let work = |who: &'static str, pw: &'static str| {
            let auth = auth.clone();
            async move {
                let before = auth.hasher.completed();
                let result = auth.valid_login(&email(who), pw).await;
                (auth.hasher.completed() - before, result.is_ok())
            }
        };
        assert_eq!(work("current@b.com", "wrong").await, (1, false));
        assert_eq!(
            work("dormant@b.com", "wrong").await,
            (2, false),
            "the stored cost, then the configured one"
        );
        assert_eq!(
            work("dormant@b.com", "pw").await,
            (2, true),
            "then the rehash"
        );
        assert_eq!(work("dormant@b.com", "pw").await, (1, true), "now current");
    }

    #[rocket::async_test]
    async fn a_password_hashed_before_normalization_logs_in_and_is_rehashed_normalized() {
        let (auth, db, _dir) = auth().await;
        stored(&db, "a@b.com", "\u{FB01}sh", 4);
        assert!(auth.valid_login(&email("a@b.com"), "fish").await.is_err());
        let user = auth
            .valid_login(&email("a@b.com"), "\u{FB01}sh")
            .await
            .unwrap();
        assert!(bcrypt::verify("fish", &user.hashed_password).unwrap());
        let stored = users::find_user_by_id(&mut conn(&db), user.id)
            .unwrap()
            .unwrap();
        assert_eq!(stored.hashed_password, user.hashed_password);
        assert!(auth.valid_login(&email("a@b.com"), "fish").await.is_ok());
    }

    /// Waits (at most 10 s) until `done` holds.
    async fn until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out");
            rocket::tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Occupies `hasher`'s thread until the returned sender is used; returns once it does.
    async fn hold(hasher: &Hasher) -> std::sync::mpsc::Sender<()> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = rocket::tokio::sync::oneshot::channel();
        let hasher = hasher.clone();
        rocket::tokio::spawn(async move {
            let work = move || {
                started.send(()).unwrap();
                released.recv().unwrap();
            };
            hasher.run(work).await
        });
        running.await.unwrap();
        release
    }

    /// Resets the password of `to` through `auth`, to `new`.
    async fn reset(auth: &Auth, to: &str, new: &str) {
        let ResetRequest::Issued(token) = auth
            .request_reset(&caller(), &email(to), true)
            .await
            .unwrap()
        else {
            panic!("a known account gets a token")
        };
        auth.spend_reset_token(&caller(), &token, None, password(new))
            .await
            .unwrap();
    }

    fn session_count(db: &crate::db::Db) -> i64 {
        sessions_table::table
            .count()
            .get_result(&mut **conn(db))
            .unwrap()
    }

    #[rocket::async_test]
    async fn a_login_checked_while_the_password_is_reset_fails_and_starts_no_session() {
        let (auth, db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("old"))
            .await
            .unwrap();
        let slow = Auth {
            hasher: Hasher::new(4, 1, 16, 0).unwrap(),
            ..auth.clone()
        };
        let hasher = slow.hasher.clone();
        let release = hold(&hasher).await;
        let login =
            rocket::tokio::spawn(
                async move { slow.login(&caller(), &email("a@b.com"), "old").await },
            );
        until(|| hasher.queued() == 1).await; // it read the old hash and waits to check it
        reset(&auth, "a@b.com", "new").await;
        release.send(()).unwrap();
        let result = login.await.unwrap();
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
        assert_eq!(session_count(&db), 0);
        assert!(auth.valid_login(&email("a@b.com"), "new").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_rehash_computed_while_the_password_is_reset_never_writes_the_old_one_back() {
        let (auth, db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("old"))
            .await
            .unwrap();
        let slow = Auth {
            hasher: Hasher::new(5, 1, 16, 0).unwrap(),
            ..auth.clone()
        };
        let hasher = slow.hasher.clone();
        let first = hold(&hasher).await;
        let login =
            rocket::tokio::spawn(
                async move { slow.login(&caller(), &email("a@b.com"), "old").await },
            );
        until(|| hasher.queued() == 1).await; // the verification waits
        let second = {
            let hasher = hasher.clone();
            rocket::tokio::spawn(async move { hold(&hasher).await })
        };
        until(|| hasher.queued() == 2).await; // and a second holder behind it
        first.send(()).unwrap();
        let second = second.await.unwrap(); // the verification ran; the second holds the thread
        until(|| hasher.queued() == 1).await; // the rehash waits behind it
        reset(&auth, "a@b.com", "new").await;
        second.send(()).unwrap();
        let result = login.await.unwrap();
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
        assert_eq!(session_count(&db), 0);
        assert!(auth.valid_login(&email("a@b.com"), "new").await.is_ok());
        assert!(auth.valid_login(&email("a@b.com"), "old").await.is_err());
    }
}
