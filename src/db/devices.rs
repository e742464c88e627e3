//! The `devices` table: clients trusted for an account because they logged in to it, keyed by
//! the SHA-256 of their device cookie.

use diesel::prelude::*;

use super::schema::{devices, users};
use super::{AnyConnection, DbError, Tx};

/// Trusts the device whose cookie has this digest for account `user_id`, from `now`, keeping
/// at most `max_per_account` devices for the account: the least recently used go first, so a
/// stockpile of device cookies cannot grow without bound.
pub fn add_device(
    tx: &mut Tx<'_>,
    user_id: i32,
    token_digest: &[u8],
    now: i64,
    max_per_account: i64,
) -> Result<(), DbError> {
    diesel::insert_into(devices::table)
        .values((
            devices::token_hash.eq(token_digest),
            devices::user_id.eq(user_id),
            devices::created_at.eq(now),
            devices::last_used_at.eq(now),
        ))
        .execute(&mut **tx)?;
    let surplus: Vec<Vec<u8>> = devices::table
        .filter(devices::user_id.eq(user_id))
        .filter(devices::token_hash.ne(token_digest))
        .order((devices::last_used_at.desc(), devices::created_at.desc()))
        .select(devices::token_hash)
        .offset(max_per_account - 1)
        .limit(i64::MAX)
        .load(&mut **tx)?;
    if !surplus.is_empty() {
        diesel::delete(devices::table.filter(devices::token_hash.eq_any(surplus)))
            .execute(&mut **tx)?;
    }
    Ok(())
}

/// Whether the device with this digest is trusted for the account `email`: it logged in to it
/// after `used_after` (how long trust lasts is the auth layer's to say).
pub fn is_trusted_for(
    conn: &mut AnyConnection,
    token_digest: &[u8],
    email: &str,
    used_after: i64,
) -> Result<bool, DbError> {
    let found = devices::table
        .inner_join(users::table)
        .filter(devices::token_hash.eq(token_digest))
        .filter(users::email.eq(email))
        .filter(devices::last_used_at.gt(used_after))
        .select(devices::user_id)
        .get_result::<i32>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// The digests of the devices trusted for account `user_id`.
pub fn digests_of(conn: &mut AnyConnection, user_id: i32) -> Result<Vec<Vec<u8>>, DbError> {
    Ok(devices::table
        .filter(devices::user_id.eq(user_id))
        .select(devices::token_hash)
        .load(conn)?)
}

/// Records a login from the device with this digest at `now`.
pub fn touch_device(tx: &mut Tx<'_>, token_digest: &[u8], now: i64) -> Result<(), DbError> {
    diesel::update(devices::table.find(token_digest))
        .set(devices::last_used_at.eq(now))
        .execute(&mut **tx)?;
    Ok(())
}

/// Ends the trust of account `user_id`'s device with this digest; returns whether there was one.
pub fn delete_device(tx: &mut Tx<'_>, user_id: i32, token_digest: &[u8]) -> Result<bool, DbError> {
    let own = devices::table
        .find(token_digest)
        .filter(devices::user_id.eq(user_id));
    Ok(diesel::delete(own).execute(&mut **tx)? == 1)
}

/// Ends the trust of every device of account `user_id` but `keep`; returns how many.
pub fn delete_devices_of(
    tx: &mut Tx<'_>,
    user_id: i32,
    keep: Option<&[u8]>,
) -> Result<usize, DbError> {
    let others = devices::table
        .filter(devices::user_id.eq(user_id))
        .filter(devices::token_hash.ne(keep.unwrap_or_default()));
    Ok(diesel::delete(others).execute(&mut **tx)?)
}

/// Forgets devices that have not logged in since `before`; returns how many.
pub fn delete_stale_devices(tx: &mut Tx<'_>, before: i64) -> Result<usize, DbError> {
    let stale = devices::table.filter(devices::last_used_at.le(before));
    Ok(diesel::delete(stale).execute(&mut **tx)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{ann_and_bob, in_temp_db};

    /// The trust period the tests count with.
    const TRUST_SECS: i64 = 180 * 24 * 60 * 60;

    /// Whether the device `[digest; 32]` is trusted for `email` at `now`.
    fn trusted_at(c: &mut Tx<'_>, digest: u8, email: &str, now: i64) -> Result<bool, DbError> {
        is_trusted_for(c, &[digest; 32], email, now - TRUST_SECS)
    }

    #[test]
    fn a_device_is_trusted_for_its_own_account_until_it_goes_stale() {
        in_temp_db(|c| {
            let (ann, _) = ann_and_bob(c)?;
            add_device(c, ann.id, &[1u8; 32], 1000, 20)?;
            assert!(trusted_at(c, 1, "ann@b.com", 2000)?, "Ann's, for Ann");
            assert!(!trusted_at(c, 1, "bob@b.com", 2000)?, "Ann's, for Bob");
            assert!(!trusted_at(c, 2, "ann@b.com", 2000)?, "unknown");
            let later = 1000 + TRUST_SECS;
            assert!(!trusted_at(c, 1, "ann@b.com", later)?, "stale");
            touch_device(c, &[1u8; 32], later - 1)?;
            assert!(trusted_at(c, 1, "ann@b.com", later)?, "touched");
            assert_eq!(delete_stale_devices(c, later - 1)?, 1);
            assert!(!trusted_at(c, 1, "ann@b.com", later)?, "purged");
            Ok(())
        });
    }

    #[test]
    fn deleting_a_user_forgets_their_devices() {
        in_temp_db(|c| {
            let ann = crate::db::users::add_user(c, "ann@b.com", "h")?;
            add_device(c, ann.id, &[1u8; 32], 1000, 20)?;
            assert_eq!(digests_of(c, ann.id)?, [vec![1u8; 32]]);
            assert!(crate::db::users::delete_user(c, ann.id)?);
            let left: i64 = devices::table.count().get_result(&mut **c)?;
            assert_eq!(left, 0);
            Ok(())
        });
    }

    #[test]
    fn an_account_keeps_its_most_recently_used_devices_up_to_the_cap() {
        in_temp_db(|c| {
            let (ann, bob) = ann_and_bob(c)?;
            add_device(c, bob.id, &[9u8; 32], 1000, 3)?;
            for i in 1..=3u8 {
                add_device(c, ann.id, &[i; 32], 1000 + i64::from(i), 3)?;
            }
            touch_device(c, &[1u8; 32], 2000)?;
            add_device(c, ann.id, &[4u8; 32], 2001, 3)?;
            let mut kept = digests_of(c, ann.id)?;
            kept.sort();
            assert_eq!(kept, [vec![1u8; 32], vec![3u8; 32], vec![4u8; 32]]);
            assert_eq!(
                digests_of(c, bob.id)?.len(),
                1,
                "another account's untouched"
            );
            Ok(())
        });
    }

    #[test]
    fn revoking_an_accounts_devices_can_keep_one() {
        in_temp_db(|c| {
            let (ann, bob) = ann_and_bob(c)?;
            for i in 1..=3u8 {
                add_device(c, ann.id, &[i; 32], 1000, 20)?;
            }
            add_device(c, bob.id, &[9u8; 32], 1000, 20)?;
            assert_eq!(delete_devices_of(c, ann.id, Some(&[2u8; 32]))?, 2);
            assert_eq!(digests_of(c, ann.id)?, [vec![2u8; 32]]);
            assert!(!delete_device(c, bob.id, &[2u8; 32])?, "Ann's");
            assert!(delete_device(c, ann.id, &[2u8; 32])?);
            assert!(!delete_device(c, ann.id, &[2u8; 32])?);
            assert_eq!(delete_devices_of(c, bob.id, None)?, 1);
            Ok(())
        });
    }
}
