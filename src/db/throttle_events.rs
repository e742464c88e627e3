//! The `throttle_events` table: counted attempts in a sliding window, per scope and key.

use diesel::dsl::{count_star, min};
use diesel::prelude::*;

use super::schema::throttle_events;
use super::{AnyConnection, DbError, Tx};

/// Records one attempt of `scope` by `key` at `at`; returns its row's id.
pub fn record_event(tx: &mut Tx<'_>, scope: &str, key: &str, at: i64) -> Result<i32, DbError> {
    Ok(diesel::insert_into(throttle_events::table)
        .values((
            throttle_events::scope.eq(scope),
            throttle_events::key.eq(key),
            throttle_events::at.eq(at),
        ))
        .returning(throttle_events::id)
        .get_result(&mut **tx)?)
}

/// Forgets the attempts with these ids (counted, then found not to be failures).
pub fn delete_events(tx: &mut Tx<'_>, ids: &[i32]) -> Result<(), DbError> {
    diesel::delete(throttle_events::table.filter(throttle_events::id.eq_any(ids)))
        .execute(&mut **tx)?;
    Ok(())
}

/// One limit to check: at most `max` attempts of `scope` by `key` in the last `window` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Limit<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub max: i64,
    pub window: i64,
}

/// How many attempts of `scope` by `key` happened after `since`, and when the oldest of them was.
pub fn count_events_since(
    conn: &mut AnyConnection,
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

/// Locks the (scope, key) pairs of `limits` until the transaction ends, so that checking them
/// and counting an attempt cannot interleave with another transaction doing the same
/// ([`Tx::lock`]): of any number of concurrent attempts, no more than the limit get counted.
pub fn lock(tx: &mut Tx<'_>, limits: &[Limit<'_>]) -> Result<(), DbError> {
    let names: Vec<String> = limits
        .iter()
        .map(|limit| format!("throttle:{}:{}", limit.scope, limit.key))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    tx.lock(&names)
}

/// Seconds until the first of `limits` that is reached at `now` frees a slot (its oldest
/// counted attempt leaves the window), or `None` when all are under.
pub fn retry_after(
    conn: &mut AnyConnection,
    limits: &[Limit<'_>],
    now: i64,
) -> Result<Option<i64>, DbError> {
    for limit in limits {
        let since = now - limit.window;
        let (count, oldest) = count_events_since(conn, limit.scope, limit.key, since)?;
        if count >= limit.max {
            let frees_at = oldest.unwrap_or(now) + limit.window;
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
            let first = record_event(c, "login", "a@b.com", 100)?;
            let second = record_event(c, "login", "a@b.com", 200)?;
            assert_ne!(first, second);
            let limit = |scope, max, window| Limit {
                scope,
                key: "a@b.com",
                max,
                window,
            };
            let limits = [limit("signup", 1, 900), limit("login", 2, 900)];
            assert_eq!(retry_after(c, &limits, 300)?, Some(700));
            assert_eq!(retry_after(c, &limits[..1], 300)?, None);
            assert_eq!(retry_after(c, &[limit("login", 3, 900)], 300)?, None);
            assert_eq!(retry_after(c, &limits, 1000)?, None, "100 left the window");
            assert_eq!(retry_after(c, &[limit("login", 1, 900)], 1000)?, Some(100));
            assert_eq!(
                retry_after(c, &[limit("login", 2, 3600)], 1000)?,
                Some(2700)
            );
            delete_events(c, &[first])?;
            assert_eq!(retry_after(c, &limits, 300)?, None, "a released attempt");
            Ok(())
        });
    }
}
