//! Signing up, logging in, the profile and logging out.

use rocket::http::{CookieJar, Header};
use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{Either, Responder, State, get, post, uri};
use rocket_dyn_templates::Template;

use super::home::rocket_uri_macro_home_page;
use super::{FormError, Layout, redirect_with};
use crate::auth::{Auth, Caller};
use crate::config::Settings;
use crate::web::csrf::CheckedForm;
use crate::web::error::{ApiError, PageError};
use crate::web::session::{self, SessionCookie};

#[get("/signup")]
pub fn signup_page(layout: Layout, auth: &State<Auth>) -> Either<Template, Redirect> {
    match layout.user() {
        Some(_) => Either::Right(Redirect::to(uri!(profile_page))),
        None => Either::Left(signup_form(&layout, auth, "", None)),
    }
}

fn signup_form(layout: &Layout, auth: &Auth, email: &str, error: Option<&str>) -> Template {
    let min_length = auth.policy().min_length;
    let page =
        json!({ "title": "Sign up", "email": email, "error": error, "min_length": min_length });
    layout.render("signup", page)
}

/// Creates the account and logs it in on this browser.
#[post("/signup", data = "<form>")]
pub async fn signup_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
) -> Result<Flash<Redirect>, FormError> {
    let CheckedForm(fields) = form;
    let created = async {
        let email = fields.email("email")?;
        let password = fields.new_password("password", auth.policy())?;
        let user = auth.register(&caller, &email, password).await?;
        Ok::<_, ApiError>(auth.create_session(&user).await?)
    };
    match created.await {
        Ok(session_id) => {
            session::set(cookies, settings, session_id);
            let welcome = "Welcome! Your account is ready.";
            Ok(redirect_with(uri!(profile_page), welcome))
        }
        Err(error) => {
            let typed = fields.text("email").unwrap_or_default();
            let form = |message: &str| signup_form(&layout, auth, typed, Some(message));
            Err(FormError::new(error, form))
        }
    }
}

#[get("/login")]
pub fn login_page(layout: Layout) -> Either<Template, Redirect> {
    match layout.user() {
        Some(_) => Either::Right(Redirect::to(uri!(profile_page))),
        None => Either::Left(login_form(&layout, "", None)),
    }
}

fn login_form(layout: &Layout, email: &str, error: Option<&str>) -> Template {
    layout.render(
        "login",
        json!({ "title": "Log in", "email": email, "error": error }),
    )
}

/// Wrong password and unknown email get the same 401 and message; the email stays typed, the
/// password field is empty.
#[post("/login", data = "<form>")]
pub async fn login_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
) -> Result<Redirect, FormError> {
    let CheckedForm(fields) = form;
    match session::start(&caller, &fields, auth, cookies, settings).await {
        Ok(_) => Ok(Redirect::to(uri!(profile_page))),
        Err(error) => {
            let typed = fields.text("email").unwrap_or_default();
            let form = |message: &str| login_form(&layout, typed, Some(message));
            Err(FormError::new(error, form))
        }
    }
}

/// `GET /profile` for browsers; API clients get the JSON profile (see `web::negotiate`).
#[get("/profile")]
pub fn profile_page(layout: Layout) -> Either<Template, Redirect> {
    match layout.user() {
        Some(user) => {
            let page = json!({ "title": "Your profile", "email": user.email });
            Either::Left(layout.render("profile", page))
        }
        None => Either::Right(Redirect::to(uri!(login_page))),
    }
}

/// The logout redirect, telling the browser to drop cached pages of the account.
#[derive(Responder)]
pub struct LoggedOut {
    inner: Flash<Redirect>,
    clear_site_data: Header<'static>,
}

/// Ends this browser's session on the server and goes home, where a message confirms it.
#[post("/logout", data = "<_form>")]
pub async fn logout_submit(
    _form: CheckedForm,
    caller: Caller,
    cookie: SessionCookie,
    auth: &State<Auth>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
) -> Result<LoggedOut, PageError> {
    match session::end(&caller, &cookie, auth, cookies, settings).await {
        Ok(()) | Err(crate::auth::AuthError::NoSession) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(LoggedOut {
        inner: redirect_with(uri!(home_page), "You have been logged out."),
        // "cache", not "cookies": wiping cookies would also lose the flash message.
        clear_site_data: Header::new("Clear-Site-Data", "\"cache\""),
    })
}
