//! Backups of a SQLite database while the service runs (`VACUUM INTO`); PostgreSQL has its
//! own tools.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::r2d2::PooledConnection;

use super::connect::AnyConnection;
use super::pool::Manager;
use super::{Db, DbError};

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

impl Db {
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
}

#[cfg(test)]
mod tests {
    use crate::db::testing::*;

    #[test]
    fn the_database_its_log_and_its_backups_are_private_and_a_backup_replaces_only_when_asked() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let options = crate::db::Options {
            access: crate::db::Access::Shared,
            ..options(2)
        };
        let db = crate::db::Db::open(path.to_str().unwrap(), &options).unwrap();
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
}
