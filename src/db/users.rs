//! The `users` table: the original service's `DB` class (add, find, update a user).

use diesel::dsl;
use diesel::prelude::*;
use diesel::query_builder::AsChangeset;
use diesel::query_dsl::LoadQuery;

use super::schema::users;
use super::{AnyConnection, DbError, Tx, now};

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct User {
    pub id: i32,
    pub email: String,
    pub hashed_password: String,
    pub created_at: i64,
    /// When the account's email was shown to reach its owner (a verification link opened).
    pub email_verified_at: Option<i64>,
    /// Counts the changes of the account's credentials ([`advance_credential_version`]); a
    /// mailed link works only under the version it was issued with.
    pub credential_version: i32,
    /// When the operator disabled it (`None`: it may sign in).
    pub disabled_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    email: &'a str,
    hashed_password: &'a str,
    created_at: i64,
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

/// Sets user `id`'s password hash; a missing user is [`DbError::NotFound`].
pub fn set_password_hash(tx: &mut Tx<'_>, id: i32, hashed_password: &str) -> Result<User, DbError> {
    update_account(tx, id, users::hashed_password.eq(hashed_password))?.ok_or(DbError::NotFound)
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
    if changed == 1 && old != new {
        tx.sessions_changed(id);
    }
    Ok(changed == 1)
}

/// Marks the account's email verified at `at`.
pub fn mark_email_verified(tx: &mut Tx<'_>, id: i32, at: i64) -> Result<User, DbError> {
    update_account(tx, id, users::email_verified_at.eq(at))?.ok_or(DbError::NotFound)
}

/// Moves account `id` to `new_email` (verified at `at`: the change was confirmed from it), in
/// one update: the unique index decides between two changes to one address
/// ([`DbError::EmailTaken`]).
pub fn change_email(tx: &mut Tx<'_>, id: i32, new_email: &str, at: i64) -> Result<User, DbError> {
    let changes = (users::email.eq(new_email), users::email_verified_at.eq(at));
    update_account(tx, id, changes)?.ok_or(DbError::NotFound)
}

/// An update of one account by `C`, returning the account's row.
type UpdateAccount<C> = dsl::Returning<
    dsl::Update<dsl::Find<users::table, i32>, C>,
    <users::table as Table>::AllColumns,
>;

/// Applies `changes` to account `id` and returns the account as changed (`None`: no such
/// account): what the updates that answer with the account share. The only unique column
/// they set is the email, hence [`DbError::EmailTaken`] for a unique violation.
fn update_account<'q, C>(tx: &mut Tx<'_>, id: i32, changes: C) -> Result<Option<User>, DbError>
where
    C: AsChangeset<Target = users::table>,
    UpdateAccount<C>: LoadQuery<'q, AnyConnection, User>,
{
    let updated = diesel::update(users::table.find(id))
        .set(changes)
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .optional()
        .map_err(|e| DbError::unique_as(e, DbError::EmailTaken))?;
    if updated.is_some() {
        tx.sessions_changed(id);
    }
    Ok(updated)
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

/// Locks the account with the (normalized) `email` until the transaction ends, and returns it
/// as read under the lock; `None` when no account has that email, or when its owner moved it to
/// another before the lock was granted. A link mailed to an address is issued under this lock,
/// so a change of email that commits meanwhile leaves no live link for the old address.
pub fn lock_account_by_email(tx: &mut Tx<'_>, email: &str) -> Result<Option<User>, DbError> {
    Ok(diesel::update(users::table.filter(users::email.eq(email)))
        .set(users::credential_version.eq(users::credential_version))
        .returning(users::all_columns)
        .get_result(&mut **tx)
        .optional()?)
}

/// Disables the account `id` at `at`, or enables it (`None`); `false` when no such account.
pub fn set_disabled(tx: &mut Tx<'_>, id: i32, at: Option<i64>) -> Result<bool, DbError> {
    let updated = diesel::update(users::table.find(id))
        .set(users::disabled_at.eq(at))
        .execute(&mut **tx)?;
    if updated == 1 {
        tx.sessions_changed(id);
    }
    Ok(updated == 1)
}

/// Whether the account `id` is disabled (or gone).
pub fn is_disabled(conn: &mut AnyConnection, id: i32) -> Result<bool, DbError> {
    let found: Option<Option<i64>> = users::table
        .find(id)
        .select(users::disabled_at)
        .first(conn)
        .optional()?;
    Ok(found.is_none_or(|at| at.is_some()))
}

/// Moves account `id`'s credential version on: every mailed link issued under the old one stops
/// working, including one issued in a transaction that raced this one.
pub fn advance_credential_version(tx: &mut Tx<'_>, id: i32) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set(users::credential_version.eq(users::credential_version + 1))
        .execute(&mut **tx)?;
    tx.sessions_changed(id);
    Ok(())
}

/// Deletes account `id`; its sessions, devices and tokens go with it (foreign keys cascade).
/// `false` when there was no such account.
pub fn delete_user(tx: &mut Tx<'_>, id: i32) -> Result<bool, DbError> {
    let deleted = diesel::delete(users::table.find(id)).execute(&mut **tx)? == 1;
    if deleted {
        tx.sessions_changed(id);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::{Lifetimes, find_session};
    use crate::db::testing::{
        conn, db_with_user, in_db_with_user, in_temp_db, session, temp_db, write,
    };

    const LIFETIMES: Lifetimes = Lifetimes {
        idle: 3600,
        absolute: 86400,
    };

    #[test]
    fn an_added_user_is_found_by_id_and_email() {
        let (db, _dir, user) = db_with_user();
        assert_eq!(user.email, "a@b.com");
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
    fn a_password_hash_is_replaced_only_while_it_is_the_stored_one() {
        in_temp_db(|c| {
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
        in_db_with_user(|c, user| {
            session(c, user.id, &[3u8; 32]);
            diesel::delete(users::table.find(user.id))
                .execute(&mut **c)
                .unwrap();
            assert_eq!(find_session(c, &[3u8; 32], now(), LIFETIMES).unwrap(), None);
            Ok(())
        });
    }

    #[test]
    fn setting_a_password_hash_changes_only_the_hash() {
        let (db, _dir) = temp_db();
        let user = write(&db, |tx| add_user(tx, "a@b.com", "old"));
        let updated = write(&db, |tx| set_password_hash(tx, user.id, "new"));
        assert_eq!(
            updated,
            User {
                hashed_password: "new".into(),
                ..user.clone()
            }
        );
        assert_eq!(
            find_user_by_id(&mut conn(&db), user.id).unwrap(),
            Some(updated)
        );
    }

    #[test]
    fn setting_the_hash_of_a_missing_user_is_not_found() {
        let (db, _dir) = temp_db();
        assert!(matches!(
            db.write_blocking(|tx| set_password_hash(tx, 42, "x")),
            Err(DbError::NotFound)
        ));
    }

    #[test]
    fn disabling_an_account_is_stored_and_undone_and_a_missing_one_counts_as_disabled() {
        let (db, _dir, user) = db_with_user();
        assert!(!is_disabled(&mut conn(&db), user.id).unwrap());
        assert!(write(&db, |tx| set_disabled(tx, user.id, Some(7))));
        assert!(is_disabled(&mut conn(&db), user.id).unwrap());
        let stored = find_user_by_id(&mut conn(&db), user.id).unwrap().unwrap();
        assert_eq!(stored.disabled_at, Some(7));
        assert!(write(&db, |tx| set_disabled(tx, user.id, None)));
        assert!(!is_disabled(&mut conn(&db), user.id).unwrap());
        assert!(!write(&db, |tx| set_disabled(tx, user.id + 1, None)));
        assert!(is_disabled(&mut conn(&db), user.id + 1).unwrap());
    }

    #[test]
    fn advancing_the_credential_version_changes_nothing_else() {
        let (db, _dir, user) = db_with_user();
        write(&db, |tx| advance_credential_version(tx, user.id));
        let stored = find_user_by_id(&mut conn(&db), user.id).unwrap().unwrap();
        assert_eq!(
            stored,
            User {
                credential_version: user.credential_version + 1,
                ..user
            }
        );
    }
}
