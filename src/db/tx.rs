//! Write transactions: the only way to a write (a [`Tx`]), committed at the configured
//! durability and answered with the `COMMIT`'s own result.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;

use super::DbError;
use super::connect::{AnyConnection, Synchronous};

/// A connection inside a write transaction, and the only way to reach this module's write
/// functions (they take `&mut Tx`). Only [`Db::write`] makes one: it opens the transaction
/// (`BEGIN IMMEDIATE` on SQLite, `BEGIN READ WRITE` on PostgreSQL), runs the writes, and
/// answers with the result of `COMMIT` itself.
///
/// Why not autocommit: SQLite commits a lone `INSERT/UPDATE/DELETE … RETURNING` when the
/// statement is reset, and the commit can fail there (disk full, I/O error) after the first
/// step already returned the row; Diesel's `get_result` ignores `sqlite3_reset`'s answer, so a
/// rolled-back write looked stored. A `COMMIT` statement reports its own failure. Reads may run
/// on a `Tx` too (it dereferences to the connection); every pooled connection outside a `Tx`
/// is read-only, so a write that bypassed it would fail loudly instead of silently.
pub struct Tx<'c> {
    conn: &'c mut AnyConnection,
    stale: Stale,
}

impl std::ops::Deref for Tx<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
    }
}

impl Tx<'_> {
    /// Records that this transaction changes account `user_id`'s sessions or account row, so
    /// that every instance's session cache drops what it holds of the account: this instance's
    /// as soon as the transaction ends, the others' at their next poll (`session_cache.rs`).
    /// Every data function that ends a session or changes an account calls it. The revocation
    /// row is written right before `COMMIT`, so its time (`at`) is close to the commit's and
    /// no poll can pass it by while the transaction is still running.
    pub(super) fn sessions_changed(&mut self, user_id: i32) {
        if !self.stale.users.contains(&user_id) {
            self.stale.users.push(user_id);
        }
    }

    /// Drops the session with this digest from this instance's cache when the transaction ends
    /// (its recorded use changed; other instances read it again within a touch interval).
    pub(super) fn session_touched(&mut self, digest: &[u8]) {
        self.stale.sessions.push(digest.to_vec());
    }

    /// Holds, until this transaction ends, an exclusive lock named by `names`, so that a check
    /// and the write it decides (a throttle count) cannot interleave with another transaction's
    /// on the same names. SQLite's write transactions hold the database's one write lock
    /// already; on PostgreSQL each name takes a transaction-level advisory lock, in sorted
    /// order so that two transactions never wait on each other.
    pub fn lock(&mut self, names: &[&str]) -> Result<(), DbError> {
        let AnyConnection::Postgresql(pg) = &mut *self.conn else {
            return Ok(());
        };
        let mut names = names.to_vec();
        names.sort_unstable();
        names.dedup();
        for name in names {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<diesel::sql_types::Text, _>(name)
                .execute(pg)?;
        }
        Ok(())
    }
}

/// What a write transaction made stale in this instance's session cache: accounts, and
/// sessions by digest.
#[derive(Debug, Default)]
pub(super) struct Stale {
    pub users: Vec<i32>,
    pub sessions: Vec<Vec<u8>>,
}

/// Runs `f` in a write transaction on `conn` and commits it; rolls back on any error. Returns
/// what the transaction made stale whatever the outcome, for the caller to drop from the cache
/// (a failed `COMMIT` may still have committed; dropping an entry is always safe).
pub(super) fn in_transaction<T>(
    conn: &mut AnyConnection,
    synchronous: Synchronous,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>,
) -> (Result<T, DbError>, Stale) {
    // What follows the transaction: SQLite's connection turns read-only again; a PostgreSQL
    // transaction's settings end with it (`READ WRITE`, `SET LOCAL`), so nothing is sent.
    let (begin, end) = match (&*conn, synchronous) {
        (AnyConnection::Sqlite(_), Synchronous::Full) => (
            "PRAGMA query_only = OFF; PRAGMA synchronous = FULL; BEGIN IMMEDIATE;",
            Some("PRAGMA query_only = ON;"),
        ),
        (AnyConnection::Sqlite(_), Synchronous::Normal) => (
            "PRAGMA query_only = OFF; PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE;",
            Some("PRAGMA query_only = ON;"),
        ),
        (AnyConnection::Postgresql(_), Synchronous::Full) => {
            ("BEGIN READ WRITE; SET LOCAL synchronous_commit = on;", None)
        }
        (AnyConnection::Postgresql(_), Synchronous::Normal) => (
            "BEGIN READ WRITE; SET LOCAL synchronous_commit = off;",
            None,
        ),
    };
    if let Err(error) = conn.batch_execute(begin) {
        // SQLite may have turned writing on before BEGIN failed; turn it off again.
        if let Some(end) = end {
            let _ = conn.batch_execute(end);
        }
        return (Err(error.into()), Stale::default());
    }
    let mut tx = Tx {
        conn,
        stale: Stale::default(),
    };
    let result = f(&mut tx).and_then(|value| {
        for &user_id in &tx.stale.users {
            super::session_revocations::record(tx.conn, user_id)?;
        }
        tx.batch_execute("COMMIT")?;
        Ok(value)
    });
    let Tx { conn, stale } = tx;
    if result.is_err() {
        // A failed statement or COMMIT may have ended the transaction already; if the ROLLBACK
        // fails too, the connection is replaced (the caller sees the first error).
        let _ = conn.batch_execute("ROLLBACK");
    }
    // Setting a flag, no I/O: it cannot fail short of memory running out, and the writes are
    // committed either way, so their result stands.
    if let Some(Err(error)) = end.map(|end| conn.batch_execute(end)) {
        log::error!(target: "auth_service::db", "a connection stays writable: {error}");
    }
    (result, stale)
}

#[cfg(test)]
mod tests {
    use crate::db::testing::*;
    use diesel::prelude::*;

    #[test]
    fn a_pooled_connection_refuses_to_write_outside_a_write_transaction() {
        let (db, _dir) = temp_db();
        let insert =
            "INSERT INTO users (email, hashed_password, created_at) VALUES ('a@b.c', 'h', 1)";
        let outside = diesel::sql_query(insert).execute(&mut **conn(&db));
        assert!(outside.is_err(), "autocommit writes are refused");
        let inside = write(&db, |tx| Ok(diesel::sql_query(insert).execute(&mut **tx)?));
        assert_eq!(inside, 1);
        let after = diesel::sql_query(insert.replace("a@b.c", "d@e.f")).execute(&mut **conn(&db));
        assert!(
            after.is_err(),
            "the connection is read-only again after the write"
        );
    }

    #[test]
    fn a_write_runs_no_statement_that_fails() {
        use diesel::connection::{Connection, InstrumentationEvent};
        use std::sync::{Arc, Mutex};
        let (db, _dir) = temp_db();
        let mut held = conn(&db);
        let failed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&failed);
        held.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::FinishQuery {
                query,
                error: Some(error),
                ..
            } = event
            {
                seen.lock().unwrap().push(format!("{query}: {error}"));
            }
        });
        let (stored, _) = super::in_transaction(&mut held, crate::db::Synchronous::Full, |tx| {
            crate::db::users::add_user(tx, "a@b.c", "h")
        });
        assert!(stored.is_ok(), "{stored:?}");
        assert_eq!(*failed.lock().unwrap(), Vec::<String>::new());
        let found = crate::db::users::find_user_by_email(&mut held, "a@b.c").unwrap();
        assert!(found.is_some(), "the write is committed");
    }

    #[test]
    fn a_write_that_fails_midway_leaves_nothing_behind() {
        let (db, _dir) = temp_db();
        let failed = db.write_blocking(|tx| {
            crate::db::users::add_user(tx, "a@b.c", "h")?;
            crate::db::users::add_user(tx, "a@b.c", "again")
        });
        assert!(matches!(failed, Err(crate::db::DbError::EmailTaken)));
        let stored = crate::db::users::find_user_by_email(&mut conn(&db), "a@b.c").unwrap();
        assert_eq!(
            stored, None,
            "the first insert was rolled back with the second"
        );
    }

    #[rocket::async_test]
    async fn writes_commit_at_the_configured_level_and_bookkeeping_at_normal() {
        #[derive(QueryableByName)]
        struct Level {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            synchronous: i64,
        }
        fn level(tx: &mut crate::db::Tx<'_>) -> Result<i64, crate::db::DbError> {
            let level = diesel::sql_query("PRAGMA synchronous").get_result::<Level>(&mut **tx)?;
            Ok(level.synchronous)
        }
        let dir = tempfile::tempdir().unwrap();
        for (name, configured, durable) in [
            ("full.db", crate::db::Synchronous::Full, 2),
            ("normal.db", crate::db::Synchronous::Normal, 1),
        ] {
            let options = crate::db::Options {
                synchronous: configured,
                ..options(2)
            };
            let db =
                crate::db::Db::open(dir.path().join(name).to_str().unwrap(), &options).unwrap();
            assert_eq!(db.write(level).await.unwrap(), durable, "{configured:?}");
            assert_eq!(db.write_relaxed(level).await.unwrap(), 1, "{configured:?}");
            assert_eq!(db.write(level).await.unwrap(), durable, "restored");
        }
    }
}
