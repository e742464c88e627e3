//! Second factors on the pages: the sign-in's second step (`/login/second-factor`), and the
//! owner's security page (`/account/security`) where an authenticator app is set up, confirmed
//! and removed, and recovery codes are renewed. Everything works without scripts.
//!
//! A session that may only set up a second factor (`mfa_policy = "required"`) reaches the
//! security page, the setup and the log-out button; every other page sends it here.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{Either, get, post, uri};
use rocket_dyn_templates::Template;

use super::{FormPage, Page, Refusal, account_of, enrolling_account_of, submit};
use crate::auth::{Account, AuthError, TotpSetup};
use crate::time::readable;
use crate::web::bodies::{FactorChange, PageAnswer, TotpCode};
use crate::web::csrf::CheckedForm;
use crate::web::error::{ErrorPage, PageFailure};
use crate::web::input::Fields;
use crate::web::paths;

const SECOND_FACTOR: FormPage = FormPage::new("second_factor", "Enter your code");
const SETUP: FormPage = FormPage::new("totp_start", "Set up an authenticator app");
const REMOVE: FormPage = FormPage::new("totp_remove", "Remove the authenticator app");
const RENEW: FormPage = FormPage::new("recovery_renew", "New recovery codes");

/// The second step of a login: the browser holds the step in a cookie; without one, the
/// login page.
/// With a passkey among the step's methods, the page also holds a passkey ceremony's options.
#[get("/login/second-factor")]
pub async fn second_factor_page(page: Page<'_>) -> Either<Template, Redirect> {
    let Some(token) = page.cookies.sign_in_step() else {
        return Either::Right(Redirect::to(uri!(super::account::login_page)));
    };
    let extra = match page.auth.sign_in().passkey_options(&token).await {
        Ok(options) => json!({"passkey_options": super::passkeys::options_json(&options)}),
        Err(AuthError::StepExpired) => {
            return Either::Right(Redirect::to(uri!(super::account::login_page)));
        }
        Err(_) => json!({}),
    };
    Either::Left(SECOND_FACTOR.empty_with(&page, extra))
}

/// Completes the login with the authenticator's code or a recovery code. A wrong code shows
/// the form again; a step that ended (too many wrong codes, expired) goes back to log in.
#[post("/login/second-factor", data = "<form>")]
pub async fn second_factor_submit(
    form: CheckedForm<PageAnswer>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let Some(token) = page.cookies.sign_in_step() else {
        return Err(timed_out());
    };
    let complete = async |body: PageAnswer| match page
        .second_factor(&token, body.code.second_factor())
        .await
    {
        Ok(_) => Ok(true),
        Err(AuthError::StepExpired) => Ok(false),
        Err(error) => Err(error),
    };
    let signed_in = submit(form, complete, SECOND_FACTOR.again(&page)).await?;
    page.cookies.drop_sign_in_step();
    match signed_in {
        true => Ok(Flash::success(
            Redirect::to(super::signed_in_to(&page)),
            "You are logged in.",
        )),
        false => Err(timed_out()),
    }
}

/// Back to the login page: the step ended.
fn timed_out() -> PageFailure {
    let message = "Your sign-in ended (it lasts 5 minutes and allows 5 tries). Log in again.";
    let to_login = Flash::error(Redirect::to(uri!(super::account::login_page)), message);
    PageFailure::Elsewhere(Box::new(to_login))
}

/// What the account has of second factors, and what the owner can do about them.
#[get("/account/security")]
pub async fn security_page(page: Page<'_>) -> Result<Template, PageFailure> {
    let user = enrolling_account_of(&page).await?;
    let status = page.auth.factors().status(&user).await;
    let status = status.map_err(ErrorPage::from)?;
    let passkeys = match page.auth.passkeys().list(&user).await {
        Ok(passkeys) => passkeys,
        Err(AuthError::PasskeysOff) => Vec::new(),
        Err(error) => return Err(ErrorPage::from(error).into()),
    };
    let passkeys: Vec<_> = passkeys
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "created": readable(p.created_at),
                "last_used": p.last_used_at.map(readable),
            })
        })
        .collect();
    let context = json!({
        "passkeys": passkeys,
        "title": "Security",
        "totp": status.totp,
        "recovery_codes_left": status.recovery_codes_left,
        "required": status.required,
        "must_enroll": user.must_enroll(),
    });
    Ok(page.layout.render("security", context))
}

#[get("/account/security/totp")]
pub async fn totp_start_page(page: Page<'_>) -> Result<Template, PageFailure> {
    enrolling_account_of(&page).await?;
    Ok(SETUP.empty(&page))
}

/// Starts the setup, given the current password: the QR code, the secret and the form that
/// confirms it with a code.
#[post("/account/security/totp", data = "<form>")]
pub async fn totp_start_submit(
    form: CheckedForm<FactorChange>,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let user = enrolling_account_of(&page).await?;
    let factors = page.auth.factors();
    let start = async |body: FactorChange| {
        (factors.start_totp(&page.caller, &user, body.current_password.as_deref())).await
    };
    let setup = submit(form, start, SETUP.again(&page)).await?;
    Ok(setup_page(&page, Some(&setup), &Refusal::default()))
}

/// The setup: the QR code and the secret, and the form that confirms them with a code.
/// The setup: the QR code and the secret (only right after the password was confirmed, never
/// again: a refused code shows the form alone), and the form that confirms them with a code.
fn setup_page(page: &Page<'_>, setup: Option<&TotpSetup>, refusal: &Refusal) -> Template {
    let context = json!({
        "title": super::titled("Scan the code with your authenticator app", refusal),
        "form": refusal.context(json!({})),
        "qr_svg": setup.map(|s| s.qr_svg.clone()),
        "secret": setup.map(|s| grouped(&s.secret)),
    });
    page.layout.render("totp_setup", context)
}

/// The base32 secret in groups of four, as apps show it and people type it.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let groups: Vec<String> = chars.chunks(4).map(|g| g.iter().collect()).collect();
    groups.join(" ")
}

/// Confirms the pending setup with a code: the recovery codes of a first second factor, or
/// back to the security page. A wrong code shows the setup again.
#[post("/account/security/totp/confirm", data = "<form>")]
pub async fn totp_confirm_submit(
    form: CheckedForm<TotpCode>,
    page: Page<'_>,
) -> Result<Either<Template, Flash<Redirect>>, PageFailure> {
    let user = enrolling_account_of(&page).await?;
    let factors = page.auth.factors();
    let confirm =
        async |body: TotpCode| factors.confirm_totp(&page.caller, &user, &body.code).await;
    let again = |_: &Fields, refusal: &Refusal| setup_page(&page, None, refusal);
    match submit(form, confirm, again).await? {
        Some(codes) => Ok(Either::Left(codes_page(&page, &codes, true))),
        None => Ok(Either::Right(security_with(
            "Your new authenticator app is set up. Every other device has been logged out.",
        ))),
    }
}

/// The recovery codes, shown this once.
fn codes_page(page: &Page<'_>, codes: &[String], first: bool) -> Template {
    let context = json!({
        "title": "Save your recovery codes",
        "codes": codes,
        "first": first,
    });
    page.layout.render("recovery_codes", context)
}

/// A `303 See Other` to the security page with `message`.
fn security_with(message: &str) -> Flash<Redirect> {
    Flash::success(Redirect::to(paths::SECURITY), message.to_owned())
}

#[get("/account/security/totp/remove")]
pub async fn totp_remove_page(page: Page<'_>) -> Result<Template, PageFailure> {
    account_of(&page).await?;
    Ok(REMOVE.empty(&page))
}

/// Removes the authenticator app, given the current password.
#[post("/account/security/totp/remove", data = "<form>")]
pub async fn totp_remove_submit(
    form: CheckedForm<FactorChange>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let user = account_of(&page).await?;
    let remove = async |body: FactorChange| remove_totp(&page, &user, &body).await;
    submit(form, remove, REMOVE.again(&page)).await?;
    Ok(security_with(
        "The authenticator app was removed. Every other device has been logged out.",
    ))
}

async fn remove_totp(
    page: &Page<'_>,
    user: &Account,
    body: &FactorChange,
) -> Result<(), AuthError> {
    let factors = page.auth.factors();
    factors
        .remove_totp(&page.caller, user, body.current_password.as_deref())
        .await
}

#[get("/account/security/recovery-codes")]
pub async fn recovery_renew_page(page: Page<'_>) -> Result<Template, PageFailure> {
    account_of(&page).await?;
    Ok(RENEW.empty(&page))
}

/// A new set of recovery codes, given the current password; the old set stops working.
#[post("/account/security/recovery-codes", data = "<form>")]
pub async fn recovery_renew_submit(
    form: CheckedForm<FactorChange>,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let user = account_of(&page).await?;
    let factors = page.auth.factors();
    let renew = async |body: FactorChange| {
        (factors.new_recovery_codes(&page.caller, &user, body.current_password.as_deref())).await
    };
    let codes = submit(form, renew, RENEW.again(&page)).await?;
    Ok(codes_page(&page, &codes, false))
}
