//! What the owner of an account changes from the profile: its devices (log one out, or all the
//! others), a new verification link, the password, the email, and deleting the account.
//!
//! Each form acts on the account of the browser's live session only; a visitor whose session
//! ended meanwhile is sent to log in. A refused form is shown again with its message at the
//! refusal's status (a wrong current password: 401); the buttons of the profile re-render the
//! profile likewise.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{Either, State, get, post, uri};
use rocket_dyn_templates::Template;

use super::account::{LoggedOut, profile_view};
use super::password::link_sent;
use super::{Layout, account_user, redirect_with};
use crate::auth::{Account, Auth, AuthError, Caller};
use crate::config::Settings;
use crate::mail::{EMAIL_CHANGE_PATH, VERIFY_PATH, link};
use crate::web::cookies::Cookies;
use crate::web::csrf::CheckedForm;
use crate::web::error::{FormError, PageFailure, Problem};
use crate::web::session::CurrentUser;

/// A settings form's page for a logged-in visitor; others are sent to log in.
fn settings_form(layout: &Layout, render: impl FnOnce() -> Template) -> Either<Template, Redirect> {
    match layout.account() {
        Some(_) => Either::Left(render()),
        None => Either::Right(Redirect::to(uri!(super::account::login_page))),
    }
}

/// The profile again, around the message of its button that failed, at the failure's status.
async fn profile_failure(
    problem: Problem,
    layout: &Layout,
    caller: &Caller,
    auth: &Auth,
    user: &Account,
) -> PageFailure {
    match profile_view(layout, caller, auth, user, Some(problem.message())).await {
        Ok(page) => FormError::new(problem, |_| page).into(),
        Err(failed) => failed.into(),
    }
}

/// The link a mail carries, shown on the "link sent" page when tokens are exposed (debug).
fn shown_link(settings: &Settings, path: &str, token: Option<&str>) -> Option<String> {
    let base = settings.public_base_url.as_deref();
    let token = token.filter(|_| settings.expose_reset_token)?;
    Some(link(base, path, token))
}

/// Logs out one device of the account, named by its public id; this very device goes home.
#[post("/account/sessions/end", data = "<form>")]
pub async fn end_session_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Either<LoggedOut, Flash<Redirect>>, PageFailure> {
    let user = account_user(user)?;
    let CheckedForm(fields) = form;
    let ended = match fields.text("id") {
        Ok(id) => auth
            .accounts()
            .end_session_by_id(&caller, &user, id)
            .await
            .map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match ended {
        Ok(ended) if ended.current => {
            cookies.end_session();
            Ok(Either::Left(LoggedOut::home("You have been logged out.")))
        }
        Ok(_) => {
            let done = "That device has been logged out.";
            Ok(Either::Right(redirect_with(
                uri!(super::account::profile_page),
                done,
            )))
        }
        Err(problem) => Err(profile_failure(problem, &layout, &caller, auth, &user).await),
    }
}

/// Logs out every device of the account but this one.
#[post("/account/sessions/end-others", data = "<_form>")]
pub async fn end_others_submit(
    _form: CheckedForm,
    caller: Caller,
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
) -> Result<Flash<Redirect>, PageFailure> {
    let user = account_user(user)?;
    match auth.accounts().end_other_sessions(&caller, &user).await {
        Ok(ended) => {
            let devices = if ended == 1 { "device" } else { "devices" };
            let done = format!("{ended} other {devices} logged out.");
            Ok(redirect_with(uri!(super::account::profile_page), &done))
        }
        Err(error) => Err(profile_failure(error.into(), &layout, &caller, auth, &user).await),
    }
}

/// Sends a new verification link to the account's email.
#[post("/account/verification/send", data = "<_form>")]
pub async fn verification_submit(
    _form: CheckedForm,
    caller: Caller,
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> Result<Template, PageFailure> {
    let user = account_user(user)?;
    match auth.links().send_verification(&caller, &user).await {
        Ok(token) => {
            let message = format!("We sent a new verification link to {}.", user.email);
            let link = shown_link(settings, VERIFY_PATH, Some(&token));
            Ok(link_sent(&layout, &message, link, "verify-link"))
        }
        Err(error) => Err(profile_failure(error.into(), &layout, &caller, auth, &user).await),
    }
}

#[get("/account/password")]
pub fn password_page(layout: Layout, auth: &State<Auth>) -> Either<Template, Redirect> {
    settings_form(&layout, || password_form(&layout, auth, None))
}

fn password_form(layout: &Layout, auth: &Auth, error: Option<&str>) -> Template {
    let page = json!({
        "title": "Change your password",
        "error": error,
        "min_length": auth.policy().min_length,
    });
    layout.render("account_password", page)
}

/// Changes the password: this browser gets a new session, every other device is logged out.
#[post("/account/password", data = "<form>")]
pub async fn password_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let user = account_user(user)?;
    let CheckedForm(fields) = form;
    let changed = async {
        let current = fields.current_password()?;
        let new = fields.new_password("new_password", auth.policy())?;
        Ok::<_, Problem>(
            auth.accounts()
                .change_password(&caller, &user, current, new)
                .await?,
        )
    };
    match changed.await {
        Ok(login) => {
            cookies.start_session(login);
            let done = "Your password has been changed. Every other device has been logged out.";
            Ok(redirect_with(uri!(super::account::profile_page), done))
        }
        Err(problem) => {
            let form = |message: &str| password_form(&layout, auth, Some(message));
            Err(FormError::new(problem, form).into())
        }
    }
}

#[get("/account/email")]
pub fn email_page(layout: Layout) -> Either<Template, Redirect> {
    settings_form(&layout, || email_form(&layout, "", None))
}

fn email_form(layout: &Layout, new_email: &str, error: Option<&str>) -> Template {
    let page = json!({ "title": "Change your email", "new_email": new_email, "error": error });
    layout.render("account_email", page)
}

/// Mails a confirmation link to the new address (and a notice to the current one); the email
/// changes when the link is opened.
#[post("/account/email", data = "<form>")]
pub async fn email_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> Result<Template, PageFailure> {
    let user = account_user(user)?;
    let CheckedForm(fields) = form;
    let requested = async {
        let current = fields.current_password()?;
        let new_email = fields.email("new_email")?;
        let token = auth
            .accounts()
            .request_email_change(&caller, &user, current, &new_email)
            .await?;
        Ok::<_, Problem>((new_email, token))
    };
    match requested.await {
        Ok((new_email, token)) => {
            let message = format!(
                "We sent a confirmation link to {new_email}. Your email changes when you open it."
            );
            let link = shown_link(settings, EMAIL_CHANGE_PATH, token.as_deref());
            Ok(link_sent(&layout, &message, link, "email-link"))
        }
        Err(problem) => {
            let typed = fields.text("new_email").unwrap_or_default();
            let form = |message: &str| email_form(&layout, typed, Some(message));
            Err(FormError::new(problem, form).into())
        }
    }
}

#[get("/account/delete")]
pub fn delete_page(layout: Layout) -> Either<Template, Redirect> {
    settings_form(&layout, || delete_form(&layout, None))
}

fn delete_form(layout: &Layout, error: Option<&str>) -> Template {
    let page = json!({ "title": "Delete your account", "error": error });
    layout.render("account_delete", page)
}

/// Deletes the account with everything stored about it, and goes home.
#[post("/account/delete", data = "<form>")]
pub async fn delete_submit(
    form: CheckedForm,
    caller: Caller,
    layout: Layout,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<LoggedOut, PageFailure> {
    let user = account_user(user)?;
    let CheckedForm(fields) = form;
    let deleted = async {
        let current = fields.current_password()?;
        Ok::<_, Problem>(
            auth.accounts()
                .delete_account(&caller, &user, current)
                .await?,
        )
    };
    match deleted.await {
        Ok(()) => {
            cookies.end_session();
            Ok(LoggedOut::home("Your account has been deleted."))
        }
        Err(problem) => {
            let form = |message: &str| delete_form(&layout, Some(message));
            Err(FormError::new(problem, form).into())
        }
    }
}
