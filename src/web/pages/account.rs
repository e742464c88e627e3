//! Signing up, logging in, the profile (with the account's devices) and logging out.

use rocket::http::Header;
use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{Either, Responder, get, post, uri};
use rocket_dyn_templates::Template;

use super::{FormPage, Page, redirect_with, signed_in_to, submit};
use crate::auth::Account;
use crate::auth::AuthError;
use crate::time::readable;
use crate::web::bodies::{Credentials, NewAccount};
use crate::web::csrf::CheckedForm;
use crate::web::error::{ErrorPage, FormError};
use crate::web::flows::{AccountRequest, LogIn};
use crate::web::paths;

const SIGNUP: FormPage = FormPage::new("signup", "Sign up")
    .keeps("email")
    .states_policy();
const LOGIN: FormPage = FormPage::new("login", "Log in").keeps("email");

#[get("/signup")]
pub fn signup_page(page: Page<'_>) -> Either<Template, Redirect> {
    guest_form(&page, &SIGNUP)
}

/// A form for visitors who are not logged in; the logged-in go to their profile.
fn guest_form(page: &Page<'_>, form: &FormPage) -> Either<Template, Redirect> {
    match page.layout.account() {
        Some(_) => Either::Right(Redirect::to(uri!(profile_page))),
        None => Either::Left(form.empty(page)),
    }
}

/// Creates the account (which mails a verification link) and logs it in on this browser;
/// with `require_verified_email`, sends the visitor to open the link first.
#[post("/signup", data = "<form>")]
pub async fn signup_submit(
    form: CheckedForm<NewAccount>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, FormError> {
    let (auth, caller) = (page.auth, &page.caller);
    let created = async |NewAccount { email, password }| {
        if auth.requires_verified_email() {
            auth.accounts().register(caller, &email, password).await?;
            return Ok(None);
        }
        Ok(Some(
            auth.sign_in().sign_up(caller, &email, password).await?,
        ))
    };
    match submit(form, created, SIGNUP.again(&page)).await? {
        Some(login) => {
            page.cookies.start_session(login);
            let welcome = "Welcome! Your account is ready.";
            Ok(Flash::success(Redirect::to(signed_in_to(&page)), welcome))
        }
        None => {
            let next = "Your account is ready. Open the link we sent to your email, then log in.";
            Ok(redirect_with(uri!(login_page), next))
        }
    }
}

/// The login form; while an application's sign-in waits (OpenID Connect), with the email its
/// `login_hint` gave.
#[get("/login")]
pub fn login_page(page: Page<'_>) -> Either<Template, Redirect> {
    let hint = page
        .cookies
        .authorization()
        .and_then(|pending| pending.login_hint);
    match (hint, page.layout.account()) {
        (Some(hint), None) => Either::Left(LOGIN.prefilled(&page, "email", &hint)),
        _ => guest_form(&page, &LOGIN),
    }
}

/// Wrong password and unknown email get the same 401 and message; the email stays typed, the
/// password field is empty. An account with a second factor goes on to its page, the step
/// held in a cookie sent only there.
#[post("/login", data = "<form>")]
pub async fn login_submit(
    form: CheckedForm<Credentials>,
    page: Page<'_>,
) -> Result<Redirect, FormError> {
    let log_in = async |credentials| page.log_in(credentials).await;
    match submit(form, log_in, LOGIN.again(&page)).await? {
        LogIn::Done(_) => Ok(Redirect::to(signed_in_to(&page))),
        LogIn::SecondFactor(pending) => {
            page.cookies.hold_sign_in_step(&pending.token);
            Ok(Redirect::to(paths::SECOND_FACTOR))
        }
    }
}

/// `GET /profile` for browsers; API clients get the JSON profile (see `web::negotiate`).
#[get("/profile")]
pub async fn profile_page(page: Page<'_>) -> Result<Either<Template, Redirect>, ErrorPage> {
    match page.account().await {
        Ok(user) => Ok(Either::Left(profile_view(&page, &user, None).await?)),
        Err(AuthError::EnrollmentRequired) => Ok(Either::Right(Redirect::to(paths::SECURITY))),
        Err(_) => Ok(Either::Right(Redirect::to(uri!(login_page)))),
    }
}

/// The profile: the account, whether its email is verified, its live sessions (this device
/// first) and what the owner can do; `error` is the message of a button of the page that
/// failed. Each device's button is named for its device, so no two buttons share a name.
pub(super) async fn profile_view(
    page: &Page<'_>,
    user: &Account,
    error: Option<&str>,
) -> Result<Template, ErrorPage> {
    let mut sessions = page.sessions(user).await?;
    sessions.sort_by_key(|listed| !listed.current);
    let mut labels: Vec<String> = Vec::new();
    let listed: Vec<_> = sessions
        .iter()
        .map(|listed| {
            let session = &listed.session;
            let client = session.user_agent.as_deref().unwrap_or("Unknown client");
            let created = readable(session.created_at);
            let label = distinct(&labels, format!("{client}, logged in {created}"));
            labels.push(label.clone());
            json!({
                "id": session.public_id,
                "client": client,
                "label": label,
                "address": session.address,
                "created": created,
                "last_seen": readable(session.last_seen_at),
                "current": listed.current,
            })
        })
        .collect();
    let profile = json!({
        "title": "Your profile",
        "email": user.email,
        "email_verified": user.is_verified(),
        "sessions": listed,
        "others": sessions.iter().any(|s| !s.current),
        "error": error,
    });
    Ok(page.layout.render("profile", profile))
}

/// `label`, or, if `taken` has it already, `label` with the first number that makes it new.
fn distinct(taken: &[String], label: String) -> String {
    let is_new = |candidate: &String| !taken.contains(candidate);
    if is_new(&label) {
        return label;
    }
    let mut numbered = (2..).map(|n| format!("{label} ({n})"));
    numbered.find(is_new).unwrap_or(label)
}

/// The logout redirect home, telling the browser to drop cached pages of the account.
#[derive(Responder)]
pub struct LoggedOut {
    inner: Flash<Redirect>,
    clear_site_data: Header<'static>,
}

impl LoggedOut {
    /// Home, where `message` confirms what ended.
    pub(super) fn home(message: &str) -> LoggedOut {
        LoggedOut {
            inner: redirect_with(uri!(super::home::home_page), message),
            // "cache", not "cookies": wiping cookies would also lose the flash message.
            clear_site_data: Header::new("Clear-Site-Data", "\"cache\""),
        }
    }
}

/// Ends this browser's session on the server and goes home, where a message confirms it. A
/// browser with no live session is sent home all the same.
#[post("/logout", data = "<_form>")]
pub async fn logout_submit(
    _form: CheckedForm,
    request: AccountRequest<'_>,
) -> Result<LoggedOut, ErrorPage> {
    request.log_out().await?;
    Ok(LoggedOut::home("You have been logged out."))
}
