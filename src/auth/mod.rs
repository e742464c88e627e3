//! Auth layer: the original service's `Auth` class. Registration, credential checks, sessions
//! and reset tokens, with brute-force limits and an audit trail, on top of the data layer.
//! Knows nothing of HTTP: the web layer hands it a [`Caller`] (address and request id).
//!
//! Invariants kept here: bcrypt runs only in `spawn_blocking` and never while a pooled
//! connection is held (each `db.run` closure ends before a hash starts); secrets leave this
//! module only as the raw value for the client and enter the database only as SHA-256 digests;
//! audit lines carry ids and emails only.

pub mod audit;
pub mod email;
pub mod password;
pub mod throttle;
pub mod token;

pub use audit::{AuditLog, Caller};
pub use email::Email;
pub use password::{Hasher, Password, PasswordPolicy};

use audit::Field;
use throttle::{Limits, Scope};

use crate::config::Settings;
use crate::db::sessions::{Lifetimes, TOUCH_AFTER_SECS};
use crate::db::{Db, DbError, User, UserChanges, now, sessions, throttle_events, users};
use crate::mail::Mailer;

/// Errors of the auth layer; `web::error` alone turns them into responses.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("no live session")]
    NoSession,
    #[error("no account has that email")]
    UnknownEmail,
    #[error("invalid reset token")]
    InvalidResetToken,
    /// Too many attempts; the password was not checked.
    #[error("too many attempts: try again later")]
    Throttled { retry_after: i64 },
    /// The database cannot store (or read) anything right now ([`DbError::Unavailable`]):
    /// nothing was changed, and the same request may succeed later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A failure that is not the client's: logged with its cause, answered generically.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<DbError> for AuthError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::EmailTaken => AuthError::EmailTaken,
            DbError::Unavailable(cause) => AuthError::Unavailable(cause),
            other => AuthError::Internal(other.into()),
        }
    }
}

impl From<bcrypt::BcryptError> for AuthError {
    fn from(error: bcrypt::BcryptError) -> Self {
        AuthError::Internal(error.into())
    }
}

impl From<tokio::task::JoinError> for AuthError {
    fn from(error: tokio::task::JoinError) -> Self {
        AuthError::Internal(error.into())
    }
}

/// The authentication service, held in Rocket's managed state; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    db: Db,
    hasher: Hasher,
    policy: PasswordPolicy,
    lifetimes: Lifetimes,
    reset_token_ttl: i64,
    limits: Limits,
    audit: AuditLog,
    mailer: Mailer,
    /// A hash at the configured cost that no password matches; logins for unknown emails verify
    /// against it so they take as long as logins for known ones.
    dummy_hash: String,
}

impl Auth {
    pub async fn new(
        db: Db,
        settings: &Settings,
        audit: AuditLog,
        mailer: Mailer,
    ) -> Result<Auth, AuthError> {
        let dummy = Password::parse(&token::generate()).expect("a 43-byte secret is a password");
        let concurrency = match settings.bcrypt_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let hasher = Hasher::new(settings.bcrypt_cost, concurrency, settings.bcrypt_nice)
            .map_err(|e| AuthError::Internal(e.into()))?;
        Ok(Auth {
            db,
            dummy_hash: hasher.hash(dummy).await?,
            hasher,
            policy: PasswordPolicy {
                min_length: settings.password_min_length,
                check_common: settings.password_check_common,
            },
            lifetimes: Lifetimes {
                idle: settings.session_idle_secs,
                absolute: settings.session_absolute_secs,
            },
            reset_token_ttl: settings.reset_token_ttl_secs,
            limits: Limits::from_settings(settings),
            audit,
            mailer,
        })
    }

    pub fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    /// Refuses with [`AuthError::Throttled`] when any (scope, key) reached its limit in the
    /// window; otherwise, when `count` is set, counts this attempt against each. One round trip.
    async fn gate(&self, counted: Vec<(Scope, String)>, count: bool) -> Result<(), AuthError> {
        if !self.limits.enabled {
            return Ok(());
        }
        let limits = self.limits;
        let retry = self
            .db
            .write(move |c| {
                let at = now();
                let keys: Vec<_> = counted.iter().map(|(s, k)| (*s, k.as_str())).collect();
                let retry = throttle::retry_after(c, &limits, &keys, at)?;
                if retry.is_none() && count {
                    for (scope, key) in &keys {
                        throttle_events::record_event(c, scope.name(), key, at)?;
                    }
                }
                Ok(retry)
            })
            .await?;
        match retry {
            Some(retry_after) => Err(AuthError::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts one failed attempt against each (scope, key).
    async fn count_failure(&self, counted: Vec<(Scope, String)>) -> Result<(), AuthError> {
        if !self.limits.enabled {
            return Ok(());
        }
        self.db
            .write(move |c| {
                let at = now();
                for (scope, key) in &counted {
                    throttle_events::record_event(c, scope.name(), key, at)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Audits a refusal for throttling and passes the error on.
    fn throttled(
        &self,
        caller: &Caller,
        event: &str,
        error: AuthError,
        email: Option<&str>,
    ) -> AuthError {
        if let AuthError::Throttled { retry_after } = error {
            let mut fields = vec![Field::RetryAfter(retry_after)];
            fields.extend(email.map(Field::Email));
            self.audit.record(caller, event, &fields);
        }
        error
    }

    /// Creates an account. Signups are limited per client address. The early lookup spares a
    /// bcrypt hash for a taken email; the unique index still decides races, so two concurrent
    /// registrations give one account.
    pub async fn register(
        &self,
        caller: &Caller,
        email: &Email,
        password: Password,
    ) -> Result<User, AuthError> {
        self.gate(vec![(Scope::Signup, caller.address_key())], true)
            .await
            .map_err(|e| self.throttled(caller, "signup.throttled", e, None))?;
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
        let address = email.to_string();
        let user = self
            .db
            .write(move |c| users::add_user(c, &address, &hashed))
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "signup", &fields);
        Ok(user)
    }

    /// The account whose password is `password` (the original's `valid_login`, unthrottled).
    /// Unknown emails and unusable passwords cost one bcrypt verification, like a wrong
    /// password, and get the same error.
    pub async fn valid_login(&self, email: &Email, password: &str) -> Result<User, AuthError> {
        let address = email.to_string();
        let user = self
            .db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?;
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.hashed_password.clone());
        let matches = self
            .hasher
            .verify(Password::parse(password).ok(), hash)
            .await?;
        let user = user
            .filter(|_| matches)
            .ok_or(AuthError::InvalidCredentials)?;
        self.upgrade_hash(user, password).await
    }

    /// Rehashes a correct password whose stored hash is cheaper than the configured cost (the
    /// cost was raised since it was set), so every account follows the new cost at next login.
    async fn upgrade_hash(&self, user: User, password: &str) -> Result<User, AuthError> {
        let stale =
            password::cost_of(&user.hashed_password).is_some_and(|c| c < self.hasher.cost());
        let Some(password) = Password::parse(password).ok().filter(|_| stale) else {
            return Ok(user);
        };
        let hashed = self.hasher.hash(password).await?;
        let id = user.id;
        let upgraded = self
            .db
            .write(move |c| {
                let changes = UserChanges {
                    hashed_password: Some(&hashed),
                    ..Default::default()
                };
                users::update_user(c, id, &changes)
            })
            .await?;
        Ok(upgraded)
    }

    /// Starts a new session for `user` and returns its id, the only copy of the raw value.
    pub async fn create_session(&self, user: &User) -> Result<String, AuthError> {
        self.open_session(user, false).await
    }

    /// Starts a session; with `forgive`, forgets the account's failed logins in the same
    /// transaction, so a login is all done or not done at all.
    async fn open_session(&self, user: &User, forgive: bool) -> Result<String, AuthError> {
        let session_id = token::generate();
        let (user_id, digest, email) = (user.id, token::digest(&session_id), user.email.clone());
        self.db
            .write(move |tx| {
                if forgive {
                    throttle_events::clear_events(tx, Scope::LoginAccount.name(), &email)?;
                }
                sessions::add_session(tx, user_id, &digest)
            })
            .await?;
        Ok(session_id)
    }

    /// Checks the credentials and starts a session: the user and the new session id.
    ///
    /// Beyond the failure limits per account or per address the answer is
    /// [`AuthError::Throttled`] without checking the password. A success forgives the account's
    /// failures.
    pub async fn login(
        &self,
        caller: &Caller,
        email: &Email,
        password: &str,
    ) -> Result<(User, String), AuthError> {
        let counted = vec![
            (Scope::LoginAccount, email.to_string()),
            (Scope::LoginAddress, caller.address_key()),
        ];
        self.gate(counted.clone(), false)
            .await
            .map_err(|e| self.throttled(caller, "login.throttled", e, Some(email.as_str())))?;
        let user = match self.valid_login(email, password).await {
            Err(AuthError::InvalidCredentials) => {
                self.count_failure(counted).await?;
                self.audit
                    .record(caller, "login.failed", &[Field::Email(email.as_str())]);
                return Err(AuthError::InvalidCredentials);
            }
            other => other?,
        };
        let session_id = self.open_session(&user, true).await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "login", &fields);
        Ok((user, session_id))
    }

    /// The user of a live session. Use is recorded at most once a minute per session, so most
    /// lookups stay reads.
    pub async fn user_for_session(&self, session_id: &str) -> Result<User, AuthError> {
        let (digest, lifetimes, at) = (token::digest(session_id), self.lifetimes, now());
        let found = self
            .db
            .read(move |c| sessions::find_session(c, &digest, at, lifetimes))
            .await?;
        let (session, user) = found.ok_or(AuthError::NoSession)?;
        if at - session.last_seen_at >= TOUCH_AFTER_SECS {
            let touched = self
                .db
                .write_relaxed(move |c| sessions::touch_session(c, &session.token_hash, at))
                .await;
            // Only bookkeeping: a read must not fail because its use could not be recorded
            // (a full disk). The session then expires by its older use, the safe side.
            if let Err(error) = touched {
                log::warn!(target: "auth_service::db", "a session's use was not recorded: {error}");
            }
        }
        Ok(user)
    }

    /// Ends the session `session_id` only; the account's other devices stay logged in.
    pub async fn destroy_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<(), AuthError> {
        let (digest, lifetimes, at) = (token::digest(session_id), self.lifetimes, now());
        let ended = self
            .db
            .write(move |c| sessions::delete_session(c, &digest, at, lifetimes))
            .await?;
        let user_id = ended.ok_or(AuthError::NoSession)?;
        self.audit
            .record(caller, "logout", &[Field::UserId(user_id)]);
        Ok(())
    }

    /// Issues a reset token for `email`, replacing any earlier one, mails the link and returns
    /// the token's raw value. Requests are limited per client address.
    pub async fn reset_token(&self, caller: &Caller, email: &Email) -> Result<String, AuthError> {
        self.gate(vec![(Scope::Reset, caller.address_key())], true)
            .await
            .map_err(|e| self.throttled(caller, "reset.throttled", e, Some(email.as_str())))?;
        let reset_token = token::generate();
        let (address, digest) = (email.to_string(), token::digest(&reset_token));
        let expires_at = now() + self.reset_token_ttl;
        let issued = self
            .db
            .write(move |c| {
                let Some(user) = users::find_user_by_email(c, &address)? else {
                    return Ok(None);
                };
                let changes = UserChanges {
                    reset_token: Some(Some(&digest)),
                    reset_token_expires_at: Some(Some(expires_at)),
                    ..Default::default()
                };
                users::update_user(c, user.id, &changes).map(Some)
            })
            .await?;
        let Some(user) = issued else {
            let fields = [Field::Email(email.as_str())];
            self.audit
                .record(caller, "reset.requested_unknown", &fields);
            return Err(AuthError::UnknownEmail);
        };
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "reset.requested", &fields);
        self.mailer.send_reset_link(&user.email, &reset_token);
        Ok(reset_token)
    }

    /// The account a reset token belongs to. Checks without spending the token; wrong tokens
    /// are counted per client address, and beyond the limit no token is checked at all.
    pub async fn reset_token_holder(
        &self,
        caller: &Caller,
        reset_token: &str,
    ) -> Result<User, AuthError> {
        let counted = vec![(Scope::ResetGuess, caller.address_key())];
        self.gate(counted.clone(), false)
            .await
            .map_err(|e| self.throttled(caller, "reset.throttled", e, None))?;
        let (digest, at) = (token::digest(reset_token), now());
        let holder = self
            .db
            .run(move |c| users::find_user_by_reset_token(c, &digest, at))
            .await?;
        match holder {
            Some(user) => Ok(user),
            None => {
                self.count_failure(counted).await?;
                self.audit.record(caller, "reset.invalid_token", &[]);
                Err(AuthError::InvalidResetToken)
            }
        }
    }

    /// Sets a new password with a reset token that must belong to `email` (the API's contract).
    pub async fn update_password(
        &self,
        caller: &Caller,
        email: &Email,
        reset_token: &str,
        password: Password,
    ) -> Result<User, AuthError> {
        let holder = self.reset_token_holder(caller, reset_token).await?;
        if holder.email != email.as_str() {
            return Err(AuthError::InvalidResetToken);
        }
        self.spend_reset_token(caller, holder, reset_token, password)
            .await
    }

    /// Sets a new password with a reset token alone (the emailed link names no email).
    pub async fn reset_password(
        &self,
        caller: &Caller,
        reset_token: &str,
        password: Password,
    ) -> Result<User, AuthError> {
        let holder = self.reset_token_holder(caller, reset_token).await?;
        self.spend_reset_token(caller, holder, reset_token, password)
            .await
    }

    /// The token is spent and every session of the account ends; no one is logged in, and the
    /// account's failed logins are forgiven. Callers check the token first, so an invalid one
    /// costs no bcrypt hash.
    async fn spend_reset_token(
        &self,
        caller: &Caller,
        holder: User,
        reset_token: &str,
        password: Password,
    ) -> Result<User, AuthError> {
        let hashed = self.hasher.hash(password).await?;
        let digest = token::digest(reset_token);
        let user = self
            .db
            .write(move |tx| {
                let user = users::reset_password(tx, &holder.email, &digest, &hashed, now())?;
                if user.is_some() {
                    throttle_events::clear_events(tx, Scope::LoginAccount.name(), &holder.email)?;
                }
                Ok(user)
            })
            .await?
            .ok_or(AuthError::InvalidResetToken)?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "reset.completed", &fields);
        self.mailer.send_password_changed(&user.email);
        Ok(user)
    }

    /// Deletes expired sessions, clears expired reset tokens and forgets attempts older than
    /// the throttling window (the periodic cleanup). Returns how many of each.
    pub async fn purge_expired(&self) -> Result<(usize, usize, usize), AuthError> {
        let (lifetimes, window) = (self.lifetimes, self.limits.window);
        Ok(self
            .db
            .write(move |c| {
                let at = now();
                Ok((
                    sessions::delete_expired_sessions(c, at, lifetimes)?,
                    users::clear_expired_reset_tokens(c, at)?,
                    throttle_events::delete_events_before(c, at - window)?,
                ))
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::{sessions as sessions_table, users as users_table};
    use crate::db::testing::{conn, temp_db};
    use diesel::prelude::*;

    async fn auth() -> (Auth, Db, tempfile::TempDir) {
        let (db, dir) = temp_db();
        let settings = Settings {
            bcrypt_cost: 4,
            password_min_length: 1,
            mail_outbox_dir: dir.path().join("mail").to_str().unwrap().to_owned(),
            ..Settings::default()
        };
        let audit = AuditLog::open(dir.path().join("audit.log").to_str().unwrap(), "text").unwrap();
        let mailer = Mailer::from_settings(&settings).unwrap();
        let auth = Auth::new(db.clone(), &settings, audit, mailer)
            .await
            .unwrap();
        (auth, db, dir)
    }

    fn caller() -> Caller {
        Caller::default()
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn password(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    #[rocket::async_test]
    async fn register_stores_a_bcrypt_hash_not_the_password() {
        let (auth, _db, _dir) = auth().await;
        let user = auth
            .register(&caller(), &email("a@b.com"), password("pw12345"))
            .await
            .unwrap();
        assert!(user.hashed_password.starts_with("$2b$04$"));
        assert!(bcrypt::verify("pw12345", &user.hashed_password).unwrap());
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

    #[rocket::async_test]
    async fn the_database_holds_only_digests_of_session_ids_and_reset_tokens() {
        let (auth, db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        let (_, session_id) = auth
            .login(&caller(), &email("a@b.com"), "pw")
            .await
            .unwrap();
        let reset_token = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();

        let c = &mut conn(&db);
        let stored_session: Vec<u8> = sessions_table::table
            .select(sessions_table::token_hash)
            .first(c)
            .unwrap();
        let stored_reset: Option<Vec<u8>> = users_table::table
            .select(users_table::reset_token)
            .first(c)
            .unwrap();
        assert_eq!(stored_session, token::digest(&session_id));
        assert_eq!(stored_reset.unwrap(), token::digest(&reset_token));

        let raw = std::fs::read(_dir.path().join("test.db")).unwrap();
        let wal = std::fs::read(_dir.path().join("test.db-wal")).unwrap_or_default();
        for secret in [&session_id, &reset_token] {
            let needle = secret.as_bytes();
            let found = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
            assert!(
                !found(&raw) && !found(&wal),
                "raw secret in the database file"
            );
        }
    }

    #[rocket::async_test]
    async fn sessions_resolve_to_their_user_until_destroyed() {
        let (auth, _db, _dir) = auth().await;
        let user = auth
            .register(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        let (_, first) = auth
            .login(&caller(), &email("a@b.com"), "pw")
            .await
            .unwrap();
        let (_, second) = auth
            .login(&caller(), &email("a@b.com"), "pw")
            .await
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(auth.user_for_session(&first).await.unwrap().id, user.id);

        auth.destroy_session(&caller(), &first).await.unwrap();
        assert!(matches!(
            auth.user_for_session(&first).await,
            Err(AuthError::NoSession)
        ));
        assert!(matches!(
            auth.destroy_session(&caller(), &first).await,
            Err(AuthError::NoSession)
        ));
        assert_eq!(auth.user_for_session(&second).await.unwrap().id, user.id);
    }

    #[rocket::async_test]
    async fn a_reset_token_for_an_unknown_email_is_refused() {
        let (auth, _db, _dir) = auth().await;
        let result = auth.reset_token(&caller(), &email("nobody@b.com")).await;
        assert!(matches!(result, Err(AuthError::UnknownEmail)));
    }

    #[rocket::async_test]
    async fn a_reset_token_works_once_and_ends_every_session() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("old"))
            .await
            .unwrap();
        let (_, session_id) = auth
            .login(&caller(), &email("a@b.com"), "old")
            .await
            .unwrap();
        let reset_token = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();

        auth.update_password(&caller(), &email("a@b.com"), &reset_token, password("new"))
            .await
            .unwrap();
        assert!(auth.valid_login(&email("a@b.com"), "new").await.is_ok());
        assert!(auth.valid_login(&email("a@b.com"), "old").await.is_err());
        assert!(auth.user_for_session(&session_id).await.is_err());

        let again = auth
            .update_password(
                &caller(),
                &email("a@b.com"),
                &reset_token,
                password("newer"),
            )
            .await;
        assert!(matches!(again, Err(AuthError::InvalidResetToken)));
        assert!(auth.valid_login(&email("a@b.com"), "new").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_reset_token_is_valid_only_for_its_own_email() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("a"))
            .await
            .unwrap();
        auth.register(&caller(), &email("c@d.com"), password("c"))
            .await
            .unwrap();
        let reset_token = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();
        let result = auth
            .update_password(&caller(), &email("c@d.com"), &reset_token, password("x"))
            .await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        assert!(auth.valid_login(&email("c@d.com"), "c").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_reset_by_token_alone_changes_the_holders_password() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("old"))
            .await
            .unwrap();
        let reset_token = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();
        let holder = auth
            .reset_token_holder(&caller(), &reset_token)
            .await
            .unwrap();
        assert_eq!(holder.email, "a@b.com");
        let user = auth
            .reset_password(&caller(), &reset_token, password("new"))
            .await
            .unwrap();
        assert_eq!(user.id, holder.id);
        assert!(auth.valid_login(&email("a@b.com"), "new").await.is_ok());
        assert!(matches!(
            auth.reset_token_holder(&caller(), &reset_token).await,
            Err(AuthError::InvalidResetToken)
        ));
    }

    #[rocket::async_test]
    async fn a_new_reset_token_replaces_the_old_one() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("a"))
            .await
            .unwrap();
        let old = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();
        let new = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();
        let result = auth
            .update_password(&caller(), &email("a@b.com"), &old, password("x"))
            .await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        assert!(
            auth.update_password(&caller(), &email("a@b.com"), &new, password("x"))
                .await
                .is_ok()
        );
    }

    #[rocket::async_test]
    async fn racing_resets_with_one_token_succeed_once() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("a"))
            .await
            .unwrap();
        let reset_token = auth
            .reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap();
        let (e, t) = (email("a@b.com"), reset_token.as_str());
        let c = caller();
        let (one, two, three) = rocket::tokio::join!(
            auth.update_password(&c, &e, t, password("one")),
            auth.update_password(&c, &e, t, password("two")),
            auth.update_password(&c, &e, t, password("three")),
        );
        let wins = [one.is_ok(), two.is_ok(), three.is_ok()];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    }
}
