//! Data layer: the connection pool, embedded migrations and every SQL query of the service, on
//! SQLite (a file, the default) or PostgreSQL (a `postgres://` URL), chosen by `database_url`.
//!
//! Query functions are plain synchronous functions on `&mut AnyConnection` (reads) or
//! `&mut Tx` (writes), written once with Diesel's query builder for both backends: Diesel's
//! `MultiConnection` derive makes one connection type of the two. Callers run them through
//! [`Db::run`] and [`Db::write`], which take a pooled connection on a blocking thread (or
//! [`Db::read`] for the session lookup of every logged-in request). What differs between the
//! backends (opening, pragmas and settings, transactions, locks, migrations) is in this module
//! and nowhere else; nothing here knows about HTTP.
//!
//! Lookups by a unique key use `get_result`, never `first`: `first` adds `LIMIT ?`, and SQLite
//! re-prepares a statement whenever a bound `LIMIT` is bound again, so Diesel's cached statement
//! would be parsed and planned anew on every request.

/// Runs `$body` on the concrete connection inside `$conn` (`&mut AnyConnection`), bound to
/// `$inner`: for the rare statement Diesel's multi-backend layer cannot express (a batch
/// insert), written once and compiled for each backend.
macro_rules! on_each_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($inner) => $body,
            $crate::db::AnyConnection::Postgresql($inner) => $body,
        }
    };
}

pub mod account_tokens;
pub mod devices;
pub mod schema;
#[cfg(feature = "testing")]
pub mod scratch;
#[cfg(feature = "testing")]
pub mod seed;
pub mod sessions;
pub mod throttle_events;
pub mod users;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};

use crate::metrics::Metrics;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use sessions::Session;
pub use users::{User, UserChanges};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend; every query function takes it (or a [`Tx`] around it).
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Errors of the data layer. "No such row" is distinct from a failing database, and a database
/// that cannot take a change right now ([`DbError::Unavailable`]) from one that is broken.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no such record")]
    NotFound,
    #[error("email already registered")]
    EmailTaken,
    /// The database refused the work for a reason that can pass: the disk is full, an I/O
    /// error, a read-only file, a lock still held after the timeout, the server gone or
    /// unreachable, no pooled connection free in time. Nothing was stored; the same request
    /// may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(DieselError),
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("backup failed: {0}")]
    Backup(String),
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

/// The beginnings of PostgreSQL's (and libpq's) messages for the same: a statement cancelled
/// by `statement_timeout`, a server shutting down or restarting, a connection lost.
const PG_UNAVAILABLE: [&str; 7] = [
    "canceling statement due to statement timeout",
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "no connection to the server",
    "could not receive data from server",
    "SSL connection has been closed",
];

/// Whether a database error is one that can pass (see [`DbError::Unavailable`]).
fn passing(kind: &DatabaseErrorKind, message: &str) -> bool {
    matches!(
        kind,
        DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::ReadOnlyTransaction
    ) || UNAVAILABLE.contains(&message)
        || PG_UNAVAILABLE
            .iter()
            .any(|start| message.starts_with(start))
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> DbError {
        let unavailable = match &error {
            DieselError::DatabaseError(kind, info) => passing(kind, info.message()),
            DieselError::RollbackErrorOnCommit { commit_error, .. } => {
                matches!(&**commit_error, DieselError::DatabaseError(kind, info)
                    if passing(kind, info.message()))
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
    /// r2d2's only error: no connection could be had within the pool's timeout (its message
    /// carries the last failure to connect, which names its cause).
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
/// `synchronous` in WAL mode, PostgreSQL's `synchronous_commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit waits for the write-ahead log to reach the disk (`fsync`): a committed
    /// change survives a power cut or a kernel crash.
    Full,
    /// Commits return once the log is handed to the operating system (SQLite) or before it is
    /// flushed (PostgreSQL): a process crash loses nothing, a power cut can undo the last
    /// commits.
    Normal,
}

/// Which processes may use the database file while the service has it open (SQLite only).
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

/// Whether `database_url` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// `database_url` fit for a log line: of a PostgreSQL URL, the password and the value of every
/// query parameter replaced (`password`, `sslpassword` and any future secret can be one).
pub fn redacted(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_owned();
    };
    // The credentials end at the last `@` before the path, as libpq reads them: a password
    // may hold a `?` (`postgres://app:pa?ss@db/auth`), so the query is split off after them.
    let path = rest.find('/').unwrap_or(rest.len());
    let (user, rest) = match rest[..path].rfind('@') {
        Some(at) => {
            let user = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:[redacted]@"),
                None => format!("{}@", &rest[..at]),
            };
            (user, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let (host, query) = match rest.split_once('?') {
        Some((host, query)) => (host, Some(query)),
        None => (rest, None),
    };
    let location = format!("{user}{host}");
    let query = query.map(|query| {
        let names: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=[redacted]"),
                None => pair.to_owned(),
            })
            .collect();
        format!("?{}", names.join("&"))
    });
    format!("{scheme}://{location}{}", query.unwrap_or_default())
}

/// The file of the open SQLite database (`main`, as SQLite names it).
fn main_file(conn: &mut AnyConnection) -> Result<std::path::PathBuf, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Attached {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        file: String,
    }
    let attached = diesel::sql_query("PRAGMA database_list").load::<Attached>(conn)?;
    let main = attached.into_iter().find(|a| a.name == "main");
    Ok(main.map(|a| a.file.into()).unwrap_or_default())
}

/// Whether `path` names the database file `database` or one of its companions (its log, its
/// shared memory, its rollback journal), however it is spelled.
fn is_database_file(path: &std::path::Path, database: &std::path::Path) -> bool {
    let resolved = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            dir.canonicalize().map(|dir| dir.join(name))
        }
        _ => return false,
    };
    let (Ok(resolved), Ok(database)) = (resolved, database.canonicalize()) else {
        return false;
    };
    ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
        let mut companion = database.clone().into_os_string();
        companion.push(suffix);
        resolved == std::path::Path::new(&companion)
    })
}

/// How to open the database: the `database_*` settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pool_size: u32,
    /// SQLite only.
    pub access: Access,
    pub synchronous: Synchronous,
    /// How long any wait for the database may last (`database_timeout_secs`): a pooled
    /// connection, a lock, a statement, a connection to the server. Past it the request is
    /// answered 503 instead of hanging.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pool_size: 8,
            access: Access::Exclusive,
            synchronous: Synchronous::Full,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What the pool connects to, ready to connect.
#[derive(Debug, Clone)]
enum Target {
    /// The SQLite filename (a `file:` URI when exclusive).
    Sqlite(String),
    /// The PostgreSQL URL, with connect and TCP timeouts added unless it sets its own.
    Postgres(String),
}

impl Target {
    fn new(database_url: &str, options: &Options) -> Target {
        if !is_postgres_url(database_url) {
            return Target::Sqlite(options.access.filename(database_url));
        }
        let secs = options.timeout.as_secs().max(1);
        let mut url = database_url.to_owned();
        for (key, value) in [
            ("connect_timeout", secs.to_string()),
            // A server that vanished without closing the connection is given up after this.
            ("tcp_user_timeout", (secs * 1000).to_string()),
        ] {
            if !url.contains(&format!("{key}=")) {
                let separator = if url.contains('?') { '&' } else { '?' };
                url = format!("{url}{separator}{key}={value}");
            }
        }
        Target::Postgres(url)
    }

    /// A new connection with the service's per-connection settings: SQLite's pragmas
    /// (`busy_timeout` so a writer waits for the lock instead of failing with "database is
    /// locked"; `mmap_size` maps the first 64 MiB of the file, so reads there are memory loads
    /// instead of a `pread` and a copy each: a million sessions +25 % profile reads,
    /// BENCHMARKS.md; capped because each connection maps the file on its own), PostgreSQL's
    /// `statement_timeout`, and on both a read-only default that only [`Db::write`] lifts, so no
    /// write can bypass it (see [`Tx`]).
    fn connect(&self, timeout: Duration) -> Result<AnyConnection, diesel::ConnectionError> {
        let settle = |conn: &mut AnyConnection, sql: String| {
            conn.batch_execute(&sql)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        };
        match self {
            Target::Sqlite(filename) => {
                let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(filename)?);
                let sql = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; \
                     PRAGMA mmap_size = 67108864; PRAGMA query_only = ON;",
                    timeout.as_millis()
                );
                settle(&mut conn, sql)?;
                Ok(conn)
            }
            Target::Postgres(url) => {
                let mut conn = AnyConnection::Postgresql(PgConnection::establish(url)?);
                let sql = format!(
                    "SET statement_timeout = {}; SET lock_timeout = {0}; \
                     SET default_transaction_read_only = on; SET TIME ZONE 'UTC';",
                    timeout.as_millis()
                );
                settle(&mut conn, sql)?;
                Ok(conn)
            }
        }
    }
}

/// A pooled connection, and whether it reported the database unavailable: such a connection
/// is replaced rather than handed out again (a PostgreSQL connection the server closed would
/// otherwise fail every request it serves, long after the server came back).
pub struct Pooled {
    conn: AnyConnection,
    spoiled: bool,
}

impl std::ops::Deref for Pooled {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Pooled {
    /// Passes `result` on, marking the connection for replacement if it says the database is
    /// unavailable.
    fn checked<T>(&mut self, result: Result<T, DbError>) -> Result<T, DbError> {
        if matches!(result, Err(DbError::Unavailable(_))) {
            self.spoiled = true;
        }
        result
    }
}

/// Opens pooled connections of the configured backend directly (no trying one backend, then
/// the other: a failure names its own cause).
#[derive(Debug)]
pub struct Manager {
    target: Target,
    timeout: Duration,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let conn = self
            .target
            .connect(self.timeout)
            .map_err(diesel::r2d2::Error::ConnectionError)?;
        Ok(Pooled {
            conn,
            spoiled: false,
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        pooled.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        std::thread::panicking() || pooled.spoiled || pooled.conn.is_broken()
    }
}

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
pub struct Tx<'c>(&'c mut AnyConnection);

impl std::ops::Deref for Tx<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.0
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.0
    }
}

impl Tx<'_> {
    /// Holds, until this transaction ends, an exclusive lock named by `names`, so that a check
    /// and the write it decides (a throttle count) cannot interleave with another transaction's
    /// on the same names. SQLite's write transactions hold the database's one write lock
    /// already; on PostgreSQL each name takes a transaction-level advisory lock, in sorted
    /// order so that two transactions never wait on each other.
    pub fn lock(&mut self, names: &[&str]) -> Result<(), DbError> {
        let AnyConnection::Postgresql(pg) = &mut *self.0 else {
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

/// Names the session-level advisory lock that serializes migrations on PostgreSQL, so that
/// instances starting at once against a fresh database run them one after the other.
const MIGRATION_LOCK: i64 = 0x6175_7468_5f73_7663; // "auth_svc"

/// The shared connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    /// How durable a commit of [`Db::write`] is.
    synchronous: Synchronous,
    /// Whether the pool's connections go to a PostgreSQL server (over the network).
    postgres: bool,
    /// Where waits for a pooled connection are reported.
    metrics: Metrics,
}

impl Db {
    /// Opens the database `database_url` (a SQLite file, created if needed, or a PostgreSQL
    /// URL) and applies pending migrations. Blocking: call it from a blocking context.
    /// A file that cannot be written (a read-only file or file system) is refused here, with
    /// the reason: SQLite would open it read-only, and every write would fail.
    pub fn open(database_url: &str, options: &Options) -> Result<Db, DbError> {
        let target = Target::new(database_url, options);
        if let Target::Sqlite(_) = target {
            // SQLite would create the file 0644 less the umask; its `-wal` and `-shm` files take
            // the database file's mode, so a file made 0600 here keeps all three private.
            match crate::files::create_new(std::path::Path::new(database_url)) {
                Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(DbError::Open(format!("{database_url}: {error}")));
                }
                _ => {}
            }
        }
        migrate(&target)?;
        let postgres = matches!(target, Target::Postgres(_));
        let manager = Manager {
            target,
            timeout: options.timeout,
        };
        let pool = Pool::builder()
            .max_size(options.pool_size)
            // r2d2 would otherwise run a `SELECT 1` on every checkout; a connection that
            // reported the database unavailable is replaced instead (see `Pooled`).
            .test_on_check_out(false)
            .connection_timeout(options.timeout)
            .build(manager)
            .map_err(|e| DbError::Open(e.to_string()))?;
        let db = Db {
            pool,
            synchronous: options.synchronous,
            postgres,
            metrics: Metrics::default(),
        };
        if let Err(error) = db.write_at(Synchronous::Normal, write_probe) {
            let reason = match postgres {
                true => error.to_string(),
                false => unwritable(database_url).unwrap_or_else(|| error.to_string()),
            };
            return Err(DbError::Open(format!("it cannot be written: {reason}")));
        }
        Ok(db)
    }

    /// This database, reporting its waits for a pooled connection to `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Db {
        Db { metrics, ..self }
    }

    /// The pool's connections: how many it holds, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// A pooled connection, its wait reported.
    fn pooled(&self) -> Result<PooledConnection<Manager>, DbError> {
        let started = std::time::Instant::now();
        let pooled = self.pool.get();
        self.metrics.pool_wait(started.elapsed());
        Ok(pooled?)
    }

    /// Whether the database answers, has every migration this binary embeds applied, and
    /// takes a write (see [`write_probe`]). `Err` says what is wrong.
    pub fn ready(&self) -> Result<(), DbError> {
        #[derive(diesel::QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        let embedded: Vec<String> = match self.postgres {
            true => versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS),
            false => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
        };
        let mut pooled = self.pooled()?;
        let applied = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(&mut **pooled)
            .map_err(DbError::from);
        let applied = pooled.checked(applied)?;
        let pending = embedded
            .iter()
            .filter(|version| !applied.iter().any(|a| &a.version == *version))
            .count();
        if pending > 0 {
            return Err(DbError::Migration(format!(
                "{pending} migrations are not applied"
            )));
        }
        drop(pooled);
        self.write_at(Synchronous::Normal, write_probe)
    }

    /// Writes a consistent copy of the SQLite database to `path` while the service runs (a
    /// snapshot of one read transaction, by `VACUUM INTO`, so writers go on meanwhile): into a
    /// temporary file of its own beside `path` (0600, like the copy), synced, then moved, so
    /// `path` is either absent or whole; an existing `path` is replaced only when `replace` is
    /// set, and never when it is the database itself (or its log). Returns its size in bytes.
    /// PostgreSQL has its own tools (`pg_dump`).
    pub fn backup_into(&self, path: &std::path::Path, replace: bool) -> Result<u64, DbError> {
        if self.postgres {
            return Err(DbError::Backup(
                "a PostgreSQL database is backed up with its own tools (pg_dump)".into(),
            ));
        }
        let failed = |e: std::io::Error| DbError::Backup(format!("{}: {e}", path.display()));
        let mut pooled = self.pooled()?;
        let database = main_file(&mut pooled);
        let database = pooled.checked(database)?;
        if is_database_file(path, &database) {
            return Err(DbError::Backup(format!(
                "{}: that is the database itself",
                path.display()
            )));
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let partial = path.with_file_name(format!(".{name}.{}.partial", uuid::Uuid::new_v4()));
        // VACUUM INTO fills an empty file, keeping the mode it was created with.
        crate::files::create_new(&partial).map_err(failed)?;
        let copied = self.copy_into(&mut pooled, &partial, path, replace);
        drop(pooled);
        if copied.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        let bytes = copied?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(failed)?;
        }
        Ok(bytes)
    }

    /// [`Db::backup_into`]'s copy: the snapshot into `partial`, synced, then moved to `path`.
    fn copy_into(
        &self,
        pooled: &mut PooledConnection<Manager>,
        partial: &std::path::Path,
        path: &std::path::Path,
        replace: bool,
    ) -> Result<u64, DbError> {
        let failed = |e: std::io::Error| DbError::Backup(format!("{}: {e}", path.display()));
        let target = partial
            .to_str()
            .ok_or_else(|| DbError::Backup("the backup path must be UTF-8".into()))?;
        let conn: &mut AnyConnection = pooled;
        // VACUUM INTO writes no page of this database, but SQLite counts it as a write.
        let vacuumed = conn
            .batch_execute("PRAGMA query_only = OFF;")
            .and_then(|()| {
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(target)
                    .execute(conn)
                    .map(drop)
            });
        let restored = conn.batch_execute("PRAGMA query_only = ON;");
        pooled.checked(vacuumed.and(restored).map_err(DbError::from))?;
        let file = std::fs::File::open(partial).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        let bytes = file.metadata().map_err(failed)?.len();
        if replace {
            std::fs::rename(partial, path).map_err(failed)?;
        } else {
            // A link, unlike a rename, fails when `path` exists, so nothing is overwritten.
            let linked = std::fs::hard_link(partial, path);
            std::fs::remove_file(partial).map_err(failed)?;
            linked.map_err(failed)?;
        }
        Ok(bytes)
    }

    /// Whether this database is a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// A pooled, read-only connection for synchronous callers (tools, tests); the app uses
    /// [`Db::run`] and [`Db::read`]. Writes go through [`Db::write_blocking`].
    pub fn conn(&self) -> Result<PooledConnection<Manager>, DbError> {
        self.pooled()
    }

    /// Runs the read-only `f` with a pooled connection on a blocking thread, so neither the
    /// query nor the wait for a connection ever occupies an async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut pooled = db.pooled()?;
            let result = f(&mut pooled);
            pooled.checked(result)
        })
        .await?
    }

    /// Runs `f`'s writes in one transaction on a blocking thread and commits them: `Ok` only
    /// when the `COMMIT` succeeded, so an answer built on it never acknowledges a write the
    /// database rolled back. On SQLite, `BEGIN IMMEDIATE` takes the write lock first (a
    /// deferred transaction that reads, then writes, could fail with BUSY at once under WAL,
    /// whatever the busy timeout). The commit is as durable as `database_synchronous` says.
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
        let mut pooled = self.pooled()?;
        let result = in_transaction(&mut pooled, synchronous, f);
        pooled.checked(result)
    }

    /// Runs the read-only `f` inline when a pooled SQLite connection is free at once,
    /// otherwise as [`Db::run`] does. A read by index under WAL takes microseconds and never
    /// waits for a writer, which is less than the hand-off to a blocking thread and back costs
    /// (most of a profile request's CPU time; see BENCHMARKS.md); waiting for a connection, for
    /// the write lock or for a server's answer would block the async worker, so those never
    /// happen here (PostgreSQL always goes through [`Db::run`]). Only for lookups by key.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        if self.is_postgres() {
            return self.run(f).await;
        }
        match self.pool.try_get() {
            Some(mut pooled) => {
                let result = f(&mut pooled);
                pooled.checked(result)
            }
            None => self.run(f).await,
        }
    }
}

/// Runs `f` in a write transaction on `conn` and commits it; rolls back on any error.
fn in_transaction<T>(
    conn: &mut AnyConnection,
    synchronous: Synchronous,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let (begin, end) = match (&*conn, synchronous) {
        (AnyConnection::Sqlite(_), Synchronous::Full) => (
            "PRAGMA query_only = OFF; PRAGMA synchronous = FULL; BEGIN IMMEDIATE;",
            "PRAGMA query_only = ON;",
        ),
        (AnyConnection::Sqlite(_), Synchronous::Normal) => (
            "PRAGMA query_only = OFF; PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE;",
            "PRAGMA query_only = ON;",
        ),
        (AnyConnection::Postgresql(_), Synchronous::Full) => {
            ("BEGIN READ WRITE; SET LOCAL synchronous_commit = on;", "")
        }
        (AnyConnection::Postgresql(_), Synchronous::Normal) => {
            ("BEGIN READ WRITE; SET LOCAL synchronous_commit = off;", "")
        }
    };
    if let Err(error) = conn.batch_execute(begin) {
        // SQLite may have turned writing on before BEGIN failed; turn it off again.
        let _ = conn.batch_execute(end);
        return Err(error.into());
    }
    let result = f(&mut Tx(conn)).and_then(|value| {
        conn.batch_execute("COMMIT")?;
        Ok(value)
    });
    if result.is_err() {
        // A failed statement or COMMIT may have ended the transaction already; if the ROLLBACK
        // fails too, the connection is replaced (the caller sees the first error).
        let _ = conn.batch_execute("ROLLBACK");
    }
    // Setting a flag, no I/O: it cannot fail short of memory running out, and the writes are
    // committed either way, so their result stands.
    if let Err(error) = conn.batch_execute(end) {
        log::error!(target: "auth_service::db", "a connection stays writable: {error}");
    }
    result
}

/// The smallest write that reaches the storage and stores nothing new: on SQLite the header's
/// `user_version` rewritten with its own value (one page into the log, not synced at
/// `synchronous = NORMAL`), on PostgreSQL a transaction id taken (a commit record). It fails
/// when the file was opened read-only, the file system went read-only, or the server is a
/// standby.
fn write_probe(tx: &mut Tx<'_>) -> Result<(), DbError> {
    #[derive(diesel::QueryableByName)]
    struct UserVersion {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        user_version: i32,
    }
    match &mut **tx {
        AnyConnection::Sqlite(_) => {
            let version =
                diesel::sql_query("PRAGMA user_version").get_result::<UserVersion>(&mut **tx)?;
            tx.batch_execute(&format!("PRAGMA user_version = {}", version.user_version))?;
        }
        AnyConnection::Postgresql(_) => tx.batch_execute("SELECT txid_current()")?,
    }
    Ok(())
}

/// Why the operating system refuses to write the SQLite file `path`, if it does: a mode
/// without write permission for this user, or a read-only file system.
fn unwritable(path: &str) -> Option<String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .err()
        .map(|error| error.to_string())
}

/// The versions of the migrations in `source`.
fn versions<B: diesel::backend::Backend>(
    source: &dyn diesel::migration::MigrationSource<B>,
) -> Vec<String> {
    source
        .migrations()
        .unwrap_or_default()
        .iter()
        .map(|m| m.name().version().to_string())
        .collect()
}

/// Applies pending migrations: on SQLite with the file switched to WAL (a property of the file,
/// set once here: switching it from several new connections at once would make them fight for
/// the lock); on PostgreSQL under a session advisory lock, so that a second instance starting at
/// once waits for the first one's migrations and then finds none pending.
fn migrate(target: &Target) -> Result<(), DbError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    let opened = |e: diesel::ConnectionError| DbError::Open(e.to_string());
    match target {
        Target::Sqlite(filename) => {
            let mut setup = SqliteConnection::establish(filename).map_err(opened)?;
            setup.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
            setup
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(failed)?;
        }
        Target::Postgres(url) => {
            let mut setup = PgConnection::establish(url).map_err(opened)?;
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            setup.batch_execute(&lock)?;
            let migrated = setup.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop);
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            setup.batch_execute(&unlock)?;
            migrated.map_err(failed)?;
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch, the unit of every timestamp column (UTC on both backends).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::db::scratch::Scratch;

    /// A freshly migrated database on the test run's backend (`TEST_DATABASE_URL`), with a
    /// temporary directory; both go with the guard.
    pub fn temp_db() -> (Db, Scratch) {
        let scratch = Scratch::new();
        let db = Db::open(scratch.url(), &Options::default()).unwrap();
        (db, scratch)
    }

    /// A freshly migrated SQLite database, whatever the test run's backend: for what is
    /// SQLite's own (pragmas, query plans, the file).
    pub fn sqlite_db() -> (Db, tempfile::TempDir) {
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
    pub fn conn(db: &Db) -> PooledConnection<Manager> {
        db.conn().unwrap()
    }

    /// What a test session records: its public id is the digest's first byte.
    pub fn new_session(user_id: i32, digest: &[u8]) -> crate::db::sessions::NewSession<'_> {
        crate::db::sessions::NewSession {
            user_id,
            token_digest: digest,
            public_id: PUBLIC_IDS[usize::from(digest[0])],
            user_agent: Some("Test on Linux"),
            address: Some("192.0.2.1"),
            device_digest: None,
        }
    }

    const PUBLIC_IDS: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];

    /// Records a test session for `user_id` with this digest.
    pub fn session(tx: &mut Tx<'_>, user_id: i32, digest: &[u8]) -> crate::db::Session {
        crate::db::sessions::add_session(tx, &new_session(user_id, digest)).unwrap()
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
        let (db, _dir) = sqlite_db();
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<Row>(&mut **conn(&db))
            .unwrap()
            .into_iter()
            .map(|r| r.detail)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn not_ready_while_no_write_can_succeed() {
        use diesel::connection::SimpleConnection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let path = path.to_str().unwrap();
        let options = super::Options {
            access: super::Access::Shared,
            timeout: std::time::Duration::from_millis(300),
            ..super::Options::default()
        };
        let db = super::Db::open(path, &options).unwrap();
        db.ready().unwrap();
        let mut other = diesel::SqliteConnection::establish(path).unwrap();
        other.batch_execute("BEGIN IMMEDIATE").unwrap();
        let error = db.ready().unwrap_err().to_string();
        assert!(error.contains("database is locked"), "{error}");
        other.batch_execute("ROLLBACK").unwrap();
        db.ready().unwrap();
    }

    #[test]
    fn every_pooled_sqlite_connection_has_the_pragmas() {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            v: i64,
        }
        let (db, _dir) = sqlite_db();
        let mut held = conn(&db);
        let c: &mut super::AnyConnection = &mut held;
        let one = |c: &mut super::AnyConnection, sql: &str| {
            diesel::sql_query(sql).get_result::<Value>(c).unwrap().v
        };
        assert_eq!(
            one(c, "SELECT foreign_keys AS v FROM pragma_foreign_keys"),
            1
        );
        assert_eq!(
            one(c, "SELECT timeout AS v FROM pragma_busy_timeout"),
            5000,
            "database_timeout_secs"
        );
        assert_eq!(one(c, "SELECT query_only AS v FROM pragma_query_only"), 1);
        #[derive(QueryableByName)]
        struct Mmap {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            mmap_size: i64,
        }
        let mmap = diesel::sql_query("PRAGMA mmap_size").get_result::<Mmap>(c);
        assert_eq!(mmap.unwrap().mmap_size, 64 << 20);
        #[derive(QueryableByName)]
        struct Mode {
            #[diesel(sql_type = Text)]
            journal_mode: String,
        }
        let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(c);
        assert_eq!(mode.unwrap().journal_mode, "wal");
    }

    #[rocket::async_test]
    async fn a_read_runs_inline_when_a_connection_is_free_and_waits_off_the_worker_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.db");
        let db = super::Db::open(path.to_str().unwrap(), &options(1)).unwrap();
        let thread = |_: &mut super::AnyConnection| Ok(std::thread::current().id());
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
        let mut held = conn(&db);
        let c: &mut super::AnyConnection = &mut held;
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
        find_session(c, b"digest", 10, lifetimes).unwrap();
        find_user_by_id(c, 1).unwrap();
        find_user_by_email(c, "a@b.c").unwrap();
        find_user_by_reset_token(c, b"digest", 10).unwrap();
        crate::db::throttle_events::count_events_since(c, "login", "a@b.c", 0).unwrap();

        let queries = queries.lock().unwrap();
        assert_eq!(queries.len(), 5);
        for query in queries.iter() {
            assert!(!query.contains("LIMIT"), "{query}");
        }
    }

    #[test]
    fn the_database_its_log_and_its_backups_are_private_and_a_backup_replaces_only_when_asked() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let options = super::Options {
            access: super::Access::Shared,
            ..options(2)
        };
        let db = super::Db::open(path.to_str().unwrap(), &options).unwrap();
        write(&db, |tx| crate::db::users::add_user(tx, "a@b.c", "h"));
        let copy = dir.path().join("copy.db");
        db.backup_into(&copy, false).unwrap();
        for file in ["auth.db", "auth.db-wal", "auth.db-shm", "copy.db"] {
            assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
        }
        std::fs::write(&copy, "kept").unwrap();
        let refused = db.backup_into(&copy, false).unwrap_err().to_string();
        assert!(refused.contains("File exists"), "{refused}");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "kept");
        assert!(!dir.path().join("copy.partial").exists());
        db.backup_into(&copy, true).unwrap();
        assert_ne!(std::fs::read(&copy).unwrap(), b"kept");
        assert_eq!(mode(&copy), 0o600);

        let someones = dir.path().join("copy.partial");
        std::fs::write(&someones, "not ours").unwrap();
        db.backup_into(&dir.path().join("again.db"), false).unwrap();
        assert_eq!(std::fs::read_to_string(&someones).unwrap(), "not ours");
        let spelled = dir.path().join(".").join("auth.db");
        for own in [path.clone(), spelled, dir.path().join("auth.db-wal")] {
            let refused = db.backup_into(&own, true).unwrap_err().to_string();
            assert!(refused.contains("that is the database itself"), "{refused}");
        }
        let user = crate::db::users::find_user_by_email(&mut conn(&db), "a@b.c").unwrap();
        assert!(user.is_some(), "the database is untouched");
        let partials = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".partial")
            })
            .count();
        assert_eq!(partials, 1, "only someone else's");
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

    /// A SQLite file at `path` migrated up to, not including, the migration named `…{name}`,
    /// holding what `rows` inserts.
    fn migrated_before(path: &std::path::Path, name: &str, rows: &str) {
        use diesel::connection::SimpleConnection;
        use diesel::migration::MigrationSource;
        use diesel::sqlite::Sqlite;
        use diesel_migrations::MigrationHarness;

        let mut old = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let migrations = MigrationSource::<Sqlite>::migrations(&super::SQLITE_MIGRATIONS).unwrap();
        let before = migrations
            .iter()
            .position(|m| m.name().to_string().ends_with(name))
            .unwrap();
        for _ in 0..before {
            old.run_next_migration(super::SQLITE_MIGRATIONS).unwrap();
        }
        old.batch_execute(rows).unwrap();
    }

    #[test]
    fn sessions_made_before_the_digest_key_migration_survive_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        migrated_before(
            &path,
            "sessions_keyed_by_digest",
            "INSERT INTO users (id, email, hashed_password, created_at) VALUES (7, 'a@b.c', 'h', 1);
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at)
                 VALUES (x'0101', 7, 100, 200);",
        );

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
    fn rows_from_before_account_self_service_get_public_ids_and_count_as_verified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        migrated_before(
            &path,
            "account_self_service",
            "INSERT INTO users (id, email, hashed_password, created_at) VALUES (7, 'a@b.c', 'h', 5);
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at)
                 VALUES (x'0101', 7, 100, 200), (x'0202', 7, 100, 200);",
        );

        let db = super::Db::open(path.to_str().unwrap(), &options(1)).unwrap();
        let lifetimes = crate::db::sessions::Lifetimes {
            idle: 1000,
            absolute: 1000,
        };
        let listed = crate::db::sessions::live_sessions(&mut conn(&db), 7, 300, lifetimes).unwrap();
        assert_eq!(listed.len(), 2);
        assert_ne!(listed[0].public_id, listed[1].public_id);
        assert!(
            listed
                .iter()
                .all(|s| s.public_id.len() == 32 && s.user_agent.is_none())
        );
        let user = crate::db::users::find_user_by_id(&mut conn(&db), 7)
            .unwrap()
            .unwrap();
        assert_eq!(
            user.email_verified_at,
            Some(5),
            "verified since its creation"
        );
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
            "DELETE FROM sessions WHERE user_id = 1 AND public_id = 'x'",
            "SELECT * FROM account_tokens WHERE token_hash = x'00'",
            "DELETE FROM account_tokens WHERE user_id = 1",
            "SELECT token_hash FROM devices WHERE user_id = 1",
        ] {
            let plan = plan(sql);
            assert!(!plan.contains("SCAN"), "{sql} scans: {plan}");
            assert!(plan.contains("USING"), "{sql}: {plan}");
        }
    }
}
