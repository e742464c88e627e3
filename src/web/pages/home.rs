use rocket::get;
use rocket::serde::json::json;
use rocket_dyn_templates::Template;

use super::{Layout, PrefersHtml};

/// `GET /` for browsers; API clients fall through to the JSON `{"message": "Bienvenue"}`.
#[get("/", rank = 1)]
pub fn home_page(_html: PrefersHtml, layout: Layout) -> Template {
    layout.render("home", json!({ "title": "Welcome" }))
}
