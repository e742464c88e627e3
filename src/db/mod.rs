//! Data layer: the connection pool, embedded migrations and every SQL query of the service, on
//! SQLite (a file, the default) or PostgreSQL (a `postgres://` URL), chosen by `database_url`.
//!
//! Query functions are plain synchronous functions on `&mut AnyConnection` (reads) or
//! `&mut Tx` (writes), written once with Diesel's query builder for both backends: Diesel's
//! `MultiConnection` derive makes one connection type of the two. Callers run them through
//! [`Db::run`] and [`Db::write`], which take a pooled connection on a blocking thread (or
//! [`Db::read`] for the session lookup of every logged-in request). What differs between the
//! backends (opening, pragmas and settings, transactions, locks, migrations) is in this folder
//! and nowhere else; nothing here knows about HTTP.
//!
//! One module per topic: [`error`] (the one error type), [`connect`] (what `database_url` names
//! and each connection's settings), [`pool`] (the pool and the read paths), [`tx`] (write
//! transactions), [`migrate`] (embedded migrations), [`backup`], [`clock`] (timestamps), and one
//! module per table holding its queries.

/// Runs `$body` on the concrete connection inside `$conn` (`&mut AnyConnection`), bound to
/// `$inner`: for the rare statement Diesel's multi-backend layer cannot express (a batch
/// insert), written once and compiled for each backend.
macro_rules! on_each_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($inner) => $body,
            $crate::db::AnyConnection::Postgresql($inner) => $body,
        }
    };
}

pub mod account_tokens;
mod backup;
mod clock;
mod connect;
pub mod devices;
mod error;
pub mod factors;
mod migrate;
pub mod oidc;
pub mod passkeys;
mod pool;
pub mod schema;
#[cfg(feature = "testing")]
pub mod scratch;
#[cfg(feature = "testing")]
pub mod seed;
mod session_cache;
mod session_revocations;
pub mod sessions;
pub mod sign_in_steps;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle_events;
mod tx;
pub mod users;

pub use clock::now;
pub use connect::{Access, AnyConnection, Options, Synchronous, is_postgres_url, redacted};
pub use error::DbError;
pub use pool::{Db, Manager, Pooled};
pub use sessions::Session;
pub use tx::Tx;
pub use users::User;
