//! The pages mailed links open: verifying the account's email, and confirming a new one.
//!
//! As with reset links, the token leaves the URL on first load (a private cookie sent only to
//! the link's page) and the page only shows what the link would do: the token is spent by the
//! page's button (a POST with the CSRF token), so a mail scanner that fetches the link spends
//! nothing. No session is needed: a link may be opened on another device. The handlers go by
//! step: the first load, the page, the button.

use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{get, post, uri};
use rocket_dyn_templates::Template;

use super::{Page, link_failed, link_token, opened, redirect_with};
use crate::auth::AuthError;
use crate::web::cookies::{Cookies, Link};
use crate::web::csrf::CheckedForm;
use crate::web::error::ErrorPage;

/// What a link page's button answers: where to go next, with a message, or the error page.
type Spent = Result<Flash<Redirect>, ErrorPage>;

/// One kind of mailed link with a page of its own, whose button spends the token.
struct LinkPage {
    link: Link,
    title: &'static str,
    button: &'static str,
}

const VERIFY: LinkPage = LinkPage {
    link: Link::Verify,
    title: "Verify your email",
    button: "Verify my email",
};

const EMAIL_CHANGE: LinkPage = LinkPage {
    link: Link::EmailChange,
    title: "Confirm your new email",
    button: "Use this email",
};

impl LinkPage {
    /// What the button would do with `token`, said from the account it belongs to.
    async fn offer(&self, page: &Page<'_>, token: &str) -> Result<String, AuthError> {
        Ok(match self.link {
            Link::Verify => {
                let email = page
                    .auth
                    .links()
                    .verification_holder(&page.caller, token)
                    .await?
                    .email;
                format!("Confirm that {email} is your email address.")
            }
            // The email change (a reset link has a journey of its own, `pages::password`).
            _ => {
                let (_, new_email) = page
                    .auth
                    .links()
                    .email_change_holder(&page.caller, token)
                    .await?;
                format!("Make {new_email} the email of your account. You will log in with it.")
            }
        })
    }

    /// Spends `token`; what the visitor is told then.
    async fn done(&self, page: &Page<'_>, token: &str) -> Result<String, AuthError> {
        Ok(match self.link {
            Link::Verify => {
                let email = page.verify_email(token).await?;
                format!("Thank you: {email} is verified.")
            }
            _ => {
                let email = page.confirm_email_change(token).await?;
                format!("Your account's email is now {email}.")
            }
        })
    }

    /// The link's page, for a token the browser holds and the auth layer knows.
    async fn show(&self, page: &Page<'_>) -> Result<Template, ErrorPage> {
        let token = link_token(&page.cookies, self.link)?;
        let text = self.offer(page, &token).await;
        let context = json!({
            "title": self.title,
            "text": text.map_err(|e| link_failed(self.link, e))?,
            "action": self.link.page(),
            "button": self.button,
        });
        Ok(page.layout.render("email_link", context))
    }

    /// The button: spends the token; then the cookie goes, and the visitor to their profile if
    /// logged in (to the login page otherwise), where a message says what was done.
    async fn spend(&self, page: &Page<'_>) -> Spent {
        let token = link_token(&page.cookies, self.link)?;
        let done = self.done(page, &token).await;
        let message = done.map_err(|e| link_failed(self.link, e))?;
        page.cookies.drop_link_token(self.link);
        Ok(match page.layout.account() {
            Some(_) => redirect_with(uri!(super::account::profile_page), &message),
            None => redirect_with(uri!(super::account::login_page), &message),
        })
    }
}

/// A verification link's first load: keep the token in a private cookie, drop it from the URL.
#[get("/email/verify?<token>", rank = 1)]
pub fn verify_link_opened(token: &str, cookies: Cookies<'_>) -> Redirect {
    opened(&cookies, Link::Verify, token, uri!(verify_page))
}

/// An email-change link's first load: keep the token in a private cookie, drop it from the URL.
#[get("/email/confirm?<token>", rank = 1)]
pub fn email_link_opened(token: &str, cookies: Cookies<'_>) -> Redirect {
    opened(&cookies, Link::EmailChange, token, uri!(email_page))
}

#[get("/email/verify", rank = 2)]
pub async fn verify_page(page: Page<'_>) -> Result<Template, ErrorPage> {
    VERIFY.show(&page).await
}

#[get("/email/confirm", rank = 2)]
pub async fn email_page(page: Page<'_>) -> Result<Template, ErrorPage> {
    EMAIL_CHANGE.show(&page).await
}

#[post("/email/verify", data = "<_form>")]
pub async fn verify_submit(_form: CheckedForm, page: Page<'_>) -> Spent {
    VERIFY.spend(&page).await
}

#[post("/email/confirm", data = "<_form>")]
pub async fn email_submit(_form: CheckedForm, page: Page<'_>) -> Spent {
    EMAIL_CHANGE.spend(&page).await
}
