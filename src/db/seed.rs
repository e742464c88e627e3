//! Bulk seeding for benchmarks: many users and sessions in a few statements, with one
//! precomputed password hash (registering a million users through bcrypt would take days).

use diesel::prelude::*;

use super::schema::{sessions, users};
use super::{AnyConnection, DbError, Tx, now};

/// Rows per INSERT, under SQLite's limit of 32,766 bound parameters.
const BATCH: usize = 5_000;

/// Adds users `first..first + count` (email `user{i}@bench.test`, password hash `hash`), each
/// with one session whose token digest is `session_digest(i)`, created now and last used
/// `seen_ago` seconds ago (60 or more: due its touch), in the caller's transaction.
pub fn seed_users(
    tx: &mut Tx<'_>,
    first: usize,
    count: usize,
    hash: &str,
    session_digest: impl Fn(usize) -> [u8; 32],
    seen_ago: i64,
) -> Result<(), DbError> {
    let at = now();
    let conn: &mut AnyConnection = tx;
    for start in (first..first + count).step_by(BATCH) {
        let end = (start + BATCH).min(first + count);
        let emails: Vec<String> = (start..end)
            .map(|i| format!("user{i}@bench.test"))
            .collect();
        let new_users: Vec<_> = emails
            .iter()
            .map(|email| {
                (
                    users::email.eq(email),
                    users::hashed_password.eq(hash),
                    users::created_at.eq(at),
                    users::email_verified_at.eq(at),
                )
            })
            .collect();
        let ids: Vec<i32> = on_each_backend!(&mut *conn, |inner| {
            diesel::insert_into(users::table)
                .values(&new_users)
                .returning(users::id)
                .get_results(inner)?
        });
        let digests: Vec<[u8; 32]> = (start..end).map(&session_digest).collect();
        let public_ids: Vec<String> = (start..end).map(|i| format!("bench-{i}")).collect();
        let new_sessions: Vec<_> = ids
            .iter()
            .zip(digests.iter().zip(&public_ids))
            .map(|(id, (digest, public_id))| {
                (
                    sessions::token_hash.eq(&digest[..]),
                    sessions::user_id.eq(*id),
                    sessions::created_at.eq(at),
                    sessions::last_seen_at.eq(at - seen_ago),
                    sessions::public_id.eq(public_id),
                )
            })
            .collect();
        on_each_backend!(&mut *conn, |inner| {
            diesel::insert_into(sessions::table)
                .values(&new_sessions)
                .execute(inner)?
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::{Lifetimes, find_session};
    use crate::db::testing::{conn, temp_db, write};
    use crate::db::users::find_user_by_email;

    #[test]
    fn seeded_users_have_their_sessions() {
        let (db, _dir) = temp_db();
        let digest = |i: usize| {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            digest
        };
        write(&db, |tx| seed_users(tx, 0, 7_000, "hash", digest, 30));
        let mut c = conn(&db);
        let c = &mut **c;
        let user = find_user_by_email(c, "user6999@bench.test")
            .unwrap()
            .unwrap();
        let lifetimes = Lifetimes {
            idle: 60,
            absolute: 60,
        };
        let (session, owner) = find_session(c, &digest(6999), now(), lifetimes)
            .unwrap()
            .unwrap();
        assert_eq!((owner.id, user.hashed_password.as_str()), (user.id, "hash"));
        assert_eq!(session.created_at - session.last_seen_at, 30);
    }
}
