//! The `sign_in_steps` table: sign-ins half done (the password was right, a second factor is
//! asked for), keyed by the SHA-256 of the token the client holds in place of a session.
//! Expiry and the attempt limit are conditions of every lookup; the purge only reclaims space.

use diesel::prelude::*;

use super::schema::{sign_in_steps, users};
use super::{AnyConnection, DbError, Tx, User};

/// A stored step.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sign_in_steps, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SignInStep {
    pub token_hash: Vec<u8>,
    pub user_id: i32,
    /// What the step is for (`mfa`: a second factor after a password).
    pub purpose: String,
    /// The methods that may complete it, space-separated.
    pub methods: String,
    /// A passkey challenge's server-side state.
    pub ceremony: Option<String>,
    /// The trusted device the session will be opened on.
    pub device_hash: Option<Vec<u8>>,
    /// Wrong answers so far.
    pub attempts: i32,
    pub expires_at: i64,
}

/// A step to store.
#[derive(Debug, Clone, Copy)]
pub struct NewStep<'a> {
    pub token_digest: &'a [u8],
    pub user_id: i32,
    pub purpose: &'a str,
    pub methods: &'a str,
    pub device_digest: Option<&'a [u8]>,
    /// A passkey ceremony's server-side state, when the step is one.
    pub ceremony: Option<&'a str>,
    pub expires_at: i64,
}

/// Stores `new`.
pub fn add_step(tx: &mut Tx<'_>, new: &NewStep<'_>) -> Result<(), DbError> {
    diesel::insert_into(sign_in_steps::table)
        .values((
            sign_in_steps::token_hash.eq(new.token_digest),
            sign_in_steps::user_id.eq(new.user_id),
            sign_in_steps::purpose.eq(new.purpose),
            sign_in_steps::methods.eq(new.methods),
            sign_in_steps::device_hash.eq(new.device_digest),
            sign_in_steps::ceremony.eq(new.ceremony),
            sign_in_steps::attempts.eq(0),
            sign_in_steps::expires_at.eq(new.expires_at),
        ))
        .execute(&mut **tx)?;
    Ok(())
}

/// The live step `token_digest` for `purpose` (unexpired at `now`, fewer than `max_attempts`
/// wrong answers), with its account.
pub fn find_step(
    conn: &mut AnyConnection,
    token_digest: &[u8],
    purpose: &str,
    now: i64,
    max_attempts: i32,
) -> Result<Option<(SignInStep, User)>, DbError> {
    Ok(live(token_digest, purpose, now, max_attempts)
        .inner_join(users::table)
        .select((SignInStep::as_select(), User::as_select()))
        .get_result(conn)
        .optional()?)
}

/// Spends the live step `token_digest`: one `DELETE … RETURNING`, so of two concurrent uses at
/// most one gets it. The account's row is locked first, as every credential change locks it
/// before it voids the account's steps, so the two take turns.
pub fn spend_step(
    tx: &mut Tx<'_>,
    token_digest: &[u8],
    purpose: &str,
    now: i64,
    max_attempts: i32,
) -> Result<Option<SignInStep>, DbError> {
    let owner: Option<i32> = live(token_digest, purpose, now, max_attempts)
        .select(sign_in_steps::user_id)
        .get_result(&mut **tx)
        .optional()?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    if super::users::lock_account(tx, owner)?.is_none() {
        return Ok(None);
    }
    Ok(
        diesel::delete(live(token_digest, purpose, now, max_attempts))
            .returning(sign_in_steps::all_columns)
            .get_result(&mut **tx)
            .optional()?,
    )
}

/// Sets the live step `token_digest`'s passkey ceremony (a new challenge replaces the last);
/// `false` when the step is not live.
pub fn set_ceremony(
    tx: &mut Tx<'_>,
    token_digest: &[u8],
    purpose: &str,
    ceremony: &str,
    now: i64,
    max_attempts: i32,
) -> Result<bool, DbError> {
    let step = live(token_digest, purpose, now, max_attempts);
    let updated = diesel::update(step)
        .set(sign_in_steps::ceremony.eq(ceremony))
        .execute(&mut **tx)?;
    Ok(updated == 1)
}

/// Counts a wrong answer to step `token_digest`; how many it has now.
pub fn count_wrong_answer(tx: &mut Tx<'_>, token_digest: &[u8]) -> Result<i32, DbError> {
    let step = sign_in_steps::table.filter(sign_in_steps::token_hash.eq(token_digest));
    Ok(diesel::update(step)
        .set(sign_in_steps::attempts.eq(sign_in_steps::attempts + 1))
        .returning(sign_in_steps::attempts)
        .get_result(&mut **tx)
        .optional()?
        .unwrap_or(i32::MAX))
}

/// Voids every step of account `user_id` (a changed credential); how many.
pub fn delete_steps_of(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, DbError> {
    let of_user = sign_in_steps::table.filter(sign_in_steps::user_id.eq(user_id));
    Ok(diesel::delete(of_user).execute(&mut **tx)?)
}

/// Deletes the steps that expired before `now`; how many.
pub fn delete_expired_steps(tx: &mut Tx<'_>, now: i64) -> Result<usize, DbError> {
    let expired = sign_in_steps::table.filter(sign_in_steps::expires_at.le(now));
    Ok(diesel::delete(expired).execute(&mut **tx)?)
}

#[diesel::dsl::auto_type]
fn live<'a>(token_digest: &'a [u8], purpose: &'a str, now: i64, max_attempts: i32) -> _ {
    sign_in_steps::table
        .filter(sign_in_steps::token_hash.eq(token_digest))
        .filter(sign_in_steps::purpose.eq(purpose))
        .filter(sign_in_steps::expires_at.gt(now))
        .filter(sign_in_steps::attempts.lt(max_attempts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{conn, db_with_user, write};

    fn step(user_id: i32) -> NewStep<'static> {
        NewStep {
            token_digest: &[7; 32],
            user_id,
            purpose: "mfa",
            methods: "totp recovery_code",
            device_digest: None,
            ceremony: None,
            expires_at: 100,
        }
    }

    #[test]
    fn a_step_is_live_until_spent_expired_or_out_of_attempts() {
        let (db, _dir, user) = db_with_user();
        write(&db, |tx| add_step(tx, &step(user.id)));
        let find = |now, max| find_step(&mut conn(&db), &[7; 32], "mfa", now, max).unwrap();
        assert_eq!(find(99, 5).unwrap().1.id, user.id);
        assert!(find(100, 5).is_none(), "expired");
        assert!(
            find_step(&mut conn(&db), &[7; 32], "other", 99, 5)
                .unwrap()
                .is_none()
        );
        assert!(write(&db, |tx| set_ceremony(
            tx, &[7; 32], "mfa", "{}", 99, 5
        )));
        assert_eq!(find(99, 5).unwrap().0.ceremony.as_deref(), Some("{}"));
        assert!(
            !write(&db, |tx| set_ceremony(tx, &[7; 32], "mfa", "{}", 100, 5)),
            "expired"
        );
        assert_eq!(write(&db, |tx| count_wrong_answer(tx, &[7; 32])), 1);
        assert!(find(99, 1).is_none(), "out of attempts");
        let spent = write(&db, |tx| spend_step(tx, &[7; 32], "mfa", 99, 5));
        assert_eq!(spent.unwrap().methods, "totp recovery_code");
        assert!(
            write(&db, |tx| spend_step(tx, &[7; 32], "mfa", 99, 5)).is_none(),
            "once"
        );
    }

    #[test]
    fn a_credential_change_and_the_purge_delete_steps() {
        let (db, _dir, user) = db_with_user();
        write(&db, |tx| add_step(tx, &step(user.id)));
        assert_eq!(write(&db, |tx| delete_expired_steps(tx, 99)), 0);
        assert_eq!(write(&db, |tx| delete_steps_of(tx, user.id)), 1);
        write(&db, |tx| add_step(tx, &step(user.id)));
        assert_eq!(write(&db, |tx| delete_expired_steps(tx, 100)), 1);
    }
}
