//! Every cookie the service sets, in one place: the session cookie, the CSRF cookie of the
//! forms, the device cookie of a client that logged in (a trusted device, with a failed-login
//! budget of its own) and the short-lived cookies that carry a mailed link's token off the URL
//! (reset, verification, email change). All of them get the same hardened attributes from one builder, shaped by the settings.
//!
//! In the release profile (with `cookie_secure`) the session, CSRF and device cookies take the
//! `__Host-` prefix: a browser then accepts them only from this very host over HTTPS, with
//! `Path=/` and no `Domain`, so no sibling subdomain can plant or shadow them. The debug
//! profile keeps `session_id`, which the original service's clients look for.

use std::borrow::Cow;

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::time::Duration;
use subtle::ConstantTimeEq;

use super::paths;
use crate::auth::oidc::{Authorization, REQUEST_TTL_SECS};
use crate::auth::{DEVICE_TRUST_SECS, STEP_TTL_SECS, SignedIn, VERIFY_TTL_SECS, token};
use crate::config::Settings;

/// The CSRF cookie: the visitor's random token, private (encrypted and authenticated).
const CSRF: &str = "csrf_token";
/// The device cookie: a random token, private, whose digest the database trusts for an account.
const DEVICE: &str = "device";
/// The private cookie holding a pending sign-in step's token, sent only to its page.
const SIGN_IN_STEP: &str = "sign_in_step";

/// The private cookie holding an application's pending authorization request (OpenID
/// Connect): the request is bound to the browser that started it.
const AUTHORIZATION: &str = "oidc_authorization";

/// A mailed link whose token moves off the URL into a private cookie sent only to its page.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    Reset,
    Verify,
    EmailChange,
}

impl Link {
    /// The page the link opens.
    pub fn page(self) -> &'static str {
        self.cookie().1
    }

    /// The cookie's name and the page it is sent to.
    fn cookie(self) -> (&'static str, &'static str) {
        match self {
            Link::Reset => ("reset_token", paths::RESET),
            Link::Verify => ("verify_token", paths::VERIFY),
            Link::EmailChange => ("email_token", paths::EMAIL_CHANGE),
        }
    }
}

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
    /// no `Domain` (this host only), `Secure` as `cookie_secure` says. Deletions are built
    /// here too: a browser ignores the deletion of a `__Host-` cookie that lacks `Secure`.
    fn hardened(&self, name: impl Into<Cow<'static, str>>, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.settings.cookie_secure)
            .build()
    }

    /// `name` as this profile names its cookies: `__Host-` first in release, with
    /// `cookie_secure` (the prefix demands `Secure`).
    fn named(&self, name: &str) -> String {
        match self.settings.release && self.settings.cookie_secure {
            true => format!("__Host-{name}"),
            false => name.to_owned(),
        }
    }

    /// The session id the request's cookie carries, if any.
    pub fn session_id(&self) -> Option<String> {
        let name = self.named(&self.settings.session_cookie_name);
        self.jar.get(&name).map(|c| c.value().to_owned())
    }

    /// Hands a new session to the client, for as long as a session can live at most, and
    /// the device token too when signing in made the client a trusted device.
    pub fn start_session(&self, signed_in: SignedIn) {
        let name = self.named(&self.settings.session_cookie_name);
        let mut cookie = self.hardened(name, signed_in.session_id);
        cookie.set_max_age(Duration::seconds(self.settings.session_absolute_secs));
        self.jar.add(cookie);
        if let Some(device_token) = signed_in.device_token {
            self.trust_device(device_token);
        }
    }

    /// Tells the client to drop the session cookie.
    pub fn end_session(&self) {
        let name = self.named(&self.settings.session_cookie_name);
        self.jar.remove(self.hardened(name, String::new()));
    }

    /// The device token the request's device cookie carries, if any.
    pub fn device_token(&self) -> Option<String> {
        let name = self.named(DEVICE);
        self.jar.get_private(&name).map(|c| c.value().to_owned())
    }

    /// Hands the client a device token: it is now a trusted device of the account it logged in
    /// to, for as long as the database trusts it.
    fn trust_device(&self, device_token: String) {
        let mut cookie = self.hardened(self.named(DEVICE), device_token);
        cookie.set_max_age(Duration::seconds(DEVICE_TRUST_SECS));
        self.jar.add_private(cookie);
    }

    /// The visitor's CSRF token, created (and its cookie set) on first use.
    pub fn csrf_token(&self) -> String {
        let name = self.named(CSRF);
        if let Some(cookie) = self.jar.get_private(&name) {
            return cookie.value().to_owned();
        }
        let value = token::generate();
        self.jar.add_private(self.hardened(name, value.clone()));
        value
    }

    /// Whether `submitted` is the token of this visitor's CSRF cookie (compared in constant
    /// time).
    pub fn csrf_matches(&self, submitted: Option<&str>) -> bool {
        match (self.jar.get_private(&self.named(CSRF)), submitted) {
            (Some(cookie), Some(submitted)) => {
                bool::from(cookie.value().as_bytes().ct_eq(submitted.as_bytes()))
            }
            _ => false,
        }
    }

    /// Keeps a pending sign-in step's token for the second-factor page, as long as the step
    /// lives: the token never appears in the page or a URL.
    pub fn hold_sign_in_step(&self, raw: &str) {
        let mut cookie = self.hardened(SIGN_IN_STEP, raw.to_owned());
        cookie.set_path(paths::SECOND_FACTOR);
        cookie.set_max_age(Duration::seconds(STEP_TTL_SECS));
        self.jar.add_private(cookie);
    }

    /// The pending sign-in step's token, if the browser holds one.
    pub fn sign_in_step(&self) -> Option<String> {
        (self.jar.get_private(SIGN_IN_STEP)).map(|c| c.value().to_owned())
    }

    /// Forgets the pending sign-in step (done, or gone).
    pub fn drop_sign_in_step(&self) {
        let mut cookie = self.hardened(SIGN_IN_STEP, String::new());
        cookie.set_path(paths::SECOND_FACTOR);
        self.jar.remove_private(cookie);
    }

    /// Keeps a mailed link's token for its page, as long as such a token lives.
    pub fn hold_link_token(&self, link: Link, raw: &str) {
        let (name, path) = link.cookie();
        let lives = match link {
            Link::Verify => VERIFY_TTL_SECS,
            Link::Reset | Link::EmailChange => self.settings.reset_token_ttl_secs,
        };
        let mut cookie = self.hardened(name, raw.to_owned());
        cookie.set_path(path);
        cookie.set_max_age(Duration::seconds(lives));
        self.jar.add_private(cookie);
    }

    /// The token held for the link's page, if any.
    pub fn link_token(&self, link: Link) -> Option<String> {
        let (name, _) = link.cookie();
        self.jar.get_private(name).map(|c| c.value().to_owned())
    }

    /// Forgets the held token (it was spent).
    pub fn drop_link_token(&self, link: Link) {
        let (name, path) = link.cookie();
        let mut cookie = self.hardened(name, String::new());
        cookie.set_path(path);
        self.jar.remove_private(cookie);
    }

    /// Keeps an application's checked authorization request while its visitor logs in and
    /// consents (encrypted and authenticated: the browser can neither read nor alter it).
    pub fn hold_authorization(&self, request: &Authorization) {
        let value = serde_json::to_string(request).expect("a request serializes");
        let mut cookie = self.hardened(self.named(AUTHORIZATION), value);
        cookie.set_max_age(Duration::seconds(REQUEST_TTL_SECS));
        self.jar.add_private(cookie);
    }

    /// The pending authorization request, if this browser holds one.
    pub fn authorization(&self) -> Option<Authorization> {
        let cookie = self.jar.get_private(&self.named(AUTHORIZATION))?;
        serde_json::from_str(cookie.value()).ok()
    }

    /// Forgets the pending authorization request (answered).
    pub fn drop_authorization(&self) {
        self.jar
            .remove_private(self.hardened(self.named(AUTHORIZATION), String::new()));
    }
}
