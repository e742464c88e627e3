//! Second factors: the `totp_credentials` table (an authenticator app's sealed secret, pending
//! until confirmed with a code, and the last time step accepted) and the `recovery_codes` table
//! (one-time codes as SHA-256 digests). What is sealed and how a code is checked is the auth
//! layer's; here, each use is one conditional write, so of two concurrent uses one wins.

use diesel::prelude::*;

use super::schema::{passkeys, recovery_codes, totp_credentials};
use super::{AnyConnection, DbError, Tx};

/// An authenticator app's secret as stored: sealed, with the id of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = totp_credentials, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Totp {
    pub user_id: i32,
    pub confirmed: bool,
    pub secret: Vec<u8>,
    pub key_id: String,
    /// The last time step a code was accepted for (-1: none yet).
    pub last_step: i64,
    pub created_at: i64,
}

/// What an account has of second factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enrolled {
    /// A confirmed authenticator app.
    pub totp: bool,
    /// Recovery codes not yet spent.
    pub recovery_codes: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

impl Enrolled {
    /// Whether the account has a second factor (recovery codes only back one up).
    pub fn any(self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// What would be left without the authenticator app.
    pub fn without_totp(self) -> Enrolled {
        Enrolled {
            totp: false,
            ..self
        }
    }
}

/// Stores `secret` as account `user_id`'s pending authenticator, replacing a pending one.
pub fn put_pending_totp(
    tx: &mut Tx<'_>,
    user_id: i32,
    secret: &[u8],
    key_id: &str,
    at: i64,
) -> Result<(), DbError> {
    diesel::delete(of(user_id, false)).execute(&mut **tx)?;
    diesel::insert_into(totp_credentials::table)
        .values((
            totp_credentials::user_id.eq(user_id),
            totp_credentials::confirmed.eq(false),
            totp_credentials::secret.eq(secret),
            totp_credentials::key_id.eq(key_id),
            totp_credentials::last_step.eq(-1),
            totp_credentials::created_at.eq(at),
        ))
        .execute(&mut **tx)?;
    Ok(())
}

/// Account `user_id`'s authenticator: the confirmed one, or the pending one.
pub fn find_totp(
    conn: &mut AnyConnection,
    user_id: i32,
    confirmed: bool,
) -> Result<Option<Totp>, DbError> {
    Ok(of(user_id, confirmed)
        .select(Totp::as_select())
        .get_result(conn)
        .optional()?)
}

/// Records that a code of time step `step` was accepted for the authenticator, provided no code
/// of that step or a later one was: `false` for a replay (or no such authenticator).
pub fn accept_step(
    tx: &mut Tx<'_>,
    user_id: i32,
    confirmed: bool,
    step: i64,
) -> Result<bool, DbError> {
    let earlier = of(user_id, confirmed).filter(totp_credentials::last_step.lt(step));
    let updated = diesel::update(earlier)
        .set(totp_credentials::last_step.eq(step))
        .execute(&mut **tx)?;
    Ok(updated == 1)
}

/// Makes the pending authenticator (whose setup code of `step` was accepted) the confirmed
/// one, replacing the one before; `false` when the step was used already or nothing is pending.
pub fn confirm_totp(tx: &mut Tx<'_>, user_id: i32, step: i64) -> Result<bool, DbError> {
    if !accept_step(tx, user_id, false, step)? {
        return Ok(false);
    }
    diesel::delete(of(user_id, true)).execute(&mut **tx)?;
    diesel::update(of(user_id, false))
        .set(totp_credentials::confirmed.eq(true))
        .execute(&mut **tx)?;
    Ok(true)
}

/// Voids account `user_id`'s pending authenticator setup (a credential change).
pub fn delete_pending_totp(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, DbError> {
    Ok(diesel::delete(of(user_id, false)).execute(&mut **tx)?)
}

/// Removes account `user_id`'s authenticators, pending and confirmed; whether one was confirmed.
pub fn delete_totp(tx: &mut Tx<'_>, user_id: i32) -> Result<bool, DbError> {
    let confirmed = find_totp(tx, user_id, true)?.is_some();
    diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(user_id)))
        .execute(&mut **tx)?;
    Ok(confirmed)
}

/// Replaces account `user_id`'s recovery codes with `digests`: the old set is void.
pub fn replace_recovery_codes(
    tx: &mut Tx<'_>,
    user_id: i32,
    digests: &[[u8; 32]],
    at: i64,
) -> Result<(), DbError> {
    delete_recovery_codes(tx, user_id)?;
    for digest in digests {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::code_hash.eq(&digest[..]),
                recovery_codes::user_id.eq(user_id),
                recovery_codes::created_at.eq(at),
            ))
            .execute(&mut **tx)?;
    }
    Ok(())
}

/// Spends account `user_id`'s recovery code `digest`: one `DELETE`, so of two concurrent uses
/// one gets it.
pub fn spend_recovery_code(tx: &mut Tx<'_>, user_id: i32, digest: &[u8]) -> Result<bool, DbError> {
    let code = recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::code_hash.eq(digest));
    Ok(diesel::delete(code).execute(&mut **tx)? == 1)
}

/// Voids account `user_id`'s recovery codes; how many there were.
pub fn delete_recovery_codes(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, DbError> {
    let codes = recovery_codes::table.filter(recovery_codes::user_id.eq(user_id));
    Ok(diesel::delete(codes).execute(&mut **tx)?)
}

/// What account `user_id` has of second factors.
pub fn enrolled(conn: &mut AnyConnection, user_id: i32) -> Result<Enrolled, DbError> {
    let totp = of(user_id, true).count().get_result::<i64>(conn)? > 0;
    let recovery_codes = recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    let passkeys = passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    Ok(Enrolled {
        totp,
        recovery_codes,
        passkeys,
    })
}

#[diesel::dsl::auto_type]
fn of(user_id: i32, confirmed: bool) -> _ {
    totp_credentials::table
        .filter(totp_credentials::user_id.eq(user_id))
        .filter(totp_credentials::confirmed.eq(confirmed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{conn, db_with_user, write};

    #[test]
    fn a_time_step_is_accepted_once_and_never_an_earlier_one() {
        let (db, _dir, user) = db_with_user();
        let id = user.id;
        write(&db, |tx| put_pending_totp(tx, id, b"sealed", "k1", 0));
        assert!(
            !write(&db, |tx| accept_step(tx, id, true, 5)),
            "nothing confirmed yet"
        );
        assert!(write(&db, |tx| confirm_totp(tx, id, 5)));
        assert!(
            !write(&db, |tx| accept_step(tx, id, true, 5)),
            "the setup code's step"
        );
        assert!(!write(&db, |tx| accept_step(tx, id, true, 4)));
        assert!(write(&db, |tx| accept_step(tx, id, true, 6)));
        let stored = find_totp(&mut conn(&db), id, true).unwrap().unwrap();
        assert_eq!((stored.last_step, stored.secret), (6, b"sealed".to_vec()));
    }

    #[test]
    fn confirming_a_new_authenticator_replaces_the_old_one() {
        let (db, _dir, user) = db_with_user();
        let id = user.id;
        write(&db, |tx| put_pending_totp(tx, id, b"old", "k1", 0));
        assert!(write(&db, |tx| confirm_totp(tx, id, 5)));
        write(&db, |tx| put_pending_totp(tx, id, b"new", "k1", 0));
        assert!(
            enrolled(&mut conn(&db), id).unwrap().totp,
            "the old one holds"
        );
        assert!(write(&db, |tx| confirm_totp(tx, id, 7)));
        let stored = find_totp(&mut conn(&db), id, true).unwrap().unwrap();
        assert_eq!(stored.secret, b"new");
        assert!(find_totp(&mut conn(&db), id, false).unwrap().is_none());
        assert!(write(&db, |tx| delete_totp(tx, id)));
        assert_eq!(enrolled(&mut conn(&db), id).unwrap(), Enrolled::default());
    }

    #[test]
    fn a_recovery_code_is_spent_once_and_regeneration_voids_the_set() {
        let (db, _dir, user) = db_with_user();
        let id = user.id;
        write(&db, |tx| {
            replace_recovery_codes(tx, id, &[[1; 32], [2; 32]], 0)
        });
        assert!(write(&db, |tx| spend_recovery_code(tx, id, &[1; 32])));
        assert!(!write(&db, |tx| spend_recovery_code(tx, id, &[1; 32])));
        assert!(
            !write(&db, |tx| spend_recovery_code(tx, id + 1, &[2; 32])),
            "another's"
        );
        assert_eq!(enrolled(&mut conn(&db), id).unwrap().recovery_codes, 1);
        write(&db, |tx| replace_recovery_codes(tx, id, &[[3; 32]], 0));
        assert!(
            !write(&db, |tx| spend_recovery_code(tx, id, &[2; 32])),
            "void"
        );
        assert!(write(&db, |tx| spend_recovery_code(tx, id, &[3; 32])));
    }
}
