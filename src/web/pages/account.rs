//! Signing up, logging in, the profile (with the account's devices) and logging out.

use rocket::http::Header;
use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{Either, Responder, State, get, post, uri};
use rocket_dyn_templates::Template;

use super::{Layout, redirect_with};
use crate::auth::{Account, Auth, AuthError, Caller, Step};
use crate::web::cookies::Cookies;
use crate::web::csrf::CheckedForm;
use crate::web::error::{ErrorPage, FormError, Problem};
use crate::web::session::CurrentUser;
use crate::web::time::readable;

#[get("/signup")]
pub fn signup_page(layout: Layout, auth: &State<Auth>) -> Either<Template, Redirect> {
    match layout.account() {
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

/// Creates the account (which mails a verification link) and logs it in on this browser;
/// with `require_verified_email`, sends the visitor to open the link first.
#[post("/signup", data = "<form>")]
pub async fn signup_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, FormError> {
    let CheckedForm(fields) = form;
    let created = async {
        let email = fields.email("email")?;
        let password = fields.new_password("password", auth.policy())?;
        if auth.requires_verified_email() {
            auth.accounts().register(&caller, &email, password).await?;
            return Ok::<_, Problem>(None);
        }
        Ok(Some(
            auth.sign_in().sign_up(&caller, &email, password).await?,
        ))
    };
    match created.await {
        Ok(Some(login)) => {
            cookies.start_session(login);
            let welcome = "Welcome! Your account is ready.";
            Ok(redirect_with(uri!(profile_page), welcome))
        }
        Ok(None) => {
            let next = "Your account is ready. Open the link we sent to your email, then log in.";
            Ok(redirect_with(uri!(login_page), next))
        }
        Err(problem) => {
            let typed = fields.text("email").unwrap_or_default();
            let form = |message: &str| signup_form(&layout, auth, typed, Some(message));
            Err(FormError::new(problem, form))
        }
    }
}

#[get("/login")]
pub fn login_page(layout: Layout) -> Either<Template, Redirect> {
    match layout.account() {
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
    cookies: Cookies<'_>,
) -> Result<Redirect, FormError> {
    let CheckedForm(fields) = form;
    let logged_in = async {
        let email = fields.email("email")?;
        Ok::<_, Problem>(
            auth.sign_in()
                .password(&caller, &email, fields.text("password")?)
                .await?,
        )
    };
    match logged_in.await {
        Ok(Step::Session(signed_in)) => {
            cookies.start_session(signed_in);
            Ok(Redirect::to(uri!(profile_page)))
        }
        Err(problem) => {
            let typed = fields.text("email").unwrap_or_default();
            let form = |message: &str| login_form(&layout, typed, Some(message));
            Err(FormError::new(problem, form))
        }
    }
}

/// `GET /profile` for browsers; API clients get the JSON profile (see `web::negotiate`).
#[get("/profile")]
pub async fn profile_page(
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    caller: Caller,
    auth: &State<Auth>,
) -> Result<Either<Template, Redirect>, ErrorPage> {
    match user {
        Ok(CurrentUser(user)) => {
            let page = profile_view(&layout, &caller, auth, &user, None).await?;
            Ok(Either::Left(page))
        }
        Err(_) => Ok(Either::Right(Redirect::to(uri!(login_page)))),
    }
}

/// The profile: the account, whether its email is verified, its live sessions (this device
/// first among equals) and what the owner can do; `error` is the message of a button of the
/// page that failed.
pub(super) async fn profile_view(
    layout: &Layout,
    caller: &Caller,
    auth: &Auth,
    user: &Account,
    error: Option<&str>,
) -> Result<Template, ErrorPage> {
    let sessions = auth.accounts().sessions_of(caller, user).await?;
    let listed: Vec<_> = sessions
        .iter()
        .map(|listed| {
            let session = &listed.session;
            json!({
                "id": session.public_id,
                "client": session.user_agent.as_deref().unwrap_or("Unknown client"),
                "address": session.address,
                "created": readable(session.created_at),
                "last_seen": readable(session.last_seen_at),
                "current": listed.current,
            })
        })
        .collect();
    let page = json!({
        "title": "Your profile",
        "email": user.email,
        "email_verified": user.is_verified(),
        "sessions": listed,
        "others": sessions.iter().any(|s| !s.current),
        "error": error,
    });
    Ok(layout.render("profile", page))
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
    caller: Caller,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<LoggedOut, ErrorPage> {
    if let Some(session_id) = cookies.session_id() {
        match auth.sessions().end(&caller, &session_id).await {
            Ok(()) | Err(AuthError::NoSession) => cookies.end_session(),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(LoggedOut::home("You have been logged out."))
}
