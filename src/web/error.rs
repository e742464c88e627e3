//! The one place where errors become HTTP responses, and the responders that carry them: a
//! [`Problem`] is what the client is told, on either surface. The API answers it as JSON
//! `{"message": …}`; pages as the error page ([`ErrorPage`]) or as the form it came from,
//! re-rendered with the message ([`FormError`]). Server-side causes are logged here, with the
//! request id, and never sent.
//!
//! Request guards cannot hand a handler's error to a catcher: Rocket gives catchers only the
//! status. A guard that refuses a request picks its status (`SameOrigin`, through the API's
//! `ApiRequest`, and `CheckedForm`: 403; `CheckedForm` with a body it cannot read: 400 or 413;
//! the page `Layout`: the session lookup's 503 or 500) and leaves the message in the request's
//! cache with [`note`]; [`default_catcher`] answers with that note, in JSON or as the error
//! page as the client prefers. (The API's typed `Body` leaves its problem to the handler.)

use std::borrow::Cow;

use rocket::http::{Header, Status};
use rocket::response::{self, Flash, Redirect, Responder};
use rocket::serde::Serialize;
use rocket::serde::json::{Json, json};
use rocket::{Request, catch, catchers};
use rocket_dyn_templates::Template;

use super::negotiate::prefers_html;
use super::request_id::RequestId;
use crate::auth::AuthError;

/// Seconds a client is asked to wait before retrying a request the database could not serve,
/// or that found the hash queue full (it drains in about 5 seconds).
const RETRY_UNAVAILABLE_SECS: i64 = 5;

/// `{"message": …}`: the body of every failure of the API, and of a few answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Message {
    /// What happened, safe to show.
    #[schema(value_type = String)]
    pub message: Cow<'static, str>,
}

impl Message {
    pub fn new(message: impl Into<Cow<'static, str>>) -> Json<Message> {
        Json(Message {
            message: message.into(),
        })
    }
}

/// A refusal or failure as the client sees it (after RFC 9457's "problem details"): a status,
/// a message safe to show, when to retry (429, 503) and, for server-side failures, the cause,
/// which is logged and never sent.
#[derive(Debug)]
pub struct Problem {
    status: Status,
    message: Cow<'static, str>,
    retry_after: Option<i64>,
    cause: Option<String>,
}

impl Problem {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> Problem {
        Problem {
            status,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Problem {
        Problem::new(Status::BadRequest, message)
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Finishes a response that reports this problem: logs the cause at error level with the
    /// request id, and sets `Retry-After`.
    fn report(&self, req: &Request<'_>, response: &mut rocket::Response<'_>) {
        if let Some(cause) = &self.cause {
            log_failure(req, self.status, cause);
        }
        if let Some(seconds) = self.retry_after {
            response.set_header(Header::new("Retry-After", seconds.to_string()));
        }
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

/// The status mapping of auth-layer errors: the only one.
impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Problem {
        let status = match &error {
            AuthError::Throttled { retry_after } => {
                return Problem {
                    retry_after: Some(*retry_after),
                    ..Problem::new(Status::TooManyRequests, error.to_string())
                };
            }
            AuthError::Busy => {
                return Problem {
                    retry_after: Some(RETRY_UNAVAILABLE_SECS),
                    ..Problem::new(Status::ServiceUnavailable, error.to_string())
                };
            }
            AuthError::Unavailable(cause) => {
                return Problem {
                    retry_after: Some(RETRY_UNAVAILABLE_SECS),
                    cause: Some(cause.clone()),
                    ..Problem::new(
                        Status::ServiceUnavailable,
                        "temporarily unavailable: nothing was changed, try again shortly",
                    )
                };
            }
            AuthError::Internal(cause) => {
                return Problem {
                    cause: Some(cause.to_string()),
                    ..Problem::new(Status::InternalServerError, "internal server error")
                };
            }
            AuthError::EmailTaken | AuthError::SameEmail => Status::BadRequest,
            AuthError::InvalidCredentials | AuthError::WrongPassword => Status::Unauthorized,
            AuthError::NoSession
            | AuthError::InvalidResetToken
            | AuthError::InvalidLinkToken
            | AuthError::EmailNotVerified => Status::Forbidden,
            AuthError::NoSuchSession | AuthError::UnknownAccount => Status::NotFound,
            AuthError::AlreadyVerified => Status::Conflict,
        };
        Problem::new(status, error.to_string())
    }
}

/// The API's answer: the status and `{"message": …}`.
impl<'r> Responder<'r, 'static> for Problem {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = Message::new(self.message.clone());
        let mut response = (self.status, body).respond_to(req)?;
        self.report(req, &mut response);
        Ok(response)
    }
}

/// A browser's answer: the error page with the problem's status and message.
#[derive(Debug)]
pub struct ErrorPage(pub Problem);

impl From<AuthError> for ErrorPage {
    fn from(error: AuthError) -> ErrorPage {
        ErrorPage(error.into())
    }
}

impl<'r> Responder<'r, 'static> for ErrorPage {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let ErrorPage(problem) = self;
        let context = json!({
            "title": problem.status.reason_lossy(),
            "status": problem.status.code,
            "message": problem.message,
        });
        let mut response = (problem.status, Template::render("error", context)).respond_to(req)?;
        problem.report(req, &mut response);
        Ok(response)
    }
}

/// A form re-rendered around its problem's message, at the problem's status.
pub struct FormError {
    problem: Problem,
    page: Box<Template>,
}

impl FormError {
    /// `render` draws the form around the problem's message.
    pub fn new(problem: Problem, render: impl FnOnce(&str) -> Template) -> FormError {
        let page = Box::new(render(problem.message()));
        FormError { problem, page }
    }
}

impl<'r> Responder<'r, 'static> for FormError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = (self.problem.status, self.page).respond_to(req)?;
        self.problem.report(req, &mut response);
        Ok(response)
    }
}

/// A page handler's failure: its form again (the input was refused), the error page, or the
/// login page for a visitor whose session ended while the form was open.
#[derive(rocket::Responder)]
pub enum PageFailure {
    Form(FormError),
    Page(ErrorPage),
    LogIn(Box<Flash<Redirect>>),
}

impl From<FormError> for PageFailure {
    fn from(error: FormError) -> PageFailure {
        PageFailure::Form(error)
    }
}

impl From<ErrorPage> for PageFailure {
    fn from(error: ErrorPage) -> PageFailure {
        PageFailure::Page(error)
    }
}

/// A message for the catcher from a guard that failed: Rocket hands catchers only the status.
struct ErrorNote(&'static str);

/// Leaves `message` for the catcher that will answer this request.
pub fn note(req: &Request<'_>, message: &'static str) {
    req.local_cache(|| ErrorNote(message));
}

/// What a catcher answers: the page to browsers, JSON to everyone else.
#[derive(rocket::Responder)]
enum Caught {
    Page(ErrorPage),
    Api(Problem),
}

/// Failures Rocket itself produces (no route, failed guards, oversized input, a panic) get the
/// same shapes as the handlers' errors: JSON for API clients, the error page for browsers.
#[catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> Caught {
    let ErrorNote(noted) = req.local_cache(|| ErrorNote(""));
    let message = match (status.code, *noted) {
        (_, noted) if !noted.is_empty() => noted,
        (404, _) => "not found",
        (413, _) => "request body is too large",
        (500, _) => "internal server error",
        (503, _) => "temporarily unavailable: nothing was changed, try again shortly",
        _ => status.reason_lossy(),
    };
    let problem = Problem {
        retry_after: (status == Status::ServiceUnavailable).then_some(RETRY_UNAVAILABLE_SECS),
        ..Problem::new(status, message)
    };
    match prefers_html(req) {
        true => Caught::Page(ErrorPage(problem)),
        false => Caught::Api(problem),
    }
}

pub fn catchers() -> Vec<rocket::Catcher> {
    catchers![default_catcher]
}
