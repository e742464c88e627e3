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

pub mod devices;
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

/// Errors of the data layer. "No such row" is distinct from a failing database, and a database
/// that cannot take a change right now ([`DbError::Unavailable`]) from one that is broken.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no such record")]
    NotFound,
    #[error("email already registered")]
    EmailTaken,
    /// The storage refused the work for a reason that can pass: the disk is full, an I/O error,
    /// a read-only file, the lock still held after the busy timeout, no pooled connection free
    /// in time. Nothing was stored; the same request may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(DieselError),
    #[error("cannot open the database: {0}")]
    Open(#[from] diesel::ConnectionError),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// SQLite's messages for the failures that [`DbError::Unavailable`] stands for. Diesel keeps
/// only the message of an error it has no kind for (`DatabaseErrorKind::Unknown`), not SQLite's
/// code, so the message is what there is to tell them by; these are `sqlite3_errstr` of
/// SQLITE_FULL, SQLITE_IOERR (every extended code), SQLITE_READONLY, SQLITE_BUSY,
/// SQLITE_LOCKED and SQLITE_CANTOPEN.
const UNAVAILABLE: [&str; 6] = [
    "database or disk is full",
    "disk I/O error",
    "attempt to write a readonly database",
    "database is locked",
    "database table is locked",
    "unable to open database file",
];

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> DbError {
        let unavailable = match &error {
            DieselError::DatabaseError(_, info) => UNAVAILABLE.contains(&info.message()),
            DieselError::RollbackErrorOnCommit { commit_error, .. } => {
                matches!(&**commit_error, DieselError::DatabaseError(_, info)
                    if UNAVAILABLE.contains(&info.message()))
            }
            _ => false,
        };
        match unavailable {
            true => DbError::Unavailable(error.to_string()),
            false => DbError::Query(error),
        }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    /// r2d2's only error: no connection could be had within the pool's timeout.
    fn from(error: diesel::r2d2::PoolError) -> DbError {
        DbError::Unavailable(error.to_string())
    }
}

impl DbError {
    /// Maps a unique-constraint violation to `taken`, keeping every other error as it is.
    fn unique_as(error: DieselError, taken: DbError) -> DbError {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => taken,
            other => other.into(),
        }
    }
}

/// How hard a commit presses its changes to the disk (`database_synchronous`): SQLite's
/// `synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit waits for the write-ahead log to reach the disk (`fsync`): a committed
    /// change survives a power cut or a kernel crash.
    Full,
    /// Commits return once SQLite has handed the log to the operating system, which writes it
    /// out later: a process crash loses nothing, a power cut can undo the last commits.
    Normal,
}

impl Synchronous {
    /// Opens a write at this level (the pooled connection is `query_only` until then).
    fn begin_write(self) -> &'static str {
        match self {
            Synchronous::Full => "PRAGMA query_only = OFF; PRAGMA synchronous = FULL;",
            Synchronous::Normal => "PRAGMA query_only = OFF; PRAGMA synchronous = NORMAL;",
        }
    }
}

/// Pragmas applied to every pooled connection: `busy_timeout` makes a writer wait for the lock
/// instead of failing with "database is locked"; `mmap_size` maps the first 64 MiB of the
/// file, so reads there are memory loads instead of a `pread` and a copy each (a million
/// sessions: +25 % profile reads, BENCHMARKS.md). Capped, because every connection maps the
/// file on its own and its pages count in each one's RSS. `query_only` makes every pooled
/// connection refuse writes outside [`Db::write`], so no write can run in autocommit mode (see
/// [`Tx`]); each write sets its own `synchronous` ([`Synchronous`]).
/// (WAL itself is a property of the file, set once in [`Db::open`]: switching it from several
/// new connections at once would make them fight for the lock.)
#[derive(Debug)]
struct Pragmas;

const PER_CONNECTION: &str = "PRAGMA busy_timeout = 5000;
                              PRAGMA foreign_keys = ON;
                              PRAGMA mmap_size = 67108864;";

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PER_CONNECTION)
            .and_then(|()| conn.batch_execute("PRAGMA query_only = ON;"))
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

/// How to open the database: the `database_*` settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pool_size: u32,
    pub access: Access,
    pub synchronous: Synchronous,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pool_size: 8,
            access: Access::Exclusive,
            synchronous: Synchronous::Full,
        }
    }
}

/// A connection inside a write transaction, and the only way to reach this module's write
/// functions (they take `&mut Tx`). Only [`Db::write`] makes one: it opens `BEGIN IMMEDIATE`,
/// runs the writes, and answers with the result of `COMMIT` itself.
///
/// Why not autocommit: SQLite commits a lone `INSERT/UPDATE/DELETE … RETURNING` when the
/// statement is reset, and the commit can fail there (disk full, I/O error) after the first
/// step already returned the row; Diesel's `get_result` ignores `sqlite3_reset`'s answer, so a
/// rolled-back write looked stored. A `COMMIT` statement reports its own failure. Reads may run
/// on a `Tx` too (it dereferences to the connection); every pooled connection outside a `Tx`
/// is `query_only`, so a write that bypassed it would fail loudly instead of silently.
pub struct Tx<'c>(&'c mut SqliteConnection);

impl std::ops::Deref for Tx<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.0
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.0
    }
}

type Pooled = diesel::r2d2::PooledConnection<ConnectionManager<SqliteConnection>>;

/// The shared connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    /// How durable a commit of [`Db::write`] is.
    synchronous: Synchronous,
}

impl Db {
    /// Opens (creating if needed) the SQLite file at `path` and applies pending migrations.
    /// Blocking: call it from a blocking context.
    pub fn open(path: &str, options: &Options) -> Result<Db, DbError> {
        let url = options.access.filename(path);
        let mut setup = SqliteConnection::establish(&url)?;
        setup.batch_execute(PER_CONNECTION)?;
        setup.batch_execute(options.synchronous.begin_write())?;
        setup.batch_execute("PRAGMA journal_mode = WAL;")?;
        setup
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?;
        drop(setup);
        let pool = Pool::builder()
            .max_size(options.pool_size)
            // r2d2 would otherwise run a `SELECT 1` on every checkout; a SQLite file connection
            // does not go stale, and a broken one fails its next query loudly anyway.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(Pragmas))
            .build(ConnectionManager::new(url))?;
        Ok(Db {
            pool,
            synchronous: options.synchronous,
        })
    }

    /// A pooled, read-only connection for synchronous callers (tools, tests); the app uses
    /// [`Db::run`] and [`Db::read`]. Writes go through [`Db::write_blocking`].
    pub fn conn(&self) -> Result<Pooled, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs the read-only `f` with a pooled connection on a blocking thread, so neither the
    /// query nor the wait for a connection ever occupies an async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut *pool.get()?)).await?
    }

    /// Runs `f`'s writes in one transaction on a blocking thread and commits them: `Ok` only
    /// when the `COMMIT` succeeded, so an answer built on it never acknowledges a write SQLite
    /// rolled back. `BEGIN IMMEDIATE` takes the write lock first (a deferred transaction that
    /// reads, then writes, could fail with BUSY at once under WAL, whatever the busy timeout).
    /// The commit is as durable as `database_synchronous` says.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f)).await?
    }

    /// [`Db::write`] for bookkeeping whose loss in a power cut is harmless (a session's last
    /// use: the session then expires a little earlier, the safe side): it commits at
    /// `synchronous = NORMAL` whatever is configured, so frequent bookkeeping does not wait for
    /// the disk (BENCHMARKS.md: every read a write, −40 % with FULL). The next durable commit
    /// syncs the log up to and including it.
    pub async fn write_relaxed<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_at(Synchronous::Normal, f)).await?
    }

    /// [`Db::write`] on the calling thread, for synchronous callers (tools, tests).
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.write_at(self.synchronous, f)
    }

    fn write_at<T>(
        &self,
        synchronous: Synchronous,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.pool.get()?;
        conn.batch_execute(synchronous.begin_write())?;
        let result = conn.immediate_transaction(|conn| f(&mut Tx(conn)));
        // Setting a flag, no I/O: it cannot fail short of memory running out, and the writes
        // are committed either way, so their result stands.
        if let Err(error) = conn.batch_execute("PRAGMA query_only = ON;") {
            log::error!(target: "auth_service::db", "a connection stays writable: {error}");
        }
        result
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
        let db = Db::open(path.to_str().unwrap(), &Options::default()).unwrap();
        (db, dir)
    }

    /// The default options with a pool of `pool_size`.
    pub fn options(pool_size: u32) -> Options {
        Options {
            pool_size,
            ..Options::default()
        }
    }

    /// A read-only pooled connection.
    pub fn conn(db: &Db) -> Pooled {
        db.conn().unwrap()
    }

    /// Runs `f` in a committed write transaction.
    pub fn write<T>(db: &Db, f: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>) -> T {
        db.write_blocking(f).unwrap()
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
            one(&mut c, "SELECT query_only AS v FROM pragma_query_only"),
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
        let db = super::Db::open(path.to_str().unwrap(), &options(1)).unwrap();
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
    fn a_pooled_connection_refuses_to_write_outside_a_write_transaction() {
        let (db, _dir) = temp_db();
        let insert =
            "INSERT INTO users (email, hashed_password, created_at) VALUES ('a@b.c', 'h', 1)";
        let outside = diesel::sql_query(insert).execute(&mut conn(&db));
        assert!(outside.is_err(), "autocommit writes are refused");
        let inside = write(&db, |tx| Ok(diesel::sql_query(insert).execute(&mut **tx)?));
        assert_eq!(inside, 1);
        let after = diesel::sql_query(insert.replace("a@b.c", "d@e.f")).execute(&mut conn(&db));
        assert!(
            after.is_err(),
            "the connection is read-only again after the write"
        );
    }

    #[test]
    fn a_write_that_fails_midway_leaves_nothing_behind() {
        let (db, _dir) = temp_db();
        let failed = db.write_blocking(|tx| {
            crate::db::users::add_user(tx, "a@b.c", "h")?;
            crate::db::users::add_user(tx, "a@b.c", "again")
        });
        assert!(matches!(failed, Err(super::DbError::EmailTaken)));
        let stored = crate::db::users::find_user_by_email(&mut conn(&db), "a@b.c").unwrap();
        assert_eq!(
            stored, None,
            "the first insert was rolled back with the second"
        );
    }

    #[test]
    fn storage_failures_are_unavailable_and_other_errors_are_not() {
        use super::DbError;
        use diesel::result::{DatabaseErrorKind, Error};
        let sqlite = |kind, message: &str| Error::DatabaseError(kind, Box::new(message.to_owned()));
        for message in [
            "database or disk is full",
            "disk I/O error",
            "attempt to write a readonly database",
            "database is locked",
            "unable to open database file",
        ] {
            let error = DbError::from(sqlite(DatabaseErrorKind::Unknown, message));
            assert!(
                matches!(error, DbError::Unavailable(_)),
                "{message}: {error:?}"
            );
            let on_commit = Error::RollbackErrorOnCommit {
                rollback_error: Box::new(Error::BrokenTransactionManager),
                commit_error: Box::new(sqlite(DatabaseErrorKind::Unknown, message)),
            };
            assert!(matches!(DbError::from(on_commit), DbError::Unavailable(_)));
        }
        for other in [
            sqlite(
                DatabaseErrorKind::Unknown,
                "database disk image is malformed",
            ),
            sqlite(
                DatabaseErrorKind::UniqueViolation,
                "UNIQUE constraint failed",
            ),
            Error::NotFound,
        ] {
            assert!(matches!(DbError::from(other), DbError::Query(_)));
        }
    }

    #[rocket::async_test]
    async fn writes_commit_at_the_configured_level_and_bookkeeping_at_normal() {
        #[derive(QueryableByName)]
        struct Level {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            synchronous: i64,
        }
        fn level(tx: &mut super::Tx<'_>) -> Result<i64, super::DbError> {
            let level = diesel::sql_query("PRAGMA synchronous").get_result::<Level>(&mut **tx)?;
            Ok(level.synchronous)
        }
        let dir = tempfile::tempdir().unwrap();
        for (name, configured, durable) in [
            ("full.db", super::Synchronous::Full, 2),
            ("normal.db", super::Synchronous::Normal, 1),
        ] {
            let options = super::Options {
                synchronous: configured,
                ..options(2)
            };
            let db = super::Db::open(dir.path().join(name).to_str().unwrap(), &options).unwrap();
            assert_eq!(db.write(level).await.unwrap(), durable, "{configured:?}");
            assert_eq!(db.write_relaxed(level).await.unwrap(), 1, "{configured:?}");
            assert_eq!(db.write(level).await.unwrap(), durable, "restored");
        }
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
            let options = super::Options {
                access,
                ..options(2)
            };
            let db = Db::open(path.to_str().unwrap(), &options).unwrap();
            let user = write(&db, |tx| crate::db::users::add_user(tx, "a@b.c", "h"));
            let found = crate::db::users::find_user_by_id(&mut conn(&db), user.id).unwrap();
            assert_eq!(found, Some(user), "{access:?}");
            let shm_file = dir.path().join(format!("{name}-shm"));
            assert_eq!(shm_file.exists(), shm, "{access:?}");
        }
    }

    #[test]
    fn a_path_with_uri_characters_opens_that_very_file() {
        use super::Db;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd?name#with%25.db");
        let db = Db::open(path.to_str().unwrap(), &options(1)).unwrap();
        write(&db, |tx| crate::db::users::add_user(tx, "a@b.c", "h"));
        assert!(path.is_file());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the file and its WAL"
        );

        let doubled = format!("/{}", dir.path().join("slashes.db").to_str().unwrap());
        Db::open(&doubled, &options(1)).unwrap();
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

        let db = super::Db::open(path.to_str().unwrap(), &options(1)).unwrap();
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
