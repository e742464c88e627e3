//! Checking what a caller presents: a password today (a second factor, recovery codes and
//! passkeys come next, each as a check of its own here). A check is counted at the throttle
//! gate before any hash, and a right credential comes back as a [`Proof`]: whose it is, and
//! what the check consumed. What a proof is good for is its caller's to decide: a sign-in
//! ([`super::signin`]), a changed password, a deleted account.

use super::audit::Field;
use super::password::{self, Matched, Password};
use super::throttle::{Reservation, Scope};
use super::{Auth, AuthError, Caller, Email, token};
use crate::db::{DbError, Tx, User, devices, now, users};

/// A right password that passed the gate: its account, and what checking it consumed.
pub(super) struct Proof {
    /// The account, as read for the check.
    pub user: User,
    /// What a write acting on the password checks first.
    pub password: PasswordCheck,
    /// What the check was counted against (the account, or the trusted device): a success
    /// forgives its failures.
    pub budget: (Scope, String),
    /// The check's count, to release: it was no failure.
    pub reservation: Reservation,
    /// The digest of the client's device cookie, when it is trusted for this account.
    pub device: Option<[u8; 32]>,
}

/// What a write acting on a verified password checks first, in its own transaction.
///
/// A sign-in is checked against the hash it read, and the write it allows happens in one
/// transaction with the check that this hash is still the account's: a sign-in with the old
/// password that was in flight while a reset completed fails, and a stale hash's replacement
/// (a raised cost, a password from before normalization) never writes an old password over a
/// new one.
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

/// The credential checks, for the flows that need one (signing in, confirming an action).
#[derive(Clone, Copy)]
pub(super) struct Credentials<'a>(pub(super) &'a Auth);

impl Credentials<'_> {
    /// Checks `password` for the account `email` as every sign-in does, and as every action
    /// that asks for the current password does (a wrong one is a failed login for the account).
    ///
    /// The check is counted at the gate, before bcrypt: per account, or per device when the
    /// client presents a device cookie trusted for this account (and then against the ceiling
    /// of all the account's devices), and per address. A device cookie that is not trusted for
    /// the account (unknown, revoked, another account's) counts as none. Beyond a limit the
    /// answer is [`AuthError::Throttled`] without checking the password. A wrong password keeps
    /// the count and is audited as `failed_event`; the caller releases or spends the
    /// reservation of a right one. The caller holds the hasher's admission.
    pub(super) async fn password(
        self,
        caller: &Caller,
        email: &Email,
        password: &str,
        failed_event: &str,
    ) -> Result<Proof, AuthError> {
        let auth = self.0;
        let device = self.trusted_device(caller, email).await?;
        let budget = match &device {
            Some(digest) => (Scope::LoginDevice, hex(digest)),
            None => (Scope::LoginAccount, email.to_string()),
        };
        let mut counted = vec![budget.clone(), (Scope::LoginAddress, caller.address_key())];
        if device.is_some() {
            counted.push((Scope::LoginDevices, email.to_string()));
        }
        let reservation = auth
            .gate(counted)
            .await
            .map_err(|e| auth.throttled(caller, "login.throttled", e, Some(email.as_str())))?;
        match self.verify(email, password).await {
            Ok((user, _)) if user.disabled_at.is_some() => {
                auth.release(reservation).await;
                auth.audit
                    .record(caller, "login.disabled", &[Field::UserId(user.id)]);
                Err(AuthError::AccountDisabled)
            }
            Ok((user, check)) => Ok(Proof {
                user,
                password: check,
                budget,
                reservation,
                device,
            }),
            Err(AuthError::InvalidCredentials) => {
                reservation.keep();
                auth.audit
                    .record(caller, failed_event, &[Field::Email(email.as_str())]);
                Err(AuthError::InvalidCredentials)
            }
            Err(other) => {
                auth.release(reservation).await;
                Err(other)
            }
        }
    }

    /// Checks `password` against the account `email`, and rehashes it if its stored hash is
    /// stale. Unknown emails verify against a dummy hash of the configured cost, and unknown
    /// emails and unusable passwords get the same error as a wrong password. A stored hash
    /// of a lower cost (a dormant account, from before the cost was raised) is followed by a
    /// verification at the configured cost when the password is wrong, as by the rehash when
    /// it is right, so neither answer comes sooner than for a current account.
    async fn verify(
        self,
        email: &Email,
        password: &str,
    ) -> Result<(User, PasswordCheck), AuthError> {
        let auth = self.0;
        let address = email.to_string();
        let user = auth
            .db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?;
        let stored = user
            .as_ref()
            .map_or_else(|| auth.dummy_hash.clone(), |u| u.hashed_password.clone());
        let cheap = password::cost_of(&stored).is_some_and(|c| c < auth.hasher.cost());
        let matched = auth
            .hasher
            .verify(Password::parse(password).ok(), stored.clone())
            .await?;
        let user = match (user, matched) {
            (Some(user), Matched::Normalized | Matched::AsTyped) => user,
            (_, _) => {
                if cheap {
                    let dummy = auth.dummy_hash.clone();
                    auth.hasher.verify(None, dummy).await?;
                }
                return Err(AuthError::InvalidCredentials);
            }
        };
        let rehash = if cheap || matched == Matched::AsTyped {
            // It parsed for the verification that matched.
            let password = Password::parse(password).map_err(|e| AuthError::Internal(e.into()))?;
            Some(auth.hasher.hash(password).await?)
        } else {
            None
        };
        let check = PasswordCheck {
            user_id: user.id,
            matched_hash: stored,
            rehash,
        };
        Ok((user, check))
    }

    /// The digest of the caller's device cookie, if it is trusted for the account `email`.
    async fn trusted_device(
        self,
        caller: &Caller,
        email: &Email,
    ) -> Result<Option<[u8; 32]>, AuthError> {
        let Some(device_token) = &caller.device_token else {
            return Ok(None);
        };
        let (digest, address) = (token::digest(device_token), email.to_string());
        let trusted = self
            .0
            .db
            .run(move |c| {
                devices::is_trusted_for(c, &digest, &address, now() - super::DEVICE_TRUST_SECS)
            })
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
    use crate::auth::testing::{
        auth, auth_with, caller, email, log_in, register, signed_in, stored_hash,
    };
    use crate::db::testing::write;

    /// Checks `pw` for `who` as a sign-in does, without signing in.
    async fn check(auth: &Auth, who: &str, pw: &str) -> Result<Proof, AuthError> {
        let (caller, email) = (caller(), email(who));
        let checked = auth
            .credentials()
            .password(&caller, &email, pw, "login.failed");
        checked.await
    }

    #[rocket::async_test]
    async fn a_password_check_needs_the_right_password_and_a_known_email() {
        let (auth, _db, _dir) = auth().await;
        register(&auth, "a@b.com", "right").await;
        assert!(check(&auth, "a@b.com", "right").await.is_ok());
        for (who, pw) in [
            ("a@b.com", "wrong"),
            ("a@b.com", ""),
            ("nobody@b.com", "right"),
        ] {
            let result = check(&auth, who, pw).await;
            assert!(
                matches!(result, Err(AuthError::InvalidCredentials)),
                "{who}"
            );
        }
        let long = "r".repeat(73);
        let result = check(&auth, "a@b.com", &long).await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)));
    }

    #[rocket::async_test]
    async fn a_proof_names_the_budget_it_was_counted_against() {
        let (auth, _db, _dir) = auth().await;
        let ann = email("ann@b.com");
        register(&auth, "ann@b.com", "pw").await;
        let proof = check(&auth, "ann@b.com", "pw").await.unwrap();
        assert!(matches!(proof.budget.0, Scope::LoginAccount));
        assert_eq!((proof.budget.1.as_str(), proof.device), ("ann@b.com", None));

        let signed_in = signed_in(&auth, "ann@b.com", "pw").await;
        let device_token = signed_in.device_token.expect("the client became trusted");
        let trusted = Caller {
            device_token: Some(device_token.clone()),
            ..caller()
        };
        let checked = auth
            .credentials()
            .password(&trusted, &ann, "pw", "login.failed");
        let proof = checked.await.unwrap();
        let digest = token::digest(&device_token);
        assert!(matches!(proof.budget.0, Scope::LoginDevice));
        assert_eq!((proof.budget.1, proof.device), (hex(&digest), Some(digest)));
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
        let result = check(&broken, "nobody@b.com", "pw").await;
        assert!(
            matches!(result, Err(AuthError::Internal(_))),
            "{:?}",
            result.err()
        );
        let result = check(&auth, "nobody@b.com", "pw").await;
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
                let result = log_in(&auth, &caller(), &email(who), pw).await;
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
        assert!(
            log_in(&auth, &caller(), &email("a@b.com"), "fish")
                .await
                .is_err()
        );
        let signed_in = log_in(&auth, &caller(), &email("a@b.com"), "\u{FB01}sh").await;
        let rehashed = stored_hash(&db, signed_in.unwrap().account.id);
        assert!(bcrypt::verify("fish", &rehashed).unwrap());
        assert!(
            log_in(&auth, &caller(), &email("a@b.com"), "fish")
                .await
                .is_ok()
        );
    }
}
