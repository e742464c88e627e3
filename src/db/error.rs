//! The data layer's one error type, and how Diesel's and r2d2's errors map to it: a database
//! that cannot take a change right now ([`DbError::Unavailable`]) apart from one that is broken.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Errors of the data layer. "No such row" is distinct from a failing database, and a database
/// that cannot take a change right now ([`DbError::Unavailable`]) from one that is broken.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no such record")]
    NotFound,
    #[error("email already registered")]
    EmailTaken,
    /// A passkey's credential id is registered already (to this account or another).
    #[error("credential already registered")]
    CredentialTaken,
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
    pub(super) fn unique_as(error: DieselError, taken: DbError) -> DbError {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => taken,
            other => other.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DbError;

    #[test]
    fn storage_failures_are_unavailable_and_other_errors_are_not() {
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
}
