//! The one place where errors become HTTP responses: JSON `{"message": …}` for API clients, an
//! error page for browsers. Internal causes are logged here and never sent.

use std::borrow::Cow;

use rocket::http::{Header, Status};
use rocket::response::{self, Responder};
use rocket::serde::json::{Json, json};
use rocket::{Either, Request, catch, catchers};
use rocket_dyn_templates::Template;

use super::pages::prefers_html;
use crate::auth::AuthError;

/// The status and client-safe message of an auth-layer error.
fn classify(error: AuthError) -> (Status, Cow<'static, str>) {
    let status = match &error {
        AuthError::Throttled { .. } => Status::TooManyRequests,
        AuthError::EmailTaken => Status::BadRequest,
        AuthError::InvalidCredentials => Status::Unauthorized,
        AuthError::NoSession | AuthError::UnknownEmail | AuthError::InvalidResetToken => {
            Status::Forbidden
        }
        AuthError::Internal(cause) => {
            log::error!(target: "auth_service::error", "internal error: {cause}");
            return (Status::InternalServerError, "internal server error".into());
        }
    };
    (status, error.to_string().into())
}

/// An API failure: a status, a message safe to show the client and, for 429, when to retry.
#[derive(Debug)]
pub struct ApiError {
    status: Status,
    message: Cow<'static, str>,
    retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Sets `Retry-After` on a response that reports this error.
    pub fn add_headers(&self, response: &mut rocket::Response<'_>) {
        if let Some(seconds) = self.retry_after {
            response.set_header(Header::new("Retry-After", seconds.to_string()));
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(Status::BadRequest, message)
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let retry_after = match error {
            AuthError::Throttled { retry_after } => Some(retry_after),
            _ => None,
        };
        let (status, message) = classify(error);
        ApiError {
            retry_after,
            ..ApiError::new(status, message)
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response =
            (self.status, Json(json!({ "message": self.message }))).respond_to(req)?;
        self.add_headers(&mut response);
        Ok(response)
    }
}

/// A browser-facing failure: the error page with the error's status and message.
#[derive(Debug)]
pub struct PageError(ApiError);

impl PageError {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> PageError {
        PageError(ApiError::new(status, message))
    }
}

impl From<AuthError> for PageError {
    fn from(error: AuthError) -> PageError {
        PageError(error.into())
    }
}

impl<'r> Responder<'r, 'static> for PageError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let PageError(error) = self;
        let context = json!({
            "title": error.status.reason_lossy(),
            "status": error.status.code,
            "message": error.message,
        });
        let mut response = (error.status, Template::render("error", context)).respond_to(req)?;
        error.add_headers(&mut response);
        Ok(response)
    }
}

/// A message for the catcher from a guard that failed: Rocket hands catchers only the status.
struct ErrorNote(&'static str);

/// Leaves `message` for the catcher that will answer this request.
pub fn note(req: &Request<'_>, message: &'static str) {
    req.local_cache(|| ErrorNote(message));
}

/// Failures Rocket itself produces (no route, failed guards, oversized input, a panic) get the
/// same shapes as the handlers' errors: JSON for API clients, the error page for browsers.
#[catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> Either<PageError, ApiError> {
    let ErrorNote(noted) = req.local_cache(|| ErrorNote(""));
    let message = match (status.code, *noted) {
        (_, noted) if !noted.is_empty() => noted,
        (404, _) => "not found",
        (413, _) => "request body is too large",
        (500, _) => "internal server error",
        _ => status.reason_lossy(),
    };
    if prefers_html(req) {
        Either::Left(PageError::new(status, message))
    } else {
        Either::Right(ApiError::new(status, message))
    }
}

pub fn catchers() -> Vec<rocket::Catcher> {
    catchers![default_catcher]
}
