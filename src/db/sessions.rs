//! The `sessions` table: one row per logged-in device, keyed by the SHA-256 of its cookie value.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::schema::{sessions, users};
use super::{DbError, User, now};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(table_name = sessions, belongs_to(User), check_for_backend(diesel::sqlite::Sqlite))]
pub struct Session {
    pub id: i32,
    pub token_hash: Vec<u8>,
    pub user_id: i32,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Records a new session for `user_id`; a missing user is [`DbError::NotFound`].
pub fn add_session(
    conn: &mut SqliteConnection,
    user_id: i32,
    token_digest: &[u8],
) -> Result<Session, DbError> {
    let at = now();
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_digest),
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(at),
            sessions::last_seen_at.eq(at),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => DbError::NotFound,
            other => DbError::Query(other),
        })
}

/// The session with this token digest, joined with its user.
pub fn find_session(
    conn: &mut SqliteConnection,
    token_digest: &[u8],
) -> Result<Option<(Session, User)>, DbError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_digest))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?)
}

/// Deletes the session with this token digest; `false` when there was none.
pub fn delete_session(conn: &mut SqliteConnection, token_digest: &[u8]) -> Result<bool, DbError> {
    let deleted = diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_digest)))
        .execute(conn)?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{conn, temp_db};
    use crate::db::users::add_user;

    #[test]
    fn a_session_is_found_with_its_user_until_deleted() {
        let (db, _dir) = temp_db();
        let c = &mut conn(&db);
        let user = add_user(c, "a@b.com", "h").unwrap();
        let session = add_session(c, user.id, &[1u8; 32]).unwrap();
        assert_eq!(session.created_at, session.last_seen_at);

        let (found, owner) = find_session(c, &[1u8; 32]).unwrap().unwrap();
        assert_eq!((found, owner), (session, user));
        assert_eq!(find_session(c, &[2u8; 32]).unwrap(), None);

        assert!(delete_session(c, &[1u8; 32]).unwrap());
        assert!(!delete_session(c, &[1u8; 32]).unwrap());
        assert_eq!(find_session(c, &[1u8; 32]).unwrap(), None);
    }

    #[test]
    fn deleting_one_session_keeps_the_others() {
        let (db, _dir) = temp_db();
        let c = &mut conn(&db);
        let user = add_user(c, "a@b.com", "h").unwrap();
        add_session(c, user.id, &[1u8; 32]).unwrap();
        add_session(c, user.id, &[2u8; 32]).unwrap();
        delete_session(c, &[1u8; 32]).unwrap();
        assert!(find_session(c, &[2u8; 32]).unwrap().is_some());
    }

    #[test]
    fn a_session_for_a_missing_user_is_not_found() {
        let (db, _dir) = temp_db();
        assert!(matches!(
            add_session(&mut conn(&db), 99, &[1u8; 32]),
            Err(DbError::NotFound)
        ));
    }
}
