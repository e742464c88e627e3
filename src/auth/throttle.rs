//! Brute-force limits (spec 3.5): attempts counted per account and per client address in a
//! sliding window, stored in the database so they survive restarts. The gates here decide and
//! audit; the counting is SQL, in `db::throttle_events`.

use super::audit::Field;
use super::{Auth, AuthError, Caller};
use crate::config::Settings;
use crate::db::{now, throttle_events};

/// What is counted.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Failed logins, per email (known or not, so the limit reveals nothing).
    LoginAccount,
    /// Failed logins, per client address.
    LoginAddress,
    /// Signup requests, per client address.
    Signup,
    /// Reset-link requests, per client address.
    Reset,
    /// Wrong reset tokens, per client address.
    ResetGuess,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::LoginAccount => "login_account",
            Scope::LoginAddress => "login_address",
            Scope::Signup => "signup",
            Scope::Reset => "reset",
            Scope::ResetGuess => "reset_guess",
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
        }
    }

    pub fn limit(&self, scope: Scope) -> i64 {
        match scope {
            Scope::LoginAccount => self.login_per_account,
            Scope::LoginAddress => self.login_per_address,
            Scope::Signup => self.signup_per_address,
            Scope::Reset | Scope::ResetGuess => self.reset_per_address,
        }
    }
}

/// The (scope, key) pairs one attempt is counted against.
pub(super) type Counted = Vec<(Scope, String)>;

impl Auth {
    /// Refuses with [`AuthError::Throttled`] when any (scope, key) reached its limit in the
    /// window; otherwise, when `count` is set, counts this attempt against each. One round trip.
    pub(super) async fn gate(&self, counted: Counted, count: bool) -> Result<(), AuthError> {
        if !self.limits.enabled {
            return Ok(());
        }
        let limits = self.limits;
        let retry = self
            .db
            .write(move |tx| {
                let at = now();
                let checked: Vec<_> = counted
                    .iter()
                    .map(|(scope, key)| (scope.name(), key.as_str(), limits.limit(*scope)))
                    .collect();
                let retry = throttle_events::retry_after(tx, &checked, limits.window, at)?;
                if retry.is_none() && count {
                    for (scope, key, _) in &checked {
                        throttle_events::record_event(tx, scope, key, at)?;
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
    pub(super) async fn count_failure(&self, counted: Counted) -> Result<(), AuthError> {
        if !self.limits.enabled {
            return Ok(());
        }
        self.db
            .write(move |tx| {
                let at = now();
                for (scope, key) in &counted {
                    throttle_events::record_event(tx, scope.name(), key, at)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
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
