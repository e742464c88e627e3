//! Sessions: starting one for a proven credential (its id is the only raw copy of the
//! secret), finding the account of a live one on every logged-in request, and ending one
//! (logging out this device only).

use super::audit::Field;
use super::credentials::Proof;
use super::factors::RECENT_PASSKEY_SECS;
use super::links::revoke_derived_trust;
use super::view::{Account, SessionFacts};
use super::{Auth, AuthError, Caller, token, user_agent};
use crate::db::sessions::TOUCH_AFTER_SECS;
use crate::db::{DbError, Tx, devices, factors, now, sessions, throttle_events, users};

/// A started session, for the client: its account, the id to hand to the client (the only
/// copy of the raw value) and, when signing in made the client a trusted device, the device
/// token to hand it too.
#[derive(Debug)]
pub struct SignedIn {
    pub account: Account,
    pub session_id: String,
    pub device_token: Option<String>,
}

/// A session about to start. Its secrets are made before the transaction that stores it, and
/// only the client ever gets the raw values ([`NewSession::signed_in`]).
pub(super) struct NewSession {
    session_id: String,
    public_id: String,
    agent: Option<String>,
    address: Option<String>,
    /// The digest of the client's device cookie: the one it presented, trusted for the
    /// account already, or its new one.
    device: [u8; 32],
    /// The new device token, when the client was not trusted yet: this session makes it so.
    device_token: Option<String>,
    /// How many devices the account may trust (`trusted_devices_per_account`).
    max_devices: i64,
    /// How the session is made (its `amr`): a password alone unless [`NewSession::made_by`].
    amr: &'static str,
}

impl NewSession {
    /// The session of `caller`, on the device `trusted` (its digest) when the client's device
    /// cookie is trusted for the account already; otherwise the client becomes a trusted
    /// device with a new token.
    pub(super) fn new(caller: &Caller, trusted: Option<[u8; 32]>, max_devices: i64) -> NewSession {
        let (device, device_token) = match trusted {
            Some(digest) => (digest, None),
            None => {
                let raw = token::generate();
                (token::digest(&raw), Some(raw))
            }
        };
        NewSession {
            session_id: token::generate(),
            public_id: token::public_id(),
            agent: caller.user_agent.as_deref().map(user_agent::summary),
            address: caller.address_shown(),
            device,
            device_token,
            max_devices,
            amr: "pwd",
        }
    }

    /// The session, made with `amr` (`pwd otp`: a password and an authenticator code).
    pub(super) fn made_by(self, amr: &'static str) -> NewSession {
        NewSession { amr, ..self }
    }

    /// In the caller's transaction: the session's row, and its device (a trusted one's last
    /// use is recorded; a new one is added).
    pub(super) fn store(&self, tx: &mut Tx<'_>, user_id: i32, at: i64) -> Result<(), DbError> {
        let row = sessions::NewSession {
            user_id,
            token_digest: &token::digest(&self.session_id),
            public_id: &self.public_id,
            user_agent: self.agent.as_deref(),
            address: self.address.as_deref(),
            device_digest: Some(&self.device),
            amr: self.amr,
        };
        sessions::add_session(tx, &row)?;
        match self.device_token {
            None => devices::touch_device(tx, &self.device, at),
            Some(_) => devices::add_device(tx, user_id, &self.device, at, self.max_devices),
        }
    }

    /// The stored session, for the client.
    pub(super) fn signed_in(self, account: Account) -> SignedIn {
        SignedIn {
            account,
            session_id: self.session_id,
            device_token: self.device_token,
        }
    }
}

/// The sessions of requests: finding the account of one, ending one.
#[derive(Clone, Copy)]
pub struct Sessions<'a>(pub(super) &'a Auth);

impl Sessions<'_> {
    /// Starts a session for `proof`, in one transaction with everything the proof consumed,
    /// provided its password is still the account's: the stale hash's replacement is written,
    /// the check's count released, the failures of its budget forgiven and the device trusted.
    /// Signing in replaces the session the client presented; with `new_hash`, the proven
    /// password is replaced by it instead, every session of the account ends before the new
    /// one starts, and what the old password vouched for is void (mailed links, the trust of
    /// every device but this client's). `None` when the proven password is no longer the
    /// account's (a reset completed meanwhile), or, for a sign-in, when the account has a
    /// second factor by now (set up while the password was checked).
    pub(super) async fn start(
        self,
        caller: &Caller,
        proof: Proof,
        new_hash: Option<String>,
    ) -> Result<Option<SignedIn>, AuthError> {
        let auth = self.0;
        let lifetimes = auth.lifetimes;
        let Proof {
            user,
            password,
            budget: (scope, key),
            reservation,
            device,
        } = proof;
        let password_changed = new_hash.is_some();
        let (check, replaced) = match new_hash {
            Some(hash) => (password.replace_with(hash), None),
            None => (password, caller.session_digest()),
        };
        let new = NewSession::new(caller, device, auth.devices_per_account);
        let user_id = user.id;
        let stored = auth
            .db
            .write(move |tx| {
                // A disabled account (the operator, since the password was checked) opens none.
                if !check.still_current(tx)? || users::is_disabled(tx, user_id)? {
                    return Ok(None);
                }
                // A second factor set up since the sign-in read the account (under the row's
                // lock now): a password alone no longer opens a session.
                if !password_changed && factors::enrolled(tx, user_id)?.any() {
                    return Ok(None);
                }
                let at = now();
                throttle_events::clear_events(tx, scope.name(), &key)?;
                reservation.release(tx)?;
                if let Some(replaced) = replaced {
                    sessions::delete_session(tx, &replaced, at, lifetimes)?;
                }
                if password_changed {
                    sessions::delete_sessions_of(tx, user_id, None, at, lifetimes)?;
                    revoke_derived_trust(tx, user_id, device.as_ref().map(|d| &d[..]))?;
                }
                new.store(tx, user_id, at)?;
                Ok(Some(new))
            })
            .await?;
        Ok(stored.map(|new| new.signed_in(user.into())))
    }

    /// The account of a live session. Use is recorded at most once a minute per session, so
    /// most lookups stay reads.
    pub async fn account_of(self, session_id: &str) -> Result<Account, AuthError> {
        let auth = self.0;
        let (digest, lifetimes, at) = (token::digest(session_id), auth.lifetimes, now());
        let found = auth.db.live_session(digest.to_vec(), at, lifetimes).await?;
        let (session, user) = found.ok_or(AuthError::NoSession)?;
        let mut account = Account::from(user);
        let by_passkey = session.amr.split(' ').any(|method| method == "passkey");
        account.recent_passkey = by_passkey && at - session.created_at < RECENT_PASSKEY_SECS;
        account.session = Some(SessionFacts {
            public_id: session.public_id.clone(),
            created_at: session.created_at,
            amr: session.amr.clone(),
        });
        if auth.mfa_required && !with_second_factor(&session.amr) {
            let user_id = account.id;
            let enrolled = auth.db.run(move |c| factors::enrolled(c, user_id)).await?;
            account.must_enroll = !enrolled.any();
        }
        if at - session.last_seen_at >= TOUCH_AFTER_SECS {
            let touched = auth
                .db
                .write_relaxed(move |tx| sessions::touch_session(tx, &session.token_hash, at))
                .await;
            // Only bookkeeping: a read must not fail because its use could not be recorded
            // (a full disk). The session then expires by its older use, the safe side.
            if let Err(error) = touched {
                log::warn!(target: "auth_service::db", "a session's use was not recorded: {error}");
            }
        }
        Ok(account)
    }

    /// Ends the session `session_id` only; the account's other devices stay logged in.
    pub async fn end(self, caller: &Caller, session_id: &str) -> Result<(), AuthError> {
        let auth = self.0;
        let (digest, lifetimes, at) = (token::digest(session_id), auth.lifetimes, now());
        let ended = auth
            .db
            .write(move |tx| sessions::delete_session(tx, &digest, at, lifetimes))
            .await?;
        let user_id = ended.ok_or(AuthError::NoSession)?;
        auth.audit
            .record(caller, "logout", &[Field::UserId(user_id)]);
        Ok(())
    }
}

/// Whether a session's `amr` includes a second factor.
fn with_second_factor(amr: &str) -> bool {
    amr.split(' ').any(|method| method != "pwd")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{
        assert_no_session, assert_session_of, auth, caller, register, reset_token, signed_in,
        with_session,
    };
    use crate::db::schema::{account_tokens as tokens_table, sessions as sessions_table};
    use crate::db::testing::conn;
    use diesel::prelude::*;

    #[rocket::async_test]
    async fn the_database_holds_only_digests_of_session_ids_and_reset_tokens() {
        let (auth, db, dir) = auth().await;
        let session_id = with_session(&auth, "a@b.com", "pw").await.1.session_id;
        let reset_token = reset_token(&auth, "a@b.com").await;

        let mut c = conn(&db);

        let c = &mut **c;
        let stored_session: Vec<u8> = sessions_table::table
            .select(sessions_table::token_hash)
            .first(c)
            .unwrap();
        let stored_reset: Vec<u8> = tokens_table::table
            .filter(tokens_table::purpose.eq("reset"))
            .select(tokens_table::token_hash)
            .first(c)
            .unwrap();
        assert_eq!(stored_session, token::digest(&session_id));
        assert_eq!(stored_reset, token::digest(&reset_token));

        if db.is_postgres() {
            return; // the rows were checked above; the files are the server's
        }
        let raw = std::fs::read(dir.path().join("test.db")).unwrap();
        let wal = std::fs::read(dir.path().join("test.db-wal")).unwrap_or_default();
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
        let user = register(&auth, "a@b.com", "pw").await;
        let first = signed_in(&auth, "a@b.com", "pw").await.session_id;
        let second = signed_in(&auth, "a@b.com", "pw").await.session_id;
        assert_ne!(first, second);
        assert_session_of(&auth, &first, user.id).await;

        auth.sessions().end(&caller(), &first).await.unwrap();
        assert_no_session(&auth, &first).await;
        assert!(matches!(
            auth.sessions().end(&caller(), &first).await,
            Err(AuthError::NoSession)
        ));
        assert_session_of(&auth, &second, user.id).await;
    }

    #[rocket::async_test]
    async fn a_password_checked_before_a_second_factor_was_set_up_opens_no_session() {
        let (auth, db, _dir) = auth().await;
        let user = register(&auth, "a@b.com", "pw").await;
        let address = crate::auth::testing::email("a@b.com");
        let proof = auth
            .credentials()
            .password(&caller(), &address, "pw", "login.failed")
            .await
            .unwrap();
        // The owner confirms an authenticator app while this sign-in's password is checked.
        crate::db::testing::write(&db, |tx| {
            factors::put_pending_totp(tx, user.id, b"sealed", "k", 0)?;
            factors::confirm_totp(tx, user.id, 1).map(drop)
        });
        let started = auth.sessions().start(&caller(), proof, None).await.unwrap();
        assert!(started.is_none(), "a password alone opens nothing now");
        let sessions: i64 = sessions_table::table
            .count()
            .get_result(&mut **conn(&db))
            .unwrap();
        assert_eq!(sessions, 0);
    }
}
