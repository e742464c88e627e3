//! The pages mailed links open: verifying the account's email, and confirming a new one.
//!
//! As with reset links, the token leaves the URL on first load (a private cookie sent only to
//! the link's page) and the page only shows what the link would do: the token is spent by the
//! page's button (a POST with the CSRF token), so a mail scanner that fetches the link spends
//! nothing. No session is needed: a link may be opened on another device.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{get, post, uri};
use rocket_dyn_templates::Template;

use super::{Layout, MailedLink, redirect_with};
use crate::auth::AuthError;
use crate::web::cookies::{Cookies, Link};
use crate::web::csrf::CheckedForm;
use crate::web::error::ErrorPage;
use crate::web::flows::AccountRequest;

/// One kind of mailed link with a page of its own, whose button spends the token.
struct LinkPage {
    mailed: MailedLink,
    title: &'static str,
    button: &'static str,
}

const VERIFY: LinkPage = LinkPage {
    mailed: MailedLink {
        link: Link::Verify,
        invalid: "This verification link is invalid, has expired or has already been used. \
                  Log in to have a new one sent.",
    },
    title: "Verify your email",
    button: "Verify my email",
};

const EMAIL_CHANGE: LinkPage = LinkPage {
    mailed: MailedLink {
        link: Link::EmailChange,
        invalid: "This confirmation link is invalid, has expired or has already been used. \
                  Ask for a new one from your profile.",
    },
    title: "Confirm your new email",
    button: "Use this email",
};

impl LinkPage {
    /// The link's page, if the token the browser holds is one the auth layer knows: `what`
    /// turns the token into the text saying what the button does.
    async fn show(
        &self,
        request: &AccountRequest<'_>,
        layout: &Layout,
        what: impl AsyncFnOnce(String) -> Result<String, AuthError>,
    ) -> Result<Template, ErrorPage> {
        let token = self.mailed.token(&request.cookies)?;
        let text = what(token).await.map_err(|e| self.mailed.failed(e))?;
        let page = json!({
            "title": self.title,
            "text": text,
            "action": self.mailed.link.page(),
            "button": self.button,
        });
        Ok(layout.render("email_link", page))
    }

    /// Spends the token the browser holds with `spend`; then the cookie goes, and the visitor
    /// to their profile if logged in (to the login page otherwise) with the message `spend`
    /// made.
    async fn spend(
        &self,
        request: &AccountRequest<'_>,
        layout: &Layout,
        spend: impl AsyncFnOnce(String) -> Result<String, AuthError>,
    ) -> Result<Flash<Redirect>, ErrorPage> {
        let token = self.mailed.token(&request.cookies)?;
        let message = spend(token).await.map_err(|e| self.mailed.failed(e))?;
        request.cookies.drop_link_token(self.mailed.link);
        Ok(match layout.account() {
            Some(_) => redirect_with(uri!(super::account::profile_page), &message),
            None => redirect_with(uri!(super::account::login_page), &message),
        })
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
    request: AccountRequest<'_>,
    layout: Layout,
) -> Result<Template, ErrorPage> {
    let (auth, caller) = (request.auth, &request.caller);
    VERIFY
        .show(&request, &layout, async |token| {
            let email = auth.verification_holder(caller, &token).await?.email;
            Ok(format!("Confirm that {email} is your email address."))
        })
        .await
}

#[post("/email/verify", data = "<_form>")]
pub async fn verify_submit(
    _form: CheckedForm,
    request: AccountRequest<'_>,
    layout: Layout,
) -> Result<Flash<Redirect>, ErrorPage> {
    VERIFY
        .spend(&request, &layout, async |token| {
            let email = request.verify_email(&token).await?;
            Ok(format!("Thank you: {email} is verified."))
        })
        .await
}

/// An email-change link's first load: keep the token in a private cookie, drop it from the URL.
#[get("/email/confirm?<token>", rank = 1)]
pub fn email_link_opened(token: &str, cookies: Cookies<'_>) -> Redirect {
    cookies.hold_link_token(Link::EmailChange, token);
    Redirect::to(uri!(email_page))
}

#[get("/email/confirm", rank = 2)]
pub async fn email_page(
    request: AccountRequest<'_>,
    layout: Layout,
) -> Result<Template, ErrorPage> {
    let (auth, caller) = (request.auth, &request.caller);
    EMAIL_CHANGE
        .show(&request, &layout, async |token| {
            let (_, new_email) = auth.email_change_holder(caller, &token).await?;
            Ok(format!(
                "Make {new_email} the email of your account. You will log in with it."
            ))
        })
        .await
}

#[post("/email/confirm", data = "<_form>")]
pub async fn email_submit(
    _form: CheckedForm,
    request: AccountRequest<'_>,
    layout: Layout,
) -> Result<Flash<Redirect>, ErrorPage> {
    EMAIL_CHANGE
        .spend(&request, &layout, async |token| {
            let email = request.confirm_email_change(&token).await?;
            Ok(format!("Your account's email is now {email}."))
        })
        .await
}
