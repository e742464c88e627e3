//! Browser pages: server-rendered Tera templates for the same journeys as the JSON API, one
//! module per journey. Pages call the auth layer exactly as the API does.

mod account;
mod docs;
mod home;
mod links;
mod password;
mod settings;

use rocket::http::Status;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::serde::Serialize;
use rocket::serde::json::{Value, json};
use rocket::{routes, uri};
use rocket_dyn_templates::Template;

use super::cookies::Cookies;
use super::error::{ErrorPage, PageFailure, Problem, log_failure};
use super::session::CurrentUser;
use crate::auth::AuthError;

pub fn routes() -> Vec<rocket::Route> {
    routes![
        home::home_page,
        docs::api_page,
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
        settings::password_page,
        settings::password_submit,
        settings::email_page,
        settings::email_submit,
        settings::delete_page,
        settings::delete_submit,
        settings::end_session_submit,
        settings::end_others_submit,
        settings::verification_submit,
        links::verify_link_opened,
        links::verify_page,
        links::verify_submit,
        links::email_link_opened,
        links::email_page,
        links::email_submit,
    ]
}

/// What pages may show of the logged-in account: never the stored row with its password hash.
#[derive(Debug, Clone, Serialize)]
#[serde(crate = "rocket::serde")]
pub struct Account {
    pub id: i32,
    pub email: String,
}

/// What every page's layout shows: the visitor (if logged in), their CSRF token for the forms
/// (the log-out button included) and a one-time flash message.
pub struct Layout {
    csrf_token: String,
    account: Option<Account>,
    flash: Option<Value>,
}

/// A page whose visitor could not be looked up (the database failed) is not shown as if they
/// were logged out: it fails with the lookup's status, and the catcher shows the error page.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for Layout {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let cookies = req.guard::<Cookies<'_>>().await.unwrap();
        let account = match req.guard::<CurrentUser>().await {
            Outcome::Success(CurrentUser(user)) => Some(Account {
                id: user.id,
                email: user.email,
            }),
            Outcome::Error((Status::Forbidden, _)) | Outcome::Forward(_) => None,
            Outcome::Error((status, error)) => {
                log_failure(req, status, &error.to_string());
                return Outcome::Error((status, ()));
            }
        };
        let flash = req.guard::<Option<FlashMessage<'_>>>().await.succeeded();
        Outcome::Success(Layout {
            csrf_token: cookies.csrf_token(),
            account,
            flash: flash
                .flatten()
                .map(|f| json!({ "kind": f.kind(), "message": f.message() })),
        })
    }
}

impl Layout {
    /// The logged-in account, if any.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// Renders `template` with `page`'s keys on top of the layout's own.
    pub fn render(&self, template: &'static str, page: Value) -> Template {
        let mut context = json!({
            "csrf_token": self.csrf_token,
            "user": self.account,
            "flash": self.flash,
        });
        if let (Some(context), Value::Object(page)) = (context.as_object_mut(), page) {
            context.extend(page);
        }
        Template::render(template, context)
    }
}

/// A `303 See Other` to `to` carrying a one-time success message.
fn redirect_with(to: rocket::http::uri::Origin<'static>, message: &str) -> Flash<Redirect> {
    Flash::success(Redirect::to(to), message.to_owned())
}

/// A `303 See Other` to the login page for a visitor whose session ended while a form of the
/// account was open.
fn log_in_first() -> PageFailure {
    let message = "Your session has ended. Log in again.";
    let to_login = Flash::error(Redirect::to(uri!(account::login_page)), message);
    PageFailure::LogIn(Box::new(to_login))
}

/// The account a form acts for: the user of the request's live session, or the login page.
fn account_user(user: Result<CurrentUser, AuthError>) -> Result<crate::auth::Account, PageFailure> {
    match user {
        Ok(CurrentUser(user)) => Ok(user),
        Err(AuthError::NoSession) => Err(log_in_first()),
        Err(error) => Err(ErrorPage::from(error).into()),
    }
}

/// The error page of a mailed link that is invalid, expired or spent (or that the browser no
/// longer holds); `message` says what to do instead.
fn invalid_link(message: &'static str) -> ErrorPage {
    ErrorPage(Problem::new(Status::Forbidden, message))
}

/// [`invalid_link`] for a token the auth layer refused, or the error page of whatever else
/// stopped the link.
fn link_failed(error: AuthError, invalid: &'static str) -> ErrorPage {
    match error {
        AuthError::InvalidResetToken | AuthError::InvalidLinkToken => invalid_link(invalid),
        other => other.into(),
    }
}
