use rocket::get;
use rocket::serde::json::json;
use rocket_dyn_templates::Template;

use super::Layout;

/// `GET /` for browsers; API clients get the JSON `{"message": "Bienvenue"}` (see
/// `web::negotiate`).
#[get("/")]
pub fn home_page(layout: Layout) -> Template {
    layout.render("home", json!({ "title": "Welcome" }))
}
