//! Embedded migrations, one folder per backend (`migrations/sqlite`, `migrations/postgres`),
//! applied when the database is opened.

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbError;
use super::connect::Target;

pub(super) const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub(super) const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Names the session-level advisory lock that serializes migrations on PostgreSQL, so that
/// instances starting at once against a fresh database run them one after the other.
const MIGRATION_LOCK: i64 = 0x6175_7468_5f73_7663; // "auth_svc"

/// The versions of the migrations this binary embeds for the backend (`postgres` or SQLite).
pub(super) fn embedded_versions(postgres: bool) -> Vec<String> {
    match postgres {
        true => versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS),
        false => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
    }
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
pub(super) fn migrate(target: &Target) -> Result<(), DbError> {
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

#[cfg(test)]
mod tests {
    use crate::db::testing::*;
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

    /// Lifetimes under which the sessions the migration tests store are live at 300.
    const LIFETIMES: crate::db::sessions::Lifetimes = crate::db::sessions::Lifetimes {
        idle: 1000,
        absolute: 1000,
    };

    /// A SQLite database that held account 7 (`a@b.c`, created at `created_at`) and its
    /// sessions `digests` (SQL literals; created at 100, last seen at 200) under the migrations
    /// before the one named `…{name}`, then opened by the service (so migrated to the last).
    fn opened_after(
        name: &str,
        created_at: i64,
        digests: &[&str],
    ) -> (crate::db::Db, tempfile::TempDir) {
        let sessions: Vec<String> = digests
            .iter()
            .map(|digest| format!("({digest}, 7, 100, 200)"))
            .collect();
        let rows = format!(
            "INSERT INTO users (id, email, hashed_password, created_at)
                 VALUES (7, 'a@b.c', 'h', {created_at});
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at) VALUES {};",
            sessions.join(", ")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let path = path.to_str().unwrap();
        sqlite_migrated_before(path, name, &rows);
        (crate::db::Db::open(path, &options(1)).unwrap(), dir)
    }

    #[test]
    fn sessions_made_before_the_digest_key_migration_survive_it() {
        let (db, _dir) = opened_after("sessions_keyed_by_digest", 1, &["x'0101'"]);
        let (session, user) =
            crate::db::sessions::find_session(&mut conn(&db), &[1, 1], 300, LIFETIMES)
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
        let (db, _dir) = opened_after("account_self_service", 5, &["x'0101'", "x'0202'"]);
        let listed = crate::db::sessions::live_sessions(&mut conn(&db), 7, 300, LIFETIMES).unwrap();
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
    fn lookups_by_email_and_token_hashes_use_indexes() {
        for sql in [
            "SELECT * FROM users WHERE email = 'a@b.c'",
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

    /// The down migration of the move of reset tokens into `account_tokens` puts a live token
    /// back on `users`, and the move applied again carries it back, on the test run's backend.
    #[test]
    fn a_live_reset_token_survives_reverting_and_reapplying_its_move_to_account_tokens() {
        use crate::db::account_tokens::{NewToken, Purpose, find, issue};
        use crate::db::{AnyConnection, now};

        #[derive(QueryableByName)]
        struct Old {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
            reset_token: Option<Vec<u8>>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            reset_token_expires_at: Option<i64>,
        }
        let (db, scratch) = temp_db();
        let expires_at = now() + 60;
        let user = write(&db, |tx| {
            let user = crate::db::users::add_user(tx, "a@b.c", "h")?;
            let token = NewToken {
                user_id: user.id,
                purpose: Purpose::Reset,
                token_digest: &[3u8; 32],
                new_email: None,
                expires_at,
                credential_version: user.credential_version,
            };
            issue(tx, &token)?;
            Ok(user)
        });
        drop(db);

        revert_through(&scratch, "reset_tokens_in_account_tokens");
        let mut raw = AnyConnection::establish(scratch.url()).unwrap();
        let old = diesel::sql_query("SELECT reset_token, reset_token_expires_at FROM users")
            .get_result::<Old>(&mut raw)
            .unwrap();
        assert_eq!(
            (old.reset_token, old.reset_token_expires_at),
            (Some(vec![3u8; 32]), Some(expires_at))
        );
        drop(raw);

        let db = crate::db::Db::open(scratch.url(), &options(1)).unwrap();
        let (token, owner) = find(&mut conn(&db), &[3u8; 32], Purpose::Reset, now())
            .unwrap()
            .unwrap();
        assert_eq!((token.expires_at, owner.id), (expires_at, user.id));
    }
}
