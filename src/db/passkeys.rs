//! The `passkeys` table: WebAuthn credentials, each registered to one account (the unique
//! index on `credential_id` decides), with the counter and last use of its latest sign-in.

use diesel::prelude::*;

use super::schema::passkeys;
use super::{AnyConnection, DbError, Tx};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = passkeys, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct StoredPasskey {
    /// The public id the owner names it by.
    pub id: String,
    pub credential_id: Vec<u8>,
    pub user_id: i32,
    pub name: String,
    /// The credential as the WebAuthn library keeps it (JSON: public key, counter).
    pub passkey: String,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Stores `passkey`; a credential id registered already is [`DbError::CredentialTaken`].
pub fn add_passkey(tx: &mut Tx<'_>, passkey: &StoredPasskey) -> Result<(), DbError> {
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::id.eq(&passkey.id),
            passkeys::credential_id.eq(&passkey.credential_id),
            passkeys::user_id.eq(passkey.user_id),
            passkeys::name.eq(&passkey.name),
            passkeys::passkey.eq(&passkey.passkey),
            passkeys::sign_count.eq(passkey.sign_count),
            passkeys::created_at.eq(passkey.created_at),
            passkeys::last_used_at.eq(passkey.last_used_at),
        ))
        .execute(&mut **tx)
        .map_err(|e| DbError::unique_as(e, DbError::CredentialTaken))?;
    Ok(())
}

/// Account `user_id`'s passkeys, the oldest first.
pub fn passkeys_of(conn: &mut AnyConnection, user_id: i32) -> Result<Vec<StoredPasskey>, DbError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at, passkeys::id))
        .select(StoredPasskey::as_select())
        .load(conn)?)
}

/// Records a sign-in with account `user_id`'s credential `credential_id`: its updated state
/// and counter, and when; `false` when the account has no such credential (removed meanwhile).
pub fn record_use(
    tx: &mut Tx<'_>,
    user_id: i32,
    credential_id: &[u8],
    passkey: &str,
    sign_count: i64,
    at: i64,
) -> Result<bool, DbError> {
    let used = passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .filter(passkeys::credential_id.eq(credential_id));
    let updated = diesel::update(used)
        .set((
            passkeys::passkey.eq(passkey),
            passkeys::sign_count.eq(sign_count),
            passkeys::last_used_at.eq(at),
        ))
        .execute(&mut **tx)?;
    Ok(updated == 1)
}

/// Removes account `user_id`'s passkey `id`; `false` when it has none of that id.
pub fn delete_passkey(tx: &mut Tx<'_>, user_id: i32, id: &str) -> Result<bool, DbError> {
    let named = passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .filter(passkeys::id.eq(id));
    Ok(diesel::delete(named).execute(&mut **tx)? == 1)
}

/// Removes every passkey of account `user_id`; how many.
pub fn delete_passkeys_of(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, DbError> {
    let of_user = passkeys::table.filter(passkeys::user_id.eq(user_id));
    Ok(diesel::delete(of_user).execute(&mut **tx)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{ann_and_bob, conn, temp_db, write};

    fn passkey(id: &str, credential: u8, user_id: i32) -> StoredPasskey {
        StoredPasskey {
            id: id.into(),
            credential_id: vec![credential; 16],
            user_id,
            name: "Phone".into(),
            passkey: "{}".into(),
            sign_count: 0,
            created_at: 1,
            last_used_at: None,
        }
    }

    #[test]
    fn a_credential_id_belongs_to_one_account_and_only_its_owner_uses_or_removes_it() {
        let (db, _dir) = temp_db();
        let (ann, bob) = write(&db, ann_and_bob);
        write(&db, |tx| add_passkey(tx, &passkey("p1", 1, ann.id)));
        let taken = db.write_blocking(|tx| add_passkey(tx, &passkey("p2", 1, bob.id)));
        assert!(matches!(taken, Err(DbError::CredentialTaken)), "{taken:?}");
        assert!(!write(&db, |tx| record_use(
            tx, bob.id, &[1; 16], "{}", 5, 9
        )));
        assert!(write(&db, |tx| record_use(
            tx,
            ann.id,
            &[1; 16],
            "{\"n\":1}",
            5,
            9
        )));
        let stored = passkeys_of(&mut conn(&db), ann.id).unwrap();
        assert_eq!((stored[0].sign_count, stored[0].last_used_at), (5, Some(9)));
        assert!(
            !write(&db, |tx| delete_passkey(tx, bob.id, "p1")),
            "not Bob's"
        );
        assert!(write(&db, |tx| delete_passkey(tx, ann.id, "p1")));
        assert!(passkeys_of(&mut conn(&db), ann.id).unwrap().is_empty());
    }
}
