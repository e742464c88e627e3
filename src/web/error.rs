//! The one place where errors become HTTP responses: every API failure is JSON
//! `{"message": …}`, and internal causes are logged, never sent.

use std::borrow::Cow;

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::{Json, json};
use rocket::{Request, catch, catchers};

use crate::auth::AuthError;

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

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let status = match &error {
            AuthError::EmailTaken => Status::BadRequest,
            AuthError::InvalidCredentials => Status::Unauthorized,
            AuthError::NoSession | AuthError::UnknownEmail | AuthError::InvalidResetToken => {
                Status::Forbidden
            }
            AuthError::Internal(cause) => {
                log::error!(target: "auth_service::error", "internal error: {cause}");
                return ApiError::new(Status::InternalServerError, "internal server error");
            }
        };
        ApiError::new(status, error.to_string())
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        (self.status, Json(json!({ "message": self.message }))).respond_to(req)
    }
}

/// Failures Rocket itself produces (no route, oversized or unreadable input, a panic) get the
/// same JSON shape as the handlers' errors.
#[catch(default)]
fn default_catcher(status: Status, _req: &Request<'_>) -> ApiError {
    let message = match status.code {
        404 => "not found",
        413 => "request body is too large",
        500 => "internal server error",
        _ => status.reason_lossy(),
    };
    ApiError::new(status, message)
}

pub fn catchers() -> Vec<rocket::Catcher> {
    catchers![default_catcher]
}
