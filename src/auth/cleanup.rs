//! The periodic cleanup: expiry is enforced by every lookup, so this only reclaims space.

use super::{Auth, AuthError};
use crate::db::{now, sessions, throttle_events, users};

impl Auth {
    /// Deletes expired sessions, clears expired reset tokens and forgets attempts older than
    /// the throttling window. Returns how many of each.
    pub async fn purge_expired(&self) -> Result<(usize, usize, usize), AuthError> {
        let (lifetimes, window) = (self.lifetimes, self.limits.window);
        Ok(self
            .db
            .write(move |tx| {
                let at = now();
                Ok((
                    sessions::delete_expired_sessions(tx, at, lifetimes)?,
                    users::clear_expired_reset_tokens(tx, at)?,
                    throttle_events::delete_events_before(tx, at - window)?,
                ))
            })
            .await?)
    }
}
