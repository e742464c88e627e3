//! The forgotten-password journey: request a link, open it, choose a new password.
//!
//! The link's token leaves the URL on first load: it moves into a short-lived private cookie
//! scoped to `/password/reset`, and the browser is redirected to the token-free page, so the
//! token never sits in history or a `Referer`. Opening the page never spends the token.

use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::time::Duration;
use rocket::{Either, State, get, post, uri};
use rocket_dyn_templates::Template;

use super::account::rocket_uri_macro_login_page;
use super::{FormError, Layout, redirect_with};
use crate::auth::{Auth, AuthError, Caller};
use crate::config::Settings;
use crate::db::User;
use crate::mail::reset_link;
use crate::web::csrf::CheckedForm;
use crate::web::error::PageError;

const RESET_COOKIE: &str = "reset_token";
const RESET_PATH: &str = "/password/reset";
const INVALID_LINK: &str = "This reset link is invalid, has expired or has already been used. \
                            Ask for a new one from the “Forgot your password?” page.";

#[get("/password/forgot")]
pub fn forgot_page(layout: Layout) -> Template {
    forgot_form(&layout, "", None)
}

fn forgot_form(layout: &Layout, email: &str, error: Option<&str>) -> Template {
    let page = json!({ "title": "Reset your password", "email": email, "error": error });
    layout.render("forgot", page)
}

/// Answers the same page whether or not the account exists; with `expose_reset_token` (debug)
/// it also shows the link, as the API shows the token.
#[post("/password/forgot", data = "<form>")]
pub async fn forgot_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> Result<Template, Either<PageError, FormError>> {
    let CheckedForm(fields) = form;
    let email = fields.email("email").map_err(|error| {
        let typed = fields.text("email").unwrap_or_default();
        let form = |message: &str| forgot_form(&layout, typed, Some(message));
        Either::Right(FormError::new(error, form))
    })?;
    let link = match auth.reset_token(&caller, &email).await {
        Ok(token) if settings.expose_reset_token => {
            Some(reset_link(settings.public_base_url.as_deref(), &token))
        }
        Ok(_) | Err(AuthError::UnknownEmail) => None,
        Err(error) => return Err(Either::Left(error.into())),
    };
    let page = json!({ "title": "Check your email", "link": link });
    Ok(layout.render("forgot_sent", page))
}

/// The link's first load: keep the token in a private cookie and drop it from the URL.
#[get("/password/reset?<token>", rank = 1)]
pub fn reset_link_opened(
    token: &str,
    cookies: &CookieJar<'_>,
    settings: &State<Settings>,
) -> Redirect {
    // Lax, set explicitly: Rocket's private-cookie default (Strict) would not be sent on this
    // very redirect when the link was clicked in a webmail.
    cookies.add_private(
        Cookie::build((RESET_COOKIE, token.to_owned()))
            .path(RESET_PATH)
            .same_site(SameSite::Lax)
            .http_only(true)
            .secure(settings.session_cookie_secure)
            .max_age(Duration::hours(1)),
    );
    Redirect::to(uri!(reset_page))
}

#[get("/password/reset", rank = 2)]
pub async fn reset_page(
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: &CookieJar<'_>,
) -> Result<Template, PageError> {
    let (_, holder) = link_holder(&caller, auth, cookies).await?;
    Ok(reset_form(&layout, auth, &holder, None))
}

fn reset_form(layout: &Layout, auth: &Auth, holder: &User, error: Option<&str>) -> Template {
    let page = json!({
        "title": "Choose a new password",
        "email": holder.email,
        "error": error,
        "min_length": auth.policy().min_length,
    });
    layout.render("reset", page)
}

/// The token from the link cookie and the account it belongs to; 403 for any invalid link.
async fn link_holder(
    caller: &Caller,
    auth: &Auth,
    cookies: &CookieJar<'_>,
) -> Result<(String, User), PageError> {
    let token = cookies
        .get_private(RESET_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .ok_or_else(invalid_link)?;
    let holder = auth
        .reset_token_holder(caller, &token)
        .await
        .map_err(link_error)?;
    Ok((token, holder))
}

fn invalid_link() -> PageError {
    PageError::new(Status::Forbidden, INVALID_LINK)
}

fn link_error(error: AuthError) -> PageError {
    match error {
        AuthError::InvalidResetToken => invalid_link(),
        other => other.into(),
    }
}

/// Sets the new password, which spends the token and ends every session of the account; the
/// visitor is sent to log in (a reset logs no one in).
#[post("/password/reset", data = "<form>")]
pub async fn reset_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: &CookieJar<'_>,
) -> Result<Flash<Redirect>, Either<PageError, FormError>> {
    let CheckedForm(fields) = form;
    let (token, holder) = link_holder(&caller, auth, cookies)
        .await
        .map_err(Either::Left)?;
    let password = fields
        .new_password("new_password", auth.policy())
        .map_err(|error| {
            let form = |message: &str| reset_form(&layout, auth, &holder, Some(message));
            Either::Right(FormError::new(error, form))
        })?;
    auth.reset_password(&caller, &token, password)
        .await
        .map_err(|error| Either::Left(link_error(error)))?;
    cookies.remove_private(Cookie::build(RESET_COOKIE).path(RESET_PATH));
    let done = "Your password has been changed. Log in with your new password.";
    Ok(redirect_with(uri!(login_page), done))
}
