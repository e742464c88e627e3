//! Accounts: signing up, and the owner's self-service: the account's sessions (list them, end
//! one, end all the others), changing the password, asking to change the email (the link
//! itself is `links.rs`'s), deleting the account.
//!
//! Every action takes the account of the caller's live session, and its queries take that
//! account's id: no action can name another account's rows. Changing the password or the
//! email and deleting the account ask for the current password first, checked as a sign-in's
//! is ([`super::credentials::Credentials::password`]): throttled per account (or trusted
//! device) and per address, and a wrong one is a failed login for the account.

use super::audit::Field;
use super::credentials::{Proof, hex};
use super::links::revoke_derived_trust;
use super::sessions::SignedIn;
use super::throttle::{Reservation, Scope};
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, Password};
use crate::db::account_tokens::Purpose;
use crate::db::{DbError, Session, Tx, devices, now, sessions, throttle_events, users};

/// One of the account's live sessions, as its owner sees it.
#[derive(Debug)]
pub struct DeviceSession {
    pub session: Session,
    /// Whether it is the session of the request that asked.
    pub current: bool,
}

/// A session ended by its public id.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended {
    /// It was the session of the request that ended it (a log-out of this device).
    pub current: bool,
}

/// Signing up, and what the owner of an account does with it.
#[derive(Clone, Copy)]
pub struct Accounts<'a>(pub(super) &'a Auth);

impl Accounts<'_> {
    /// Creates an account and mails its email a verification link. Signups are limited per
    /// client address (each request counts). The early lookup spares a bcrypt hash for a taken
    /// email; the unique index still decides races, so two concurrent registrations give one
    /// account. A live session the client presents ends with the signup.
    pub async fn register(
        self,
        caller: &Caller,
        email: &Email,
        password: Password,
    ) -> Result<Account, AuthError> {
        let (account, ()) = self
            .create(caller, email, password, |_, _, _| Ok(()))
            .await?;
        Ok(account)
    }

    /// The signup [`Accounts::register`] and [`super::signin::SignIn::sign_up`] make; `also`
    /// writes in its transaction, once the account (its id) is added.
    pub(super) async fn create<T: Send + 'static>(
        self,
        caller: &Caller,
        email: &Email,
        password: Password,
        also: impl FnOnce(&mut Tx<'_>, i32, i64) -> Result<T, DbError> + Send + 'static,
    ) -> Result<(Account, T), AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        auth.gate(vec![(Scope::Signup, caller.address_key())])
            .await
            .map_err(|e| auth.throttled(caller, "signup.throttled", e, None))?
            .keep();
        let address = email.to_string();
        if auth
            .db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let hashed = auth.hasher.hash(password).await?;
        let (address, lifetimes, replaced) =
            (email.to_string(), auth.lifetimes, caller.session_digest());
        let verification = auth.links().new_link(Purpose::Verify);
        let row = verification.row;
        let (user, more) = auth
            .db
            .write(move |tx| {
                let at = now();
                if let Some(digest) = replaced {
                    sessions::delete_session(tx, &digest, at, lifetimes)?;
                }
                let user = users::add_user(tx, &address, &hashed)?;
                row.store(tx, user.id, user.credential_version, None)?;
                let more = also(tx, user.id, at)?;
                Ok((user, more))
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "signup", &fields);
        auth.metrics.signup();
        auth.links().mail_link(&verification, &user.email);
        Ok((user.into(), more))
    }

    /// The account's live sessions, the most recently used first.
    pub async fn sessions_of(
        self,
        caller: &Caller,
        user: &Account,
    ) -> Result<Vec<DeviceSession>, AuthError> {
        let auth = self.0;
        let (user_id, lifetimes, at) = (user.id, auth.lifetimes, now());
        let listed = auth
            .db
            .run(move |c| sessions::live_sessions(c, user_id, at, lifetimes))
            .await?;
        let current = caller.session_digest();
        Ok(listed
            .into_iter()
            .map(|session| DeviceSession {
                current: current.is_some_and(|d| d[..] == session.token_hash[..]),
                session,
            })
            .collect())
    }

    /// Ends the account's session named `public_id`, and the trust of the device it was opened
    /// on; [`AuthError::NoSuchSession`] when the account has no live session by that name
    /// (another account's included).
    pub async fn end_session_by_id(
        self,
        caller: &Caller,
        user: &Account,
        public_id: &str,
    ) -> Result<Ended, AuthError> {
        let auth = self.0;
        let (user_id, lifetimes, public_id) = (user.id, auth.lifetimes, public_id.to_owned());
        let ended = auth
            .db
            .write(move |tx| {
                if users::lock_account(tx, user_id)?.is_none() {
                    return Ok(None);
                }
                let ended = sessions::delete_session_by_public_id(
                    tx,
                    user_id,
                    &public_id,
                    now(),
                    lifetimes,
                )?;
                let Some((session, device)) = ended else {
                    return Ok(None);
                };
                if let Some(device) = device {
                    devices::delete_device(tx, user_id, &device)?;
                }
                Ok(Some(session))
            })
            .await?
            .ok_or(AuthError::NoSuchSession)?;
        auth.audit
            .record(caller, "session.revoked", &[Field::UserId(user_id)]);
        let current = caller.session_digest().is_some_and(|d| d[..] == ended[..]);
        Ok(Ended { current })
    }

    /// Ends every live session of the account but the caller's, and what they could come back
    /// with: the trust of every device but the caller's and every mailed link (reset,
    /// verification, email change), in one transaction. Returns how many sessions ended.
    pub async fn end_other_sessions(
        self,
        caller: &Caller,
        user: &Account,
    ) -> Result<usize, AuthError> {
        let auth = self.0;
        let (user_id, lifetimes) = (user.id, auth.lifetimes);
        let (keep, device) = (caller.session_digest(), caller.device_digest());
        let ended = auth
            .db
            .write(move |tx| {
                let keep = keep.as_ref().map(|d| &d[..]);
                revoke_derived_trust(tx, user_id, device.as_ref().map(|d| &d[..]))?;
                sessions::delete_sessions_of(tx, user_id, keep, now(), lifetimes)
            })
            .await?;
        let fields = [Field::UserId(user_id), Field::Count(ended)];
        auth.audit
            .record(caller, "sessions.revoked_others", &fields);
        Ok(ended)
    }

    /// Changes the password, given the current one. In one transaction, provided the current
    /// password is still the account's: the new hash is written, every session of the account
    /// ends, its mailed links and the trust of its other devices are void, and this client gets
    /// a new session (returned). The owner is told by mail.
    pub async fn change_password(
        self,
        caller: &Caller,
        user: &Account,
        current: &str,
        new: Password,
    ) -> Result<SignedIn, AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let proof = self.reauthenticate(caller, user, current).await?;
        let hashed = match auth.hasher.hash(new).await {
            Ok(hashed) => hashed,
            Err(error) => {
                auth.release(proof.reservation).await;
                return Err(error);
            }
        };
        // `None`: a reset replaced the password after it was checked.
        let signed_in = auth
            .sessions()
            .start(caller, proof, Some(hashed))
            .await?
            .ok_or(AuthError::WrongPassword)?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "password.changed", &fields);
        auth.mailer.send_password_changed(&user.email);
        Ok(signed_in)
    }

    /// Asks to move the account to `new_email`, given the current password: a confirmation
    /// link goes to the new address (the account moves only when it is opened) and a notice,
    /// with the new address masked, to the current one. Counted against the account's hourly
    /// mail cap and the client address's limit on mailed links. An address that has an account
    /// already gets a mail saying so instead of a link, and the asker the same answer as for a
    /// free one: `None` where a link's token would be.
    pub async fn request_email_change(
        self,
        caller: &Caller,
        user: &Account,
        current: &str,
        new_email: &Email,
    ) -> Result<Option<String>, AuthError> {
        if new_email.as_str() == user.email {
            return Err(AuthError::SameEmail);
        }
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let proof = self.reauthenticate(caller, user, current).await?;
        let counted = vec![
            (Scope::AccountMail, user.id.to_string()),
            (Scope::Reset, caller.address_key()),
        ];
        let email = Some(user.email.as_str());
        let gated = auth
            .gate(counted)
            .await
            .map_err(|e| auth.throttled(caller, "account_mail.throttled", e, email));
        if let Err(error) = gated {
            auth.release(proof.reservation).await;
            return Err(error);
        }
        let link = auth.links().new_link(Purpose::Email);
        let (row, user_id, address) = (link.row, user.id, new_email.to_string());
        // The version read before the password was checked: a change since voids the link.
        let version = proof.user.credential_version;
        let Proof {
            reservation,
            budget: (scope, key),
            ..
        } = proof;
        let issued = auth
            .db
            .write(move |tx| {
                reservation.release(tx)?;
                throttle_events::clear_events(tx, scope.name(), &key)?;
                // The confirmation decides by the unique index; this spares a useless link.
                if users::find_user_by_email(tx, &address)?.is_some() {
                    return Ok(false);
                }
                row.store(tx, user_id, version, Some(&address))?;
                Ok(true)
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(new_email.as_str())];
        if issued {
            auth.audit.record(caller, "email.change_requested", &fields);
            auth.links().mail_link(&link, new_email.as_str());
        } else {
            auth.audit.record(caller, "email.change_to_taken", &fields);
            auth.mailer.send_email_change_taken(new_email.as_str());
        }
        auth.mailer
            .send_email_change_notice(&user.email, &new_email.masked());
        Ok(issued.then_some(link.raw))
    }

    /// Deletes the account, given the current password: the user with its sessions, tokens
    /// and trusted devices (foreign keys cascade), and the throttling rows about it, in one
    /// transaction. The email is free again; a confirmation goes to it.
    pub async fn delete_account(
        self,
        caller: &Caller,
        user: &Account,
        current: &str,
    ) -> Result<(), AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let proof = self.reauthenticate(caller, user, current).await?;
        if !self.erase(user, proof.reservation).await? {
            return Err(AuthError::NoSession);
        }
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "account.deleted", &fields);
        auth.mailer.send_account_deleted(&user.email);
        Ok(())
    }

    /// Deletes `user` (its sessions, tokens and devices cascade) and the throttling rows about
    /// its email, id and devices, releasing `reservation`, in one transaction; `false` when it
    /// was gone already.
    pub(super) async fn erase(
        self,
        user: &Account,
        reservation: Reservation,
    ) -> Result<bool, AuthError> {
        let auth = self.0;
        let (user_id, email) = (user.id, user.email.clone());
        Ok(auth
            .db
            .write(move |tx| {
                reservation.release(tx)?;
                let mut about = vec![
                    (Scope::LoginAccount, email.clone()),
                    (Scope::LoginDevices, email.clone()),
                    (Scope::ResetEmail, email),
                    (Scope::AccountMail, user_id.to_string()),
                ];
                for digest in devices::digests_of(tx, user_id)? {
                    about.push((Scope::LoginDevice, hex(&digest)));
                }
                for (scope, key) in &about {
                    throttle_events::clear_events(tx, scope.name(), key)?;
                }
                users::delete_user(tx, user_id)
            })
            .await?)
    }

    /// Checks the current password of `user` as a sign-in does; a wrong one is
    /// [`AuthError::WrongPassword`] (and a failed login for the account).
    pub(super) async fn reauthenticate(
        self,
        caller: &Caller,
        user: &Account,
        current: &str,
    ) -> Result<Proof, AuthError> {
        let auth = self.0;
        let email = Email::stored(&user.email);
        let checked = auth
            .credentials()
            .password(caller, &email, current, "reauth.failed");
        match checked.await {
            Ok(proof) if proof.user.id == user.id => Ok(proof),
            Ok(other) => {
                auth.release(other.reservation).await;
                Err(AuthError::WrongPassword)
            }
            Err(AuthError::InvalidCredentials) => Err(AuthError::WrongPassword),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{
        assert_invalid_reset_token, assert_no_session, assert_session_of, auth, auth_on, auth_with,
        caller, email, log_in, password, register, reset_token, signed_in, stored_hash,
        with_session,
    };
    use crate::db::schema::{
        account_tokens as tokens_table, throttle_events as events_table, users as users_table,
    };
    use crate::db::testing::conn;
    use crate::db::testing::stored_links;
    use diesel::prelude::*;

    #[rocket::async_test]
    async fn register_stores_a_bcrypt_hash_not_the_password() {
        let (auth, db, _dir) = auth().await;
        let user = register(&auth, "a@b.com", "pw12345").await;
        let hash = stored_hash(&db, user.id);
        assert!(hash.starts_with("$2b$04$"));
        assert!(bcrypt::verify("pw12345", &hash).unwrap());
    }

    #[rocket::async_test]
    async fn registering_a_taken_email_fails() {
        let (auth, _db, _dir) = auth().await;
        register(&auth, "a@b.com", "x").await;
        let again = auth
            .accounts()
            .register(&caller(), &email("a@b.com"), password("y"))
            .await;
        assert!(matches!(again, Err(AuthError::EmailTaken)));
    }

    /// Ann's account and a caller holding a fresh session of it.
    async fn ann(auth: &Auth) -> (Account, Caller) {
        let (user, login) = with_session(auth, "ann@b.com", "pw").await;
        let caller = Caller {
            session_id: Some(login.session_id),
            ..caller()
        };
        (user, caller)
    }

    #[rocket::async_test]
    async fn another_accounts_session_cannot_be_ended_by_its_public_id() {
        let (auth, _db, _dir) = auth().await;
        let (ann, ann_caller) = ann(&auth).await;
        let (bob, _) = with_session(&auth, "bob@b.com", "pw").await;
        let bobs = auth.accounts().sessions_of(&caller(), &bob).await.unwrap();
        let id = &bobs[0].session.public_id;
        assert!(matches!(
            auth.accounts()
                .end_session_by_id(&ann_caller, &ann, id)
                .await,
            Err(AuthError::NoSuchSession)
        ));
        assert_eq!(
            auth.accounts()
                .sessions_of(&caller(), &bob)
                .await
                .unwrap()
                .len(),
            1
        );
        let own = auth
            .accounts()
            .sessions_of(&ann_caller, &ann)
            .await
            .unwrap();
        assert!(own[0].current);
        let ended = auth
            .accounts()
            .end_session_by_id(&ann_caller, &ann, &own[0].session.public_id);
        assert_eq!(ended.await.unwrap(), Ended { current: true });
    }

    /// A session past its idle limit when the owner logs out the other devices, or changes the
    /// password, is deleted too: under longer lifetimes (a raised setting, another instance)
    /// it would come back. The owner is told only of the live ones.
    #[rocket::async_test]
    async fn credential_changes_leave_no_session_that_longer_lifetimes_would_revive() {
        let (auth, db, dir) = auth().await;
        let (ann, me) = ann(&auth).await;
        let idle_since = now() - 2 * auth.lifetimes.idle;
        let stale = || async {
            let stale = signed_in(&auth, "ann@b.com", "pw").await;
            let digest = crate::auth::token::digest(&stale.session_id);
            crate::db::testing::set_last_seen(&db, &digest, idle_since);
            stale.session_id
        };
        let patient = auth_on(&db, &dir, |s| {
            s.session_idle_secs = 10 * auth.lifetimes.idle
        })
        .await;

        let (idle, live) = (stale().await, signed_in(&auth, "ann@b.com", "pw").await);
        let ended = auth.accounts().end_other_sessions(&me, &ann).await.unwrap();
        assert_eq!(ended, 1, "only the live one is counted");
        assert_no_session(&patient, &idle).await;
        assert_no_session(&patient, &live.session_id).await;
        assert_session_of(&patient, me.session_id.as_deref().unwrap(), ann.id).await;

        let idle = stale().await;
        let change = auth
            .accounts()
            .change_password(&me, &ann, "pw", password("new"));
        change.await.unwrap();
        assert_no_session(&patient, &idle).await;
    }

    #[rocket::async_test]
    async fn a_password_change_needs_the_current_one_and_ends_every_other_session() {
        let (auth, db, _dir) = auth().await;
        let (ann, me) = ann(&auth).await;
        let other = signed_in(&auth, "ann@b.com", "pw").await;
        let reset_token = reset_token(&auth, "ann@b.com").await;
        let wrong = auth
            .accounts()
            .change_password(&me, &ann, "nope", password("new"));
        assert!(matches!(wrong.await, Err(AuthError::WrongPassword)));

        let login = auth
            .accounts()
            .change_password(&me, &ann, "pw", password("new"))
            .await
            .unwrap();
        assert!(bcrypt::verify("new", &stored_hash(&db, login.account.id)).unwrap());
        for ended in [me.session_id.unwrap(), other.session_id] {
            assert_no_session(&auth, &ended).await;
        }
        assert_session_of(&auth, &login.session_id, ann.id).await;
        assert_invalid_reset_token(&auth, &reset_token).await;
    }

    /// The token of a link that moves Ann's account to new@b.com.
    async fn link_to_new(auth: &Auth, me: &Caller, ann: &Account) -> String {
        let new = email("new@b.com");
        let requested = auth.accounts().request_email_change(me, ann, "pw", &new);
        requested
            .await
            .unwrap()
            .expect("a free address gets a link")
    }

    #[rocket::async_test]
    async fn an_email_change_is_confirmed_once_and_leaves_the_old_address_free() {
        let (auth, db, _dir) = auth().await;
        let (ann, me) = ann(&auth).await;
        let token = link_to_new(&auth, &me, &ann).await;
        let (holder, new) = auth
            .links()
            .email_change_holder(&caller(), &token)
            .await
            .unwrap();
        assert_eq!((holder.id, new.as_str()), (ann.id, "new@b.com"));
        let moved = auth
            .links()
            .confirm_email_change(&caller(), &token)
            .await
            .unwrap();
        assert_eq!(moved.email, "new@b.com");
        assert!(moved.email_verified_at.is_some());
        assert!(matches!(
            auth.links().confirm_email_change(&caller(), &token).await,
            Err(AuthError::InvalidLinkToken)
        ));
        let left: i64 = tokens_table::table
            .count()
            .get_result(&mut **conn(&db))
            .unwrap();
        assert_eq!(
            left, 0,
            "the signup's verification link went with the old address"
        );
        register(&auth, "ann@b.com", "pw").await;
    }

    #[rocket::async_test]
    async fn an_email_change_link_that_raced_a_password_change_fails() {
        let (auth, db, _dir) = auth().await;
        let (ann, me) = ann(&auth).await;
        let token = link_to_new(&auth, &me, &ann).await;
        // A change of credentials that committed after the link's version was read, without
        // the link being deleted (the race the version exists for).
        let bumped = diesel::update(users_table::table.find(ann.id))
            .set(users_table::credential_version.eq(users_table::credential_version + 1));
        db.write_blocking(|tx| Ok(bumped.execute(&mut **tx)?))
            .unwrap();
        assert!(matches!(
            auth.links().email_change_holder(&caller(), &token).await,
            Err(AuthError::InvalidLinkToken)
        ));
        assert!(matches!(
            auth.links().confirm_email_change(&caller(), &token).await,
            Err(AuthError::InvalidLinkToken)
        ));
        let stored = auth.sessions().account_of(me.session_id.as_ref().unwrap());
        assert_eq!(stored.await.unwrap().email, "ann@b.com");
    }

    /// The link's spend and the change lock the account's row in one order: whichever commits
    /// first, the other answers as it should (on PostgreSQL, no deadlock error).
    #[rocket::async_test]
    async fn confirming_a_link_while_the_password_changes_never_fails_with_an_error() {
        let (auth, _db, _dir) = auth_with(|s| {
            s.throttle_mail_per_account = 100;
            s.throttle_reset_per_address = 100;
        })
        .await;
        let (ann, _) = ann(&auth).await;
        let mut current = "pw".to_owned();
        for round in 0..12 {
            let id = ann.id;
            let stored = auth.db.run(move |c| users::find_user_by_id(c, id)).await;
            let address = stored.unwrap().unwrap().email;
            let login = signed_in(&auth, &address, &current).await;
            let me = Caller {
                session_id: Some(login.session_id),
                ..caller()
            };
            let new_address = email(&format!("ann{round}@b.com"));
            let requested =
                auth.accounts()
                    .request_email_change(&me, &login.account, &current, &new_address);
            let token = requested.await.unwrap().expect("a free address");
            let next = format!("pw{round}");
            let anyone = caller();
            let (confirmed, changed) = futures::join!(
                auth.links().confirm_email_change(&anyone, &token),
                auth.accounts()
                    .change_password(&me, &login.account, &current, password(&next)),
            );
            assert!(
                matches!(confirmed, Ok(_) | Err(AuthError::InvalidLinkToken)),
                "{confirmed:?}"
            );
            // A change that reads the account by its old email after the move finds none.
            match (&confirmed, changed) {
                (_, Ok(_)) => current = next,
                (Ok(_), Err(AuthError::WrongPassword)) => {}
                (_, Err(error)) => panic!("{error:?}"),
            }
        }
    }

    /// Ending one session (and its device) and ending the others (and their devices) lock the
    /// account's row first: concurrent, neither fails (on PostgreSQL, no deadlock error).
    #[rocket::async_test]
    async fn ending_one_session_while_ending_the_others_never_fails_with_an_error() {
        let (auth, _db, _dir) = auth().await;
        let (ann, _) = ann(&auth).await;
        for _ in 0..12 {
            let mine = signed_in(&auth, "ann@b.com", "pw").await;
            let phone = signed_in(&auth, "ann@b.com", "pw").await;
            let me = Caller {
                session_id: Some(mine.session_id),
                device_token: mine.device_token,
                ..caller()
            };
            let listed = auth.accounts().sessions_of(&me, &ann).await.unwrap();
            let digest = crate::auth::token::digest(&phone.session_id);
            let other = listed
                .iter()
                .find(|s| s.session.token_hash == digest)
                .unwrap();
            let (one, others) = futures::join!(
                auth.accounts()
                    .end_session_by_id(&me, &ann, &other.session.public_id),
                auth.accounts().end_other_sessions(&me, &ann),
            );
            assert!(
                matches!(one, Ok(_) | Err(AuthError::NoSuchSession)),
                "{one:?}"
            );
            assert!(others.is_ok(), "{others:?}");
        }
    }

    #[rocket::async_test]
    async fn a_change_to_a_taken_address_issues_no_link_and_answers_alike() {
        let (auth, db, _dir) = auth().await;
        let (ann, me) = ann(&auth).await;
        register(&auth, "bob@b.com", "pw").await;
        let taken = email("bob@b.com");
        let requested = auth
            .accounts()
            .request_email_change(&me, &ann, "pw", &taken);
        assert_eq!(requested.await.unwrap(), None);
        assert_eq!(stored_links(&db, "email"), 0);
    }

    #[rocket::async_test]
    async fn deleting_an_account_forgets_the_throttle_rows_about_it() {
        let (auth, db, _dir) = auth_with(|s| s.throttle_login_per_account = 5).await;
        let (ann, me) = ann(&auth).await;
        let failed = log_in(&auth, &caller(), &email("ann@b.com"), "wrong").await;
        assert!(matches!(failed, Err(AuthError::InvalidCredentials)));
        let wrong = auth.accounts().delete_account(&me, &ann, "wrong").await;
        assert!(matches!(wrong, Err(AuthError::WrongPassword)));
        auth.accounts()
            .delete_account(&me, &ann, "pw")
            .await
            .unwrap();
        let about: i64 = events_table::table
            .filter(events_table::key.eq("ann@b.com"))
            .count()
            .get_result(&mut **conn(&db))
            .unwrap();
        assert_eq!(about, 0);
        assert!(matches!(
            log_in(&auth, &caller(), &email("ann@b.com"), "pw").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
}
