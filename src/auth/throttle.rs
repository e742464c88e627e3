//! Brute-force limits (spec 3.5): attempts counted per account, per trusted device and per
//! client address in a sliding window, stored in the database so they survive restarts and
//! hold across instances. The gates here decide and audit; the counting is SQL, in
//! `db::throttle_events`.
//!
//! An attempt is counted at the gate, in the same immediate transaction as the check: of any
//! number of concurrent attempts, no more than the limit get past it. The count is a
//! reservation: a failure keeps it, a success releases it.

use super::audit::Field;
use super::{Auth, AuthError, Caller};
use crate::config::Settings;
use crate::db::throttle_events::{self, Limit};
use crate::db::{Tx, now};

/// The window of the hourly mail caps (`throttle_mail_per_account`): reset links per email,
/// verification and email-change links per account.
pub const MAIL_WINDOW_SECS: i64 = 60 * 60;

/// How many device budgets the failures of all of an account's trusted devices may sum to in
/// a window.
pub const DEVICES_CEILING_FACTOR: i64 = 10;

/// What is counted.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Failed logins from untrusted clients, per email (known or not, so the limit reveals
    /// nothing).
    LoginAccount,
    /// Failed logins from one trusted device (a device cookie), per device: its own budget, so
    /// an attacker's failures cannot lock the owner's devices out.
    LoginDevice,
    /// Failed logins from trusted devices, summed per email: a ceiling of
    /// [`DEVICES_CEILING_FACTOR`] device budgets, so a stockpile of device cookies cannot buy
    /// more guesses than that in a window.
    LoginDevices,
    /// Failed logins, per client address.
    LoginAddress,
    /// Signup requests, per client address.
    Signup,
    /// Requests for mailed links (a reset, a change of email), per client address.
    Reset,
    /// Reset-link requests, per email, whatever the address.
    ResetEmail,
    /// Wrong mailed-link tokens (reset, verification, email change), per client address.
    LinkGuess,
    /// Mails an account's owner asks for (verification links, email-change links), per
    /// account, within the same hourly cap as reset links per email.
    AccountMail,
    /// Failed authentications of an OpenID Connect client at the token, introspection and
    /// revocation endpoints, per client (with [`Scope::LoginAddress`] per address).
    ClientAuth,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::LoginAccount => "login_account",
            Scope::LoginDevice => "login_device",
            Scope::LoginDevices => "login_devices",
            Scope::LoginAddress => "login_address",
            Scope::Signup => "signup",
            Scope::Reset => "reset",
            Scope::ResetEmail => "reset_email",
            // Named before it covered verification and email-change tokens; kept, as stored
            // attempts carry it.
            Scope::LinkGuess => "reset_guess",
            Scope::AccountMail => "account_mail",
            Scope::ClientAuth => "oidc_client",
        }
    }
}

/// The configured thresholds (the `throttle_*` keys).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub enabled: bool,
    pub window: i64,
    pub login_per_account: i64,
    pub login_per_address: i64,
    pub signup_per_address: i64,
    pub reset_per_address: i64,
    pub mail_per_account: i64,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Limits {
        Limits {
            enabled: settings.throttle_enabled,
            window: settings.throttle_window_secs,
            login_per_account: settings.throttle_login_per_account,
            login_per_address: settings.throttle_login_per_address,
            signup_per_address: settings.throttle_signup_per_address,
            reset_per_address: settings.throttle_reset_per_address,
            mail_per_account: settings.throttle_mail_per_account,
        }
    }

    /// The longest window any limit counts in: attempts older than it count for nothing.
    pub fn longest_window(&self) -> i64 {
        self.window.max(MAIL_WINDOW_SECS)
    }

    /// The limit on `key` in `scope`, ready to check.
    pub fn of<'a>(&self, scope: Scope, key: &'a str) -> Limit<'a> {
        let (max, window) = match scope {
            Scope::LoginAccount | Scope::LoginDevice | Scope::ClientAuth => {
                (self.login_per_account, self.window)
            }
            Scope::LoginDevices => (self.login_per_account * DEVICES_CEILING_FACTOR, self.window),
            Scope::LoginAddress => (self.login_per_address, self.window),
            Scope::Signup => (self.signup_per_address, self.window),
            Scope::Reset | Scope::LinkGuess => (self.reset_per_address, self.window),
            Scope::ResetEmail | Scope::AccountMail => (self.mail_per_account, MAIL_WINDOW_SECS),
        };
        Limit {
            scope: scope.name(),
            key,
            max,
            window,
        }
    }
}

/// The (scope, key) pairs one attempt is counted against.
pub(super) type Counted = Vec<(Scope, String)>;

/// Attempts counted at a gate, by their rows: a failure keeps them, a success releases them.
#[derive(Debug, Default)]
#[must_use = "a reservation is kept as a failure or released"]
pub(super) struct Reservation(Vec<i32>);

impl Reservation {
    /// Forgets the counted attempts, in the caller's transaction.
    pub(super) fn release(self, tx: &mut Tx<'_>) -> Result<(), crate::db::DbError> {
        throttle_events::delete_events(tx, &self.0)
    }

    /// Keeps the counted attempts: they were failures.
    pub(super) fn keep(self) {}
}

impl Auth {
    /// Refuses with [`AuthError::Throttled`] when any (scope, key) reached its limit in the
    /// window; otherwise counts this attempt against each and returns the reservation. Check
    /// and count are one immediate transaction, so a burst of concurrent attempts is counted
    /// one by one and never more than the limit get through.
    pub(super) async fn gate(&self, counted: Counted) -> Result<Reservation, AuthError> {
        let (reservation, _) = self.gate_within(counted, None).await?;
        Ok(reservation)
    }

    /// [`Auth::gate`] with a cap beside the limits, checked in the same transaction: an attempt
    /// within the limits passes even when `cap` reached its own limit, and is counted against
    /// `cap` only while under it. The flag says whether it was (`false`: capped).
    pub(super) async fn gate_within(
        &self,
        counted: Counted,
        cap: Option<(Scope, String)>,
    ) -> Result<(Reservation, bool), AuthError> {
        if !self.limits.enabled {
            return Ok((Reservation::default(), true));
        }
        let limits = self.limits;
        let reserved = self
            .db
            .write(move |tx| {
                let at = now();
                let checked: Vec<_> = counted.iter().map(|(s, k)| limits.of(*s, k)).collect();
                let cap = cap.as_ref().map(|(scope, key)| limits.of(*scope, key));
                throttle_events::lock(tx, &[&checked[..], cap.as_slice()].concat())?;
                if let Some(retry_after) = throttle_events::retry_after(tx, &checked, at)? {
                    return Ok(Err(retry_after));
                }
                let mut counting = checked;
                let within_cap = match cap {
                    Some(cap) => throttle_events::retry_after(tx, &[cap], at)?.is_none(),
                    None => true,
                };
                counting.extend(cap.filter(|_| within_cap));
                let ids = counting
                    .iter()
                    .map(|limit| throttle_events::record_event(tx, limit.scope, limit.key, at))
                    .collect::<Result<_, _>>()?;
                Ok(Ok((Reservation(ids), within_cap)))
            })
            .await?;
        reserved.map_err(|retry_after| AuthError::Throttled { retry_after })
    }

    /// Releases a reservation on its own (the attempt was not a failure, and no other write
    /// followed to release it in). A failure to release is logged: the count then stays until
    /// the window passes, on the safe side.
    pub(super) async fn release(&self, reservation: Reservation) {
        if reservation.0.is_empty() {
            return;
        }
        if let Err(error) = self.db.write(move |tx| reservation.release(tx)).await {
            log::warn!(target: "auth_service::throttle", "an attempt stays counted: {error}");
        }
    }

    /// Audits a refusal for throttling and passes the error on.
    pub(super) fn throttled(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{auth_with, caller};

    #[rocket::async_test]
    async fn a_burst_at_a_gate_gets_no_more_than_the_limit_through() {
        let (auth, _db, _dir) = auth_with(|s| s.throttle_signup_per_address = 5).await;
        let attempts = (0..40).map(|_| {
            let auth = auth.clone();
            rocket::tokio::spawn(async move {
                auth.gate(vec![(Scope::Signup, caller().address_key())])
                    .await
            })
        });
        let mut passed = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.unwrap() {
                Ok(reservation) => {
                    passed += 1;
                    reservation.keep();
                }
                Err(AuthError::Throttled { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(passed, 5);
    }

    #[rocket::async_test]
    async fn a_released_reservation_frees_its_slot() {
        let (auth, _db, _dir) = auth_with(|s| s.throttle_signup_per_address = 1).await;
        let counted = || vec![(Scope::Signup, caller().address_key())];
        let first = auth.gate(counted()).await.unwrap();
        assert!(matches!(
            auth.gate(counted()).await,
            Err(AuthError::Throttled { .. })
        ));
        auth.release(first).await;
        auth.gate(counted()).await.unwrap().keep();
    }
}
