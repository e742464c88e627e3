//! The one place where errors become HTTP responses: JSON `{"message": …}` for API clients, an
//! error page for browsers. Internal causes are logged here and never sent.

use std::borrow::Cow;

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::{Json, json};
use rocket::{Either, Request, catch, catchers};
use rocket_dyn_templates::Template;

use super::pages::prefers_html;
use crate::auth::AuthError;

/// The status and client-safe message of an auth-layer error.
fn classify(error: AuthError) -> (Status, Cow<'static, str>) {
    let status = match &error {
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

/// An API failure: a status and a message safe to show the client.
#[derive(Debug)]
pub struct ApiError {
    status: Status,
    message: Cow<'static, str>,
}

impl ApiError {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
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
        let (status, message) = classify(error);
        ApiError::new(status, message)
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        (self.status, Json(json!({ "message": self.message }))).respond_to(req)
    }
}

/// A browser-facing failure: the error page with a status and a message.
#[derive(Debug)]
pub struct PageError {
    status: Status,
    message: Cow<'static, str>,
}

impl PageError {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }
}

impl From<AuthError> for PageError {
    fn from(error: AuthError) -> PageError {
        let (status, message) = classify(error);
        PageError::new(status, message)
    }
}

impl<'r> Responder<'r, 'static> for PageError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let context = json!({
            "title": self.status.reason_lossy(),
            "status": self.status.code,
            "message": self.message,
        });
        (self.status, Template::render("error", context)).respond_to(req)
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
