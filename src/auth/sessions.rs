//! Sessions: starting one (its id is the only raw copy of the secret), finding the user of a
//! live one on every logged-in request, and ending one (logging out this device only).

use super::audit::Field;
use super::throttle::Scope;
use super::{Auth, AuthError, Caller, token};
use crate::db::sessions::TOUCH_AFTER_SECS;
use crate::db::{User, now, sessions, throttle_events};

impl Auth {
    /// Starts a new session for `user` and returns its id, the only copy of the raw value.
    pub async fn create_session(&self, user: &User) -> Result<String, AuthError> {
        self.open_session(user, false).await
    }

    /// Starts a session; with `forgive`, forgets the account's failed logins in the same
    /// transaction, so a login is all done or not done at all.
    pub(super) async fn open_session(
        &self,
        user: &User,
        forgive: bool,
    ) -> Result<String, AuthError> {
        let session_id = token::generate();
        let (user_id, digest, email) = (user.id, token::digest(&session_id), user.email.clone());
        self.db
            .write(move |tx| {
                if forgive {
                    throttle_events::clear_events(tx, Scope::LoginAccount.name(), &email)?;
                }
                sessions::add_session(tx, user_id, &digest)
            })
            .await?;
        Ok(session_id)
    }

    /// The user of a live session. Use is recorded at most once a minute per session, so most
    /// lookups stay reads.
    pub async fn user_for_session(&self, session_id: &str) -> Result<User, AuthError> {
        let (digest, lifetimes, at) = (token::digest(session_id), self.lifetimes, now());
        let found = self
            .db
            .read(move |c| sessions::find_session(c, &digest, at, lifetimes))
            .await?;
        let (session, user) = found.ok_or(AuthError::NoSession)?;
        if at - session.last_seen_at >= TOUCH_AFTER_SECS {
            let touched = self
                .db
                .write_relaxed(move |tx| sessions::touch_session(tx, &session.token_hash, at))
                .await;
            // Only bookkeeping: a read must not fail because its use could not be recorded
            // (a full disk). The session then expires by its older use, the safe side.
            if let Err(error) = touched {
                log::warn!(target: "auth_service::db", "a session's use was not recorded: {error}");
            }
        }
        Ok(user)
    }

    /// Ends the session `session_id` only; the account's other devices stay logged in.
    pub async fn destroy_session(
        &self,
        caller: &Caller,
        session_id: &str,
    ) -> Result<(), AuthError> {
        let (digest, lifetimes, at) = (token::digest(session_id), self.lifetimes, now());
        let ended = self
            .db
            .write(move |tx| sessions::delete_session(tx, &digest, at, lifetimes))
            .await?;
        let user_id = ended.ok_or(AuthError::NoSession)?;
        self.audit
            .record(caller, "logout", &[Field::UserId(user_id)]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{auth, caller, email, password};
    use crate::db::schema::{sessions as sessions_table, users as users_table};
    use crate::db::testing::conn;
    use diesel::prelude::*;

    #[rocket::async_test]
    async fn the_database_holds_only_digests_of_session_ids_and_reset_tokens() {
        let (auth, db, dir) = auth().await;
        auth.register(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        let (_, session_id) = auth
            .login(&caller(), &email("a@b.com"), "pw")
            .await
            .unwrap();
        let reset_token = auth
            .issue_reset_token(&caller(), &email("a@b.com"))
            .await
            .unwrap()
            .unwrap();

        let c = &mut conn(&db);
        let stored_session: Vec<u8> = sessions_table::table
            .select(sessions_table::token_hash)
            .first(c)
            .unwrap();
        let stored_reset: Option<Vec<u8>> = users_table::table
            .select(users_table::reset_token)
            .first(c)
            .unwrap();
        assert_eq!(stored_session, token::digest(&session_id));
        assert_eq!(stored_reset.unwrap(), token::digest(&reset_token));

        let raw = std::fs::read(dir.path().join("test.db")).unwrap();
        let wal = std::fs::read(dir.path().join("test.db-wal")).unwrap_or_default();
        for secret in [&session_id, &reset_token] {
            let needle = secret.as_bytes();
            let found = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
            assert!(
                !found(&raw) && !found(&wal),
                "raw secret in the database file"
            );
        }
    }

    #[rocket::async_test]
    async fn sessions_resolve_to_their_user_until_destroyed() {
        let (auth, _db, _dir) = auth().await;
        let user = auth
            .register(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        let (_, first) = auth
            .login(&caller(), &email("a@b.com"), "pw")
            .await
            .unwrap();
        let (_, second) = auth
            .login(&caller(), &email("a@b.com"), "pw")
            .await
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(auth.user_for_session(&first).await.unwrap().id, user.id);

        auth.destroy_session(&caller(), &first).await.unwrap();
        assert!(matches!(
            auth.user_for_session(&first).await,
            Err(AuthError::NoSession)
        ));
        assert!(matches!(
            auth.destroy_session(&caller(), &first).await,
            Err(AuthError::NoSession)
        ));
        assert_eq!(auth.user_for_session(&second).await.unwrap().id, user.id);
    }
}
