//! Browser pages: server-rendered Tera templates for the same journeys as the JSON API, one
//! module per journey. Pages call the auth layer exactly as the API does.

mod account;
mod docs;
mod home;
mod links;
mod password;
mod settings;

use std::ops::Deref;

use rocket::http::Status;
use rocket::http::uri::Origin;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::serde::Serialize;
use rocket::serde::json::{Value, json};
use rocket::{routes, uri};
use rocket_dyn_templates::Template;

use super::cookies::{Cookies, Link};
use super::csrf::CheckedForm;
use super::error::{ErrorPage, FormError, PageFailure, Problem, log_failure};
use super::flows::AccountRequest;
use super::input::Fields;
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

/// What a page handler works with: the [`AccountRequest`] (which it derefs to) and the page's
/// [`Layout`].
pub struct Page<'r> {
    request: AccountRequest<'r>,
    pub layout: Layout,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Page<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let layout = rocket::outcome::try_outcome!(req.guard::<Layout>().await);
        let request = req.guard::<AccountRequest<'r>>().await.unwrap();
        Outcome::Success(Page { request, layout })
    }
}

impl<'r> Deref for Page<'r> {
    type Target = AccountRequest<'r>;

    fn deref(&self) -> &AccountRequest<'r> {
        &self.request
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

/// Runs a form's flow on its body: the body's problem, or the flow's, is the form again, drawn
/// by `render` around the message from what was typed.
async fn submit<T, R>(
    form: CheckedForm<T>,
    flow: impl AsyncFnOnce(T) -> Result<R, Problem>,
    render: impl FnOnce(&Fields, &str) -> Template,
) -> Result<R, FormError> {
    let CheckedForm { fields, body } = form;
    let done = match body {
        Ok(body) => flow(body).await,
        Err(problem) => Err(problem),
    };
    done.map_err(|problem| FormError::new(problem, |message| render(&fields, message)))
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
async fn account_of(request: &AccountRequest<'_>) -> Result<crate::auth::Account, PageFailure> {
    match request.account().await {
        Ok(user) => Ok(user),
        Err(AuthError::NoSession) => Err(log_in_first()),
        Err(error) => Err(ErrorPage::from(error).into()),
    }
}

/// A mailed link's first load: its token moves into a private cookie sent only to its page
/// (`page`, where the browser goes next), off the URL.
fn opened(cookies: &Cookies<'_>, link: Link, token: &str, page: Origin<'static>) -> Redirect {
    cookies.hold_link_token(link, token);
    Redirect::to(page)
}

/// The error page of a mailed link that is invalid, expired or spent (or that the browser no
/// longer holds), saying what to do instead.
fn invalid_link(link: Link) -> ErrorPage {
    let message = match link {
        Link::Reset => {
            "This reset link is invalid, has expired or has already been used. Ask for a new \
             one from the “Forgot your password?” page."
        }
        Link::Verify => {
            "This verification link is invalid, has expired or has already been used. Log in \
             to have a new one sent."
        }
        Link::EmailChange => {
            "This confirmation link is invalid, has expired or has already been used. Ask for \
             a new one from your profile."
        }
    };
    ErrorPage(Problem::new(Status::Forbidden, message))
}

/// The token the browser holds for the link's page, or the invalid link's page.
fn link_token(cookies: &Cookies<'_>, link: Link) -> Result<String, ErrorPage> {
    cookies.link_token(link).ok_or_else(|| invalid_link(link))
}

/// The invalid link's page for a token the auth layer refused, or the error page of whatever
/// else stopped the link.
fn link_failed(link: Link, error: AuthError) -> ErrorPage {
    match error {
        AuthError::InvalidResetToken | AuthError::InvalidLinkToken => invalid_link(link),
        other => other.into(),
    }
}

/// A page with a form: shown empty, or, when a submission is refused, again around the
/// refusal's message with what was typed in its `kept` field (never a password).
struct FormPage {
    template: &'static str,
    title: &'static str,
    kept: Option<&'static str>,
    /// The page states the password policy's minimum length.
    policy: bool,
}

impl FormPage {
    const fn new(template: &'static str, title: &'static str) -> FormPage {
        FormPage {
            template,
            title,
            kept: None,
            policy: false,
        }
    }

    /// The form keeps what was typed in field `name`.
    const fn keeps(self, name: &'static str) -> FormPage {
        FormPage {
            kept: Some(name),
            ..self
        }
    }

    /// The form states the password policy's minimum length.
    const fn states_policy(self) -> FormPage {
        FormPage {
            policy: true,
            ..self
        }
    }

    fn render(&self, page: &Page<'_>, fields: Option<&Fields>, error: Option<&str>) -> Template {
        let mut context = json!({ "title": self.title, "error": error });
        if let Some(name) = self.kept {
            context[name] = fields.map_or("", |fields| fields.typed(name)).into();
        }
        if self.policy {
            context["min_length"] = page.auth.policy().min_length.into();
        }
        page.layout.render(self.template, context)
    }

    /// The empty form.
    fn empty(&self, page: &Page<'_>) -> Template {
        self.render(page, None, None)
    }

    /// The form again, for [`submit`].
    fn again<'a>(&'a self, page: &'a Page<'_>) -> impl FnOnce(&Fields, &str) -> Template {
        move |fields, message| self.render(page, Some(fields), Some(message))
    }
}
