//! The session cookie: how a session id travels to and from the client, and the guard that turns
//! it into the logged-in user.

use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::time::Duration;

use super::error::ApiError;
use super::input::Fields;
use crate::auth::{Auth, AuthError, Caller};
use crate::config::Settings;
use crate::db::User;

/// The session id a request's cookie carries, if any.
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
        let value = req
            .cookies()
            .get(&settings(req).session_cookie_name)
            .map(|c| c.value().to_owned());
        Outcome::Success(SessionCookie(value))
    }
}

/// The user of the request's live session. Fails with [`AuthError::NoSession`] (403) when there
/// is none; pages turn that into a redirect to the login page.
pub struct CurrentUser(pub User);

/// The session lookup, done once per request however many guards ask.
enum Lookup {
    Found(User),
    Missing,
    /// The lookup itself failed: 503 when the database is unavailable, 500 otherwise.
    Failed(Status, String),
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let lookup = req
            .local_cache_async(async {
                let cookie = req.guard::<SessionCookie>().await.unwrap();
                let Some(session_id) = cookie.session_id() else {
                    return Lookup::Missing;
                };
                let auth = req.rocket().state::<Auth>().expect("auth is managed");
                match auth.user_for_session(session_id).await {
                    Ok(user) => Lookup::Found(user),
                    Err(AuthError::NoSession) => Lookup::Missing,
                    Err(AuthError::Unavailable(cause)) => {
                        Lookup::Failed(Status::ServiceUnavailable, cause)
                    }
                    Err(error) => Lookup::Failed(Status::InternalServerError, error.to_string()),
                }
            })
            .await;
        match lookup {
            Lookup::Found(user) => Outcome::Success(CurrentUser(user.clone())),
            Lookup::Missing => Outcome::Error((Status::Forbidden, AuthError::NoSession)),
            Lookup::Failed(status, cause) => {
                let error = match *status {
                    Status::ServiceUnavailable => AuthError::Unavailable(cause.clone()),
                    _ => AuthError::Internal(cause.clone().into()),
                };
                Outcome::Error((*status, error))
            }
        }
    }
}

fn settings<'r>(req: &'r Request<'_>) -> &'r Settings {
    req.rocket()
        .state::<Settings>()
        .expect("settings are managed")
}

/// Hands `session_id` to the client with every attribute set explicitly: `HttpOnly` (no script
/// reads it), `SameSite=Lax`, `Path=/`, no `Domain`, `Secure` as configured, and a `Max-Age`
/// of the session's absolute lifetime.
pub fn set(cookies: &CookieJar<'_>, settings: &Settings, session_id: String) {
    let cookie = Cookie::build((settings.session_cookie_name.clone(), session_id))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(settings.session_cookie_secure)
        .max_age(Duration::seconds(settings.session_absolute_secs));
    cookies.add(cookie);
}

/// Logs in with the `email` and `password` fields and hands the new session to the client: the
/// one login step of the API and the log-in page alike.
pub async fn start(
    caller: &Caller,
    fields: &Fields,
    auth: &Auth,
    cookies: &CookieJar<'_>,
    settings: &Settings,
) -> Result<User, ApiError> {
    let email = fields.email("email")?;
    let (user, session_id) = auth.login(caller, &email, fields.text("password")?).await?;
    set(cookies, settings, session_id);
    Ok(user)
}

/// Ends the session the cookie names, on the server, and tells the client to drop the cookie.
pub async fn end(
    caller: &Caller,
    cookie: &SessionCookie,
    auth: &Auth,
    cookies: &CookieJar<'_>,
    settings: &Settings,
) -> Result<(), AuthError> {
    let session_id = cookie.session_id().ok_or(AuthError::NoSession)?;
    auth.destroy_session(caller, session_id).await?;
    cookies.remove(Cookie::build(settings.session_cookie_name.clone()).path("/"));
    Ok(())
}
