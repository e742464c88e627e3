//! Helpers of the data layer's unit tests.

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::r2d2::PooledConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use super::migrate::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use super::users::add_user;
use super::{Db, DbError, Manager, Options, Tx, User};
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

/// A fresh [`temp_db`] holding one account, `a@b.com`.
pub fn db_with_user() -> (Db, Scratch, User) {
    let (db, scratch) = temp_db();
    let user = write(&db, |tx| add_user(tx, "a@b.com", "h"));
    (db, scratch, user)
}

/// Runs `f` in a committed write transaction on a fresh [`temp_db`], for a test that needs
/// nothing else of the database.
pub fn in_temp_db(f: impl FnOnce(&mut Tx<'_>) -> Result<(), DbError>) {
    let (db, _dir) = temp_db();
    write(&db, f)
}

/// Runs `f` in a committed write transaction on a fresh [`db_with_user`], with its account.
pub fn in_db_with_user(f: impl FnOnce(&mut Tx<'_>, User) -> Result<(), DbError>) {
    let (db, _dir, user) = db_with_user();
    write(&db, |tx| f(tx, user))
}

/// Two accounts, Ann's and Bob's: for what one account's owner may not do to the other's.
pub fn ann_and_bob(tx: &mut Tx<'_>) -> Result<(User, User), DbError> {
    Ok((
        add_user(tx, "ann@b.com", "h")?,
        add_user(tx, "bob@b.com", "h")?,
    ))
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
        amr: "pwd",
    }
}

const PUBLIC_IDS: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];

/// Records a test session for `user_id` with this digest.
pub fn session(tx: &mut Tx<'_>, user_id: i32, digest: &[u8]) -> crate::db::Session {
    crate::db::sessions::add_session(tx, &new_session(user_id, digest)).unwrap()
}

/// How many mailed links of `purpose` (`"reset"`, `"verify"`, `"email"`) are stored.
pub fn stored_links(db: &Db, purpose: &str) -> i64 {
    use crate::db::schema::account_tokens as tokens;
    use diesel::prelude::*;
    tokens::table
        .filter(tokens::purpose.eq(purpose))
        .count()
        .get_result(&mut **conn(db))
        .unwrap()
}

/// Makes the session with this digest look unused since `last_seen_at`.
pub fn set_last_seen(db: &Db, digest: &[u8], last_seen_at: i64) {
    use crate::db::schema::sessions;
    use diesel::prelude::*;
    write(db, |tx| {
        Ok(diesel::update(sessions::table.find(digest))
            .set(sessions::last_seen_at.eq(last_seen_at))
            .execute(&mut **tx)?)
    });
}

/// Runs `f` in a committed write transaction.
pub fn write<T>(db: &Db, f: impl FnOnce(&mut Tx<'_>) -> Result<T, DbError>) -> T {
    db.write_blocking(f).unwrap()
}

/// `scratch`'s database migrated up to, not including, the migration named `…{name}` (one
/// name on both backends), holding what `rows` inserts (SQL for the test run's backend).
pub fn migrated_before(scratch: &Scratch, name: &str, rows: &str) {
    if scratch.is_postgres() {
        let mut old = diesel::PgConnection::establish(scratch.url()).unwrap();
        run_before::<diesel::pg::Pg>(&mut old, || POSTGRES_MIGRATIONS, name);
        old.batch_execute(rows).unwrap();
    } else {
        sqlite_migrated_before(scratch.url(), name, rows);
    }
}

/// The SQLite file at `path` migrated up to, not including, the migration named `…{name}`,
/// holding what `rows` inserts, whatever the test run's backend: for SQLite's own history.
pub fn sqlite_migrated_before(path: &str, name: &str, rows: &str) {
    let mut old = diesel::SqliteConnection::establish(path).unwrap();
    run_before::<diesel::sqlite::Sqlite>(&mut old, || SQLITE_MIGRATIONS, name);
    old.batch_execute(rows).unwrap();
}

/// Reverts the migrations applied to `scratch`'s database down to, and including, the one named
/// `…{name}` (their `down.sql`).
pub fn revert_through(scratch: &Scratch, name: &str) {
    if scratch.is_postgres() {
        let mut conn = diesel::PgConnection::establish(scratch.url()).unwrap();
        revert::<diesel::pg::Pg>(&mut conn, || POSTGRES_MIGRATIONS, name);
    } else {
        let mut conn = diesel::SqliteConnection::establish(scratch.url()).unwrap();
        revert::<diesel::sqlite::Sqlite>(&mut conn, || SQLITE_MIGRATIONS, name);
    }
}

fn revert<B: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<B>,
    source: fn() -> EmbeddedMigrations,
    name: &str,
) {
    let (versions, named) = versions_and_position::<B>(&source(), name);
    while conn.revert_last_migration(source()).unwrap().to_string() != versions[named] {}
}

/// Runs the migrations of `source` that come before the one named `…{name}`.
fn run_before<B: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<B>,
    source: fn() -> EmbeddedMigrations,
    name: &str,
) {
    let (_, before) = versions_and_position::<B>(&source(), name);
    for _ in 0..before {
        conn.run_next_migration(source()).unwrap();
    }
}

/// The versions of the migrations in `source`, in order, and where the one named `…{name}` is.
fn versions_and_position<B: diesel::backend::Backend>(
    source: &EmbeddedMigrations,
    name: &str,
) -> (Vec<String>, usize) {
    let migrations = MigrationSource::<B>::migrations(source).unwrap();
    let position = migrations
        .iter()
        .position(|m| m.name().to_string().ends_with(name))
        .unwrap_or_else(|| panic!("no migration named …{name}"));
    let versions = migrations.iter().map(|m| m.name().version().to_string());
    (versions.collect(), position)
}

/// `bytes` as a literal of the test run's backend (`scratch`'s).
pub fn blob_literal(scratch: &Scratch, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match scratch.is_postgres() {
        true => format!("'\\x{hex}'::bytea"),
        false => format!("x'{hex}'"),
    }
}
