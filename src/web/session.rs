//! The session cookie: how a session id travels to and from the client.

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};

use crate::config::Settings;

/// The session id a request's cookie carries, if any. Never fails: what a missing session means
/// (403 for the API) is the handler's business.
pub struct SessionCookie(Option<String>);

impl SessionCookie {
    pub fn session_id(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionCookie {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let settings = req
            .rocket()
            .state::<Settings>()
            .expect("settings are managed");
        let value = req
            .cookies()
            .get(&settings.session_cookie_name)
            .map(|c| c.value().to_owned());
        Outcome::Success(SessionCookie(value))
    }
}

/// Hands `session_id` to the client with every attribute set explicitly: `HttpOnly` (no script
/// reads it), `SameSite=Lax`, `Path=/`, no `Domain`, `Secure` as configured.
pub fn set(cookies: &CookieJar<'_>, settings: &Settings, session_id: String) {
    let cookie = Cookie::build((settings.session_cookie_name.clone(), session_id))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(settings.session_cookie_secure);
    cookies.add(cookie);
}

/// Tells the client to drop its session cookie.
pub fn clear(cookies: &CookieJar<'_>, settings: &Settings) {
    cookies.remove(Cookie::build(settings.session_cookie_name.clone()).path("/"));
}
