//! The `session_revocations` table: which accounts' sessions or account rows changed, and when
//! by the database's clock, so that every instance drops what its session cache holds of them
//! ([`super::session_cache`]).

use diesel::prelude::*;

use super::schema::session_revocations;
use super::{AnyConnection, DbError};

/// Records that what any instance cached of account `user_id` is stale. A write: called inside
/// a write transaction only (`Tx::sessions_changed`).
pub fn record(conn: &mut AnyConnection, user_id: i32) -> Result<(), DbError> {
    let id = uuid::Uuid::new_v4();
    diesel::insert_into(session_revocations::table)
        .values((
            session_revocations::id.eq(id.as_bytes().as_slice()),
            session_revocations::user_id.eq(user_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// The database's clock, in milliseconds since the epoch: the one clock every instance's polls
/// and every revocation's `at` are read from.
pub fn clock_ms(conn: &mut AnyConnection) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct Clock {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        ms: i64,
    }
    let query = match conn {
        AnyConnection::Sqlite(_) => "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS ms",
        AnyConnection::Postgresql(_) => {
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT AS ms"
        }
    };
    Ok(diesel::sql_query(query).get_result::<Clock>(conn)?.ms)
}

/// The revocations recorded at or after `since_ms` (the database's clock): their ids and
/// accounts.
pub fn since(conn: &mut AnyConnection, since_ms: i64) -> Result<Vec<(Vec<u8>, i32)>, DbError> {
    Ok(session_revocations::table
        .filter(session_revocations::at.ge(since_ms))
        .select((session_revocations::id, session_revocations::user_id))
        .load(conn)?)
}

/// Deletes the revocations recorded before `before_ms` and returns how many; inside a write
/// transaction only (the cleanup's).
pub fn delete_before(conn: &mut AnyConnection, before_ms: i64) -> Result<usize, DbError> {
    let old = session_revocations::table.filter(session_revocations::at.lt(before_ms));
    Ok(diesel::delete(old).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::*;

    #[test]
    fn revocations_are_read_back_by_the_database_clock_and_purged() {
        let (db, _dir) = temp_db();
        let before = clock_ms(&mut conn(&db)).unwrap();
        write(&db, |tx| {
            record(tx, 7)?;
            record(tx, 7)
        });
        let after = clock_ms(&mut conn(&db)).unwrap();
        assert!(
            after >= before && after - before < 60_000,
            "{before} {after}"
        );
        let recent = since(&mut conn(&db), before).unwrap();
        assert_eq!(recent.len(), 2, "two rows with distinct ids");
        assert_ne!(recent[0].0, recent[1].0);
        assert!(recent.iter().all(|(id, user)| id.len() == 16 && *user == 7));
        assert!(since(&mut conn(&db), after + 1).unwrap().is_empty());
        assert_eq!(write(&db, |tx| delete_before(tx, before)), 0);
        assert_eq!(write(&db, |tx| delete_before(tx, after + 1)), 2);
        assert!(since(&mut conn(&db), 0).unwrap().is_empty());
    }
}
