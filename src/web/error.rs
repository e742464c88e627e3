//! The one place where errors become HTTP responses: JSON `{"message": …}` for API clients, an
//! error page for browsers. Internal causes are logged here and never sent.

use std::borrow::Cow;

use rocket::http::{Header, Status};
use rocket::response::{self, Responder};
use rocket::serde::json::{Json, json};
use rocket::{Either, Request, catch, catchers};
use rocket_dyn_templates::Template;

use super::pages::prefers_html;
use super::request_id::RequestId;
use crate::auth::AuthError;

/// Seconds a client is asked to wait before retrying a request the database could not serve.
const RETRY_UNAVAILABLE_SECS: i64 = 5;

/// An API failure: a status, a message safe to show the client, when to retry (429, 503), and
/// for server-side failures the cause, which is logged and never sent.
#[derive(Debug)]
pub struct ApiError {
    status: Status,
    message: Cow<'static, str>,
    retry_after: Option<i64>,
    cause: Option<String>,
}

impl ApiError {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// Finishes a response that reports this error: logs the cause at error level with the
    /// request id, and sets `Retry-After`.
    pub fn report(&self, req: &Request<'_>, response: &mut rocket::Response<'_>) {
        if let Some(cause) = &self.cause {
            log_failure(req, self.status, cause);
        }
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

/// Logs a server-side failure of this request: its id, method, path (never the query) and
/// status, and the cause.
pub fn log_failure(req: &Request<'_>, status: Status, cause: &str) {
    let RequestId(id) = RequestId::of(req);
    log::error!(
        target: "auth_service::error",
        "{id} {} {} -> {}: {cause}",
        req.method(),
        req.uri().path(),
        status.code
    );
}

/// The status mapping of auth-layer errors.
impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let status = match &error {
            AuthError::Throttled { retry_after } => {
                return ApiError {
                    retry_after: Some(*retry_after),
                    ..ApiError::new(Status::TooManyRequests, error.to_string())
                };
            }
            AuthError::Unavailable(cause) => {
                return ApiError {
                    retry_after: Some(RETRY_UNAVAILABLE_SECS),
                    cause: Some(cause.clone()),
                    ..ApiError::new(
                        Status::ServiceUnavailable,
                        "temporarily unavailable: nothing was changed, try again shortly",
                    )
                };
            }
            AuthError::Internal(cause) => {
                return ApiError {
                    cause: Some(cause.to_string()),
                    ..ApiError::new(Status::InternalServerError, "internal server error")
                };
            }
            AuthError::EmailTaken => Status::BadRequest,
            AuthError::InvalidCredentials => Status::Unauthorized,
            AuthError::NoSession | AuthError::UnknownEmail | AuthError::InvalidResetToken => {
                Status::Forbidden
            }
        };
        ApiError::new(status, error.to_string())
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response =
            (self.status, Json(json!({ "message": self.message }))).respond_to(req)?;
        self.report(req, &mut response);
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
        error.report(req, &mut response);
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
    let error = ApiError {
        retry_after: (status == Status::ServiceUnavailable).then_some(RETRY_UNAVAILABLE_SECS),
        ..ApiError::new(status, message)
    };
    if prefers_html(req) {
        Either::Left(PageError(error))
    } else {
        Either::Right(error)
    }
}

pub fn catchers() -> Vec<rocket::Catcher> {
    catchers![default_catcher]
}
