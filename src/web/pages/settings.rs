//! What the owner of an account changes from the profile: its devices (log one out, or all the
//! others), a new verification link, the password, the email, and deleting the account.
//!
//! Each form acts on the account of the browser's live session only; a visitor whose session
//! ended meanwhile is sent to log in. A refused form is shown again with its message at the
//! refusal's status (a wrong current password: 401); the buttons of the profile re-render the
//! profile likewise.

use rocket::response::{Flash, Redirect};
use rocket::{Either, get, post, uri};
use rocket_dyn_templates::Template;

use super::account::{LoggedOut, profile_view};
use super::password::link_sent;
use super::{FormPage, Page, Refusal, account_of, redirect_with, submit};
use crate::auth::Account;
use crate::auth::AuthError;
use crate::web::bodies::{CurrentPassword, EmailChange, PasswordChange, SessionChoice};
use crate::web::cookies::Link;
use crate::web::csrf::CheckedForm;
use crate::web::error::{FormError, PageFailure};

/// A settings form's page for a logged-in visitor; others are sent to log in, and a session
/// that must set up a second factor first to the security page.
fn settings_form(page: &Page<'_>, form: &FormPage) -> Either<Template, Redirect> {
    match page.layout.account() {
        Some(user) if user.must_enroll() => {
            Either::Right(Redirect::to(crate::web::paths::SECURITY))
        }
        Some(_) => Either::Left(form.empty(page)),
        None => Either::Right(Redirect::to(uri!(super::account::login_page))),
    }
}

/// A settings form's submission: `flow` runs for the account of the browser's session (the
/// login page without one); a refusal shows the form again around its message.
async fn settings_submit<T, R>(
    form: CheckedForm<T>,
    page: &Page<'_>,
    shown: &FormPage,
    flow: impl AsyncFnOnce(&Account, T) -> Result<R, AuthError>,
) -> Result<R, PageFailure> {
    let user = account_of(page).await?;
    let done = submit(
        form,
        async |body| flow(&user, body).await,
        shown.again(page),
    );
    Ok(done.await?)
}

/// A button of the profile: `flow` runs for the account of the browser's session; a refusal
/// shows the profile again around its message, at its status.
async fn profile_button<T, R>(
    form: CheckedForm<T>,
    page: &Page<'_>,
    flow: impl AsyncFnOnce(&Account, T) -> Result<R, AuthError>,
) -> Result<R, PageFailure> {
    let user = account_of(page).await?;
    let (problem, refusal) = match form.body {
        Ok(body) => match flow(&user, body).await {
            Ok(done) => return Ok(done),
            Err(error) => Refusal::of_auth(error, |_| false),
        },
        Err(faults) => Refusal::of_faults(faults),
    };
    let alert = refusal.said();
    match profile_view(page, &user, Some(&alert)).await {
        Ok(profile) => Err(FormError::new(problem, profile).into()),
        Err(failed) => Err(failed.into()),
    }
}

/// The "link sent" page; with `expose_reset_token` (debug), `token` is there and the page
/// shows the link the mail carries.
fn sent(page: &Page<'_>, message: &str, link: Link, token: Option<String>) -> Template {
    let shown = token.map(|token| page.auth.links().url(link.page(), &token));
    let id = match link {
        Link::Verify => "verify-link",
        _ => "email-link",
    };
    link_sent(&page.layout, message, shown, id)
}

/// Logs out one device of the account, named by its public id; this very device goes home.
#[post("/account/sessions/end", data = "<form>")]
pub async fn end_session_submit(
    form: CheckedForm<SessionChoice>,
    page: Page<'_>,
) -> Result<Either<LoggedOut, Flash<Redirect>>, PageFailure> {
    let end =
        async |user: &Account, choice: SessionChoice| page.end_session(user, &choice.id).await;
    if profile_button(form, &page, end).await?.current {
        return Ok(Either::Left(LoggedOut::home("You have been logged out.")));
    }
    let done = "That device has been logged out.";
    let profile = uri!(super::account::profile_page);
    Ok(Either::Right(redirect_with(profile, done)))
}

/// Logs out every device of the account but this one.
#[post("/account/sessions/end-others", data = "<form>")]
pub async fn end_others_submit(
    form: CheckedForm,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let end = async |user: &Account, ()| page.end_other_sessions(user).await;
    let ended = profile_button(form, &page, end).await?;
    let devices = if ended == 1 { "device" } else { "devices" };
    let done = format!("{ended} other {devices} logged out.");
    Ok(redirect_with(uri!(super::account::profile_page), &done))
}

/// Sends a new verification link to the account's email.
#[post("/account/verification/send", data = "<form>")]
pub async fn verification_submit(
    form: CheckedForm,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let send =
        async |user: &Account, ()| Ok((user.email.clone(), page.send_verification(user).await?));
    let (email, token) = profile_button(form, &page, send).await?;
    let message = format!("We sent a new verification link to {email}.");
    Ok(sent(&page, &message, Link::Verify, token))
}

const PASSWORD: FormPage =
    FormPage::new("account_password", "Change your password").states_policy();
const EMAIL: FormPage = FormPage::new("account_email", "Change your email").keeps("new_email");
const DELETE: FormPage = FormPage::new("account_delete", "Delete your account");

#[get("/account/password")]
pub fn password_page(page: Page<'_>) -> Either<Template, Redirect> {
    settings_form(&page, &PASSWORD)
}

/// Changes the password: this browser gets a new session, every other device is logged out.
#[post("/account/password", data = "<form>")]
pub async fn password_submit(
    form: CheckedForm<PasswordChange>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let change = async |user: &Account, body| page.change_password(user, body).await;
    settings_submit(form, &page, &PASSWORD, change).await?;
    let done = "Your password has been changed. Every other device has been logged out.";
    Ok(redirect_with(uri!(super::account::profile_page), done))
}

#[get("/account/email")]
pub fn email_page(page: Page<'_>) -> Either<Template, Redirect> {
    settings_form(&page, &EMAIL)
}

/// Mails a confirmation link to the new address (and a notice to the current one); the email
/// changes when the link is opened.
#[post("/account/email", data = "<form>")]
pub async fn email_submit(
    form: CheckedForm<EmailChange>,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let change = async |user: &Account, body: EmailChange| {
        let token = page.request_email_change(user, &body).await?;
        Ok((body.new_email, token))
    };
    let (new_email, token) = settings_submit(form, &page, &EMAIL, change).await?;
    let message =
        format!("We sent a confirmation link to {new_email}. Your email changes when you open it.");
    Ok(sent(&page, &message, Link::EmailChange, token))
}

#[get("/account/delete")]
pub fn delete_page(page: Page<'_>) -> Either<Template, Redirect> {
    settings_form(&page, &DELETE)
}

/// Deletes the account with everything stored about it, and goes home.
#[post("/account/delete", data = "<form>")]
pub async fn delete_submit(
    form: CheckedForm<CurrentPassword>,
    page: Page<'_>,
) -> Result<LoggedOut, PageFailure> {
    let delete = async |user: &Account, body| page.delete_account(user, &body).await;
    settings_submit(form, &page, &DELETE, delete).await?;
    Ok(LoggedOut::home("Your account has been deleted."))
}
