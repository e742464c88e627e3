//! Opening a connection to either backend: what `database_url` names, the `database_*` options,
//! and the per-connection settings (SQLite's pragmas, PostgreSQL's timeouts). What differs
//! between the backends when connecting is here and nowhere else.

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

/// A connection to either backend; every query function takes it (or a [`Tx`] around it).
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
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
    /// How stale a session read from this instance's cache may be (`session_cache_ms`);
    /// `None`: no cache, every lookup is a query.
    pub session_cache: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pool_size: 8,
            access: Access::Exclusive,
            synchronous: Synchronous::Full,
            timeout: Duration::from_secs(5),
            session_cache: Some(Duration::from_secs(1)),
        }
    }
}

/// What the pool connects to, ready to connect.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// The SQLite filename (a `file:` URI when exclusive).
    Sqlite(String),
    /// The PostgreSQL URL, with connect and TCP timeouts added unless it sets its own.
    Postgres(String),
}

impl Target {
    pub(super) fn new(database_url: &str, options: &Options) -> Target {
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
    pub(super) fn connect(
        &self,
        timeout: Duration,
    ) -> Result<AnyConnection, diesel::ConnectionError> {
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

#[cfg(test)]
mod tests {
    use crate::db::testing::*;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[test]
    fn every_pooled_sqlite_connection_has_the_pragmas() {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            v: i64,
        }
        let (db, _dir) = sqlite_db();
        let mut held = conn(&db);
        let c: &mut crate::db::AnyConnection = &mut held;
        let one = |c: &mut crate::db::AnyConnection, sql: &str| {
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

    #[test]
    fn exclusive_access_keeps_the_wal_index_in_memory_and_shared_access_uses_a_shm_file() {
        use crate::db::{Access, Db};
        let dir = tempfile::tempdir().unwrap();
        for (name, access, shm) in [
            ("excl.db", Access::Exclusive, false),
            ("shared.db", Access::Shared, true),
        ] {
            let path = dir.path().join(name);
            let options = crate::db::Options {
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
        use crate::db::Db;
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
}
