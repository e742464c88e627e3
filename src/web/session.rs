//! The logged-in user of a request: the session cookie's id turned into its account, looked up
//! once per request however many guards ask.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};

use super::cookies::Cookies;
use crate::auth::{Account, Auth, AuthError};

/// The user of the request's live session. Fails with [`AuthError::NoSession`] (403) when there
/// is none, and with the lookup's own status when it could not be done (503 when the database
/// is unavailable, 500 otherwise); pages turn a 403 into a redirect to the login page.
pub struct CurrentUser(pub Account);

/// The session lookup, done once per request however many guards ask.
enum Lookup {
    Found(Account),
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
                let cookies = req.guard::<Cookies<'_>>().await.unwrap();
                let Some(session_id) = cookies.session_id() else {
                    return Lookup::Missing;
                };
                let auth = req.rocket().state::<Auth>().expect("auth is managed");
                match auth.sessions().account_of(&session_id).await {
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
