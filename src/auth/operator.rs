//! What the service's operator reaches: readiness, the metrics of this moment, and the account
//! fixes and backups of the admin command line (`auth_service user …`, `sessions …`,
//! `backup …`). None of it is throttled (an operator is not a guest), and every change is
//! audited as an `admin.*` event.

use std::path::Path;
use std::time::{Duration, Instant};

use super::audit::Field;
use super::links::revoke_derived_trust;
use super::throttle::Reservation;
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, Password};
use crate::db::{DbError, devices, now, sessions, users};
use crate::metrics::Load;

/// How long `GET /health/ready` waits for the database before it answers 503.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// An account as `auth_service user show` prints it: no hash, no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub id: i32,
    pub email: String,
    pub created_at: i64,
    pub email_verified_at: Option<i64>,
    pub live_sessions: usize,
    pub trusted_devices: usize,
    /// When one of its live sessions was last used.
    pub last_seen_at: Option<i64>,
    /// When the operator disabled it.
    pub disabled_at: Option<i64>,
}

/// The operator, as audit lines name who acted: no address, no request.
fn operator() -> Caller {
    Caller::default()
}

/// What the service's operator reaches.
#[derive(Clone, Copy)]
pub struct Operator<'a>(pub(super) &'a Auth);

impl Operator<'_> {
    /// Whether the service can serve: the database answers within [`READY_TIMEOUT`], has
    /// every migration applied and takes a write. `Err` says why not.
    ///
    /// Anyone may ask, and the check writes: checks run one at a time, and a caller that waited
    /// for a check in flight takes its outcome, so a burst of probes costs one write, not one
    /// each (and never more than one pooled connection).
    pub async fn ready(self) -> Result<(), AuthError> {
        let auth = self.0;
        let asked = Instant::now();
        let mut last = auth.readiness.lock().await;
        if let Some((finished, outcome)) = &*last
            && *finished >= asked
        {
            return outcome.clone().map_err(AuthError::Unavailable);
        }
        let db = auth.db.clone();
        let check = tokio::task::spawn_blocking(move || db.ready());
        let outcome = match tokio::time::timeout(READY_TIMEOUT, check).await {
            Ok(checked) => checked.map_err(AuthError::from).and_then(|c| Ok(c?)),
            Err(_) => Err(AuthError::Unavailable(format!(
                "the database did not answer within {} s",
                READY_TIMEOUT.as_secs()
            ))),
        };
        let outcome = outcome.map_err(|error| match error {
            AuthError::Unavailable(cause) => cause,
            other => other.to_string(),
        });
        *last = Some((Instant::now(), outcome.clone()));
        outcome.map_err(AuthError::Unavailable)
    }

    /// The metrics in the Prometheus text format, with this moment's load; `None` when
    /// metrics are off.
    pub fn metrics_text(self) -> Option<String> {
        let auth = self.0;
        let (pool_size, pool_idle) = auth.db.pool_state();
        auth.metrics.encode(Load {
            bcrypt_admitted: auth.hasher.admitted(),
            pool_size,
            pool_idle,
        })
    }

    /// The account `email`, or [`AuthError::UnknownAccount`].
    async fn account(self, email: &Email) -> Result<Account, AuthError> {
        let auth = self.0;
        let address = email.to_string();
        auth.db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?
            .map(Account::from)
            .ok_or(AuthError::UnknownAccount)
    }

    /// Creates an account whose email counts as verified (the operator vouches for it).
    pub async fn create_user(
        self,
        email: &Email,
        password: Password,
    ) -> Result<Account, AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let hashed = auth.hasher.hash(password).await?;
        let address = email.to_string();
        let user = auth
            .db
            .write(move |tx| {
                let user = users::add_user(tx, &address, &hashed)?;
                users::mark_email_verified(tx, user.id, now())
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit
            .record(&operator(), "admin.user_created", &fields);
        Ok(user.into())
    }

    /// Sets the password of the account `email`: every session of it ends, and its mailed links
    /// and the trust of its devices are void, in one transaction; the owner is told by mail.
    pub async fn set_password(self, email: &Email, password: Password) -> Result<(), AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let user = self.account(email).await?;
        let hashed = auth.hasher.hash(password).await?;
        let lifetimes = auth.lifetimes;
        auth.db
            .write(move |tx| {
                users::set_password_hash(tx, user.id, &hashed)?;
                revoke_derived_trust(tx, user.id, None)?;
                sessions::delete_sessions_of(tx, user.id, None, now(), lifetimes)
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit
            .record(&operator(), "admin.password_set", &fields);
        auth.mailer.send_password_changed(&user.email);
        Ok(())
    }

    /// Disables the account `email`: it cannot sign in until enabled again; its sessions end
    /// and everything derived from its credentials is void (mailed links, trusted devices,
    /// pending sign-ins, its applications' codes and tokens). How many sessions ended.
    pub async fn disable_user(self, email: &Email) -> Result<usize, AuthError> {
        self.end_everything(email, true, "admin.user_disabled")
            .await
    }

    /// Lets the disabled account `email` sign in again.
    pub async fn enable_user(self, email: &Email) -> Result<(), AuthError> {
        let auth = self.0;
        let user = self.account(email).await?;
        let user_id = user.id;
        auth.db
            .write(move |tx| users::set_disabled(tx, user_id, None))
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit
            .record(&operator(), "admin.user_enabled", &fields);
        Ok(())
    }

    /// Deletes the account `email` as its owner would ([`super::Accounts::delete_account`]),
    /// without its password.
    pub async fn delete_user(self, email: &Email) -> Result<(), AuthError> {
        let auth = self.0;
        let user = self.account(email).await?;
        if !auth.accounts().erase(&user, Reservation::default()).await? {
            return Err(AuthError::UnknownAccount);
        }
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit
            .record(&operator(), "admin.user_deleted", &fields);
        Ok(())
    }

    /// What an operator may see of the account `email`.
    pub async fn account_summary(self, email: &Email) -> Result<AccountSummary, AuthError> {
        let auth = self.0;
        let user = self.account(email).await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(&operator(), "admin.user_shown", &fields);
        let (user_id, lifetimes, at) = (user.id, auth.lifetimes, now());
        let (live, trusted, disabled_at) = auth
            .db
            .run(move |c| {
                let live = sessions::live_sessions(c, user_id, at, lifetimes)?;
                let disabled_at = users::find_user_by_id(c, user_id)?.and_then(|u| u.disabled_at);
                Ok((live, devices::digests_of(c, user_id)?.len(), disabled_at))
            })
            .await?;
        Ok(AccountSummary {
            id: user.id,
            email: user.email,
            created_at: user.created_at,
            email_verified_at: user.email_verified_at,
            live_sessions: live.len(),
            trusted_devices: trusted,
            last_seen_at: live.iter().map(|s| s.last_seen_at).max(),
            disabled_at,
        })
    }

    /// Ends every session of the account `email`, and what they could come back with (the
    /// trust of its devices, its mailed links), as "log out other devices" does; returns how
    /// many sessions ended.
    pub async fn revoke_sessions(self, email: &Email) -> Result<usize, AuthError> {
        self.end_everything(email, false, "admin.sessions_revoked")
            .await
    }

    /// Ends every session of the account `email` and voids what its credentials vouched for,
    /// disabling it first when `disable`; audited as `event` with how many sessions ended.
    async fn end_everything(
        self,
        email: &Email,
        disable: bool,
        event: &str,
    ) -> Result<usize, AuthError> {
        let auth = self.0;
        let user = self.account(email).await?;
        let (user_id, lifetimes) = (user.id, auth.lifetimes);
        let ended = auth
            .db
            .write(move |tx| {
                if disable {
                    users::lock_account(tx, user_id)?;
                    users::set_disabled(tx, user_id, Some(now()))?;
                }
                revoke_derived_trust(tx, user_id, None)?;
                sessions::delete_sessions_of(tx, user_id, None, now(), lifetimes)
            })
            .await?;
        let fields = [
            Field::UserId(user.id),
            Field::Email(&user.email),
            Field::Count(ended),
        ];
        auth.audit.record(&operator(), event, &fields);
        Ok(ended)
    }

    /// Turns off every second factor of the account `email` (a lost phone), ends its sessions
    /// and mails the owner; `false` when it had none (the sessions end all the same).
    pub async fn disable_second_factors(self, email: &Email) -> Result<bool, AuthError> {
        let user = self.account(email).await?;
        self.0.factors().disable_all(&operator(), &user).await
    }

    /// Writes a consistent copy of the database to `path` while the service runs, replacing an
    /// existing file only when `replace` is set; returns its size in bytes.
    pub async fn backup(self, path: &Path, replace: bool) -> Result<u64, AuthError> {
        let auth = self.0;
        let (db, target) = (auth.db.clone(), path.to_owned());
        let bytes = tokio::task::spawn_blocking(move || db.backup_into(&target, replace))
            .await?
            .map_err(|error| match error {
                DbError::Backup(why) => AuthError::Internal(why.into()),
                other => other.into(),
            })?;
        auth.audit.record(&operator(), "admin.backup", &[]);
        log::info!(target: "auth_service::backup", "backup written: {} ({bytes} bytes)", path.display());
        Ok(bytes)
    }

    /// Waits (a few seconds at most) for the mail queued so far to go out: the admin command
    /// line calls it before its process exits.
    pub fn flush_mail(self) {
        self.0.mailer.flush(Duration::from_secs(10));
    }

    /// Records an operator's command that changed nothing an event above covers (`migrate`,
    /// `sessions purge`).
    pub fn audit_operator(self, event: &str) {
        self.0.audit.record(&operator(), event, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{auth, caller, email, log_in, password};

    #[rocket::async_test]
    async fn a_database_that_does_not_answer_in_time_is_not_ready() {
        let (auth, db, _dir) = auth().await;
        auth.operator().ready().await.unwrap();
        let held: Vec<_> = (0..8).map(|_| db.conn().unwrap()).collect();
        assert_eq!(db.pool_state(), (8, 0), "every connection taken");
        let started = std::time::Instant::now();
        let refused = auth.operator().ready().await;
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("did not answer within 2 s"), "{message}");
        assert!(started.elapsed() < READY_TIMEOUT + Duration::from_secs(1));
        drop(held);
        auth.operator().ready().await.unwrap();
    }

    /// Checks write, and anyone may ask: a burst of them shares one check in flight, so it
    /// takes one pooled connection (and one write), not one each.
    #[rocket::async_test]
    async fn a_burst_of_readiness_checks_shares_one_check() {
        let (auth, db, _dir) = auth().await;
        // A writer holds SQLite's write lock (on PostgreSQL nothing waits), so a check waits.
        let (holder, (locked, is_locked), (done, is_done)) = (
            db.clone(),
            std::sync::mpsc::channel(),
            std::sync::mpsc::channel::<()>(),
        );
        let writer = std::thread::spawn(move || {
            holder.write_blocking(|_| {
                locked.send(()).unwrap();
                is_done.recv().ok();
                Ok(())
            })
        });
        is_locked.recv().unwrap();
        let checks = futures::future::join_all((0..6).map(|_| auth.operator().ready()));
        let in_use = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (open, idle) = db.pool_state();
            open - idle
        };
        let (_, in_use) = futures::join!(checks, in_use);
        done.send(()).unwrap();
        writer.join().unwrap().unwrap();
        assert!(in_use <= 2, "the writer's and one check's, not {in_use}");
        auth.operator().ready().await.unwrap();
    }

    #[rocket::async_test]
    async fn an_operator_creates_shows_fixes_and_deletes_an_account() {
        let (auth, _db, _dir) = auth().await;
        let ann = email("ann@b.com");
        let created = auth
            .operator()
            .create_user(&ann, password("first"))
            .await
            .unwrap();
        assert!(
            created.email_verified_at.is_some(),
            "the operator vouches for it"
        );
        let session = log_in(&auth, &caller(), &ann, "first")
            .await
            .unwrap()
            .session_id;
        let shown = auth.operator().account_summary(&ann).await.unwrap();
        assert_eq!(
            (shown.id, shown.live_sessions, shown.trusted_devices),
            (created.id, 1, 1)
        );

        auth.operator()
            .set_password(&ann, password("second"))
            .await
            .unwrap();
        assert!(
            auth.sessions().account_of(&session).await.is_err(),
            "its sessions ended"
        );
        log_in(&auth, &caller(), &ann, "second").await.unwrap();
        assert_eq!(auth.operator().revoke_sessions(&ann).await.unwrap(), 1);
        auth.operator().delete_user(&ann).await.unwrap();
        for missing in [
            auth.operator().account_summary(&ann).await.map(drop),
            auth.operator().delete_user(&ann).await,
            auth.operator().revoke_sessions(&ann).await.map(drop),
        ] {
            assert!(matches!(missing, Err(AuthError::UnknownAccount)));
        }
    }
}
