//! Browser pages: server-rendered Tera templates for the same journeys as the JSON API, one
//! module per journey. Pages call the auth layer exactly as the API does.

mod account;
mod docs;
mod home;
mod links;
mod oidc;
mod passkeys;
mod password;
mod security;
mod settings;
mod wording;

use std::borrow::Cow;
use std::ops::Deref;

use rocket::http::Status;
use rocket::http::uri::Origin;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::serde::json::{Value, json};
use rocket::{routes, uri};
use rocket_dyn_templates::Template;

use super::cookies::{Cookies, Link};
use super::csrf::CheckedForm;
use super::error::{ErrorPage, FormError, Next, PageFailure, Problem, capitalized, log_failure};
use super::flows::AccountRequest;
use super::input::{Faults, Fields};
use super::layout::Visitor;
use crate::auth::AuthError;

pub fn routes() -> Vec<rocket::Route> {
    routes![
        home::home_page,
        home::favicon,
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
        security::second_factor_page,
        security::second_factor_submit,
        security::security_page,
        security::totp_start_page,
        security::totp_start_submit,
        security::totp_confirm_submit,
        security::totp_remove_page,
        security::totp_remove_submit,
        security::recovery_renew_page,
        security::recovery_renew_submit,
        passkeys::new_page,
        passkeys::new_submit,
        passkeys::create_submit,
        passkeys::remove_page,
        passkeys::remove_submit,
        passkeys::login_page,
        passkeys::login_submit,
        passkeys::login_finish,
        passkeys::second_factor_submit,
        oidc::authorize,
        oidc::resume,
        oidc::consent,
        oidc::log_in_again_submit,
        oidc::logout,
        oidc::logout_confirmed,
        oidc::applications_page,
        oidc::revoke_submit,
    ]
}

/// What every page's layout shows: the [`Visitor`] and a one-time flash message.
pub struct Layout {
    visitor: Visitor,
    flash: Option<Value>,
}

/// A page whose visitor could not be looked up (the database failed) is not shown as if they
/// were logged out: it fails with the lookup's status, and the catcher shows the error page.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for Layout {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let visitor = match req.guard::<Visitor>().await {
            Outcome::Success(visitor) => visitor,
            Outcome::Error((status, error)) => {
                log_failure(req, status, &error.to_string());
                return Outcome::Error((status, ()));
            }
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        let flash = req.guard::<Option<FlashMessage<'_>>>().await.succeeded();
        Outcome::Success(Layout {
            visitor,
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
    pub fn account(&self) -> Option<&crate::auth::Account> {
        self.visitor.account.as_ref()
    }

    /// Renders `template` with `page`'s keys on top of the layout's own.
    pub fn render(&self, template: &'static str, page: Value) -> Template {
        let mut context = self.visitor.context();
        context["flash"] = self.flash.clone().unwrap_or_default();
        if let (Some(context), Value::Object(page)) = (context.as_object_mut(), page) {
            context.extend(page);
        }
        Template::render(template, context)
    }
}

/// Runs a form's flow on its body. A body with faults, or a flow the auth layer refuses, is the
/// form again, drawn by `render` from what was typed and the [`Refusal`], at the problem's
/// status.
async fn submit<T, R>(
    form: CheckedForm<T>,
    flow: impl AsyncFnOnce(T) -> Result<R, AuthError>,
    render: impl FnOnce(&Fields, &Refusal) -> Template,
) -> Result<R, FormError> {
    let CheckedForm { fields, body } = form;
    let (problem, mut refusal) = match body {
        Ok(body) => match flow(body).await {
            Ok(done) => return Ok(done),
            Err(error) => Refusal::of_auth(error, |name| fields.has(name)),
        },
        Err(faults) => Refusal::of_faults(faults),
    };
    refusal
        .fields
        .sort_by_key(|(name, _)| fields.position(name));
    Err(FormError::new(problem, render(&fields, &refusal)))
}

/// What a refused form shows: each faulty field's message beside it (in the page's order once
/// [`submit`] sorts them: the first is focused), and the form's own message for a refusal about
/// no one field.
#[derive(Default)]
struct Refusal {
    fields: Vec<(&'static str, Cow<'static, str>)>,
    alert: Option<Cow<'static, str>>,
}

impl Refusal {
    fn of_faults(faults: Faults) -> (Problem, Refusal) {
        let fields = faults.iter().map(|f| (f.field, wording::fault(f)));
        let refusal = Refusal {
            fields: fields.collect(),
            alert: None,
        };
        (faults.into(), refusal)
    }

    /// `present` says which fields the form has.
    fn of_auth(error: AuthError, present: impl Fn(&str) -> bool) -> (Problem, Refusal) {
        let (field, words) = wording::refusal(&error, present);
        let problem = Problem::from(error);
        let message: Cow<'static, str> = match words {
            Some(words) => words.into(),
            None => capitalized(problem.message()).into(),
        };
        let refusal = match field {
            Some(field) => Refusal {
                fields: vec![(field, message)],
                alert: None,
            },
            None => Refusal {
                fields: Vec::new(),
                alert: Some(message),
            },
        };
        (problem, refusal)
    }

    /// The template's `form` keys: `errors` (by field), `first` (the field to focus) and
    /// `alert`; `values` is what the form shows typed again.
    fn context(&self, values: Value) -> Value {
        let errors: serde_json::Map<_, _> = (self.fields.iter())
            .map(|(field, message)| (field.to_string(), Value::from(message.as_ref())))
            .collect();
        json!({
            "values": values,
            "errors": errors,
            "first": self.fields.first().map(|(field, _)| field),
            "alert": self.alert,
        })
    }

    /// Everything it says, as one message (for a page whose buttons have no fields to show it
    /// beside).
    fn said(&self) -> String {
        let fields = self.fields.iter().map(|(_, message)| message.as_ref());
        let all: Vec<&str> = fields.chain(self.alert.as_deref()).collect();
        all.join(". ")
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.alert.is_none()
    }
}

/// The page's title, which starts with "Error: " when the page shows a refusal.
fn titled(title: &str, refusal: &Refusal) -> String {
    match refusal.is_empty() {
        true => title.to_owned(),
        false => format!("Error: {title}"),
    }
}

/// A `303 See Other` to `to` carrying a one-time success message.
fn redirect_with(to: rocket::http::uri::Origin<'static>, message: &str) -> Flash<Redirect> {
    Flash::success(Redirect::to(to), message.to_owned())
}

/// Where a browser goes once it has signed in: back to an application's pending sign-in
/// (OpenID Connect) if it started one, otherwise its profile.
fn signed_in_to(request: &AccountRequest<'_>) -> Origin<'static> {
    match request.cookies.authorization() {
        Some(_) => uri!(oidc::resume),
        None => uri!(account::profile_page),
    }
}

/// A `303 See Other` to the login page for a visitor whose session ended while a form of the
/// account was open.
fn log_in_first() -> PageFailure {
    let message = "Your session has ended. Log in again.";
    let to_login = Flash::error(Redirect::to(uri!(account::login_page)), message);
    PageFailure::Elsewhere(Box::new(to_login))
}

/// The account a form acts for: the user of the request's live session, or the login page
/// (the security page for a session that must set up a second factor first).
async fn account_of(request: &AccountRequest<'_>) -> Result<crate::auth::Account, PageFailure> {
    page_account(request.account().await)
}

/// [`account_of`], also for a session that may only set up a second factor.
async fn enrolling_account_of(
    request: &AccountRequest<'_>,
) -> Result<crate::auth::Account, PageFailure> {
    page_account(request.enrolling_account().await)
}

fn page_account(
    found: Result<crate::auth::Account, AuthError>,
) -> Result<crate::auth::Account, PageFailure> {
    match found {
        Ok(user) => Ok(user),
        Err(AuthError::NoSession) => Err(log_in_first()),
        Err(AuthError::EnrollmentRequired) => Err(enroll_first()),
        Err(error) => Err(ErrorPage::from(error).into()),
    }
}

/// A `303 See Other` to the security page for a session that may only set up a second factor.
fn enroll_first() -> PageFailure {
    let message = "Set up a second factor to use your account: it is required here.";
    let to_security = Flash::error(Redirect::to(super::paths::SECURITY), message);
    PageFailure::Elsewhere(Box::new(to_security))
}

/// A mailed link's first load: its token moves into a private cookie sent only to its page
/// (`page`, where the browser goes next), off the URL.
fn opened(cookies: &Cookies<'_>, link: Link, token: &str, page: Origin<'static>) -> Redirect {
    cookies.hold_link_token(link, token);
    Redirect::to(page)
}

/// The error page of a mailed link that is invalid, expired or spent (or that the browser no
/// longer holds), offering what to do instead.
fn invalid_link(link: Link) -> ErrorPage {
    let (message, next) = match link {
        Link::Reset => (
            "Reset links work once, for a short time. Ask for a new one and use the newest \
             link we send.",
            &Next {
                href: "/password/forgot",
                label: "Ask for a new reset link",
            },
        ),
        Link::Verify => (
            "Verification links work once, for a short time. Log in: your profile sends a new \
             one.",
            &Next {
                href: "/login",
                label: "Log in",
            },
        ),
        Link::EmailChange => (
            "Confirmation links work once, for a short time. Ask for a new one from your \
             profile.",
            &Next {
                href: "/account/email",
                label: "Change your email again",
            },
        ),
    };
    let problem = Problem::new(Status::Forbidden, message);
    ErrorPage::explained(problem, "This link has expired or was already used", next)
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

    fn render(&self, page: &Page<'_>, fields: Option<&Fields>, refusal: &Refusal) -> Template {
        let mut values = json!({});
        if let Some(name) = self.kept {
            values[name] = fields.map_or("", |fields| fields.typed(name)).into();
        }
        let mut context = json!({
            "title": titled(self.title, refusal),
            "form": refusal.context(values),
        });
        if self.policy {
            context["password_rule"] = wording::password_rule(page.auth.policy()).into();
        }
        page.layout.render(self.template, context)
    }

    /// The empty form.
    fn empty(&self, page: &Page<'_>) -> Template {
        self.render(page, None, &Refusal::default())
    }

    /// The empty form but for its field `name`, which shows `value`.
    fn prefilled(&self, page: &Page<'_>, name: &str, value: &str) -> Template {
        let mut values = json!({});
        values[name] = value.into();
        let context = json!({
            "title": self.title,
            "form": Refusal::default().context(values),
        });
        page.layout.render(self.template, context)
    }

    /// The empty form, with `extra` keys in its context.
    fn empty_with(&self, page: &Page<'_>, extra: Value) -> Template {
        let mut values = json!({});
        if let Some(name) = self.kept {
            values[name] = "".into();
        }
        let mut context = json!({
            "title": self.title,
            "form": Refusal::default().context(values),
        });
        if let (Some(context), Value::Object(extra)) = (context.as_object_mut(), extra) {
            context.extend(extra);
        }
        page.layout.render(self.template, context)
    }

    /// The form again, for [`submit`].
    fn again<'a>(&'a self, page: &'a Page<'_>) -> impl FnOnce(&Fields, &Refusal) -> Template {
        move |fields, refusal| self.render(page, Some(fields), refusal)
    }
}
