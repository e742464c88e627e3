//! Password reset: request a link (a token, mailed), check it, spend it.
//!
//! The contract, as data: a request answers what happened ([`ResetRequest`]), so each surface
//! states its own disclosure policy (the debug API's token or 403, everyone else's same
//! answer). Requests are limited per address and capped per email: beyond the cap nothing is
//! sent and nothing replaced. A token is spent once, by one conditional update; spending it
//! ends every session of the account, forgives its failed logins and logs no one in. Invalid,
//! expired and used tokens are alike.

use super::audit::Field;
use super::password::Password;
use super::throttle::Scope;
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, token};
use crate::db::throttle_events;
use crate::db::{now, users};
use crate::metrics::ResetStage;

/// What became of a reset request.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetRequest {
    /// A token was issued and mailed: its raw value.
    Issued(String),
    /// No account has that email: nothing was issued or sent.
    NoAccount,
    /// The email had its `throttle_reset_per_email` requests this hour: nothing was sent and
    /// the last token stands.
    Capped,
    /// The token will be issued and mailed after the answer, if an account has that email and
    /// its cap allows: the request itself made the same writes for any email.
    Deferred,
}

impl Auth {
    /// Answers a request for a reset link to `email`. With `show_token` (the debug profile's
    /// `expose_reset_token`) the token is issued now and returned; otherwise the work that
    /// depends on the account (the token, the mail) is done after the answer, so a request for
    /// a known email costs the request the same writes as one for an unknown email.
    pub async fn request_reset(
        &self,
        caller: &Caller,
        email: &Email,
        show_token: bool,
    ) -> Result<ResetRequest, AuthError> {
        let within_cap = self.gate_reset_request(caller, email).await?;
        if !within_cap {
            let fields = [Field::Email(email.as_str())];
            self.audit.record(caller, "reset.capped", &fields);
            return Ok(match show_token {
                true => ResetRequest::Capped,
                false => ResetRequest::Deferred,
            });
        }
        if show_token {
            return self.issue_reset_token(caller, email).await;
        }
        let (auth, caller, email) = (self.clone(), caller.clone(), email.clone());
        tokio::spawn(async move {
            if let Err(error) = auth.issue_reset_token(&caller, &email).await {
                log::error!(target: "auth_service::reset", "a reset link was not issued: {error}");
            }
        });
        Ok(ResetRequest::Deferred)
    }

    /// Counts a reset request against its address, and against its email within the email's
    /// cap, in one transaction; `false` when the email is over its cap. A request beyond the
    /// address limit is [`AuthError::Throttled`].
    async fn gate_reset_request(&self, caller: &Caller, email: &Email) -> Result<bool, AuthError> {
        if !self.limits.enabled {
            return Ok(true);
        }
        let (limits, address, email_key) = (self.limits, caller.address_key(), email.to_string());
        let gated = self
            .db
            .write(move |tx| {
                let at = now();
                let by_address = limits.of(Scope::Reset, &address);
                let by_email = limits.of(Scope::ResetEmail, &email_key);
                throttle_events::lock(tx, &[by_address, by_email])?;
                if let Some(retry_after) = throttle_events::retry_after(tx, &[by_address], at)? {
                    return Ok(Err(retry_after));
                }
                throttle_events::record_event(tx, by_address.scope, by_address.key, at)?;
                let capped = throttle_events::retry_after(tx, &[by_email], at)?.is_some();
                if !capped {
                    throttle_events::record_event(tx, by_email.scope, by_email.key, at)?;
                }
                Ok(Ok(!capped))
            })
            .await?;
        gated
            .map_err(|retry_after| AuthError::Throttled { retry_after })
            .map_err(|e| self.throttled(caller, "reset.throttled", e, Some(email.as_str())))
    }

    /// Issues a reset token for the account `email`, replacing any earlier one, and mails the
    /// link.
    async fn issue_reset_token(
        &self,
        caller: &Caller,
        email: &Email,
    ) -> Result<ResetRequest, AuthError> {
        let reset_token = token::generate();
        let (address, digest) = (email.to_string(), token::digest(&reset_token));
        let expires_at = now() + self.reset_token_ttl;
        let issued = self
            .db
            .write(move |tx| users::issue_reset_token(tx, &address, &digest, expires_at))
            .await?;
        let Some(user) = issued else {
            let fields = [Field::Email(email.as_str())];
            self.audit
                .record(caller, "reset.requested_unknown", &fields);
            return Ok(ResetRequest::NoAccount);
        };
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "reset.requested", &fields);
        self.metrics.reset(ResetStage::requested);
        self.mailer.send_reset_link(&user.email, &reset_token);
        Ok(ResetRequest::Issued(reset_token))
    }

    /// The account a reset token belongs to. Checks without spending the token; wrong tokens
    /// are throttled per address ([`Auth::check_link_token`]).
    pub async fn reset_token_holder(
        &self,
        caller: &Caller,
        reset_token: &str,
    ) -> Result<Account, AuthError> {
        let (digest, at) = (token::digest(reset_token), now());
        self.check_link_token(caller, "reset", move |tx| {
            Ok(users::find_user_by_reset_token(tx, &digest, at)?.map(Account::from))
        })
        .await?
        .ok_or(AuthError::InvalidResetToken)
    }

    /// Spends `reset_token` on a new password: the token is used up, every session of the
    /// account ends, and so do its other mailed links and the trust of all its devices; no one
    /// is logged in, and the account's failed logins are forgiven.
    /// `owner`, when given, is the email the token must belong to (the API names it; the
    /// emailed link does not). The token is checked before the hash, so an invalid one costs no
    /// bcrypt.
    pub async fn spend_reset_token(
        &self,
        caller: &Caller,
        reset_token: &str,
        owner: Option<&Email>,
        password: Password,
    ) -> Result<Account, AuthError> {
        let _admission = self.hasher.admit()?;
        let holder = self.reset_token_holder(caller, reset_token).await?;
        if owner.is_some_and(|owner| owner.as_str() != holder.email) {
            return Err(AuthError::InvalidResetToken);
        }
        let hashed = self.hasher.hash(password).await?;
        let digest = token::digest(reset_token);
        let user = self
            .db
            .write(move |tx| {
                let user = users::spend_reset_token(tx, &holder.email, &digest, &hashed, now())?;
                if let Some(user) = &user {
                    for scope in [Scope::LoginAccount, Scope::LoginDevices] {
                        throttle_events::clear_events(tx, scope.name(), &holder.email)?;
                    }
                    users::revoke_derived_trust(tx, user.id, None)?;
                }
                Ok(user)
            })
            .await?
            .ok_or(AuthError::InvalidResetToken)?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "reset.completed", &fields);
        self.metrics.reset(ResetStage::completed);
        self.mailer.send_password_changed(&user.email);
        Ok(user.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{auth, auth_with, caller, email, log_in, password};

    /// Issues a token for an account that exists.
    async fn issued(auth: &Auth, to: &str) -> String {
        match auth
            .request_reset(&caller(), &email(to), true)
            .await
            .unwrap()
        {
            ResetRequest::Issued(token) => token,
            other => panic!("{other:?}"),
        }
    }

    /// How many reset links the outbox holds (signups mail verification links too).
    fn mail_count(dir: &crate::db::scratch::Scratch) -> usize {
        std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .filter(|entry| {
                let text = std::fs::read_to_string(entry.as_ref().unwrap().path());
                text.unwrap_or_default()
                    .contains("Subject: Reset your password")
            })
            .count()
    }

    #[rocket::async_test]
    async fn no_reset_token_is_issued_for_an_unknown_email() {
        let (auth, _db, dir) = auth().await;
        let result = auth
            .request_reset(&caller(), &email("nobody@b.com"), true)
            .await;
        assert_eq!(result.unwrap(), ResetRequest::NoAccount);
        assert_eq!(mail_count(&dir), 0, "nothing is sent");
    }

    #[rocket::async_test]
    async fn beyond_its_cap_an_email_gets_no_new_token_from_any_address() {
        let (auth, _db, dir) = auth_with(|s| s.throttle_reset_per_email = 2).await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        issued(&auth, "a@b.com").await;
        let last = issued(&auth, "a@b.com").await;
        let elsewhere = Caller {
            address: Some("192.0.2.9".parse().unwrap()),
            ..caller()
        };
        let capped = auth
            .request_reset(&elsewhere, &email("a@b.com"), true)
            .await;
        assert_eq!(capped.unwrap(), ResetRequest::Capped);
        let hidden = auth
            .request_reset(&elsewhere, &email("a@b.com"), false)
            .await;
        assert_eq!(
            hidden.unwrap(),
            ResetRequest::Deferred,
            "the same answer as any other"
        );
        assert_eq!(
            auth.reset_token_holder(&caller(), &last)
                .await
                .unwrap()
                .email,
            "a@b.com"
        );
        rocket::tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(mail_count(&dir), 2, "nothing sent beyond the cap");
    }

    #[rocket::async_test]
    async fn a_deferred_request_issues_and_mails_the_token_after_the_answer() {
        let (auth, db, dir) = auth().await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        let answer = auth
            .request_reset(&caller(), &email("a@b.com"), false)
            .await;
        assert_eq!(answer.unwrap(), ResetRequest::Deferred);
        let unknown = auth
            .request_reset(&caller(), &email("x@b.com"), false)
            .await;
        assert_eq!(unknown.unwrap(), ResetRequest::Deferred);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while mail_count(&dir) < 1 && std::time::Instant::now() < deadline {
            rocket::tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(mail_count(&dir), 1, "one link, to the known account");
        let stored =
            crate::db::users::find_user_by_email(&mut crate::db::testing::conn(&db), "a@b.com");
        assert!(stored.unwrap().unwrap().reset_token.is_some());
    }

    #[rocket::async_test]
    async fn a_reset_token_works_once_and_ends_every_session() {
        let (auth, _db, _dir) = auth().await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("old"))
            .await
            .unwrap();
        let session_id = log_in(&auth, &caller(), &email("a@b.com"), "old")
            .await
            .unwrap()
            .session_id;
        let reset_token = issued(&auth, "a@b.com").await;

        let owner = email("a@b.com");
        auth.spend_reset_token(&caller(), &reset_token, Some(&owner), password("new"))
            .await
            .unwrap();
        assert!(log_in(&auth, &caller(), &owner, "new").await.is_ok());
        assert!(log_in(&auth, &caller(), &owner, "old").await.is_err());
        assert!(auth.sessions().account_of(&session_id).await.is_err());

        let again = auth
            .spend_reset_token(&caller(), &reset_token, Some(&owner), password("newer"))
            .await;
        assert!(matches!(again, Err(AuthError::InvalidResetToken)));
        assert!(log_in(&auth, &caller(), &owner, "new").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_reset_token_is_valid_only_for_its_own_email() {
        let (auth, _db, _dir) = auth().await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("a"))
            .await
            .unwrap();
        auth.accounts()
            .register(&caller(), &email("c@d.com"), password("c"))
            .await
            .unwrap();
        let reset_token = issued(&auth, "a@b.com").await;
        let other = email("c@d.com");
        let result = auth
            .spend_reset_token(&caller(), &reset_token, Some(&other), password("x"))
            .await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        assert!(log_in(&auth, &caller(), &other, "c").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_reset_by_token_alone_changes_the_holders_password() {
        let (auth, _db, _dir) = auth().await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("old"))
            .await
            .unwrap();
        let reset_token = issued(&auth, "a@b.com").await;
        let holder = auth
            .reset_token_holder(&caller(), &reset_token)
            .await
            .unwrap();
        assert_eq!(holder.email, "a@b.com");
        let user = auth
            .spend_reset_token(&caller(), &reset_token, None, password("new"))
            .await
            .unwrap();
        assert_eq!(user.id, holder.id);
        assert!(
            log_in(&auth, &caller(), &email("a@b.com"), "new")
                .await
                .is_ok()
        );
        assert!(matches!(
            auth.reset_token_holder(&caller(), &reset_token).await,
            Err(AuthError::InvalidResetToken)
        ));
    }

    #[rocket::async_test]
    async fn a_new_reset_token_replaces_the_old_one() {
        let (auth, _db, _dir) = auth().await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("a"))
            .await
            .unwrap();
        let old = issued(&auth, "a@b.com").await;
        let new = issued(&auth, "a@b.com").await;
        let owner = email("a@b.com");
        let result = auth
            .spend_reset_token(&caller(), &old, Some(&owner), password("x"))
            .await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        let spent = auth
            .spend_reset_token(&caller(), &new, Some(&owner), password("x"))
            .await;
        assert!(spent.is_ok());
    }

    #[rocket::async_test]
    async fn racing_resets_with_one_token_succeed_once() {
        let (auth, _db, _dir) = auth().await;
        auth.accounts()
            .register(&caller(), &email("a@b.com"), password("a"))
            .await
            .unwrap();
        let reset_token = issued(&auth, "a@b.com").await;
        let (e, t) = (email("a@b.com"), reset_token.as_str());
        let c = caller();
        let (one, two, three) = rocket::tokio::join!(
            auth.spend_reset_token(&c, t, Some(&e), password("one")),
            auth.spend_reset_token(&c, t, Some(&e), password("two")),
            auth.spend_reset_token(&c, t, Some(&e), password("three")),
        );
        let wins = [one.is_ok(), two.is_ok(), three.is_ok()];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    }
}
