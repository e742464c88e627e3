//! The one place where errors become HTTP responses, and the responders that carry them: a
//! [`Problem`] is what the client is told, on either surface. The API answers it as JSON
//! `{"message": …}`; pages as the error page ([`ErrorPage`]) or as the form it came from,
//! re-rendered with the message ([`FormError`]). Server-side causes are logged here, with the
//! request id, and never sent.
//!
//! Request guards cannot hand a handler's error to a catcher: Rocket gives catchers only the
//! status. A guard that refuses a request picks its status (`SameOrigin`, through the API's
//! `ApiRequest`, and a `CheckedForm` without the CSRF token: 403, with a message left in the
//! request's cache by [`note`]; a `CheckedForm` whose body cannot be read: 400 or 413; the page
//! `Layout`: the session lookup's 503 or 500, logged there) and [`default_catcher`] answers, in
//! JSON or as the error page as the client prefers. (The API's typed `Body` leaves its problem
//! to the handler.) An [`ErrorPage`] a handler returns goes the same way, so that the catcher
//! draws every error page, with the layout (the visitor's header) of every other page.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocket::http::{Header, Status};
use rocket::request::Outcome;
use rocket::response::{self, Flash, Redirect, Responder};
use rocket::serde::Serialize;
use rocket::serde::json::{Json, Value, json};
use rocket::{Request, catch, catchers};
use rocket_dyn_templates::Template;

use super::layout::{Visitor, unknown_visitor};
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
    cause: Option<Box<str>>,
    /// OAuth's name of the error (RFC 6749 5.2), for the OpenID Connect endpoints' clients.
    oauth: Option<&'static str>,
}

impl Problem {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> Problem {
        Problem {
            status,
            message: message.into(),
            retry_after: None,
            cause: None,
            oauth: None,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Problem {
        Problem::new(Status::BadRequest, message)
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// This problem as OAuth's error `code` too (a refusal of a client's request; server-side
    /// failures stay as they are).
    pub fn as_oauth(self, code: &'static str) -> Problem {
        match self.status.code < 500 {
            true => Problem {
                oauth: Some(code),
                ..self
            },
            false => self,
        }
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
                    cause: Some(cause.as_str().into()),
                    ..Problem::new(
                        Status::ServiceUnavailable,
                        "temporarily unavailable: nothing was changed, try again shortly",
                    )
                };
            }
            AuthError::Internal(cause) => {
                return Problem {
                    cause: Some(cause.to_string().into()),
                    ..Problem::new(Status::InternalServerError, "internal server error")
                };
            }
            AuthError::EmailTaken | AuthError::SameEmail => Status::BadRequest,
            AuthError::InvalidCredentials
            | AuthError::WrongPassword
            | AuthError::WrongCode
            | AuthError::CurrentPasswordRequired
            | AuthError::StepExpired => Status::Unauthorized,
            AuthError::EnrollmentRequired => Status::Forbidden,
            AuthError::LastFactor | AuthError::NoSecondFactor | AuthError::NothingPending => {
                Status::Conflict
            }
            AuthError::NoSuchFactor | AuthError::PasskeysOff => Status::NotFound,
            AuthError::PasskeyRefused => Status::Unauthorized,
            AuthError::CredentialTaken => Status::Conflict,
            AuthError::BadPasskeyName => Status::BadRequest,
            AuthError::NoSession
            | AuthError::InvalidResetToken
            | AuthError::InvalidLinkToken
            | AuthError::EmailNotVerified
            | AuthError::AccountDisabled => Status::Forbidden,
            AuthError::NoSuchSession | AuthError::UnknownAccount => Status::NotFound,
            AuthError::AlreadyVerified => Status::Conflict,
            AuthError::OAuth(fault) => {
                let status = match fault.code {
                    "invalid_client" | "invalid_token" => Status::Unauthorized,
                    _ => Status::BadRequest,
                };
                return Problem {
                    oauth: Some(fault.code),
                    ..Problem::new(status, fault.description)
                };
            }
            AuthError::OidcOff | AuthError::NoSuchApplication | AuthError::UnknownClient => {
                Status::NotFound
            }
            AuthError::BadClient(_) => Status::BadRequest,
        };
        Problem::new(status, error.to_string())
    }
}

/// The API's answer: the status and `{"message": …}`; for an OAuth error, `error` and
/// `error_description` too, never cached, and the authentication scheme the client failed.
impl<'r> Responder<'r, 'static> for Problem {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = match self.oauth {
            None => (self.status, Message::new(self.message.clone())).respond_to(req)?,
            Some(code) => {
                let body = json!({
                    "error": code,
                    "error_description": self.message,
                    "message": self.message,
                });
                let mut response = (self.status, Json(body)).respond_to(req)?;
                response.set_raw_header("Cache-Control", "no-store");
                let challenge = match code {
                    "invalid_client" => Some(r#"Basic realm="auth_service""#),
                    "invalid_token" => Some(r#"Bearer error="invalid_token""#),
                    _ => None,
                };
                if let Some(challenge) = challenge {
                    response.set_raw_header("WWW-Authenticate", challenge);
                }
                response
            }
        };
        self.report(req, &mut response);
        Ok(response)
    }
}

/// A browser's answer: the error page, with a heading that says what happened in people's
/// words and the one thing to do next. The catcher draws it, so that it has the layout of
/// every page (the visitor's header): this responder leaves it in the request's cache.
#[derive(Debug)]
pub struct ErrorPage {
    problem: Problem,
    heading: Option<&'static str>,
    /// What the page says in place of the problem's message (the API's words).
    words: Option<&'static str>,
    next: Option<&'static Next>,
}

/// The primary action of an error page: a link.
#[derive(Debug, Clone, Copy)]
pub struct Next {
    pub href: &'static str,
    pub label: &'static str,
}

impl ErrorPage {
    pub fn new(problem: Problem) -> ErrorPage {
        ErrorPage {
            problem,
            heading: None,
            words: None,
            next: None,
        }
    }

    /// The page says `heading` and offers `next` rather than its status's defaults.
    pub fn explained(problem: Problem, heading: &'static str, next: &'static Next) -> ErrorPage {
        ErrorPage {
            heading: Some(heading),
            next: Some(next),
            ..ErrorPage::new(problem)
        }
    }

    /// The page as its template shows it; `signed_in` picks the default next step.
    fn context(&self, signed_in: bool) -> Value {
        let status = self.problem.status;
        let next = self.next.unwrap_or(match (status.code, signed_in) {
            (401 | 403, false) => &Next {
                href: "/login",
                label: "Log in",
            },
            (_, true) => &Next {
                href: "/profile",
                label: "Go to your profile",
            },
            _ => &Next {
                href: "/",
                label: "Go to the home page",
            },
        });
        json!({
            "title": self.heading.unwrap_or_else(|| heading(status)),
            "status": status.code,
            "message": self.words.map_or_else(|| capitalized(&self.problem.message), String::from),
            "next": { "href": next.href, "label": next.label },
        })
    }
}

/// `text` with its first letter upper-case: the API's messages start lower-case.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What an error page says first, by status, in people's words.
fn heading(status: Status) -> &'static str {
    match status.code {
        400 => "That request could not be read",
        401 => "You need to log in",
        403 => "You cannot do that here",
        404 => "Page not found",
        413 => "That was too large to send",
        429 => "Too many attempts",
        503 => "Temporarily unavailable",
        500..=599 => "Something went wrong on our side",
        _ => "That did not work",
    }
}

impl From<AuthError> for ErrorPage {
    fn from(error: AuthError) -> ErrorPage {
        ErrorPage::new(error.into())
    }
}

/// Left for the catcher, which draws the page. Rocket drops the cookie changes of a response
/// that fails over to a catcher: a handler that changed a cookie must not then answer with an
/// `ErrorPage`.
impl<'r> Responder<'r, 'static> for ErrorPage {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.problem.status;
        leave(req, Left::Page(self));
        Err(status)
    }
}

/// A page drawn for a problem, at the problem's status: a refused form again, or (drawn by the
/// catcher) the error page.
pub struct FormError {
    problem: Problem,
    page: Box<Template>,
}

impl FormError {
    pub fn new(problem: Problem, page: Template) -> FormError {
        FormError {
            problem,
            page: Box::new(page),
        }
    }
}

impl<'r> Responder<'r, 'static> for FormError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = (self.problem.status, self.page).respond_to(req)?;
        self.problem.report(req, &mut response);
        Ok(response)
    }
}

/// A page handler's failure: its form again (the input was refused), the error page, or a
/// redirect with a message elsewhere (the login page for a visitor whose session ended while
/// the form was open, the security page for a session that must set up a second factor).
#[derive(rocket::Responder)]
pub enum PageFailure {
    Form(FormError),
    Page(ErrorPage),
    Elsewhere(Box<Flash<Redirect>>),
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

/// What a guard or a handler left for the catcher that will answer the request: Rocket hands
/// catchers only the status.
enum Left {
    /// A guard's refusal: the error page's heading and the message, answered as the client
    /// prefers (JSON or the error page).
    Note(&'static str, &'static str),
    /// A page handler's error page.
    Page(ErrorPage),
}

/// The request's slot for what is left to the catcher: a guard's note, replaced by a handler's
/// error page if one follows.
struct Slot(Mutex<Option<Left>>);

fn slot<'a>(req: &'a Request<'_>) -> MutexGuard<'a, Option<Left>> {
    let Slot(slot) = req.local_cache(|| Slot(Mutex::new(None)));
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

fn leave(req: &Request<'_>, left: Left) {
    slot(req).replace(left);
}

/// Leaves `message`, and the error page's `heading`, for the catcher that will answer this
/// request.
pub fn note(req: &Request<'_>, heading: &'static str, message: &'static str) {
    leave(req, Left::Note(heading, message));
}

/// What a catcher answers: the page to browsers, JSON to everyone else.
#[derive(rocket::Responder)]
enum Caught {
    Page(FormError),
    Api(Problem),
}

/// Failures Rocket itself produces (no route, failed guards, oversized input, a panic) get the
/// same shapes as the handlers' errors: JSON for API clients, the error page for browsers. The
/// error page has every page's layout, so the header shows a logged-in visitor as logged in:
/// it looks the session up (and so counts as the session's use, as any page does).
#[catch(default)]
async fn default_catcher(status: Status, req: &Request<'_>) -> Caught {
    let left = slot(req).take();
    let (page, html) = match left {
        Some(Left::Page(page)) => (page, true),
        Some(Left::Note(heading, message)) => {
            let page = ErrorPage {
                heading: Some(heading),
                ..ErrorPage::new(unanswered(status, message))
            };
            (page, prefers_html(req))
        }
        None => {
            let page = ErrorPage {
                words: page_words(status),
                ..ErrorPage::new(unanswered(status, default_message(status)))
            };
            (page, prefers_html(req))
        }
    };
    if !html {
        return Caught::Api(page.problem);
    }
    let (mut context, signed_in) = match req.guard::<Visitor>().await {
        Outcome::Success(visitor) => (visitor.context(), visitor.account.is_some()),
        _ => (unknown_visitor(req), false),
    };
    if let (Some(context), Value::Object(shown)) =
        (context.as_object_mut(), page.context(signed_in))
    {
        context.extend(shown);
    }
    let template = Template::render("error", context);
    Caught::Page(FormError::new(page.problem, template))
}

/// The problem of a failure no handler answered: a 503 says when to retry.
fn unanswered(status: Status, message: &'static str) -> Problem {
    Problem {
        retry_after: (status == Status::ServiceUnavailable).then_some(RETRY_UNAVAILABLE_SECS),
        ..Problem::new(status, message)
    }
}

/// What the error page says of a failure no handler described, where the API's message is not
/// enough for people.
fn page_words(status: Status) -> Option<&'static str> {
    match status.code {
        404 => {
            Some("There is nothing at this address. Check it, or start again from the home page.")
        }
        500 => Some("The server failed to answer. Try again in a moment."),
        _ => None,
    }
}

/// The API's message of a failure no handler described, by status.
fn default_message(status: Status) -> &'static str {
    match status.code {
        404 => "not found",
        413 => "request body is too large",
        500 => "internal server error",
        503 => "temporarily unavailable: nothing was changed, try again shortly",
        _ => status.reason_lossy(),
    }
}

pub fn catchers() -> Vec<rocket::Catcher> {
    catchers![default_catcher]
}
