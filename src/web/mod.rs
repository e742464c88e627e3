//! Web layer: routes, request guards and the mapping of errors to responses. Calls the auth
//! layer only; never the database.

pub mod api;
pub mod bodies;
pub mod client;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod flows;
pub mod headers;
pub mod input;
pub mod layout;
pub mod negotiate;
pub mod ops;
pub mod origin;
pub mod pages;
pub mod paths;
pub mod request_id;
pub mod request_log;
pub mod session;

use rocket::fairing::AdHoc;
use rocket::fs::FileServer;
use rocket_dyn_templates::Template;

use crate::config::{LogFormat, Settings};

/// Mounts the API, the pages, static assets and catchers, with their fairings.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Web", |rocket| async {
        let hsts = rocket.state::<Settings>().is_none_or(|s| s.hsts);
        let json_log = rocket
            .state::<Settings>()
            .is_some_and(|s| s.log_format == LogFormat::Json);
        let proxies = rocket
            .state::<Settings>()
            .map_or_else(Vec::new, Settings::trusted_proxies);
        rocket
            .manage(client::TrustedProxies(proxies))
            .mount("/", negotiate::merge(pages::routes(), api::routes()))
            .mount("/", ops::routes())
            .mount("/static", FileServer::from("static"))
            .register("/", error::catchers())
            .attach(Template::custom(|engines| {
                engines.tera.register_filter("breakable", layout::breakable);
            }))
            .attach(headers::SecurityHeaders { hsts })
            .attach(request_log::RequestLog { json: json_log })
    })
}

#[cfg(test)]
mod tests {
    use rocket::http::Method;

    #[test]
    fn shared_paths_become_one_route_and_the_rest_are_kept() {
        let pages = super::pages::routes();
        let api = super::api::routes();
        let total = pages.len() + api.len();
        let routes = super::negotiate::merge(pages, api);

        let get = |path: &str| {
            routes
                .iter()
                .filter(|r| r.method == Method::Get && r.uri.as_str() == path)
                .count()
        };
        assert_eq!(get("/"), 1);
        assert_eq!(get("/profile"), 1);
        assert_eq!(get("/account/applications"), 1);
        let post_email = routes
            .iter()
            .filter(|r| r.method == Method::Post && r.uri.as_str() == "/account/email")
            .count();
        assert_eq!(post_email, 1);
        assert_eq!(routes.len(), total - 4);
    }
}
