//! The `account_tokens` table: single-use tokens mailed to an account's owner, stored as their
//! SHA-256. A `reset` token sets a new password; a `verify` token proves the account's email;
//! an `email` token proves a new address (`new_email`) before the account moves to it. One live token per purpose and account (a
//! unique index): a new one replaces the last. A token records the account's credential version
//! it was issued under and works only while that is still the account's.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::{account_tokens, users};
use super::{AnyConnection, DbError, Tx, User};

/// What a token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The owner may set a new password without the old one.
    Reset,
    /// The account's email reaches its owner.
    Verify,
    /// The owner reaches `new_email`, the address the account will move to.
    Email,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Verify => "verify",
            Purpose::Email => "email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = account_tokens, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct AccountToken {
    pub token_hash: Vec<u8>,
    pub user_id: i32,
    pub purpose: String,
    pub new_email: Option<String>,
    pub expires_at: i64,
    /// The account's credential version when the token was issued.
    pub credential_version: i32,
}

/// A token to issue.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub user_id: i32,
    pub purpose: Purpose,
    pub token_digest: &'a [u8],
    /// The address it proves, for [`Purpose::Email`].
    pub new_email: Option<&'a str>,
    pub expires_at: i64,
    /// The account's credential version as the issuer read it (before it checked a password,
    /// where it did): a change of credentials since then voids the token.
    pub credential_version: i32,
}

/// Issues `new`: the account's earlier token of that purpose stops working. One upsert on the
/// unique (account, purpose) index, so two concurrent issues leave one live token.
pub fn issue(tx: &mut Tx<'_>, new: &NewToken<'_>) -> Result<(), DbError> {
    let row = (
        account_tokens::token_hash.eq(new.token_digest),
        account_tokens::user_id.eq(new.user_id),
        account_tokens::purpose.eq(new.purpose.name()),
        account_tokens::new_email.eq(new.new_email),
        account_tokens::expires_at.eq(new.expires_at),
        account_tokens::credential_version.eq(new.credential_version),
    );
    on_each_backend!(&mut **tx, |inner| {
        diesel::insert_into(account_tokens::table)
            .values(row)
            .on_conflict((account_tokens::user_id, account_tokens::purpose))
            .do_update()
            .set((
                account_tokens::token_hash.eq(excluded(account_tokens::token_hash)),
                account_tokens::new_email.eq(excluded(account_tokens::new_email)),
                account_tokens::expires_at.eq(excluded(account_tokens::expires_at)),
                account_tokens::credential_version.eq(excluded(account_tokens::credential_version)),
            ))
            .execute(inner)?
    });
    Ok(())
}

/// The SQL condition "this is the token `token_digest` for `purpose`, unexpired at `now`"
/// (whether its credential version is still the account's is the caller's to add).
#[diesel::dsl::auto_type]
fn unexpired<'a>(token_digest: &'a [u8], purpose: &'a str, now: i64) -> _ {
    account_tokens::token_hash
        .eq(token_digest)
        .and(account_tokens::purpose.eq(purpose))
        .and(account_tokens::expires_at.gt(now))
}

/// The live token `token_digest` for `purpose` and its account, without spending it; a token
/// issued under another credential version than the account's is not live.
pub fn find(
    conn: &mut AnyConnection,
    token_digest: &[u8],
    purpose: Purpose,
    now: i64,
) -> Result<Option<(AccountToken, User)>, DbError> {
    Ok(account_tokens::table
        .inner_join(users::table)
        .filter(unexpired(token_digest, purpose.name(), now))
        .filter(account_tokens::credential_version.eq(users::credential_version))
        .select((AccountToken::as_select(), User::as_select()))
        .get_result(conn)
        .optional()?)
}

/// Spends the live token `token_digest` for `purpose`: one `DELETE … RETURNING`, so of two
/// concurrent uses at most one gets it. `None`: not (or no longer) a valid token, including one
/// issued under another credential version than the account's.
///
/// The account's row is locked first ([`super::users::lock_account`]), as every credential
/// change locks it before it voids the account's tokens: the two take turns (no deadlock on
/// PostgreSQL), and the version compared is read under the lock, so a change that commits
/// first voids the token and one that waits comes after the spend.
pub fn spend(
    tx: &mut Tx<'_>,
    token_digest: &[u8],
    purpose: Purpose,
    now: i64,
) -> Result<Option<AccountToken>, DbError> {
    let live = || account_tokens::table.filter(unexpired(token_digest, purpose.name(), now));
    let owner: Option<i32> = live()
        .select(account_tokens::user_id)
        .get_result(&mut **tx)
        .optional()?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    let Some(version) = super::users::lock_account(tx, owner)? else {
        return Ok(None);
    };
    let current = live().filter(account_tokens::credential_version.eq(version));
    Ok(diesel::delete(current)
        .returning(account_tokens::all_columns)
        .get_result(&mut **tx)
        .optional()?)
}

/// Voids every token of account `user_id` for `purpose`; returns how many.
pub fn delete_of_user(tx: &mut Tx<'_>, user_id: i32, purpose: Purpose) -> Result<usize, DbError> {
    let of_user = account_tokens::table
        .filter(account_tokens::user_id.eq(user_id))
        .filter(account_tokens::purpose.eq(purpose.name()));
    Ok(diesel::delete(of_user).execute(&mut **tx)?)
}

/// Voids every token of account `user_id`, whatever its purpose; returns how many.
pub fn delete_all_of_user(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, DbError> {
    let of_user = account_tokens::table.filter(account_tokens::user_id.eq(user_id));
    Ok(diesel::delete(of_user).execute(&mut **tx)?)
}

/// Deletes the tokens of `purposes` that expired before `now`; returns how many.
pub fn delete_expired(tx: &mut Tx<'_>, now: i64, purposes: &[Purpose]) -> Result<usize, DbError> {
    let names: Vec<&str> = purposes.iter().map(|p| p.name()).collect();
    let expired = account_tokens::table
        .filter(account_tokens::expires_at.le(now))
        .filter(account_tokens::purpose.eq_any(names));
    Ok(diesel::delete(expired).execute(&mut **tx)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::db::testing::{conn, db_with_user, write};
    use crate::db::users::advance_credential_version;

    const ALL: [Purpose; 3] = [Purpose::Reset, Purpose::Verify, Purpose::Email];

    /// A token of `purpose` for `user_id`, issued under credential version 0.
    fn token<'a>(user_id: i32, purpose: Purpose, digest: &'a [u8; 32]) -> NewToken<'a> {
        NewToken {
            user_id,
            purpose,
            token_digest: digest,
            new_email: (purpose == Purpose::Email).then_some("n@b.com"),
            expires_at: 100,
            credential_version: 0,
        }
    }

    /// Issues `token(user_id, purpose, [digest; 32])`.
    fn issued(db: &Db, user_id: i32, purpose: Purpose, digest: u8) {
        write(db, |c| issue(c, &token(user_id, purpose, &[digest; 32])));
    }

    /// [`find`] of the token `[digest; 32]`.
    fn found(
        c: &mut AnyConnection,
        digest: u8,
        purpose: Purpose,
        now: i64,
    ) -> Option<(AccountToken, User)> {
        find(c, &[digest; 32], purpose, now).unwrap()
    }

    /// [`spend`] of the token `[digest; 32]`, committed.
    fn spent(db: &Db, digest: u8, purpose: Purpose, now: i64) -> Option<AccountToken> {
        write(db, |c| spend(c, &[digest; 32], purpose, now))
    }

    #[test]
    fn a_token_works_once_for_its_purpose_until_it_expires() {
        let (db, _dir, user) = db_with_user();
        issued(&db, user.id, Purpose::Email, 1);
        let mut held = conn(&db);
        let c = &mut **held;
        assert_eq!(found(c, 1, Purpose::Verify, 50), None, "another purpose");
        assert_eq!(found(c, 1, Purpose::Email, 100), None, "expired");
        let (token, owner) = found(c, 1, Purpose::Email, 50).unwrap();
        assert_eq!(
            (token.new_email.as_deref(), owner.id),
            (Some("n@b.com"), user.id)
        );
        let spent_once = spent(&db, 1, Purpose::Email, 50);
        assert_eq!(spent_once.map(|t| t.user_id), Some(user.id));
        assert_eq!(spent(&db, 1, Purpose::Email, 50), None, "once");
    }

    #[test]
    fn a_new_token_replaces_the_last_of_its_purpose_only() {
        let (db, _dir, user) = db_with_user();
        issued(&db, user.id, Purpose::Verify, 1);
        issued(&db, user.id, Purpose::Email, 2);
        issued(&db, user.id, Purpose::Verify, 3);
        let mut held = conn(&db);
        let c = &mut **held;
        assert_eq!(found(c, 1, Purpose::Verify, 50), None);
        assert!(found(c, 2, Purpose::Email, 50).is_some());
        assert!(found(c, 3, Purpose::Verify, 50).is_some());
        assert_eq!(write(&db, |c| delete_expired(c, 100, &ALL)), 2);
    }

    #[test]
    fn the_index_holds_one_token_per_account_and_purpose() {
        let (db, _dir, user) = db_with_user();
        issued(&db, user.id, Purpose::Verify, 1);
        let duplicate = db.write_blocking(|tx| {
            let row = (
                account_tokens::token_hash.eq(&[2u8; 32][..]),
                account_tokens::user_id.eq(user.id),
                account_tokens::purpose.eq("verify"),
                account_tokens::expires_at.eq(100_i64),
            );
            Ok(diesel::insert_into(account_tokens::table)
                .values(row)
                .execute(&mut **tx)?)
        });
        assert!(duplicate.is_err(), "a second live verify token was stored");
    }

    #[test]
    fn concurrent_issues_of_one_purpose_leave_one_live_token_and_no_error() {
        let (db, _dir, user) = db_with_user();
        std::thread::scope(|scope| {
            for i in 1..=8u8 {
                let db = &db;
                scope.spawn(move || issued(db, user.id, Purpose::Email, i));
            }
        });
        let live: i64 = account_tokens::table
            .filter(account_tokens::user_id.eq(user.id))
            .count()
            .get_result(&mut **conn(&db))
            .unwrap();
        assert_eq!(live, 1);
    }

    #[test]
    fn a_token_from_before_a_credential_change_is_void() {
        let (db, _dir, user) = db_with_user();
        issued(&db, user.id, Purpose::Email, 1);
        issued(&db, user.id, Purpose::Verify, 2);
        write(&db, |c| advance_credential_version(c, user.id));
        let stale = NewToken {
            credential_version: 0,
            ..token(user.id, Purpose::Email, &[3u8; 32])
        };
        write(&db, |c| issue(c, &stale));
        let mut held = conn(&db);
        let c = &mut **held;
        for (digest, purpose) in [(1u8, Purpose::Email), (2, Purpose::Verify)] {
            assert_eq!(found(c, digest, purpose, 50), None, "voided");
        }
        assert_eq!(
            found(c, 3, Purpose::Email, 50),
            None,
            "issued under the old version, after the change"
        );
        assert_eq!(spent(&db, 3, Purpose::Email, 50), None);
        let current = NewToken {
            credential_version: 1,
            ..token(user.id, Purpose::Email, &[4u8; 32])
        };
        write(&db, |c| issue(c, &current));
        assert!(spent(&db, 4, Purpose::Email, 50).is_some());
    }

    #[test]
    fn a_reset_token_works_once_and_an_expired_one_neither_finds_nor_spends_and_is_purged() {
        let (db, _dir, user) = db_with_user();
        issued(&db, user.id, Purpose::Reset, 1);
        issued(&db, user.id, Purpose::Reset, 2);
        let mut held = conn(&db);
        let c = &mut **held;
        assert_eq!(found(c, 1, Purpose::Reset, 50), None, "replaced");
        let (_, owner) = found(c, 2, Purpose::Reset, 50).unwrap();
        assert_eq!(owner.id, user.id);
        assert_eq!(found(c, 2, Purpose::Reset, 100), None);
        assert_eq!(spent(&db, 2, Purpose::Reset, 100), None, "expired");
        let spent_once = spent(&db, 2, Purpose::Reset, 50);
        assert_eq!(spent_once.map(|t| t.user_id), Some(user.id));
        assert_eq!(spent(&db, 2, Purpose::Reset, 50), None, "once");
        issued(&db, user.id, Purpose::Reset, 3);
        assert_eq!(write(&db, |c| delete_expired(c, 99, &ALL)), 0);
        assert_eq!(write(&db, |c| delete_expired(c, 100, &ALL)), 1);
        assert_eq!(found(c, 3, Purpose::Reset, 50), None, "purged");
    }

    #[test]
    fn racing_spends_of_one_token_succeed_once() {
        let (db, _dir, user) = db_with_user();
        issued(&db, user.id, Purpose::Reset, 5);
        let barrier = std::sync::Barrier::new(6);
        let wins = std::thread::scope(|scope| {
            let spends: Vec<_> = (0..6)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        spent(&db, 5, Purpose::Reset, 50)
                    })
                })
                .collect();
            spends
                .into_iter()
                .filter_map(|spend| spend.join().unwrap())
                .count()
        });
        assert_eq!(wins, 1);
    }
}
