//! The pages mailed links open: verifying the account's email, and confirming a new one.
//!
//! As with reset links, the token leaves the URL on first load (a private cookie sent only to
//! the link's page) and the page only shows what the link would do: the token is spent by the
//! page's button (a POST with the CSRF token), so a mail scanner that fetches the link spends
//! nothing. No session is needed: a link may be opened on another device.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{State, get, post, uri};
use rocket_dyn_templates::Template;

use super::{Layout, invalid_link, link_failed, redirect_with};
use crate::auth::{Auth, Caller};
use crate::web::cookies::{Cookies, Link};
use crate::web::csrf::CheckedForm;
use crate::web::error::ErrorPage;

const INVALID_VERIFY: &str = "This verification link is invalid, has expired or has already \
                              been used. Log in to have a new one sent.";
const INVALID_EMAIL: &str = "This confirmation link is invalid, has expired or has already \
                             been used. Ask for a new one from your profile.";

/// What the page of a link shows: its heading, what pressing its button does, the button.
fn link_page(layout: &Layout, title: &str, text: &str, action: &str, button: &str) -> Template {
    let page = json!({ "title": title, "text": text, "action": action, "button": button });
    layout.render("email_link", page)
}

/// The token the browser holds for `link`, or the invalid link's page.
fn held(cookies: &Cookies<'_>, link: Link, invalid: &'static str) -> Result<String, ErrorPage> {
    cookies
        .link_token(link)
        .ok_or_else(|| invalid_link(invalid))
}

/// Where a spent link leads: the profile of a logged-in visitor, otherwise the login page.
fn after_link(layout: &Layout, message: &str) -> Flash<Redirect> {
    match layout.account() {
        Some(_) => redirect_with(uri!(super::account::profile_page), message),
        None => redirect_with(uri!(super::account::login_page), message),
    }
}

/// A verification link's first load: keep the token in a private cookie, drop it from the URL.
#[get("/email/verify?<token>", rank = 1)]
pub fn verify_link_opened(token: &str, cookies: Cookies<'_>) -> Redirect {
    cookies.hold_link_token(Link::Verify, token);
    Redirect::to(uri!(verify_page))
}

#[get("/email/verify", rank = 2)]
pub async fn verify_page(
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Template, ErrorPage> {
    let token = held(&cookies, Link::Verify, INVALID_VERIFY)?;
    let holder = auth
        .verification_holder(&caller, &token)
        .await
        .map_err(|e| link_failed(e, INVALID_VERIFY))?;
    let text = format!("Confirm that {} is your email address.", holder.email);
    Ok(link_page(
        &layout,
        "Verify your email",
        &text,
        "/email/verify",
        "Verify my email",
    ))
}

#[post("/email/verify", data = "<_form>")]
pub async fn verify_submit(
    _form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, ErrorPage> {
    let token = held(&cookies, Link::Verify, INVALID_VERIFY)?;
    let user = auth
        .verify_email(&caller, &token)
        .await
        .map_err(|e| link_failed(e, INVALID_VERIFY))?;
    cookies.drop_link_token(Link::Verify);
    let message = format!("Thank you: {} is verified.", user.email);
    Ok(after_link(&layout, &message))
}

/// An email-change link's first load: keep the token in a private cookie, drop it from the URL.
#[get("/email/confirm?<token>", rank = 1)]
pub fn email_link_opened(token: &str, cookies: Cookies<'_>) -> Redirect {
    cookies.hold_link_token(Link::EmailChange, token);
    Redirect::to(uri!(email_page))
}

#[get("/email/confirm", rank = 2)]
pub async fn email_page(
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Template, ErrorPage> {
    let token = held(&cookies, Link::EmailChange, INVALID_EMAIL)?;
    let (_, new_email) = auth
        .email_change_holder(&caller, &token)
        .await
        .map_err(|e| link_failed(e, INVALID_EMAIL))?;
    let text = format!("Make {new_email} the email of your account. You will log in with it.");
    let title = "Confirm your new email";
    Ok(link_page(
        &layout,
        title,
        &text,
        "/email/confirm",
        "Use this email",
    ))
}

#[post("/email/confirm", data = "<_form>")]
pub async fn email_submit(
    _form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, ErrorPage> {
    let token = held(&cookies, Link::EmailChange, INVALID_EMAIL)?;
    let user = auth
        .confirm_email_change(&caller, &token)
        .await
        .map_err(|e| link_failed(e, INVALID_EMAIL))?;
    cookies.drop_link_token(Link::EmailChange);
    let message = format!("Your account's email is now {}.", user.email);
    Ok(after_link(&layout, &message))
}
