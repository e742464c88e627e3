//! The forgotten-password journey: request a link, open it, choose a new password.
//!
//! The link's token leaves the URL on first load: it moves into a short-lived private cookie
//! scoped to `/password/reset` (`Cookies::hold_link_token`), and the browser is redirected to
//! the token-free page, so the token never sits in history or a `Referer`. Opening the page
//! never spends the token.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{State, get, post, uri};
use rocket_dyn_templates::Template;

use super::{Layout, invalid_link, link_failed, redirect_with};
use crate::auth::{Account, Auth, Caller, ResetRequest};
use crate::config::Settings;
use crate::mail::{RESET_PATH, link};
use crate::web::cookies::{Cookies, Link};
use crate::web::csrf::CheckedForm;
use crate::web::error::{ErrorPage, FormError, PageFailure};

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
) -> Result<Template, PageFailure> {
    let CheckedForm(fields) = form;
    let email = fields.email("email").map_err(|problem| {
        let typed = fields.text("email").unwrap_or_default();
        FormError::new(problem, |message| {
            forgot_form(&layout, typed, Some(message))
        })
    })?;
    let expose = settings.expose_reset_token;
    let requested = auth.links().request_reset(&caller, &email, expose).await;
    let link = match requested.map_err(ErrorPage::from)? {
        ResetRequest::Issued(token) => Some(link(
            settings.public_base_url.as_deref(),
            RESET_PATH,
            &token,
        )),
        ResetRequest::NoAccount | ResetRequest::Capped | ResetRequest::Deferred => None,
    };
    let message = "If an account exists for that email, we have sent a reset link to it.";
    Ok(link_sent(&layout, message, link, "reset-link"))
}

/// The "check your email" page; with `expose_reset_token` (debug) it also shows the mailed
/// link, with the id `link_id`.
pub(super) fn link_sent(
    layout: &Layout,
    message: &str,
    link: Option<String>,
    link_id: &str,
) -> Template {
    let page = json!({
        "title": "Check your email",
        "message": message,
        "link": link,
        "link_id": link_id,
    });
    layout.render("link_sent", page)
}

/// The link's first load: keep the token in a private cookie and drop it from the URL.
#[get("/password/reset?<token>", rank = 1)]
pub fn reset_link_opened(token: &str, cookies: Cookies<'_>) -> Redirect {
    cookies.hold_link_token(Link::Reset, token);
    Redirect::to(uri!(reset_page))
}

#[get("/password/reset", rank = 2)]
pub async fn reset_page(
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Template, ErrorPage> {
    let (_, holder) = link_holder(&caller, auth, &cookies).await?;
    Ok(reset_form(&layout, auth, &holder, None))
}

fn reset_form(layout: &Layout, auth: &Auth, holder: &Account, error: Option<&str>) -> Template {
    let page = json!({
        "title": "Choose a new password",
        "email": holder.email,
        "error": error,
        "min_length": auth.policy().min_length,
    });
    layout.render("reset", page)
}

/// The token held from the link and the account it belongs to; 403 for any invalid link.
async fn link_holder(
    caller: &Caller,
    auth: &Auth,
    cookies: &Cookies<'_>,
) -> Result<(String, Account), ErrorPage> {
    let token = cookies
        .link_token(Link::Reset)
        .ok_or_else(|| invalid_link(INVALID_LINK))?;
    let holder = auth
        .links()
        .reset_token_holder(caller, &token)
        .await
        .map_err(|e| link_failed(e, INVALID_LINK))?;
    Ok((token, holder))
}

/// Sets the new password, which spends the token and ends every session of the account; the
/// visitor is sent to log in (a reset logs no one in).
#[post("/password/reset", data = "<form>")]
pub async fn reset_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let CheckedForm(fields) = form;
    let (token, holder) = link_holder(&caller, auth, &cookies).await?;
    let password = fields
        .new_password("new_password", auth.policy())
        .map_err(|problem| {
            let form = |message: &str| reset_form(&layout, auth, &holder, Some(message));
            FormError::new(problem, form)
        })?;
    auth.links()
        .spend_reset_token(&caller, &token, None, password)
        .await
        .map_err(|e| link_failed(e, INVALID_LINK))?;
    cookies.drop_link_token(Link::Reset);
    let done = "Your password has been changed. Log in with your new password.";
    Ok(redirect_with(uri!(super::account::login_page), done))
}
