//! Signing up and logging in: registration, the credential check (the original's
//! `valid_login`), the rehash of a stale hash, and the throttled login that starts a session.

use super::audit::Field;
use super::password::{self, Password};
use super::throttle::Scope;
use super::{Auth, AuthError, Caller, Email};
use crate::db::{User, UserChanges, users};

impl Auth {
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
            .write(move |tx| users::add_user(tx, &address, &hashed))
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
        self.rehash(user, password).await
    }

    /// Rehashes a correct password whose stored hash is cheaper than the configured cost (the
    /// cost was raised since it was set), so every account follows the new cost at next login.
    async fn rehash(&self, user: User, password: &str) -> Result<User, AuthError> {
        let stale =
            password::cost_of(&user.hashed_password).is_some_and(|c| c < self.hasher.cost());
        let Some(password) = Password::parse(password).ok().filter(|_| stale) else {
            return Ok(user);
        };
        let hashed = self.hasher.hash(password).await?;
        let id = user.id;
        let upgraded = self
            .db
            .write(move |tx| {
                let changes = UserChanges {
                    hashed_password: Some(&hashed),
                    ..Default::default()
                };
                users::update_user(tx, id, &changes)
            })
            .await?;
        Ok(upgraded)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{auth, caller, email, password};

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
}
