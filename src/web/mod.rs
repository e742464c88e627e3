//! Web layer: routes, request guards and the mapping of errors to responses. Calls the auth
//! layer only; never the database.

pub mod api;
pub mod error;
pub mod input;
pub mod request_id;
pub mod session;

use rocket::fairing::AdHoc;

/// Mounts the API, its catchers and the request-id fairing.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Web", |rocket| async {
        rocket
            .mount("/", api::routes())
            .register("/", error::catchers())
            .attach(request_id::RequestIds)
    })
}
