//! The shared connection pool: opening the database (migrating it, checking it takes writes),
//! pooled connections that are replaced once they report the database unavailable, and the
//! read paths ([`Db::run`], [`Db::read`], and [`Db::live_session`] through the session cache).
//! Writes are in `tx.rs`, backups in `backup.rs`.
//!
//! Lookups by a unique key use `get_result`, never `first`: `first` adds `LIMIT ?`, and SQLite
//! re-prepares a statement whenever a bound `LIMIT` is bound again, so Diesel's cached statement
//! would be parsed and planned anew on every request.

use std::sync::Arc;
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};

use super::DbError;
use super::connect::{AnyConnection, Options, Synchronous, Target};
use super::migrate::{embedded_versions, migrate};
use super::session_cache::{Lookup, SessionCache};
use super::sessions::{self, Lifetimes, Session};
use super::tx::{Tx, in_transaction};
use super::users::User;
use crate::metrics::Metrics;

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
    pub(super) fn checked<T>(&mut self, result: Result<T, DbError>) -> Result<T, DbError> {
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

/// The shared connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub(super) pool: Pool<Manager>,
    /// How durable a commit of [`Db::write`] is.
    pub(super) synchronous: Synchronous,
    /// Whether the pool's connections go to a PostgreSQL server (over the network).
    pub(super) postgres: bool,
    /// Where waits for a pooled connection and session lookups are reported.
    pub(super) metrics: Metrics,
    /// This instance's cache of live sessions (`None`: off).
    pub(super) sessions: Option<Arc<SessionCache>>,
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
            sessions: options
                .session_cache
                .map(|bound| Arc::new(SessionCache::new(bound))),
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
    pub(super) fn pooled(&self) -> Result<PooledConnection<Manager>, DbError> {
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
        let embedded = embedded_versions(self.postgres);
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
        let (result, stale) = in_transaction(&mut pooled, synchronous, f);
        if let Some(cache) = &self.sessions {
            cache.forget(&stale.users, &stale.sessions);
        }
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

    /// The live session with this digest at `at`, with its account: from this instance's
    /// session cache when it holds it and is fresh, otherwise from the database (then cached).
    pub async fn live_session(
        &self,
        digest: Vec<u8>,
        at: i64,
        lifetimes: Lifetimes,
    ) -> Result<Option<(Session, User)>, DbError> {
        let key = digest.clone();
        let read = self.read(move |c| sessions::find_session(c, &key, at, lifetimes));
        let Some(cache) = self.sessions.clone() else {
            return read.await;
        };
        let looked_up = cache.lookup(&digest, at, lifetimes);
        if let Some(claim) = cache.claim_poll() {
            let db = self.clone();
            tokio::spawn(async move {
                let polled = db.run(move |c| claim.cache().poll(c)).await;
                if let Err(error) = polled {
                    log::warn!(target: "auth_service::db", "the session cache could not poll revocations: {error}");
                }
            });
        }
        let generation = match looked_up {
            Lookup::Hit(found) => {
                self.metrics.session_cache(true);
                return Ok(Some(*found));
            }
            Lookup::Miss(generation) => generation,
        };
        self.metrics.session_cache(false);
        let found = read.await?;
        if let (Some(found), Some(generation)) = (&found, generation) {
            cache.insert(digest, found, generation);
        }
        Ok(found)
    }
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

#[cfg(test)]
mod tests {
    use crate::db::testing::*;
    use diesel::prelude::*;

    #[test]
    fn not_ready_while_no_write_can_succeed() {
        use diesel::connection::SimpleConnection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let path = path.to_str().unwrap();
        let options = crate::db::Options {
            access: crate::db::Access::Shared,
            timeout: std::time::Duration::from_millis(300),
            ..crate::db::Options::default()
        };
        let db = crate::db::Db::open(path, &options).unwrap();
        db.ready().unwrap();
        let mut other = diesel::SqliteConnection::establish(path).unwrap();
        other.batch_execute("BEGIN IMMEDIATE").unwrap();
        let error = db.ready().unwrap_err().to_string();
        assert!(error.contains("database is locked"), "{error}");
        other.batch_execute("ROLLBACK").unwrap();
        db.ready().unwrap();
    }

    #[rocket::async_test]
    async fn a_read_runs_inline_when_a_connection_is_free_and_waits_off_the_worker_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.db");
        let db = crate::db::Db::open(path.to_str().unwrap(), &options(1)).unwrap();
        let thread = |_: &mut crate::db::AnyConnection| Ok(std::thread::current().id());
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
        use crate::db::account_tokens::{Purpose, find};
        use crate::db::sessions::{Lifetimes, find_session};
        use crate::db::users::{find_user_by_email, find_user_by_id};
        use diesel::connection::{Connection, InstrumentationEvent};
        use std::sync::{Arc, Mutex};

        let (db, _dir) = temp_db();
        let mut held = conn(&db);
        let c: &mut crate::db::AnyConnection = &mut held;
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
        find(c, b"digest", Purpose::Reset, 10).unwrap();
        crate::db::throttle_events::count_events_since(c, "login", "a@b.c", 0).unwrap();

        let queries = queries.lock().unwrap();
        assert_eq!(queries.len(), 5);
        for query in queries.iter() {
            assert!(!query.contains("LIMIT"), "{query}");
        }
    }
}
