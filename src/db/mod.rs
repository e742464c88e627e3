//! Data layer: the connection pool, embedded migrations and every SQL query of the service.
//!
//! Query functions are plain synchronous functions on `&mut SqliteConnection`; callers run them
//! through [`Db::run`], which takes a pooled connection on a blocking thread (or [`Db::read`]
//! for the session lookup of every logged-in request). Nothing here knows
//! about HTTP, so a PostgreSQL backend only needs changes in this module.
//!
//! Lookups by a unique key use `get_result`, never `first`: `first` adds `LIMIT ?`, and SQLite
//! re-prepares a statement whenever a bound `LIMIT` is bound again, so Diesel's cached statement
//! would be parsed and planned anew on every request.

pub mod schema;
pub mod seed;
pub mod sessions;
pub mod throttle_events;
pub mod users;

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use sessions::Session;
pub use users::{User, UserChanges};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Errors of the data layer. "No such row" is distinct from a failing database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no such record")]
    NotFound,
    #[error("email already registered")]
    EmailTaken,
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    #[error("database connection unavailable: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("cannot open the database: {0}")]
    Open(#[from] diesel::ConnectionError),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl DbError {
    /// Maps a unique-constraint violation to `taken`, keeping every other error as it is.
    fn unique_as(error: DieselError, taken: DbError) -> DbError {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => taken,
            other => DbError::Query(other),
        }
    }
}

/// Pragmas applied to every pooled connection: `busy_timeout` makes a writer wait for the lock
/// instead of failing with "database is locked"; `synchronous = NORMAL` is safe under WAL;
/// `mmap_size` maps the first 64 MiB of the file, so reads there are memory loads instead of a
/// `pread` and a copy each (a million sessions: +25 % profile reads, BENCHMARKS.md). Capped,
/// because every connection maps the file on its own and its pages count in each one's RSS.
/// (WAL itself is a property of the file, set once in [`Db::open`]: switching it from several
/// new connections at once would make them fight for the lock.)
#[derive(Debug)]
struct Pragmas;

const PER_CONNECTION: &str = "PRAGMA busy_timeout = 5000;
                              PRAGMA synchronous = NORMAL;
                              PRAGMA foreign_keys = ON;
                              PRAGMA mmap_size = 67108864;";

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PER_CONNECTION)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Which processes may use the database file while the service has it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// This process only, through SQLite's `unix-excl` VFS: the process takes the file's lock
    /// once and keeps the WAL index in its own memory, so a read transaction costs no `fcntl`
    /// lock calls and no mutex held across one (the contention between two workers reading at
    /// once; BENCHMARKS.md). Another process's first statement on the file meanwhile fails with
    /// "database is locked" (a second instance of the service: at start, after the busy timeout).
    Exclusive,
    /// Any process, with the ordinary file locks and a `-shm` file (the `sqlite3` shell beside a
    /// running service, or several instances on one file).
    Shared,
}

impl Access {
    /// The access the `database_exclusive` setting asks for.
    pub fn from_exclusive(exclusive: bool) -> Access {
        if exclusive {
            Access::Exclusive
        } else {
            Access::Shared
        }
    }

    /// The SQLite filename that opens `path` this way: a `file:` URI naming the VFS when
    /// exclusive (Diesel opens with URI filenames enabled; an absolute path gets the empty
    /// authority, `file:///…`, so a path starting `//` is not read as a host), the plain path
    /// otherwise. Off Unix there is no `unix-excl`, so the file is shared.
    fn filename(self, path: &str) -> String {
        match self {
            Access::Exclusive if cfg!(unix) => {
                let escaped = path
                    .replace('%', "%25")
                    .replace('?', "%3f")
                    .replace('#', "%23");
                let authority = if path.starts_with('/') { "//" } else { "" };
                format!("file:{authority}{escaped}?vfs=unix-excl")
            }
            _ => path.to_owned(),
        }
    }
}

/// The shared connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<SqliteConnection>>,
}

impl Db {
    /// Opens (creating if needed) the SQLite file at `path` and applies pending migrations.
    /// Blocking: call it from a blocking context.
    pub fn open(path: &str, pool_size: u32, access: Access) -> Result<Db, DbError> {
        let url = access.filename(path);
        let mut setup = SqliteConnection::establish(&url)?;
        setup.batch_execute(PER_CONNECTION)?;
        setup.batch_execute("PRAGMA journal_mode = WAL;")?;
        setup
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?;
        drop(setup);
        let pool = Pool::builder()
            .max_size(pool_size)
            // r2d2 would otherwise run a `SELECT 1` on every checkout; a SQLite file connection
            // does not go stale, and a broken one fails its next query loudly anyway.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(Pragmas))
            .build(ConnectionManager::new(url))?;
        Ok(Db { pool })
    }

    /// A pooled connection for synchronous callers (tools, tests); the app uses [`Db::run`].
    pub fn conn(
        &self,
    ) -> Result<diesel::r2d2::PooledConnection<ConnectionManager<SqliteConnection>>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` with a pooled connection on a blocking thread, so neither the query nor the wait
    /// for a connection ever occupies an async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut *pool.get()?)).await?
    }

    /// Runs the read-only `f` inline when a pooled connection is free at once, otherwise as
    /// [`Db::run`] does. A read by index under WAL takes microseconds and never waits for a
    /// writer, which is less than the hand-off to a blocking thread and back costs (most of a
    /// profile request's CPU time; see BENCHMARKS.md); waiting for a connection, or for the write
    /// lock, would block the async worker, so those never happen here. Only for lookups by key.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        match self.pool.try_get() {
            Some(mut conn) => f(&mut conn),
            None => self.run(f).await,
        }
    }
}

/// Seconds since the Unix epoch, the unit of every timestamp column.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A freshly migrated database in its own temporary directory (kept alive by the guard).
    pub fn temp_db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        (
            Db::open(path.to_str().unwrap(), 8, Access::Exclusive).unwrap(),
            dir,
        )
    }

    pub fn conn(db: &Db) -> diesel::r2d2::PooledConnection<ConnectionManager<SqliteConnection>> {
        db.conn().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    fn plan(sql: &str) -> String {
        let (db, _dir) = temp_db();
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<Row>(&mut conn(&db))
            .unwrap()
            .into_iter()
            .map(|r| r.detail)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn every_pooled_connection_has_the_pragmas() {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            v: i64,
        }
        let (db, _dir) = temp_db();
        let mut c = conn(&db);
        let one = |c: &mut SqliteConnection, sql: &str| {
            diesel::sql_query(sql).get_result::<Value>(c).unwrap().v
        };
        assert_eq!(
            one(&mut c, "SELECT foreign_keys AS v FROM pragma_foreign_keys"),
            1
        );
        assert_eq!(
            one(&mut c, "SELECT timeout AS v FROM pragma_busy_timeout"),
            5000
        );
        assert_eq!(
            one(&mut c, "SELECT synchronous AS v FROM pragma_synchronous"),
            1
        );
        #[derive(QueryableByName)]
        struct Mmap {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            mmap_size: i64,
        }
        let mmap = diesel::sql_query("PRAGMA mmap_size").get_result::<Mmap>(&mut c);
        assert_eq!(mmap.unwrap().mmap_size, 64 << 20);
        #[derive(QueryableByName)]
        struct Mode {
            #[diesel(sql_type = Text)]
            journal_mode: String,
        }
        let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(&mut c);
        assert_eq!(mode.unwrap().journal_mode, "wal");
    }

    #[rocket::async_test]
    async fn a_read_runs_inline_when_a_connection_is_free_and_waits_off_the_worker_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.db");
        let db = super::Db::open(path.to_str().unwrap(), 1, super::Access::Exclusive).unwrap();
        let thread = |_: &mut diesel::SqliteConnection| Ok(std::thread::current().id());
        let here = std::thread::current().id();
        assert_eq!(db.read(thread).await.unwrap(), here);

        let held = db.conn().unwrap();
        let waiting = tokio::spawn({
            let db = db.clone();
            async move { db.read(thread).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "a read without a free connection waits for one"
        );
        drop(held);
        let ran_on = waiting.await.unwrap().unwrap();
        assert_ne!(ran_on, here);
    }

    #[test]
    fn hot_lookups_bind_no_limit_so_their_cached_statements_are_reused() {
        use crate::db::sessions::{Lifetimes, find_session};
        use crate::db::users::{find_user_by_email, find_user_by_id, find_user_by_reset_token};
        use diesel::connection::{Connection, InstrumentationEvent};
        use std::sync::{Arc, Mutex};

        let (db, _dir) = temp_db();
        let mut c = conn(&db);
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&queries);
        c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                seen.lock().unwrap().push(query.to_string());
            }
        });
        let lifetimes = Lifetimes {
            idle: 1,
            absolute: 2,
        };
        find_session(&mut c, b"digest", 10, lifetimes).unwrap();
        find_user_by_id(&mut c, 1).unwrap();
        find_user_by_email(&mut c, "a@b.c").unwrap();
        find_user_by_reset_token(&mut c, b"digest", 10).unwrap();
        crate::db::throttle_events::count_events_since(&mut c, "login", "a@b.c", 0).unwrap();

        let queries = queries.lock().unwrap();
        assert_eq!(queries.len(), 5);
        for query in queries.iter() {
            assert!(!query.contains("LIMIT"), "{query}");
        }
    }

    #[test]
    fn exclusive_access_keeps_the_wal_index_in_memory_and_shared_access_uses_a_shm_file() {
        use super::{Access, Db};
        let dir = tempfile::tempdir().unwrap();
        for (name, access, shm) in [
            ("excl.db", Access::Exclusive, false),
            ("shared.db", Access::Shared, true),
        ] {
            let path = dir.path().join(name);
            let db = Db::open(path.to_str().unwrap(), 2, access).unwrap();
            let user = crate::db::users::add_user(&mut conn(&db), "a@b.c", "h").unwrap();
            let found = crate::db::users::find_user_by_id(&mut conn(&db), user.id).unwrap();
            assert_eq!(found, Some(user), "{access:?}");
            let shm_file = dir.path().join(format!("{name}-shm"));
            assert_eq!(shm_file.exists(), shm, "{access:?}");
        }
    }

    #[test]
    fn a_path_with_uri_characters_opens_that_very_file() {
        use super::{Access, Db};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd?name#with%25.db");
        let db = Db::open(path.to_str().unwrap(), 1, Access::Exclusive).unwrap();
        crate::db::users::add_user(&mut conn(&db), "a@b.c", "h").unwrap();
        assert!(path.is_file());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the file and its WAL"
        );

        let doubled = format!("/{}", dir.path().join("slashes.db").to_str().unwrap());
        Db::open(&doubled, 1, Access::Exclusive).unwrap();
        assert!(dir.path().join("slashes.db").is_file(), "{doubled}");
    }

    #[test]
    fn sessions_made_before_the_digest_key_migration_survive_it() {
        use diesel::connection::SimpleConnection;
        use diesel::migration::MigrationSource;
        use diesel::sqlite::Sqlite;
        use diesel_migrations::MigrationHarness;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut old = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let migrations = MigrationSource::<Sqlite>::migrations(&super::MIGRATIONS).unwrap();
        let before = migrations
            .iter()
            .position(|m| m.name().to_string().ends_with("sessions_keyed_by_digest"))
            .unwrap();
        for _ in 0..before {
            old.run_next_migration(super::MIGRATIONS).unwrap();
        }
        old.batch_execute(
            "INSERT INTO users (id, email, hashed_password, created_at) VALUES (7, 'a@b.c', 'h', 1);
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at)
                 VALUES (x'0101', 7, 100, 200);",
        )
        .unwrap();
        drop(old);

        let db = super::Db::open(path.to_str().unwrap(), 1, super::Access::Exclusive).unwrap();
        let lifetimes = crate::db::sessions::Lifetimes {
            idle: 1000,
            absolute: 1000,
        };
        let (session, user) =
            crate::db::sessions::find_session(&mut conn(&db), &[1, 1], 300, lifetimes)
                .unwrap()
                .unwrap();
        assert_eq!(
            (session.user_id, session.created_at, session.last_seen_at),
            (7, 100, 200)
        );
        assert_eq!(user.email, "a@b.c");
    }

    #[test]
    fn a_session_is_found_in_its_primary_key_alone_then_its_user_by_id() {
        let plan = plan(
            "SELECT * FROM sessions INNER JOIN users ON users.id = sessions.user_id \
             WHERE sessions.token_hash = x'00'",
        );
        assert_eq!(
            plan,
            "SEARCH sessions USING PRIMARY KEY (token_hash=?); \
             SEARCH users USING INTEGER PRIMARY KEY (rowid=?)"
        );
    }

    #[test]
    fn lookups_by_email_token_hash_and_reset_token_use_indexes() {
        for sql in [
            "SELECT * FROM users WHERE email = 'a@b.c'",
            "SELECT * FROM users WHERE reset_token = x'00'",
            "SELECT * FROM users WHERE id = 1",
            "DELETE FROM sessions WHERE user_id = 1",
        ] {
            let plan = plan(sql);
            assert!(!plan.contains("SCAN"), "{sql} scans: {plan}");
            assert!(plan.contains("USING"), "{sql}: {plan}");
        }
    }
}
