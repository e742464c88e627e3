//! The OpenID Connect provider's tables: registered clients, signing keys, each account's
//! subject, the grants accounts gave, authorization codes and tokens (both by SHA-256 digest).
//! A code or refresh token is spent by a conditional write, so of two concurrent uses one
//! wins; the loser learns whether it was spent before, which the caller answers by revoking
//! what the first use issued (its `family`).

use diesel::prelude::*;

use super::schema::{oidc_clients, oidc_codes, oidc_grants, oidc_keys, oidc_subjects, oidc_tokens};
use super::{AnyConnection, DbError, Tx};

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_clients, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// The SHA-256 of a confidential client's secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// One per line.
    pub redirect_uris: String,
    /// One per line.
    pub post_logout_uris: String,
    /// The scopes it may ask for, space-separated.
    pub scopes: String,
    pub skip_consent: bool,
    pub pkce_optional: bool,
    pub id_token_alg: String,
    pub created_at: i64,
}

/// A signing key.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_keys, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    /// Sealed under `seal_key_id`.
    pub private_key: Vec<u8>,
    pub seal_key_id: String,
    pub created_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
}

/// An authorization code.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_codes, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Code {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: i32,
    pub redirect_uri: String,
    pub scopes: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// The public id of the session it was issued from (the ID token's `sid`).
    pub session_id: String,
    pub auth_time: i64,
    pub amr: String,
    /// What the code's exchange issues carries this id.
    pub family: String,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
}

/// An access or refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_tokens, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Token {
    pub token_hash: Vec<u8>,
    /// `access` or `refresh`.
    pub kind: String,
    pub family: String,
    pub client_id: String,
    pub user_id: i32,
    pub scopes: String,
    pub session_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
}

/// A grant, with its client's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub created_at: i64,
}

/// What spending a code or a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent<T> {
    /// Spent now, by this call.
    Now(T),
    /// Spent before: presented a second time.
    Before(T),
    /// Unknown or expired.
    Never,
}

pub fn add_client(tx: &mut Tx<'_>, client: &Client) -> Result<(), DbError> {
    diesel::insert_into(oidc_clients::table)
        .values(client)
        .execute(&mut **tx)?;
    Ok(())
}

pub fn find_client(conn: &mut AnyConnection, client_id: &str) -> Result<Option<Client>, DbError> {
    Ok(oidc_clients::table
        .find(client_id)
        .select(Client::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_clients(conn: &mut AnyConnection) -> Result<Vec<Client>, DbError> {
    Ok(oidc_clients::table
        .order(oidc_clients::created_at)
        .select(Client::as_select())
        .load(conn)?)
}

/// Removes a client (its grants, codes and tokens go with it); `false` when unknown.
pub fn remove_client(tx: &mut Tx<'_>, client_id: &str) -> Result<bool, DbError> {
    diesel::delete(oidc_tokens::table.filter(oidc_tokens::client_id.eq(client_id)))
        .execute(&mut **tx)?;
    diesel::delete(oidc_codes::table.filter(oidc_codes::client_id.eq(client_id)))
        .execute(&mut **tx)?;
    diesel::delete(oidc_grants::table.filter(oidc_grants::client_id.eq(client_id)))
        .execute(&mut **tx)?;
    let removed = diesel::delete(oidc_clients::table.find(client_id)).execute(&mut **tx)?;
    Ok(removed == 1)
}

/// Replaces a confidential client's secret; `false` when no such confidential client.
pub fn set_client_secret(
    tx: &mut Tx<'_>,
    client_id: &str,
    secret_hash: &[u8],
) -> Result<bool, DbError> {
    let updated = diesel::update(
        oidc_clients::table
            .find(client_id)
            .filter(oidc_clients::secret_hash.is_not_null()),
    )
    .set(oidc_clients::secret_hash.eq(secret_hash))
    .execute(&mut **tx)?;
    Ok(updated == 1)
}

/// Every signing key, newest first.
pub fn keys(conn: &mut AnyConnection) -> Result<Vec<SigningKey>, DbError> {
    Ok(oidc_keys::table
        .order((oidc_keys::created_at.desc(), oidc_keys::kid))
        .select(SigningKey::as_select())
        .load(conn)?)
}

/// Adds `key` as the current key of `alg`: with `replace`, the current one retires at the
/// key's creation; without, a current key of `alg` that exists already is kept and returned,
/// and `key` is not stored.
pub fn add_key(
    tx: &mut Tx<'_>,
    key: &SigningKey,
    alg: &str,
    replace: bool,
) -> Result<Option<SigningKey>, DbError> {
    let current = oidc_keys::table
        .filter(oidc_keys::alg.eq(alg))
        .filter(oidc_keys::retired_at.is_null());
    if replace {
        diesel::update(current)
            .set(oidc_keys::retired_at.eq(key.created_at))
            .execute(&mut **tx)?;
    } else if let Some(existing) = current
        .select(SigningKey::as_select())
        .first(&mut **tx)
        .optional()?
    {
        return Ok(Some(existing));
    }
    diesel::insert_into(oidc_keys::table)
        .values(key)
        .execute(&mut **tx)?;
    Ok(None)
}

/// `user_id`'s subject, stored as `fresh` if it has none yet.
pub fn subject(tx: &mut Tx<'_>, user_id: i32, fresh: &str) -> Result<String, DbError> {
    let row = (
        oidc_subjects::user_id.eq(user_id),
        oidc_subjects::subject.eq(fresh),
    );
    on_each_backend!(&mut **tx, |inner| {
        diesel::insert_into(oidc_subjects::table)
            .values(row)
            .on_conflict(oidc_subjects::user_id)
            .do_nothing()
            .execute(inner)?
    });
    Ok(oidc_subjects::table
        .find(user_id)
        .select(oidc_subjects::subject)
        .first(&mut **tx)?)
}

/// `user_id`'s subject, if it was ever given one.
pub fn find_subject(conn: &mut AnyConnection, user_id: i32) -> Result<Option<String>, DbError> {
    Ok(oidc_subjects::table
        .find(user_id)
        .select(oidc_subjects::subject)
        .first(conn)
        .optional()?)
}

/// The scopes `user_id` granted `client_id`.
pub fn find_grant(
    conn: &mut AnyConnection,
    user_id: i32,
    client_id: &str,
) -> Result<Option<String>, DbError> {
    Ok(oidc_grants::table
        .find((user_id, client_id))
        .select(oidc_grants::scopes)
        .first(conn)
        .optional()?)
}

/// Stores that `user_id` grants `client_id` `scopes` (replacing what it granted before).
pub fn set_grant(
    tx: &mut Tx<'_>,
    user_id: i32,
    client_id: &str,
    scopes: &str,
    now: i64,
) -> Result<(), DbError> {
    let row = (
        oidc_grants::user_id.eq(user_id),
        oidc_grants::client_id.eq(client_id),
        oidc_grants::scopes.eq(scopes),
        oidc_grants::created_at.eq(now),
    );
    on_each_backend!(&mut **tx, |inner| {
        diesel::insert_into(oidc_grants::table)
            .values(row)
            .on_conflict((oidc_grants::user_id, oidc_grants::client_id))
            .do_update()
            .set(oidc_grants::scopes.eq(scopes))
            .execute(inner)?
    });
    Ok(())
}

/// The applications `user_id` granted something, oldest first.
pub fn grants_of(conn: &mut AnyConnection, user_id: i32) -> Result<Vec<Grant>, DbError> {
    let rows: Vec<(String, String, String, i64)> = oidc_grants::table
        .inner_join(oidc_clients::table)
        .filter(oidc_grants::user_id.eq(user_id))
        .order((oidc_grants::created_at, oidc_grants::client_id))
        .select((
            oidc_grants::client_id,
            oidc_clients::name,
            oidc_grants::scopes,
            oidc_grants::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(client_id, client_name, scopes, created_at)| Grant {
            client_id,
            client_name,
            scopes,
            created_at,
        })
        .collect())
}

/// Withdraws `user_id`'s grant to `client_id` and every code and token it had of it;
/// `false` when there was no grant.
pub fn revoke_grant(tx: &mut Tx<'_>, user_id: i32, client_id: &str) -> Result<bool, DbError> {
    diesel::delete(
        oidc_tokens::table
            .filter(oidc_tokens::user_id.eq(user_id))
            .filter(oidc_tokens::client_id.eq(client_id)),
    )
    .execute(&mut **tx)?;
    diesel::delete(
        oidc_codes::table
            .filter(oidc_codes::user_id.eq(user_id))
            .filter(oidc_codes::client_id.eq(client_id)),
    )
    .execute(&mut **tx)?;
    let removed =
        diesel::delete(oidc_grants::table.find((user_id, client_id))).execute(&mut **tx)?;
    Ok(removed == 1)
}

/// Deletes every code and token of `user_id` (a credential changed, an operator revoked).
pub fn delete_tokens_of(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, DbError> {
    diesel::delete(oidc_codes::table.filter(oidc_codes::user_id.eq(user_id))).execute(&mut **tx)?;
    Ok(
        diesel::delete(oidc_tokens::table.filter(oidc_tokens::user_id.eq(user_id)))
            .execute(&mut **tx)?,
    )
}

pub fn add_code(tx: &mut Tx<'_>, code: &Code) -> Result<(), DbError> {
    diesel::insert_into(oidc_codes::table)
        .values(code)
        .execute(&mut **tx)?;
    Ok(())
}

/// The account the code `code_hash` was issued for, whatever its state.
pub fn code_owner(conn: &mut AnyConnection, code_hash: &[u8]) -> Result<Option<i32>, DbError> {
    Ok(oidc_codes::table
        .find(code_hash)
        .select(oidc_codes::user_id)
        .first(conn)
        .optional()?)
}

/// The account the token `token_hash` was issued for, whatever its state.
pub fn token_owner(conn: &mut AnyConnection, token_hash: &[u8]) -> Result<Option<i32>, DbError> {
    Ok(oidc_tokens::table
        .find(token_hash)
        .select(oidc_tokens::user_id)
        .first(conn)
        .optional()?)
}

/// Spends the code `code_hash`: one conditional `UPDATE`, so only one use gets it.
pub fn spend_code(tx: &mut Tx<'_>, code_hash: &[u8], now: i64) -> Result<Spent<Code>, DbError> {
    let spent = diesel::update(
        oidc_codes::table
            .find(code_hash)
            .filter(oidc_codes::spent_at.is_null())
            .filter(oidc_codes::expires_at.gt(now)),
    )
    .set(oidc_codes::spent_at.eq(now))
    .returning(oidc_codes::all_columns)
    .get_result(&mut **tx)
    .optional()?;
    if let Some(code) = spent {
        return Ok(Spent::Now(code));
    }
    let before = oidc_codes::table
        .find(code_hash)
        .filter(oidc_codes::spent_at.is_not_null())
        .select(Code::as_select())
        .first(&mut **tx)
        .optional()?;
    Ok(before.map_or(Spent::Never, Spent::Before))
}

pub fn add_token(tx: &mut Tx<'_>, token: &Token) -> Result<(), DbError> {
    diesel::insert_into(oidc_tokens::table)
        .values(token)
        .execute(&mut **tx)?;
    Ok(())
}

/// The live (unspent, unexpired) token `token_hash` of `kind`.
pub fn find_token(
    conn: &mut AnyConnection,
    token_hash: &[u8],
    kind: &str,
    now: i64,
) -> Result<Option<Token>, DbError> {
    Ok(oidc_tokens::table
        .find(token_hash)
        .filter(oidc_tokens::kind.eq(kind))
        .filter(oidc_tokens::spent_at.is_null())
        .filter(oidc_tokens::expires_at.gt(now))
        .select(Token::as_select())
        .first(conn)
        .optional()?)
}

/// Spends the refresh token `token_hash`, as [`spend_code`] spends a code.
pub fn spend_refresh(
    tx: &mut Tx<'_>,
    token_hash: &[u8],
    now: i64,
) -> Result<Spent<Token>, DbError> {
    let kind = oidc_tokens::kind.eq("refresh");
    let spent = diesel::update(
        oidc_tokens::table
            .find(token_hash)
            .filter(kind)
            .filter(oidc_tokens::spent_at.is_null())
            .filter(oidc_tokens::expires_at.gt(now)),
    )
    .set(oidc_tokens::spent_at.eq(now))
    .returning(oidc_tokens::all_columns)
    .get_result(&mut **tx)
    .optional()?;
    if let Some(token) = spent {
        return Ok(Spent::Now(token));
    }
    let before = oidc_tokens::table
        .find(token_hash)
        .filter(kind)
        .filter(oidc_tokens::spent_at.is_not_null())
        .select(Token::as_select())
        .first(&mut **tx)
        .optional()?;
    Ok(before.map_or(Spent::Never, Spent::Before))
}

/// Deletes every token of `family`; how many.
pub fn revoke_family(tx: &mut Tx<'_>, family: &str) -> Result<usize, DbError> {
    Ok(
        diesel::delete(oidc_tokens::table.filter(oidc_tokens::family.eq(family)))
            .execute(&mut **tx)?,
    )
}

/// The token `token_hash` of `client_id`, whatever its state (a revocation's target).
pub fn find_client_token(
    conn: &mut AnyConnection,
    token_hash: &[u8],
    client_id: &str,
) -> Result<Option<Token>, DbError> {
    Ok(oidc_tokens::table
        .find(token_hash)
        .filter(oidc_tokens::client_id.eq(client_id))
        .select(Token::as_select())
        .first(conn)
        .optional()?)
}

/// Deletes the token `token_hash`.
pub fn delete_token(tx: &mut Tx<'_>, token_hash: &[u8]) -> Result<usize, DbError> {
    Ok(diesel::delete(oidc_tokens::table.find(token_hash)).execute(&mut **tx)?)
}

/// Reclaims expired codes and tokens (a spent code is kept an hour past its expiry so that a
/// late second use is still recognised as one), and keys retired before `keys_before`.
pub fn purge(tx: &mut Tx<'_>, now: i64, keys_before: i64) -> Result<usize, DbError> {
    let codes = diesel::delete(oidc_codes::table.filter(oidc_codes::expires_at.lt(now - 3600)))
        .execute(&mut **tx)?;
    let tokens = diesel::delete(oidc_tokens::table.filter(oidc_tokens::expires_at.lt(now)))
        .execute(&mut **tx)?;
    let keys = diesel::delete(oidc_keys::table.filter(oidc_keys::retired_at.lt(keys_before)))
        .execute(&mut **tx)?;
    Ok(codes + tokens + keys)
}
