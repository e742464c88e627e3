//! What the service writes to disk holds password hashes, token digests and mailed links: every
//! file it creates is 0600 and every directory 0700, set at creation (so no umask widens them and
//! no moment exists when others could open them), and a release start refuses a database that
//! other users can reach.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` and its missing parents, each 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the new file `path`, 0600; an existing one is an error (`AlreadyExists`).
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Opens `path` for appending, created 0600 when missing.
pub fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `Err` naming the first of the SQLite file `database` and its directory that other users can
/// read, write or enter, with the `chmod` that fixes it.
pub fn check_private(database: &Path) -> Result<(), String> {
    let dir = match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    for path in [database, dir] {
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        if metadata.mode() & 0o007 != 0 {
            let kind = if metadata.is_dir() {
                "directory"
            } else {
                "file"
            };
            return Err(format!(
                "the database {kind} {} is open to other users (mode {:o}): run `chmod o-rwx {}`",
                path.display(),
                metadata.mode() & 0o777,
                path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_0600_and_directories_0700_whatever_the_umask() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("a/b");
        create_dir_all(&dir).unwrap();
        let (new, appended) = (dir.join("new"), dir.join("appended"));
        create_new(&new).unwrap();
        append(&appended).unwrap();
        assert_eq!(
            [work.path().join("a"), dir.clone(), new.clone(), appended].map(|p| mode(&p)),
            [0o700, 0o700, 0o600, 0o600]
        );
        assert_eq!(
            create_new(&new).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn a_database_others_can_reach_is_named_with_its_chmod() {
        let work = tempfile::tempdir().unwrap();
        let db = work.path().join("auth.db");
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private(&db).unwrap();
        std::fs::write(&db, "").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = check_private(&db).unwrap_err();
        let fix = format!("run `chmod o-rwx {}`", db.display());
        assert!(
            refused.contains("database file") && refused.ends_with(&fix),
            "{refused}"
        );
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        check_private(&db).unwrap();
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = check_private(&db).unwrap_err();
        let fix = format!("run `chmod o-rwx {}`", work.path().display());
        assert!(
            refused.contains("database directory") && refused.ends_with(&fix),
            "{refused}"
        );
    }
}
