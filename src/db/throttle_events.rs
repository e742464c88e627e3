//! The `throttle_events` table: counted attempts in a sliding window, per scope and key.

use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::schema::throttle_events;
use super::{DbError, Tx};

/// Records one attempt of `scope` by `key` at `at`.
pub fn record_event(tx: &mut Tx<'_>, scope: &str, key: &str, at: i64) -> Result<(), DbError> {
    diesel::insert_into(throttle_events::table)
        .values((
            throttle_events::scope.eq(scope),
            throttle_events::key.eq(key),
            throttle_events::at.eq(at),
        ))
        .execute(&mut **tx)?;
    Ok(())
}

/// How many attempts of `scope` by `key` happened after `since`, and when the oldest of them was.
pub fn count_events_since(
    conn: &mut SqliteConnection,
    scope: &str,
    key: &str,
    since: i64,
) -> Result<(i64, Option<i64>), DbError> {
    Ok(throttle_events::table
        .filter(throttle_events::scope.eq(scope))
        .filter(throttle_events::key.eq(key))
        .filter(throttle_events::at.gt(since))
        .select((count_star(), min(throttle_events::at)))
        .get_result(conn)?)
}

/// Seconds until the first of `limits` (scope, key, limit) that reached its limit in the
/// `window` seconds before `now` frees a slot (its oldest counted attempt leaves the window),
/// or `None` when all are under their limits.
pub fn retry_after(
    conn: &mut SqliteConnection,
    limits: &[(&str, &str, i64)],
    window: i64,
    now: i64,
) -> Result<Option<i64>, DbError> {
    for &(scope, key, limit) in limits {
        let (count, oldest) = count_events_since(conn, scope, key, now - window)?;
        if count >= limit {
            let frees_at = oldest.unwrap_or(now) + window;
            return Ok(Some((frees_at - now).max(1)));
        }
    }
    Ok(None)
}

/// Forgets every attempt of `scope` by `key` (a successful login, a completed reset).
pub fn clear_events(tx: &mut Tx<'_>, scope: &str, key: &str) -> Result<(), DbError> {
    diesel::delete(
        throttle_events::table
            .filter(throttle_events::scope.eq(scope))
            .filter(throttle_events::key.eq(key)),
    )
    .execute(&mut **tx)?;
    Ok(())
}

/// Deletes attempts older than `before` (the periodic cleanup); returns how many.
pub fn delete_events_before(tx: &mut Tx<'_>, before: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(throttle_events::table.filter(throttle_events::at.le(before)))
            .execute(&mut **tx)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{temp_db, write};

    #[test]
    fn events_are_counted_per_scope_and_key_inside_the_window() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            for at in [100, 200, 300] {
                record_event(c, "login", "a@b.com", at).unwrap();
            }
            record_event(c, "login", "c@d.com", 300).unwrap();
            record_event(c, "signup", "a@b.com", 300).unwrap();
            assert_eq!(
                count_events_since(c, "login", "a@b.com", 0).unwrap(),
                (3, Some(100))
            );
            assert_eq!(
                count_events_since(c, "login", "a@b.com", 150).unwrap(),
                (2, Some(200))
            );
            assert_eq!(
                count_events_since(c, "login", "x@y.com", 0).unwrap(),
                (0, None)
            );

            clear_events(c, "login", "a@b.com").unwrap();
            assert_eq!(count_events_since(c, "login", "a@b.com", 0).unwrap().0, 0);
            assert_eq!(count_events_since(c, "login", "c@d.com", 0).unwrap().0, 1);
            assert_eq!(delete_events_before(c, 300).unwrap(), 2);
            Ok(())
        });
    }

    #[test]
    fn retry_after_is_when_the_oldest_counted_attempt_leaves_the_window() {
        let (db, _dir) = temp_db();
        write(&db, |c| {
            for at in [100, 200] {
                record_event(c, "login", "a@b.com", at).unwrap();
            }
            let limits = [("signup", "a@b.com", 1), ("login", "a@b.com", 2)];
            assert_eq!(retry_after(c, &limits, 900, 300).unwrap(), Some(700));
            assert_eq!(retry_after(c, &limits[..1], 900, 300).unwrap(), None);
            let roomy = [("login", "a@b.com", 3)];
            assert_eq!(retry_after(c, &roomy, 900, 300).unwrap(), None);
            assert_eq!(
                retry_after(c, &limits, 900, 1000).unwrap(),
                None,
                "100 left"
            );
            assert_eq!(
                retry_after(c, &[("login", "a@b.com", 1)], 900, 1000).unwrap(),
                Some(100)
            );
            Ok(())
        });
    }
}
