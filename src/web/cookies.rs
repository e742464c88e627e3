//! Every cookie the service sets, in one place: the session cookie, the CSRF cookie of the
//! forms and the short-lived cookie that carries a reset link's token off the URL. All of them
//! get the same hardened attributes from one builder, shaped by the settings.

use std::borrow::Cow;

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::time::Duration;
use subtle::ConstantTimeEq;

use crate::auth::token;
use crate::config::Settings;

/// The CSRF cookie: the visitor's random token, private (encrypted and authenticated).
const CSRF: &str = "csrf_token";
/// The reset-link cookie, private, sent only to the reset page.
const RESET: &str = "reset_token";
const RESET_PATH: &str = "/password/reset";

/// The request's cookie jar and the settings every cookie follows.
pub struct Cookies<'r> {
    jar: &'r CookieJar<'r>,
    settings: &'r Settings,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Cookies<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let settings = req
            .rocket()
            .state::<Settings>()
            .expect("settings are managed");
        Outcome::Success(Cookies {
            jar: req.cookies(),
            settings,
        })
    }
}

impl Cookies<'_> {
    /// A cookie with every attribute set explicitly: `HttpOnly` (no script reads it),
    /// `SameSite=Lax` (Rocket's private cookies default to `Strict`, which a browser does not
    /// send on the first request after a link clicked in a webmail), `Path=/` unless narrowed,
    /// no `Domain` (this host only), `Secure` as `cookie_secure` says.
    fn hardened(&self, name: impl Into<Cow<'static, str>>, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.settings.cookie_secure)
            .build()
    }

    /// The session id the request's cookie carries, if any.
    pub fn session_id(&self) -> Option<String> {
        let name = &self.settings.session_cookie_name;
        self.jar.get(name).map(|c| c.value().to_owned())
    }

    /// Hands `session_id` to the client, for as long as a session can live at most.
    pub fn start_session(&self, session_id: String) {
        let name = self.settings.session_cookie_name.clone();
        let mut cookie = self.hardened(name, session_id);
        cookie.set_max_age(Duration::seconds(self.settings.session_absolute_secs));
        self.jar.add(cookie);
    }

    /// Tells the client to drop the session cookie.
    pub fn end_session(&self) {
        let name = self.settings.session_cookie_name.clone();
        self.jar.remove(Cookie::build(name).path("/"));
    }

    /// The visitor's CSRF token, created (and its cookie set) on first use.
    pub fn csrf_token(&self) -> String {
        if let Some(cookie) = self.jar.get_private(CSRF) {
            return cookie.value().to_owned();
        }
        let value = token::generate();
        self.jar.add_private(self.hardened(CSRF, value.clone()));
        value
    }

    /// Whether `submitted` is the token of this visitor's CSRF cookie (compared in constant
    /// time).
    pub fn csrf_matches(&self, submitted: Option<&str>) -> bool {
        match (self.jar.get_private(CSRF), submitted) {
            (Some(cookie), Some(submitted)) => {
                bool::from(cookie.value().as_bytes().ct_eq(submitted.as_bytes()))
            }
            _ => false,
        }
    }

    /// Keeps a reset link's token for the reset page, as long as a token lives.
    pub fn hold_reset_token(&self, reset_token: &str) {
        let mut cookie = self.hardened(RESET, reset_token.to_owned());
        cookie.set_path(RESET_PATH);
        cookie.set_max_age(Duration::seconds(self.settings.reset_token_ttl_secs));
        self.jar.add_private(cookie);
    }

    /// The reset token held for the reset page, if any.
    pub fn reset_token(&self) -> Option<String> {
        self.jar.get_private(RESET).map(|c| c.value().to_owned())
    }

    /// Forgets the held reset token (it was spent).
    pub fn drop_reset_token(&self) {
        self.jar
            .remove_private(Cookie::build(RESET).path(RESET_PATH));
    }
}
