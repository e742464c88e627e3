//! Brute-force limits (spec 3.5): attempts counted per account and per client address in a
//! sliding window, stored in the database so they survive restarts.

use diesel::sqlite::SqliteConnection;

use crate::config::Settings;
use crate::db::{DbError, throttle_events};

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

/// Seconds until the first of `counted` (scope, key) pairs that reached its limit frees a slot,
/// or `None` when all are under their limits.
pub fn retry_after(
    conn: &mut SqliteConnection,
    limits: &Limits,
    counted: &[(Scope, &str)],
    now: i64,
) -> Result<Option<i64>, DbError> {
    for &(scope, key) in counted {
        let since = now - limits.window;
        let (count, oldest) = throttle_events::count_events_since(conn, scope.name(), key, since)?;
        if count >= limits.limit(scope) {
            let frees_at = oldest.unwrap_or(now) + limits.window;
            return Ok(Some((frees_at - now).max(1)));
        }
    }
    Ok(None)
}
