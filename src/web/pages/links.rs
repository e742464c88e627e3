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
use crate::auth::{Auth, AuthError, Caller};
use crate::web::cookies::{Cookies, Link};
use crate::web::csrf::CheckedForm;
use crate::web::error::ErrorPage;

/// One kind of mailed link: the cookie that holds its token, and its page.
struct LinkPage {
    link: Link,
    /// What the error page says of a link that is invalid, expired or spent.
    invalid: &'static str,
    title: &'static str,
    action: &'static str,
    button: &'static str,
}

const VERIFY: LinkPage = LinkPage {
    link: Link::Verify,
    invalid: "This verification link is invalid, has expired or has already been used. Log \
              in to have a new one sent.",
    title: "Verify your email",
    action: "/email/verify",
    button: "Verify my email",
};

const EMAIL_CHANGE: LinkPage = LinkPage {
    link: Link::EmailChange,
    invalid: "This confirmation link is invalid, has expired or has already been used. Ask \
              for a new one from your profile.",
    title: "Confirm your new email",
    action: "/email/confirm",
    button: "Use this email",
};

impl LinkPage {
    /// The token the browser holds for this link, or the invalid link's page.
    fn token(&self, cookies: &Cookies<'_>) -> Result<String, ErrorPage> {
        cookies
            .link_token(self.link)
            .ok_or_else(|| invalid_link(self.invalid))
    }

    /// The error page of a token the auth layer refused.
    fn failed(&self, error: AuthError) -> ErrorPage {
        link_failed(error, self.invalid)
    }

    /// The link's page: `text` says what its button does.
    fn render(&self, layout: &Layout, text: &str) -> Template {
        let page = json!({
            "title": self.title,
            "text": text,
            "action": self.action,
            "button": self.button,
        });
        layout.render("email_link", page)
    }

    /// After the token was spent: the cookie goes, and the visitor to their profile if logged
    /// in (to the login page otherwise) with `message`.
    fn spent(&self, cookies: &Cookies<'_>, layout: &Layout, message: &str) -> Flash<Redirect> {
        cookies.drop_link_token(self.link);
        match layout.account() {
            Some(_) => redirect_with(uri!(super::account::profile_page), message),
            None => redirect_with(uri!(super::account::login_page), message),
        }
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
    let token = VERIFY.token(&cookies)?;
    let holder = auth.links().verification_holder(&caller, &token).await;
    let email = holder.map_err(|e| VERIFY.failed(e))?.email;
    let text = format!("Confirm that {email} is your email address.");
    Ok(VERIFY.render(&layout, &text))
}

#[post("/email/verify", data = "<_form>")]
pub async fn verify_submit(
    _form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, ErrorPage> {
    let token = VERIFY.token(&cookies)?;
    let verified = auth.links().verify_email(&caller, &token).await;
    let email = verified.map_err(|e| VERIFY.failed(e))?.email;
    let message = format!("Thank you: {email} is verified.");
    Ok(VERIFY.spent(&cookies, &layout, &message))
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
    let token = EMAIL_CHANGE.token(&cookies)?;
    let holder = auth.links().email_change_holder(&caller, &token).await;
    let (_, new_email) = holder.map_err(|e| EMAIL_CHANGE.failed(e))?;
    let text = format!("Make {new_email} the email of your account. You will log in with it.");
    Ok(EMAIL_CHANGE.render(&layout, &text))
}

#[post("/email/confirm", data = "<_form>")]
pub async fn email_submit(
    _form: CheckedForm,
    caller: Caller,
    layout: Layout,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Flash<Redirect>, ErrorPage> {
    let token = EMAIL_CHANGE.token(&cookies)?;
    let moved = auth.links().confirm_email_change(&caller, &token).await;
    let email = moved.map_err(|e| EMAIL_CHANGE.failed(e))?.email;
    let message = format!("Your account's email is now {email}.");
    Ok(EMAIL_CHANGE.spent(&cookies, &layout, &message))
}
