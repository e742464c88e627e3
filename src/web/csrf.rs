//! CSRF tokens for the HTML forms (synchronizer pattern): a random token per visitor, kept in a
//! private (encrypted, authenticated) cookie and echoed in every form's hidden `csrf_token`
//! field. A cross-site page can make a browser send the cookie but cannot read it to fill in the
//! field, so its POST fails the comparison.

use rocket::data::{self, Data, FromData};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use subtle::ConstantTimeEq;

use super::error::note;
use super::input::Fields;
use crate::auth::token;
use crate::config::Settings;

const COOKIE: &str = "csrf_token";
/// Name of the hidden form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// The visitor's CSRF token, created (and its cookie set) on first use.
pub struct CsrfToken(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let jar = req.cookies();
        if let Some(cookie) = jar.get_private(COOKIE) {
            return Outcome::Success(CsrfToken(cookie.value().to_owned()));
        }
        let value = token::generate();
        let secure = req
            .rocket()
            .state::<Settings>()
            .is_some_and(|s| s.session_cookie_secure);
        // SameSite set explicitly: Rocket's private-cookie default is Strict.
        jar.add_private(
            Cookie::build((COOKIE, value.clone()))
                .http_only(true)
                .same_site(SameSite::Lax)
                .path("/")
                .secure(secure),
        );
        Outcome::Success(CsrfToken(value))
    }
}

/// Whether `submitted` is the token of this visitor's cookie (compared in constant time).
pub fn is_valid(jar: &CookieJar<'_>, submitted: Option<&str>) -> bool {
    match (jar.get_private(COOKIE), submitted) {
        (Some(cookie), Some(submitted)) => {
            bool::from(cookie.value().as_bytes().ct_eq(submitted.as_bytes()))
        }
        _ => false,
    }
}

/// The fields of a page's form, admitted only with this visitor's CSRF token. Anything else is
/// refused with 403 before the handler runs, so a forged POST changes nothing.
pub struct CheckedForm(pub Fields);

#[rocket::async_trait]
impl<'r> FromData<'r> for CheckedForm {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let fields = match Fields::from_data(req, data).await {
            data::Outcome::Success(fields) => fields,
            data::Outcome::Error((status, _)) => return data::Outcome::Error((status, ())),
            data::Outcome::Forward(forward) => return data::Outcome::Forward(forward),
        };
        if !is_valid(req.cookies(), fields.text(FIELD).ok()) {
            note(
                req,
                "This form has expired or did not come from this site. \
                 Go back, reload the page and try again.",
            );
            return data::Outcome::Error((Status::Forbidden, ()));
        }
        data::Outcome::Success(CheckedForm(fields))
    }
}
