//! Password reset: issue a token (mailed as a link), check it, spend it.
//!
//! The contract, as data: issuing for an unknown email is `Ok(None)`, not an error, so each
//! surface states its own disclosure policy (the debug API's 403, everyone else's same
//! answer). A token is spent once, by one conditional update; spending it ends every session
//! of the account, forgives its failed logins and logs no one in. Invalid, expired and used
//! tokens are alike.

use super::audit::Field;
use super::password::Password;
use super::throttle::Scope;
use super::{Auth, AuthError, Caller, Email, token};
use crate::db::{User, now, throttle_events, users};

impl Auth {
    /// Issues a reset token for the account `email`, replacing any earlier one, mails the link
    /// and returns the token's raw value; `None` when no account has that email (nothing is
    /// issued or sent). Requests are limited per client address.
    pub async fn issue_reset_token(
        &self,
        caller: &Caller,
        email: &Email,
    ) -> Result<Option<String>, AuthError> {
        self.gate(vec![(Scope::Reset, caller.address_key())], true)
            .await
            .map_err(|e| self.throttled(caller, "reset.throttled", e, Some(email.as_str())))?;
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
            return Ok(None);
        };
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        self.audit.record(caller, "reset.requested", &fields);
        self.mailer.send_reset_link(&user.email, &reset_token);
        Ok(Some(reset_token))
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

    /// Spends `reset_token` on a new password: the token is used up and every session of the
    /// account ends; no one is logged in, and the account's failed logins are forgiven.
    /// `owner`, when given, is the email the token must belong to (the API names it; the
    /// emailed link does not). The token is checked before the hash, so an invalid one costs no
    /// bcrypt.
    pub async fn spend_reset_token(
        &self,
        caller: &Caller,
        reset_token: &str,
        owner: Option<&Email>,
        password: Password,
    ) -> Result<User, AuthError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{auth, caller, email, password};

    /// Issues a token for an account that exists.
    async fn issued(auth: &Auth, to: &str) -> String {
        let token = auth.issue_reset_token(&caller(), &email(to)).await;
        token.unwrap().expect("a known account")
    }

    #[rocket::async_test]
    async fn no_reset_token_is_issued_for_an_unknown_email() {
        let (auth, _db, dir) = auth().await;
        let result = auth
            .issue_reset_token(&caller(), &email("nobody@b.com"))
            .await;
        assert!(matches!(result, Ok(None)), "{result:?}");
        let mail = std::fs::read_dir(dir.path().join("mail")).unwrap().count();
        assert_eq!(mail, 0, "nothing is sent");
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
        let reset_token = issued(&auth, "a@b.com").await;

        let owner = email("a@b.com");
        auth.spend_reset_token(&caller(), &reset_token, Some(&owner), password("new"))
            .await
            .unwrap();
        assert!(auth.valid_login(&owner, "new").await.is_ok());
        assert!(auth.valid_login(&owner, "old").await.is_err());
        assert!(auth.user_for_session(&session_id).await.is_err());

        let again = auth
            .spend_reset_token(&caller(), &reset_token, Some(&owner), password("newer"))
            .await;
        assert!(matches!(again, Err(AuthError::InvalidResetToken)));
        assert!(auth.valid_login(&owner, "new").await.is_ok());
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
        let reset_token = issued(&auth, "a@b.com").await;
        let other = email("c@d.com");
        let result = auth
            .spend_reset_token(&caller(), &reset_token, Some(&other), password("x"))
            .await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        assert!(auth.valid_login(&other, "c").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_reset_by_token_alone_changes_the_holders_password() {
        let (auth, _db, _dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("old"))
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
        auth.register(&caller(), &email("a@b.com"), password("a"))
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
