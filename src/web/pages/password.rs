//! The forgotten-password journey: request a link, open it, choose a new password.
//!
//! The link's token leaves the URL on first load: it moves into a short-lived private cookie
//! scoped to `/password/reset` (`Cookies::hold_link_token`), and the browser is redirected to
//! the token-free page, so the token never sits in history or a `Referer`. Opening the page
//! never spends the token.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{get, post, uri};
use rocket_dyn_templates::Template;

use super::{
    FormPage, Layout, Page, Refusal, link_failed, link_token, opened, redirect_with, submit,
    titled, wording,
};
use crate::auth::Account;
use crate::auth::{Auth, AuthError, ResetRequest};
use crate::web::bodies::{EmailInput, NewPassword};
use crate::web::cookies::{Cookies, Link};
use crate::web::csrf::CheckedForm;
use crate::web::error::{ErrorPage, PageFailure};

const FORGOT: FormPage = FormPage::new("forgot", "Reset your password").keeps("email");

#[get("/password/forgot")]
pub fn forgot_page(page: Page<'_>) -> Template {
    FORGOT.empty(&page)
}

/// Answers the same page whether or not the account exists; with `expose_reset_token` (debug)
/// it also shows the link, as the API shows the token.
#[post("/password/forgot", data = "<form>")]
pub async fn forgot_submit(
    form: CheckedForm<EmailInput>,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let body = submit(
        form,
        async |body| Ok::<_, AuthError>(body),
        FORGOT.again(&page),
    )
    .await?;
    let requested = page.request_reset(&body).await.map_err(ErrorPage::from)?;
    let link = match requested {
        ResetRequest::Issued(token) => Some(page.auth.links().url(Link::Reset.page(), &token)),
        ResetRequest::NoAccount | ResetRequest::Capped | ResetRequest::Deferred => None,
    };
    let message = "If an account exists for that email, we have sent a reset link to it.";
    Ok(link_sent(&page.layout, message, link, "reset-link"))
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
    opened(&cookies, Link::Reset, token, uri!(reset_page))
}

#[get("/password/reset", rank = 2)]
pub async fn reset_page(page: Page<'_>) -> Result<Template, ErrorPage> {
    let (_, holder) = link_holder(&page).await?;
    Ok(reset_form(
        &page.layout,
        page.auth,
        &holder,
        &Refusal::default(),
    ))
}

fn reset_form(layout: &Layout, auth: &Auth, holder: &Account, refusal: &Refusal) -> Template {
    let page = json!({
        "title": titled("Choose a new password", refusal),
        "email": holder.email,
        "form": refusal.context(json!({})),
        "password_rule": wording::password_rule(auth.policy()),
    });
    layout.render("reset", page)
}

/// The token held from the link and the account it belongs to; 403 for any invalid link.
async fn link_holder(page: &Page<'_>) -> Result<(String, Account), ErrorPage> {
    let token = link_token(&page.cookies, Link::Reset)?;
    let holder = page
        .auth
        .links()
        .reset_token_holder(&page.caller, &token)
        .await;
    Ok((token, holder.map_err(|e| link_failed(Link::Reset, e))?))
}

/// Sets the new password, which spends the token and ends every session of the account; the
/// visitor is sent to log in (a reset logs no one in).
#[post("/password/reset", data = "<form>")]
pub async fn reset_submit(
    form: CheckedForm<NewPassword>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let (token, holder) = link_holder(&page).await?;
    let again = |_: &_, refusal: &_| reset_form(&page.layout, page.auth, &holder, refusal);
    let NewPassword { new_password } =
        submit(form, async |body| Ok::<_, AuthError>(body), again).await?;
    let spent = (page.auth.links()).spend_reset_token(&page.caller, &token, None, new_password);
    spent.await.map_err(|e| link_failed(Link::Reset, e))?;
    page.cookies.drop_link_token(Link::Reset);
    let done = "Your password has been changed. Log in with your new password.";
    Ok(redirect_with(uri!(super::account::login_page), done))
}
