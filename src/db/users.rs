//! The `users` table: the original service's `DB` class (add, find, update a user).

use diesel::prelude::*;

use super::schema::{sessions, users};
use super::{AnyConnection, DbError, Tx, account_tokens, devices, now};

/// An account as stored. `reset_token` is a SHA-256 digest, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct User {
    pub id: i32,
    pub email: String,
    pub hashed_password: String,
    pub reset_token: Option<Vec<u8>>,
    pub created_at: i64,
    pub reset_token_expires_at: Option<i64>,
    /// When the account's email was shown to reach its owner (a verification link opened).
    pub email_verified_at: Option<i64>,
    /// Counts the changes of the account's credentials ([`revoke_derived_trust`]); a mailed
    /// link works only under the version it was issued with.
    pub credential_version: i32,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    email: &'a str,
    hashed_password: &'a str,
    created_at: i64,
}

/// A typed partial update: `None` leaves a column alone; `reset_token: Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges<'a> {
    pub hashed_password: Option<&'a str>,
    pub reset_token: Option<Option<&'a [u8]>>,
    pub reset_token_expires_at: Option<Option<i64>>,
}

/// Adds a user; an email already present is [`DbError::EmailTaken`] (the unique index decides,
/// so two concurrent registrations of one email create exactly one row).
pub fn add_user(tx: &mut Tx<'_>, email: &str, hashed_password: &str) -> Result<User, DbError> {
    diesel::insert_into(users::table)
        .values(NewUser {
            email,
            hashed_password,
            created_at: now(),
        })
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .map_err(|e| DbError::unique_as(e, DbError::EmailTaken))
}

pub fn find_user_by_id(conn: &mut AnyConnection, id: i32) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// `email` must already be normalized (see `auth::Email`).
pub fn find_user_by_email(conn: &mut AnyConnection, email: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// The holder of an unexpired reset token (expired tokens are as good as absent).
pub fn find_user_by_reset_token(
    conn: &mut AnyConnection,
    token_digest: &[u8],
    now: i64,
) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::reset_token.eq(token_digest))
        .filter(users::reset_token_expires_at.gt(now))
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// Applies `changes` to user `id`; a missing user is [`DbError::NotFound`].
pub fn update_user(tx: &mut Tx<'_>, id: i32, changes: &UserChanges<'_>) -> Result<User, DbError> {
    diesel::update(users::table.find(id))
        .set(changes)
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// Replaces user `id`'s password hash `old` with `new`, provided `old` is still the stored one;
/// `false` when it no longer is (the password was changed meanwhile).
pub fn replace_password_hash(
    tx: &mut Tx<'_>,
    id: i32,
    old: &str,
    new: &str,
) -> Result<bool, DbError> {
    let current = users::table.find(id).filter(users::hashed_password.eq(old));
    let changed = diesel::update(current)
        .set(users::hashed_password.eq(new))
        .execute(&mut **tx)?;
    Ok(changed == 1)
}

/// Gives the account `email` the reset token `token_digest`, valid until `expires_at`,
/// replacing any earlier one; `None` when no account has that email.
pub fn issue_reset_token(
    tx: &mut Tx<'_>,
    email: &str,
    token_digest: &[u8],
    expires_at: i64,
) -> Result<Option<User>, DbError> {
    Ok(diesel::update(users::table.filter(users::email.eq(email)))
        .set((
            users::reset_token.eq(token_digest),
            users::reset_token_expires_at.eq(expires_at),
        ))
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .optional()?)
}

/// Spends a reset token: sets the password of the account `email` if `token_digest` is its
/// current, unexpired reset token, clears the token, deletes every session of the account and
/// marks its email verified, in the caller's transaction.
///
/// The token is consumed by a single `UPDATE … RETURNING`, so of two concurrent calls with the
/// same token at most one gets `Some`. `None` means the token is not (or no longer) valid.
pub fn spend_reset_token(
    tx: &mut Tx<'_>,
    email: &str,
    token_digest: &[u8],
    hashed_password: &str,
    now: i64,
) -> Result<Option<User>, DbError> {
    let conn: &mut AnyConnection = tx;
    let user: Option<User> = diesel::update(
        users::table
            .filter(users::email.eq(email))
            .filter(users::reset_token.eq(token_digest))
            .filter(users::reset_token_expires_at.gt(now)),
    )
    .set((
        users::hashed_password.eq(hashed_password),
        users::reset_token.eq(None::<Vec<u8>>),
        users::reset_token_expires_at.eq(None::<i64>),
    ))
    .returning(users::all_columns)
    .get_result(conn)
    .optional()?;
    let Some(mut user) = user else {
        return Ok(None);
    };
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user.id))).execute(conn)?;
    if user.email_verified_at.is_none() {
        // The link was opened from the account's mailbox: that verifies the address too.
        mark_email_verified(tx, user.id, now)?;
        user.email_verified_at = Some(now);
    }
    Ok(Some(user))
}

/// Marks the account's email verified at `at`.
pub fn mark_email_verified(tx: &mut Tx<'_>, id: i32, at: i64) -> Result<User, DbError> {
    diesel::update(users::table.find(id))
        .set(users::email_verified_at.eq(at))
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// Moves account `id` to `new_email` (verified at `at`: the change was confirmed from it) and
/// voids its reset token, in one update: the unique index decides between two changes to one
/// address ([`DbError::EmailTaken`]).
pub fn change_email(tx: &mut Tx<'_>, id: i32, new_email: &str, at: i64) -> Result<User, DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(new_email),
            users::email_verified_at.eq(at),
            users::reset_token.eq(None::<Vec<u8>>),
            users::reset_token_expires_at.eq(None::<i64>),
        ))
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .optional()
        .map_err(|e| DbError::unique_as(e, DbError::EmailTaken))?
        .ok_or(DbError::NotFound)
}

/// Locks account `id`'s row until the transaction ends (a write that changes nothing) and
/// returns its credential version, read under the lock (`None`: no such account). Every transaction that changes what
/// hangs off an account (its credential, sessions, devices, links) locks the account's row
/// first, so two of them on one account take turns instead of deadlocking on PostgreSQL.
pub fn lock_account(tx: &mut Tx<'_>, id: i32) -> Result<Option<i32>, DbError> {
    Ok(diesel::update(users::table.find(id))
        .set(users::credential_version.eq(users::credential_version))
        .returning(users::credential_version)
        .get_result(&mut **tx)
        .optional()?)
}

/// Ends what was derived from account `id`'s credentials, in the transaction that changes them
/// (a new password, a reset, an operator's, "log out other devices"): every mailed link (reset,
/// verification, email change) and the trust of every device but `keep_device`. The credential
/// version moves on, so a link issued under the old one in a transaction that raced this one
/// fails too. Sessions are the caller's to end (some keep the caller's).
pub fn revoke_derived_trust(
    tx: &mut Tx<'_>,
    id: i32,
    keep_device: Option<&[u8]>,
) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::credential_version.eq(users::credential_version + 1),
            users::reset_token.eq(None::<Vec<u8>>),
            users::reset_token_expires_at.eq(None::<i64>),
        ))
        .execute(&mut **tx)?;
    account_tokens::delete_all_of_user(tx, id)?;
    devices::delete_devices_of(tx, id, keep_device)?;
    Ok(())
}

/// Deletes account `id`; its sessions, devices and tokens go with it (foreign keys cascade).
/// `false` when there was no such account.
pub fn delete_user(tx: &mut Tx<'_>, id: i32) -> Result<bool, DbError> {
    Ok(diesel::delete(users::table.find(id)).execute(&mut **tx)? == 1)
}

/// Clears reset tokens that expired before `now`; returns how many.
pub fn clear_expired_reset_tokens(tx: &mut Tx<'_>, now: i64) -> Result<usize, DbError> {
    Ok(
        diesel::update(users::table.filter(users::reset_token_expires_at.le(now)))
            .set((
                users::reset_token.eq(None::<Vec<u8>>),
                users::reset_token_expires_at.eq(None::<i64>),
            ))
            .execute(&mut **tx)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::{Lifetimes, find_session};
    use crate::db::testing::{conn, session, temp_db, write};

    const LIFETIMES: Lifetimes = Lifetimes {
        idle: 3600,
        absolute: 86400,
    };

    /// Gives the account `email` the reset token `digest`, valid for an hour.
    fn give_reset_token(c: &mut Tx<'_>, email: &str, digest: &[u8]) {
        let issued = issue_reset_token(c, email, digest, now() + 3600).unwrap();
        assert!(issued.is_some());
    }

    #[test]
    fn an_added_user_is_found_by_id_and_email() {
        let (db, _dir) = temp_db();
        let user = write(&db, |tx| add_user(tx, "a@b.com", "hash"));
        assert_eq!(user.email, "a@b.com");
        assert_eq!(user.reset_token, None);
        let mut c = conn(&db);
        let c = &mut **c;
        assert_eq!(find_user_by_id(c, user.id).unwrap(), Some(user.clone()));
        assert_eq!(find_user_by_email(c, "a@b.com").unwrap(), Some(user));
        assert_eq!(find_user_by_email(c, "x@b.com").unwrap(), None);
    }

    #[test]
    fn a_second_user_with_the_same_email_is_email_taken() {
        let (db, _dir) = temp_db();
        write(&db, |tx| add_user(tx, "a@b.com", "one"));
        assert!(matches!(
            db.write_blocking(|tx| add_user(tx, "a@b.com", "two")),
            Err(DbError::EmailTaken)
        ));
        let kept = find_user_by_email(&mut conn(&db), "a@b.com")
            .unwrap()
            .unwrap();
        assert_eq!(kept.hashed_password, "one");
    }

    #[test]
    fn concurrent_inserts_of_one_email_create_one_row() {
        let (db, _dir) = temp_db();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let results: Vec<_> = (0..6)
            .map(|i| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    db.write_blocking(|tx| add_user(tx, "race@b.com", &format!("hash{i}")))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(
            results
                .iter()
                .filter(|r| r.is_err())
                .all(|r| matches!(r, Err(DbError::EmailTaken)))
        );
        let count: i64 = users::table.count().get_result(&mut **conn(&db)).unwrap();
        assert_eq!(count, 1);
    }

    #[test]
    fn update_user_changes_only_the_named_fields() {
        let (db, _dir) = temp_db();
        let mut c = conn(&db);
        let c = &mut **c;
        let user = write(&db, |tx| add_user(tx, "a@b.com", "old"));
        let digest = [7u8; 32];
        let changes = UserChanges {
            reset_token: Some(Some(&digest)),
            reset_token_expires_at: Some(Some(now() + 60)),
            ..Default::default()
        };
        let updated = write(&db, |tx| update_user(tx, user.id, &changes));
        assert_eq!(updated.hashed_password, "old");
        assert_eq!(updated.reset_token.as_deref(), Some(&digest[..]));
        assert_eq!(
            find_user_by_reset_token(c, &digest, now())
                .unwrap()
                .map(|u| u.id),
            Some(user.id)
        );

        let cleared = UserChanges {
            reset_token: Some(None),
            hashed_password: Some("new"),
            ..Default::default()
        };
        let updated = write(&db, |tx| update_user(tx, user.id, &cleared));
        assert_eq!(
            (updated.hashed_password.as_str(), updated.reset_token),
            ("new", None)
        );
    }

    #[test]
    fn updating_a_missing_user_is_not_found() {
        let (db, _dir) = temp_db();
        let changes = UserChanges {
            hashed_password: Some("x"),
            ..Default::default()
        };
        assert!(matches!(
            db.write_blocking(|tx| update_user(tx, 42, &changes)),
            Err(DbError::NotFound)
        ));
    }

    #[test]
    fn spending_a_reset_token_works_once_and_ends_every_session() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            let user = add_user(c, "a@b.com", "old").unwrap();
            let digest = [9u8; 32];
            give_reset_token(c, "a@b.com", &digest);
            session(c, user.id, &[1u8; 32]);
            session(c, user.id, &[2u8; 32]);

            let t = now();
            assert_eq!(
                spend_reset_token(c, "x@b.com", &digest, "new", t).unwrap(),
                None
            );
            let done = spend_reset_token(c, "a@b.com", &digest, "new", t)
                .unwrap()
                .unwrap();
            assert_eq!(
                (done.hashed_password.as_str(), done.reset_token),
                ("new", None)
            );
            assert_eq!(done.reset_token_expires_at, None);
            assert_eq!(find_session(c, &[1u8; 32], t, LIFETIMES).unwrap(), None);
            assert_eq!(find_session(c, &[2u8; 32], t, LIFETIMES).unwrap(), None);
            assert_eq!(
                spend_reset_token(c, "a@b.com", &digest, "newer", t).unwrap(),
                None
            );
            let stored = find_user_by_id(c, user.id).unwrap().unwrap();
            assert_eq!(stored.hashed_password, "new");
            Ok(())
        });
    }

    #[test]
    fn racing_resets_with_one_token_succeed_once() {
        let (db, _dir) = temp_db();
        let digest = [5u8; 32];
        write(&db, |tx| {
            add_user(tx, "a@b.com", "old")?;
            give_reset_token(tx, "a@b.com", &digest);
            Ok(())
        });
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let wins = (0..6)
            .map(|i| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let new = format!("new{i}");
                    write(&db, |tx| {
                        spend_reset_token(tx, "a@b.com", &digest, &new, now())
                    })
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .count();
        assert_eq!(wins, 1);
    }

    #[test]
    fn a_reset_token_is_issued_only_to_an_existing_account_and_replaces_the_last() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            let user = add_user(c, "a@b.com", "h")?;
            let at = now() + 60;
            assert_eq!(issue_reset_token(c, "x@b.com", &[1u8; 32], at)?, None);
            let issued = issue_reset_token(c, "a@b.com", &[1u8; 32], at)?.unwrap();
            assert_eq!(
                (issued.id, issued.reset_token_expires_at),
                (user.id, Some(at))
            );
            issue_reset_token(c, "a@b.com", &[2u8; 32], at)?;
            assert_eq!(find_user_by_reset_token(c, &[1u8; 32], now())?, None);
            assert_eq!(
                find_user_by_reset_token(c, &[2u8; 32], now())?.unwrap().id,
                user.id
            );
            Ok(())
        });
    }

    #[test]
    fn a_password_hash_is_replaced_only_while_it_is_the_stored_one() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            let user = add_user(c, "a@b.com", "old")?;
            assert!(!replace_password_hash(c, user.id, "other", "new")?);
            assert!(replace_password_hash(c, user.id, "old", "new")?);
            assert!(!replace_password_hash(c, user.id, "old", "newer")?);
            assert_eq!(find_user_by_id(c, user.id)?.unwrap().hashed_password, "new");
            Ok(())
        });
    }

    #[test]
    fn deleting_a_user_deletes_their_sessions() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            let user = add_user(c, "a@b.com", "h").unwrap();
            session(c, user.id, &[3u8; 32]);
            diesel::delete(users::table.find(user.id))
                .execute(&mut **c)
                .unwrap();
            assert_eq!(find_session(c, &[3u8; 32], now(), LIFETIMES).unwrap(), None);
            Ok(())
        });
    }

    #[test]
    fn an_expired_reset_token_neither_finds_nor_resets_and_is_cleared() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            let user = add_user(c, "a@b.com", "old").unwrap();
            let digest = [4u8; 32];
            give_reset_token(c, "a@b.com", &digest);
            let later = now() + 3600;
            assert_eq!(find_user_by_reset_token(c, &digest, later).unwrap(), None);
            assert_eq!(
                spend_reset_token(c, "a@b.com", &digest, "new", later).unwrap(),
                None
            );
            assert_eq!(clear_expired_reset_tokens(c, later - 1).unwrap(), 0);
            assert_eq!(clear_expired_reset_tokens(c, later).unwrap(), 1);
            let stored = find_user_by_id(c, user.id).unwrap().unwrap();
            assert_eq!(
                (stored.reset_token, stored.hashed_password.as_str()),
                (None, "old")
            );
            Ok(())
        });
    }
}
