//! Browser pages: server-rendered Tera templates for the same journeys as the JSON API, one
//! module per journey. Pages call the auth layer exactly as the API does.

mod account;
mod home;
mod password;

use rocket::http::Status;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{self, Flash, Redirect, Responder};
use rocket::routes;
use rocket::serde::json::{Value, json};
use rocket_dyn_templates::Template;

use super::csrf::CsrfToken;
use super::error::{ApiError, log_failure};
use super::session::CurrentUser;
use crate::db::User;

pub fn routes() -> Vec<rocket::Route> {
    routes![
        home::home_page,
        account::signup_page,
        account::signup_submit,
        account::login_page,
        account::login_submit,
        account::profile_page,
        account::logout_submit,
        password::forgot_page,
        password::forgot_submit,
        password::reset_link_opened,
        password::reset_page,
        password::reset_submit,
    ]
}

/// Whether the client would rather have HTML than JSON: browsers list `text/html` first;
/// `*/*`, JSON and a missing `Accept` header do not.
pub fn prefers_html(req: &Request<'_>) -> bool {
    req.accept()
        .is_some_and(|accept| accept.preferred().media_type().is_html())
}

/// What every page's layout shows: the visitor (if logged in), their CSRF token for the forms
/// (the log-out button included) and a one-time flash message.
pub struct Layout {
    csrf_token: String,
    user: Option<User>,
    flash: Option<Value>,
}

/// A page whose visitor could not be looked up (the database failed) is not shown as if they
/// were logged out: it fails with the lookup's status, and the catcher shows the error page.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for Layout {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let csrf = req.guard::<CsrfToken>().await.succeeded();
        let user = match req.guard::<CurrentUser>().await {
            Outcome::Success(CurrentUser(user)) => Some(user),
            Outcome::Error((Status::Forbidden, _)) | Outcome::Forward(_) => None,
            Outcome::Error((status, error)) => {
                log_failure(req, status, &error.to_string());
                return Outcome::Error((status, ()));
            }
        };
        let flash = req.guard::<Option<FlashMessage<'_>>>().await.succeeded();
        Outcome::Success(Layout {
            csrf_token: csrf.map(|CsrfToken(token)| token).unwrap_or_default(),
            user,
            flash: flash
                .flatten()
                .map(|f| json!({ "kind": f.kind(), "message": f.message() })),
        })
    }
}

impl Layout {
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// Renders `template` with `page`'s keys on top of the layout's own.
    pub fn render(&self, template: &'static str, page: Value) -> Template {
        let mut context = json!({
            "csrf_token": self.csrf_token,
            "user": self.user.as_ref().map(|u| json!({ "email": u.email })),
            "flash": self.flash,
        });
        if let (Some(context), Value::Object(page)) = (context.as_object_mut(), page) {
            context.extend(page);
        }
        Template::render(template, context)
    }
}

/// A form re-rendered with its error, at the error's status (with `Retry-After` on a 429).
pub struct FormError {
    error: ApiError,
    page: Template,
}

impl FormError {
    /// `render` draws the form around the error's message.
    fn new(error: ApiError, render: impl FnOnce(&str) -> Template) -> FormError {
        let page = render(error.message());
        FormError { error, page }
    }
}

impl<'r> Responder<'r, 'static> for FormError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = (self.error.status(), self.page).respond_to(req)?;
        self.error.report(req, &mut response);
        Ok(response)
    }
}

/// A `303 See Other` to `to` carrying a one-time success message.
fn redirect_with(to: rocket::http::uri::Origin<'static>, message: &str) -> Flash<Redirect> {
    Flash::success(Redirect::to(to), message.to_owned())
}
