use rocket::get;
use rocket::http::ContentType;
use rocket::serde::json::json;
use rocket_dyn_templates::Template;

use super::Layout;

/// `GET /` for browsers; API clients get the JSON `{"message": "Bienvenue"}` (see
/// `web::negotiate`).
#[get("/")]
pub fn home_page(layout: Layout) -> Template {
    layout.render("home", json!({ "title": "Welcome" }))
}

/// The icon every browser asks for on its first visit (a 404 would be an error in its console
/// on every first load).
#[get("/favicon.ico")]
pub fn favicon() -> (ContentType, &'static [u8]) {
    (
        ContentType::Icon,
        include_bytes!("../../../static/favicon.ico"),
    )
}
