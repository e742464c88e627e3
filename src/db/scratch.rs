//! Throwaway databases for tests, the crate's own and its test binaries': a SQLite file in a
//! temporary directory, or, when `TEST_DATABASE_URL` names a PostgreSQL server, a schema of its
//! own on that server, so tests keep running in parallel. Either is removed when dropped. The
//! temporary directory exists on both backends, for a test's other files (mail, audit log).

use std::path::{Path, PathBuf};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use super::is_postgres_url;

/// The variable that picks the backend of a test run: unset (or a path), SQLite; a
/// `postgres://` URL, a schema per test on that server.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// One test's database and temporary directory.
pub struct Scratch {
    dir: PathBuf,
    url: String,
    /// The server and schema to drop, on PostgreSQL.
    schema: Option<(String, String)>,
}

impl Scratch {
    /// A new, empty database (migrations are applied when the service opens it).
    pub fn new() -> Scratch {
        let name = format!("auth_test_{:016x}", random());
        let dir = std::env::temp_dir().join(&name);
        crate::files::create_dir_all(&dir).expect("a temporary directory");
        match std::env::var(TEST_DATABASE_URL) {
            Ok(server) if is_postgres_url(&server) => {
                let mut admin = PgConnection::establish(&server)
                    .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL}: {e}"));
                admin
                    .batch_execute(&format!("CREATE SCHEMA {name}"))
                    .expect("a schema of its own");
                let separator = if server.contains('?') { '&' } else { '?' };
                let url = format!("{server}{separator}options=-csearch_path%3D{name}");
                Scratch {
                    dir,
                    url,
                    schema: Some((server, name)),
                }
            }
            _ => Scratch {
                url: dir.join("test.db").to_str().expect("UTF-8 path").to_owned(),
                dir,
                schema: None,
            },
        }
    }

    /// The `database_url` of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.schema.is_some()
    }

    /// The test's temporary directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.schema
            && let Ok(mut admin) = PgConnection::establish(server)
        {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {name} CASCADE"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 64 random bits, for names no other test picks.
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    u64::from_le_bytes(bytes)
}
