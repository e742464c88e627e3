//! The `sessions` table: one row per logged-in device, keyed by the SHA-256 of its cookie value.

use diesel::prelude::*;

use super::schema::{sessions, users};
use super::{AnyConnection, DbError, Tx, User, now, session_revocations};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(
    table_name = sessions,
    primary_key(token_hash),
    belongs_to(User),
    check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg)
)]
pub struct Session {
    pub token_hash: Vec<u8>,
    pub user_id: i32,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// What the account's owner sees of the session instead of its digest: a random id that
    /// names it in the sessions list and the API, and grants nothing.
    pub public_id: String,
    /// A readable summary of the client ("Firefox on Linux"), from its `User-Agent`.
    pub user_agent: Option<String>,
    /// The client address at login.
    pub address: Option<String>,
    /// The digest of the device cookie of the client it was opened on: ending the session
    /// from the account's list ends that device's trust too.
    pub device_hash: Option<Vec<u8>>,
    /// How the session was made: OpenID's `amr` values, space-separated (`pwd`, `pwd otp`,
    /// `pwd rc`, `passkey`).
    pub amr: String,
}

/// A session to record: its owner, the digest of its id, what its owner will see of it, and
/// the device it is opened on.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub user_id: i32,
    pub token_digest: &'a [u8],
    pub public_id: &'a str,
    pub user_agent: Option<&'a str>,
    pub address: Option<&'a str>,
    pub device_digest: Option<&'a [u8]>,
    pub amr: &'a str,
}

/// How long sessions live. Both limits are checked inside the lookup query, so an expired
/// session is absent whether or not the periodic purge has removed it yet.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Seconds without use after which a session is over.
    pub idle: i64,
    /// Seconds after login after which a session is over, however active.
    pub absolute: i64,
}

impl Lifetimes {
    /// Whether `session` is live at `now` ([`Lifetimes::live_at`] on a row already read).
    pub fn live(self, session: &Session, now: i64) -> bool {
        session.last_seen_at > now - self.idle && session.created_at > now - self.absolute
    }

    /// The SQL condition "this session is live at `now`".
    fn live_at(self, now: i64) -> live {
        live(now - self.idle, now - self.absolute)
    }
}

#[diesel::dsl::auto_type]
fn live(seen_after: i64, created_after: i64) -> _ {
    sessions::last_seen_at
        .gt(seen_after)
        .and(sessions::created_at.gt(created_after))
}

/// `last_seen_at` is refreshed at most this often, so reading a session is not a write each time.
pub const TOUCH_AFTER_SECS: i64 = 60;

/// Records a new session; a missing user is [`DbError::NotFound`].
pub fn add_session(tx: &mut Tx<'_>, new: &NewSession<'_>) -> Result<Session, DbError> {
    let at = now();
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(new.token_digest),
            sessions::user_id.eq(new.user_id),
            sessions::created_at.eq(at),
            sessions::last_seen_at.eq(at),
            sessions::public_id.eq(new.public_id),
            sessions::user_agent.eq(new.user_agent),
            sessions::address.eq(new.address),
            sessions::device_hash.eq(new.device_digest),
            sessions::amr.eq(new.amr),
        ))
        .returning(sessions::all_columns)
        .get_result(&mut **tx)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => DbError::NotFound,
            other => other.into(),
        })
}

/// The live session with this token digest at `now`, joined with its user.
pub fn find_session(
    conn: &mut AnyConnection,
    token_digest: &[u8],
    now: i64,
    lifetimes: Lifetimes,
) -> Result<Option<(Session, User)>, DbError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_digest))
        .filter(lifetimes.live_at(now))
        .select((Session::as_select(), User::as_select()))
        .get_result(conn)
        .optional()?)
}

/// The live sessions of account `user_id` at `now`, the most recently used first.
pub fn live_sessions(
    conn: &mut AnyConnection,
    user_id: i32,
    now: i64,
    lifetimes: Lifetimes,
) -> Result<Vec<Session>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(lifetimes.live_at(now))
        .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
        .select(Session::as_select())
        .load(conn)?)
}

/// A session ended by its public id: its digest, and its device's (if it recorded one).
pub type EndedSession = (Vec<u8>, Option<Vec<u8>>);

/// Ends the live session of account `user_id` named `public_id` and returns its digest and its
/// device's; `None` when the account has no live session by that name (an unknown id, another
/// account's session, an expired one).
pub fn delete_session_by_public_id(
    tx: &mut Tx<'_>,
    user_id: i32,
    public_id: &str,
    now: i64,
    lifetimes: Lifetimes,
) -> Result<Option<EndedSession>, DbError> {
    let own = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::public_id.eq(public_id))
        .filter(lifetimes.live_at(now));
    let ended = diesel::delete(own)
        .returning((sessions::token_hash, sessions::device_hash))
        .get_result(&mut **tx)
        .optional()?;
    if ended.is_some() {
        tx.sessions_changed(user_id);
    }
    Ok(ended)
}

/// Deletes every session of account `user_id` but the one with the digest `keep` (none: every
/// one), live or past its limits: after a credential change nothing the old credential opened
/// may come back, even under longer lifetimes. Returns how many of them were live at `now` (the
/// devices the owner is told were logged out).
pub fn delete_sessions_of(
    tx: &mut Tx<'_>,
    user_id: i32,
    keep: Option<&[u8]>,
    now: i64,
    lifetimes: Lifetimes,
) -> Result<usize, DbError> {
    let others = || {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::token_hash.ne(keep.unwrap_or_default()))
    };
    let live: i64 = others()
        .filter(lifetimes.live_at(now))
        .count()
        .get_result(&mut **tx)?;
    if diesel::delete(others()).execute(&mut **tx)? > 0 {
        tx.sessions_changed(user_id);
    }
    Ok(usize::try_from(live).unwrap_or_default())
}

/// Records that the session with this token digest was used at `now`, unless a use within the
/// last [`TOUCH_AFTER_SECS`] is recorded already: two instances touching one session at once
/// then write it once, and the second finds nothing to do instead of a row to fight over.
pub fn touch_session(tx: &mut Tx<'_>, token_digest: &[u8], now: i64) -> Result<(), DbError> {
    let touched = diesel::update(sessions::table.find(token_digest))
        .filter(sessions::last_seen_at.le(now - TOUCH_AFTER_SECS))
        .set(sessions::last_seen_at.eq(now))
        .execute(&mut **tx)?;
    if touched > 0 {
        tx.session_touched(token_digest);
    }
    Ok(())
}

/// Deletes every session that is over at `now` and returns how many; forgets the revocations
/// older than an hour too, which every instance's session cache has long read.
pub fn delete_expired_sessions(
    tx: &mut Tx<'_>,
    now: i64,
    lifetimes: Lifetimes,
) -> Result<usize, DbError> {
    let expired = sessions::last_seen_at
        .le(now - lifetimes.idle)
        .or(sessions::created_at.le(now - lifetimes.absolute));
    let deleted = diesel::delete(sessions::table.filter(expired)).execute(&mut **tx)?;
    session_revocations::delete_before(tx, (now - 3600) * 1000)?;
    Ok(deleted)
}

/// Deletes the live session with this token digest and returns its user's id; `None` when there
/// was none (an expired one is left to the periodic purge).
pub fn delete_session(
    tx: &mut Tx<'_>,
    token_digest: &[u8],
    now: i64,
    lifetimes: Lifetimes,
) -> Result<Option<i32>, DbError> {
    let live = sessions::table
        .filter(sessions::token_hash.eq(token_digest))
        .filter(lifetimes.live_at(now));
    let ended = diesel::delete(live)
        .returning(sessions::user_id)
        .get_result(&mut **tx)
        .optional()?;
    if let Some(user_id) = ended {
        tx.sessions_changed(user_id);
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{
        ann_and_bob, in_db_with_user, in_temp_db, new_session, session, temp_db,
    };

    const LIFETIMES: Lifetimes = Lifetimes {
        idle: 100,
        absolute: 1000,
    };

    /// Sets a session's timestamps directly, as if time had passed.
    fn age(c: &mut Tx<'_>, digest: &[u8], created_at: i64, last_seen_at: i64) {
        diesel::update(sessions::table.find(digest))
            .set((
                sessions::created_at.eq(created_at),
                sessions::last_seen_at.eq(last_seen_at),
            ))
            .execute(&mut **c)
            .unwrap();
    }

    /// [`find_session`] of the session `[digest; 32]` at `at`.
    fn found(c: &mut Tx<'_>, digest: u8, at: i64) -> Option<(Session, User)> {
        find_session(c, &[digest; 32], at, LIFETIMES).unwrap()
    }

    #[test]
    fn a_session_is_found_with_its_user_until_deleted() {
        in_db_with_user(|c, user| {
            let session = session(c, user.id, &[1u8; 32]);
            assert_eq!(session.created_at, session.last_seen_at);

            assert_eq!(found(c, 1, now()), Some((session, user.clone())));
            assert_eq!(found(c, 2, now()), None);

            let deleted = delete_session(c, &[1u8; 32], now(), LIFETIMES).unwrap();
            assert_eq!(deleted, Some(user.id));
            assert_eq!(
                delete_session(c, &[1u8; 32], now(), LIFETIMES).unwrap(),
                None
            );
            assert_eq!(found(c, 1, now()), None);
            Ok(())
        });
    }

    #[test]
    fn deleting_one_session_keeps_the_others() {
        in_db_with_user(|c, user| {
            session(c, user.id, &[1u8; 32]);
            session(c, user.id, &[2u8; 32]);
            delete_session(c, &[1u8; 32], now(), LIFETIMES).unwrap();
            assert!(found(c, 2, now()).is_some());
            Ok(())
        });
    }

    #[test]
    fn a_session_for_a_missing_user_is_not_found() {
        let (db, _dir) = temp_db();
        assert!(matches!(
            db.write_blocking(|tx| add_session(tx, &new_session(99, &[1u8; 32]))),
            Err(DbError::NotFound)
        ));
    }

    #[test]
    fn a_session_idle_or_old_too_long_is_absent_and_purged() {
        in_db_with_user(|c, user| {
            let t = now();
            let fresh = session(c, user.id, &[1u8; 32]);
            let idle = session(c, user.id, &[2u8; 32]);
            let old = session(c, user.id, &[3u8; 32]);
            age(c, &fresh.token_hash, t - 999, t - 99);
            age(c, &idle.token_hash, t - 200, t - 100);
            age(c, &old.token_hash, t - 1000, t);

            assert!(found(c, 1, t).is_some(), "fresh");
            assert_eq!(found(c, 2, t), None, "idle");
            assert_eq!(found(c, 3, t), None, "old");

            assert_eq!(delete_expired_sessions(c, t, LIFETIMES).unwrap(), 2);
            assert!(found(c, 1, t).is_some(), "fresh, after the purge");
            Ok(())
        });
    }

    #[test]
    fn an_accounts_sessions_are_listed_and_ended_by_their_public_id_only_for_it() {
        in_temp_db(|c| {
            let (ann, bob) = ann_and_bob(c)?;
            let t = now();
            session(c, ann.id, &[1u8; 32]);
            session(c, ann.id, &[2u8; 32]);
            session(c, bob.id, &[3u8; 32]);
            age(c, &[1u8; 32], t - 10, t - 5);
            let listed: Vec<String> = live_sessions(c, ann.id, t, LIFETIMES)?
                .into_iter()
                .map(|s| s.public_id)
                .collect();
            assert_eq!(listed, ["s2", "s1"], "the most recently used first");
            let end = |c: &mut Tx<'_>, id| delete_session_by_public_id(c, ann.id, id, t, LIFETIMES);
            assert_eq!(end(c, "s3")?, None, "Bob's");
            assert_eq!(end(c, "s1")?, Some((vec![1u8; 32], None)));
            assert_eq!(end(c, "s1")?, None, "gone");
            session(c, ann.id, &[4u8; 32]);
            assert_eq!(
                delete_sessions_of(c, ann.id, Some(&[4u8; 32]), t, LIFETIMES)?,
                1
            );
            assert_eq!(
                live_sessions(c, ann.id, t, LIFETIMES)?.len(),
                1,
                "the one kept"
            );
            assert_eq!(delete_sessions_of(c, ann.id, None, t, LIFETIMES)?, 1);
            assert_eq!(
                live_sessions(c, bob.id, t, LIFETIMES)?.len(),
                1,
                "Bob's untouched"
            );
            Ok(())
        });
    }

    #[test]
    fn touching_a_session_extends_its_idle_life() {
        in_db_with_user(|c, user| {
            let t = now();
            let session = session(c, user.id, &[1u8; 32]);
            age(c, &session.token_hash, t - 150, t - 90);
            touch_session(c, &session.token_hash, t).unwrap();
            let (touched, _) = found(c, 1, t + 50).unwrap();
            assert_eq!(touched.last_seen_at, t);
            touch_session(c, &session.token_hash, t + TOUCH_AFTER_SECS - 1).unwrap();
            let (again, _) = found(c, 1, t + 50).unwrap();
            assert_eq!(
                again.last_seen_at, t,
                "a use recorded within the interval stays"
            );
            Ok(())
        });
    }
}
