//! Passkeys on the pages: adding one from the security page, removing one, signing in with one
//! alone (`/login/passkey`) and as the second factor (`/login/second-factor/passkey`). Each
//! ceremony's page holds its options in an inert JSON element and a form whose hidden
//! `credential` field `static/js/passkey.js` fills; without scripts the passkey buttons stay
//! hidden and every other way in works as before.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::{Value, json};
use rocket::{get, post, uri};
use rocket_dyn_templates::Template;

use super::{FormPage, Page, account_of, enrolling_account_of, submit};
use crate::auth::{AuthError, Ceremony, SecondFactor};
use crate::web::bodies::{
    EmailInput, NewPasskey, PageCredential, PasskeyAnswer, PasskeyRemoval, PasskeyStart,
};
use crate::web::csrf::CheckedForm;
use crate::web::error::PageFailure;
use crate::web::paths;

const NEW: FormPage = FormPage::new("passkey_new", "Add a passkey").keeps("name");
const LOGIN: FormPage = FormPage::new("passkey_login", "Log in with a passkey").keeps("email");

/// A ceremony's options as the inert JSON element holds them (`<` escaped, so the text cannot
/// close the element).
pub(super) fn options_json(options: &Value) -> String {
    options.to_string().replace('<', "\\u003c")
}

/// The page of a ceremony: `mode` (`create` or `get`), the form's `action` and hidden
/// `fields`, and the words around the button.
fn ceremony_page(
    page: &Page<'_>,
    ceremony: &Ceremony,
    mode: &str,
    action: &str,
    fields: Value,
    words: (&str, &str, &str),
) -> Template {
    let (title, text, button) = words;
    let context = json!({
        "title": title,
        "text": text,
        "button": button,
        "mode": mode,
        "action": action,
        "fields": fields,
        "options": options_json(&ceremony.public_key),
    });
    page.layout.render("passkey_ceremony", context)
}

#[get("/account/security/passkeys/new")]
pub async fn new_page(page: Page<'_>) -> Result<Template, PageFailure> {
    enrolling_account_of(&page).await?;
    Ok(NEW.empty(&page))
}

/// Starts adding a passkey, given its name and the current password: the ceremony's page.
#[post("/account/security/passkeys/new", data = "<form>")]
pub async fn new_submit(
    form: CheckedForm<PasskeyStart>,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let user = enrolling_account_of(&page).await?;
    let passkeys = page.auth.passkeys();
    let start = async |body: PasskeyStart| {
        let ceremony = passkeys
            .start_registration(&page.caller, &user, body.current_password.as_deref())
            .await?;
        Ok((ceremony, body.name))
    };
    let (ceremony, name) = submit(form, start, NEW.again(&page)).await?;
    let fields = json!({"challenge_id": ceremony.challenge_id, "name": name});
    let words = (
        "Create your passkey",
        "Your browser will ask you to unlock this device (a fingerprint, a face, a PIN) to make \
         the passkey.",
        "Create the passkey",
    );
    let action = "/account/security/passkeys";
    Ok(ceremony_page(
        &page, &ceremony, "create", action, fields, words,
    ))
}

/// Stores the passkey the browser made, and goes back to the security page.
#[post("/account/security/passkeys", data = "<form>")]
pub async fn create_submit(
    form: CheckedForm<NewPasskey>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let user = enrolling_account_of(&page).await?;
    let added = match form.body {
        Ok(NewPasskey {
            challenge_id,
            credential,
            name,
        }) => {
            let passkeys = page.auth.passkeys();
            (passkeys.finish_registration(&page.caller, &user, &challenge_id, &credential.0, &name))
                .await
        }
        Err(_) => Err(AuthError::PasskeyRefused),
    };
    Ok(match added {
        Ok(passkey) => security_with(&format!(
            "Your passkey \"{}\" was added. Every other device has been logged out.",
            passkey.name
        )),
        Err(AuthError::CredentialTaken) => {
            security_error("This passkey is registered already: use it, or add another one.")
        }
        Err(AuthError::PasskeyRefused | AuthError::StepExpired | AuthError::BadPasskeyName) => {
            security_error("The passkey was not added: it could not be verified. Try again.")
        }
        Err(error) => return Err(crate::web::error::ErrorPage::from(error).into()),
    })
}

/// The removal of passkey `id`: its name, and the current password.
#[get("/account/security/passkeys/remove?<id>")]
pub async fn remove_page(id: &str, page: Page<'_>) -> Result<Template, PageFailure> {
    let user = account_of(&page).await?;
    let passkeys = page.auth.passkeys().list(&user).await;
    let listed = passkeys.map_err(crate::web::error::ErrorPage::from)?;
    let Some(passkey) = listed.into_iter().find(|p| p.id == id) else {
        let elsewhere = security_error("That passkey is not one of yours.");
        return Err(PageFailure::Elsewhere(Box::new(elsewhere)));
    };
    Ok(page.layout.render(
        "passkey_remove",
        json!({
            "title": "Remove a passkey",
            "form": {"values": {}, "errors": {}, "first": null, "alert": null},
            "id": passkey.id,
            "name": passkey.name,
        }),
    ))
}

#[post("/account/security/passkeys/remove", data = "<form>")]
pub async fn remove_submit(
    form: CheckedForm<PasskeyRemoval>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let user = account_of(&page).await?;
    let passkeys = page.auth.passkeys();
    let removed = match form.body {
        Ok(PasskeyRemoval {
            id,
            current_password,
        }) => (passkeys.remove(&page.caller, &user, &id, current_password.as_deref())).await,
        Err(_) => Err(AuthError::WrongPassword),
    };
    Ok(match removed {
        Ok(()) => security_with("The passkey was removed. Every other device has been logged out."),
        Err(AuthError::WrongPassword) => {
            security_error("The passkey was not removed: the password was not right.")
        }
        Err(AuthError::LastFactor) => {
            security_error("The passkey was not removed: it is your last second factor.")
        }
        Err(AuthError::NoSuchFactor) => security_error("That passkey is not one of yours."),
        Err(error) => return Err(crate::web::error::ErrorPage::from(error).into()),
    })
}

#[get("/login/passkey")]
pub fn login_page(page: Page<'_>) -> Template {
    LOGIN.empty(&page)
}

/// The options of a sign-in with a passkey for the email typed: the ceremony's page.
#[post("/login/passkey", data = "<form>")]
pub async fn login_submit(
    form: CheckedForm<EmailInput>,
    page: Page<'_>,
) -> Result<Template, PageFailure> {
    let passkeys = page.auth.passkeys();
    let options = async |body: EmailInput| passkeys.sign_in_options(&body.email).await;
    let ceremony = submit(form, options, LOGIN.again(&page)).await?;
    let fields = json!({"challenge_id": ceremony.challenge_id});
    let words = (
        "Use your passkey",
        "Your browser will ask you to unlock the device that holds your passkey.",
        "Use my passkey",
    );
    let action = "/login/passkey/finish";
    Ok(ceremony_page(
        &page, &ceremony, "get", action, fields, words,
    ))
}

/// Signs in with the passkey's answer; a refusal goes back to try again.
#[post("/login/passkey/finish", data = "<form>")]
pub async fn login_finish(
    form: CheckedForm<PasskeyAnswer>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let signed_in = match form.body {
        Ok(body) => {
            page.passkey_sign_in(&body.challenge_id, &body.credential)
                .await
        }
        Err(_) => Err(AuthError::PasskeyRefused),
    };
    match signed_in {
        Ok(_) => Ok(Flash::success(
            Redirect::to(super::signed_in_to(&page)),
            "You are logged in.",
        )),
        Err(AuthError::PasskeyRefused) => Ok(Flash::error(
            Redirect::to(uri!(login_page)),
            "That passkey did not sign you in. Try again, or log in with your password.",
        )),
        Err(error) => Err(crate::web::error::ErrorPage::from(error).into()),
    }
}

/// Completes the pending login with a passkey (the options were on the second-factor page).
#[post("/login/second-factor/passkey", data = "<form>")]
pub async fn second_factor_submit(
    form: CheckedForm<PageCredential>,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let back = || Redirect::to(paths::SECOND_FACTOR);
    let Some(token) = page.cookies.sign_in_step() else {
        return Ok(Flash::error(back(), "Your sign-in ended. Log in again."));
    };
    let signed_in = match &form.body {
        Ok(body) => {
            let answer = SecondFactor::Passkey(&body.credential.0);
            page.second_factor(&token, answer).await
        }
        Err(_) => Err(AuthError::WrongCode),
    };
    match signed_in {
        Ok(_) => {
            page.cookies.drop_sign_in_step();
            Ok(Flash::success(
                Redirect::to(super::signed_in_to(&page)),
                "You are logged in.",
            ))
        }
        Err(AuthError::WrongCode) => Ok(Flash::error(
            back(),
            "That passkey did not verify. Try again, or enter a code.",
        )),
        Err(AuthError::StepExpired) => {
            page.cookies.drop_sign_in_step();
            Ok(Flash::error(
                Redirect::to(uri!(super::account::login_page)),
                "Your sign-in ended (it lasts 5 minutes and allows 5 tries). Log in again.",
            ))
        }
        Err(error) => Err(crate::web::error::ErrorPage::from(error).into()),
    }
}

/// A `303 See Other` to the security page with `message`.
fn security_with(message: &str) -> Flash<Redirect> {
    Flash::success(Redirect::to(paths::SECURITY), message.to_owned())
}

/// A `303 See Other` to the security page with the error `message`.
fn security_error(message: &str) -> Flash<Redirect> {
    Flash::error(Redirect::to(paths::SECURITY), message.to_owned())
}
