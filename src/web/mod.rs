//! Web layer: routes, request guards and the mapping of errors to responses. Calls the auth
//! layer only; never the database.

pub mod api;
pub mod csrf;
pub mod error;
pub mod headers;
pub mod input;
pub mod negotiate;
pub mod origin;
pub mod pages;
pub mod request_id;
pub mod session;

use rocket::fairing::AdHoc;
use rocket::fs::FileServer;
use rocket_dyn_templates::Template;

use crate::config::Settings;

/// Mounts the API, the pages, static assets and catchers, with their fairings.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Web", |rocket| async {
        let hsts = rocket.state::<Settings>().is_none_or(|s| s.hsts);
        rocket
            .mount("/", negotiate::merge(pages::routes(), api::routes()))
            .mount("/static", FileServer::from("static"))
            .register("/", error::catchers())
            .attach(Template::fairing())
            .attach(headers::SecurityHeaders { hsts })
            .attach(request_id::RequestIds)
    })
}
