//! The `account_tokens` table: single-use tokens mailed to an account's owner, stored as their
//! SHA-256. A `verify` token proves the account's email; an `email` token proves a new address
//! (`new_email`) before the account moves to it. One live token per purpose and account: a new
//! one replaces the last.

use diesel::prelude::*;

use super::schema::{account_tokens, users};
use super::{AnyConnection, DbError, Tx, User};

/// What a token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The account's email reaches its owner.
    Verify,
    /// The owner reaches `new_email`, the address the account will move to.
    Email,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
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
}

/// Gives account `user_id` the token `token_digest` for `purpose` (with the address it proves,
/// for [`Purpose::Email`]), valid until `expires_at`; the account's earlier token of that
/// purpose stops working.
pub fn issue(
    tx: &mut Tx<'_>,
    user_id: i32,
    purpose: Purpose,
    token_digest: &[u8],
    new_email: Option<&str>,
    expires_at: i64,
) -> Result<(), DbError> {
    delete_of_user(tx, user_id, purpose)?;
    diesel::insert_into(account_tokens::table)
        .values((
            account_tokens::token_hash.eq(token_digest),
            account_tokens::user_id.eq(user_id),
            account_tokens::purpose.eq(purpose.name()),
            account_tokens::new_email.eq(new_email),
            account_tokens::expires_at.eq(expires_at),
        ))
        .execute(&mut **tx)?;
    Ok(())
}

/// The live token `token_digest` for `purpose` and its account, without spending it.
pub fn find(
    conn: &mut AnyConnection,
    token_digest: &[u8],
    purpose: Purpose,
    now: i64,
) -> Result<Option<(AccountToken, User)>, DbError> {
    Ok(account_tokens::table
        .inner_join(users::table)
        .filter(account_tokens::token_hash.eq(token_digest))
        .filter(account_tokens::purpose.eq(purpose.name()))
        .filter(account_tokens::expires_at.gt(now))
        .select((AccountToken::as_select(), User::as_select()))
        .get_result(conn)
        .optional()?)
}

/// Spends the live token `token_digest` for `purpose`: one `DELETE … RETURNING`, so of two
/// concurrent uses at most one gets it. `None`: not (or no longer) a valid token.
pub fn spend(
    tx: &mut Tx<'_>,
    token_digest: &[u8],
    purpose: Purpose,
    now: i64,
) -> Result<Option<AccountToken>, DbError> {
    let live = account_tokens::table
        .filter(account_tokens::token_hash.eq(token_digest))
        .filter(account_tokens::purpose.eq(purpose.name()))
        .filter(account_tokens::expires_at.gt(now));
    Ok(diesel::delete(live)
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

/// Deletes tokens that expired before `now`; returns how many.
pub fn delete_expired(tx: &mut Tx<'_>, now: i64) -> Result<usize, DbError> {
    let expired = account_tokens::table.filter(account_tokens::expires_at.le(now));
    Ok(diesel::delete(expired).execute(&mut **tx)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{conn, temp_db, write};
    use crate::db::users::add_user;

    #[test]
    fn a_token_works_once_for_its_purpose_until_it_expires() {
        let (db, _dir) = temp_db();
        let user = write(&db, |c| add_user(c, "a@b.com", "h"));
        write(&db, |c| {
            issue(c, user.id, Purpose::Email, &[1u8; 32], Some("n@b.com"), 100)
        });
        let mut held = conn(&db);
        let c = &mut **held;
        assert_eq!(
            find(c, &[1u8; 32], Purpose::Verify, 50).unwrap(),
            None,
            "another purpose"
        );
        assert_eq!(
            find(c, &[1u8; 32], Purpose::Email, 100).unwrap(),
            None,
            "expired"
        );
        let (token, owner) = find(c, &[1u8; 32], Purpose::Email, 50).unwrap().unwrap();
        assert_eq!(
            (token.new_email.as_deref(), owner.id),
            (Some("n@b.com"), user.id)
        );
        let spent = write(&db, |c| spend(c, &[1u8; 32], Purpose::Email, 50));
        assert_eq!(spent.map(|t| t.user_id), Some(user.id));
        assert_eq!(
            write(&db, |c| spend(c, &[1u8; 32], Purpose::Email, 50)),
            None,
            "once"
        );
    }

    #[test]
    fn a_new_token_replaces_the_last_of_its_purpose_only() {
        let (db, _dir) = temp_db();
        let user = write(&db, |c| add_user(c, "a@b.com", "h"));
        write(&db, |c| {
            issue(c, user.id, Purpose::Verify, &[1u8; 32], None, 100)?;
            issue(c, user.id, Purpose::Email, &[2u8; 32], Some("n@b.com"), 100)?;
            issue(c, user.id, Purpose::Verify, &[3u8; 32], None, 100)
        });
        let mut held = conn(&db);
        let c = &mut **held;
        assert_eq!(find(c, &[1u8; 32], Purpose::Verify, 50).unwrap(), None);
        assert!(find(c, &[2u8; 32], Purpose::Email, 50).unwrap().is_some());
        assert!(find(c, &[3u8; 32], Purpose::Verify, 50).unwrap().is_some());
        assert_eq!(write(&db, |c| delete_expired(c, 100)), 2);
    }
}
