//! The periodic cleanup: expiry is enforced by every lookup, so this only reclaims space.

use super::AuthError;
use super::operator::Operator;
use crate::db::account_tokens::{self, Purpose};
use crate::db::{devices, now, oidc, sessions, sign_in_steps, throttle_events};
use crate::metrics::PURGED_KINDS;

/// How many rows one cleanup removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: usize,
    /// Reset links.
    pub reset_tokens: usize,
    pub attempts: usize,
    pub devices: usize,
    /// The other mailed links: verification and email change.
    pub account_tokens: usize,
    /// Sign-in steps that waited for a second factor in vain.
    pub sign_in_steps: usize,
    /// OpenID Connect codes and tokens that expired, and signing keys retired for longer than
    /// anything they signed lives.
    pub oidc: usize,
}

impl std::fmt::Display for Purged {
    /// `3 expired sessions, 1 old attempt`: the kinds with rows removed, or `nothing`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            (self.sessions, "expired session"),
            (self.reset_tokens, "reset token"),
            (self.account_tokens, "mailed token"),
            (self.attempts, "old attempt"),
            (self.devices, "stale device"),
            (self.sign_in_steps, "expired sign-in step"),
            (self.oidc, "expired application token or key"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, kind)| match count {
            1 => format!("1 {kind}"),
            _ => format!("{count} {kind}s"),
        })
        .collect();
        match parts.is_empty() {
            true => f.write_str("nothing"),
            false => f.write_str(&parts.join(", ")),
        }
    }
}

impl Operator<'_> {
    /// Deletes expired sessions, mailed links (reset links counted apart from the others) and
    /// sign-in steps, forgets attempts older than any throttling window and devices that have
    /// not logged in for [`super::DEVICE_TRUST_SECS`].
    pub async fn purge_expired(self) -> Result<Purged, AuthError> {
        let auth = self.0;
        let (lifetimes, window) = (auth.lifetimes, auth.limits.longest_window());
        let signed_lifetime = auth.oidc_signed_lifetime();
        let purged = auth
            .db
            .write(move |tx| {
                let at = now();
                Ok(Purged {
                    sessions: sessions::delete_expired_sessions(tx, at, lifetimes)?,
                    reset_tokens: account_tokens::delete_expired(tx, at, &[Purpose::Reset])?,
                    attempts: throttle_events::delete_events_before(tx, at - window)?,
                    devices: devices::delete_stale_devices(tx, at - super::DEVICE_TRUST_SECS)?,
                    account_tokens: account_tokens::delete_expired(
                        tx,
                        at,
                        &[Purpose::Verify, Purpose::Email],
                    )?,
                    sign_in_steps: sign_in_steps::delete_expired_steps(tx, at)?,
                    oidc: oidc::purge(tx, at, at - signed_lifetime)?,
                })
            })
            .await?;
        let counts = [
            purged.sessions,
            purged.reset_tokens,
            purged.attempts,
            purged.devices,
            purged.account_tokens,
            purged.sign_in_steps,
            purged.oidc,
        ];
        for (kind, count) in PURGED_KINDS.into_iter().zip(counts) {
            auth.metrics.purged(kind, count);
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::Purged;

    #[test]
    fn a_purge_reads_as_counted_kinds() {
        let none = Purged {
            sessions: 0,
            reset_tokens: 0,
            attempts: 0,
            devices: 0,
            account_tokens: 0,
            sign_in_steps: 0,
            oidc: 0,
        };
        assert_eq!(none.to_string(), "nothing");
        let some = Purged {
            sessions: 3,
            attempts: 1,
            sign_in_steps: 2,
            oidc: 1,
            ..none
        };
        let said = "3 expired sessions, 1 old attempt, 2 expired sign-in steps, \
                    1 expired application token or key";
        assert_eq!(some.to_string(), said);
    }
}
