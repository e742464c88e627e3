//! The JSON API, keeping the original Flask service's paths, statuses and bodies to the letter;
//! the account self-service endpoints, additions beside them, are in [`account`]. Request
//! bodies are the types of `web::bodies`, answers the types declared beside their handlers:
//! the OpenAPI document ([`doc`]) describes both from the code that runs.

mod account;
pub mod doc;
mod mfa;
mod oidc;

use std::ops::Deref;

use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::serde::Serialize;
use rocket::serde::json::Json;
use rocket::{delete, get, post, put, routes, uri};
use utoipa::ToSchema;

use super::bodies::{Credentials, EmailInput, NewAccount, ResetInput};
use super::error::{Message, Problem};
use super::flows::{AccountRequest, LogIn};
use super::input::Body;
use super::origin::SameOrigin;
use crate::auth::{AuthError, ResetRequest};

/// The API's [`AccountRequest`]: a request that may change something (any method but GET;
/// Rocket answers HEAD as GET) is refused first when a browser marks it cross-site
/// ([`SameOrigin`]).
pub struct ApiRequest<'r>(AccountRequest<'r>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiRequest<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        if req.method() != Method::Get
            && let Outcome::Error(refused) = req.guard::<SameOrigin>().await
        {
            return Outcome::Error(refused);
        }
        let request = req.guard::<AccountRequest<'r>>().await.unwrap();
        Outcome::Success(ApiRequest(request))
    }
}

impl<'r> Deref for ApiRequest<'r> {
    type Target = AccountRequest<'r>;

    fn deref(&self) -> &AccountRequest<'r> {
        &self.0
    }
}

/// A handler's answer: `T` as JSON, or the problem.
type Answer<T> = Result<Json<T>, Problem>;

/// A request body as an API handler takes it: the problem of a body that does not read is the
/// handler's to answer, after the checks that come first.
type Input<T> = Result<Body<T>, Problem>;

pub fn routes() -> Vec<rocket::Route> {
    let original = routes![
        index,
        create_user,
        create_session,
        destroy_session,
        profile,
        reset_token,
        update_password
    ];
    [
        original,
        account::routes(),
        mfa::routes(),
        oidc::routes(),
        routes![openapi],
    ]
    .concat()
}

/// The OpenAPI 3.1 description of this API.
#[get("/openapi.json")]
fn openapi() -> (rocket::http::ContentType, String) {
    let document = doc::document().to_pretty_json().unwrap_or_default();
    (rocket::http::ContentType::JSON, document)
}

/// `{"email", "message"}`: the original's answer to a signup, a login and a reset.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct EmailMessage {
    pub email: String,
    pub message: &'static str,
}

impl EmailMessage {
    fn new(email: impl Into<String>, message: &'static str) -> Json<EmailMessage> {
        let email = email.into();
        Json(EmailMessage { email, message })
    }
}

/// The account: its email, and whether it is verified.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Profile {
    pub email: String,
    pub email_verified: bool,
}

impl Profile {
    fn of(email: String, email_verified: bool) -> Json<Profile> {
        Json(Profile {
            email,
            email_verified,
        })
    }
}

/// The answer to a reset request: the token (with `expose_reset_token`, debug) or that a link
/// was sent.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde", untagged)]
pub enum ResetRequested {
    Token { email: String, reset_token: String },
    Sent(EmailMessage),
}

#[utoipa::path(tag = "original", responses((status = 200, description = "Bienvenue", body = Message)))]
#[get("/")]
pub fn index() -> Json<Message> {
    Message::new("Bienvenue")
}

/// Creates an account; a session the client presented ends with it.
#[utoipa::path(tag = "original", request_body = NewAccount, responses(
    (status = 200, description = "user created", body = EmailMessage),
    (status = 400, description = "a field is missing or invalid, the password fails the policy, or the email is registered"),
    (status = 429, description = "too many signups from this address"),
))]
#[post("/users", data = "<body>")]
async fn create_user(request: ApiRequest<'_>, body: Input<NewAccount>) -> Answer<EmailMessage> {
    let Body(NewAccount { email, password }) = body?;
    let accounts = request.auth.accounts();
    let account = accounts.register(&request.caller, &email, password).await?;
    if request.caller.session_id.is_some() {
        request.cookies.end_session();
    }
    Ok(EmailMessage::new(account.email, "user created"))
}

/// The answer to a login: signed in, or a second factor asked for.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde", untagged)]
pub enum LoginAnswer {
    LoggedIn(EmailMessage),
    SecondFactor(SecondFactorRequired),
}

/// The password was right and the account has a second factor: no session yet. Complete the
/// sign-in with `POST /sessions/mfa` and the `mfa_token` (5 minutes, single use).
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct SecondFactorRequired {
    pub email: String,
    /// "second factor required"
    pub message: &'static str,
    pub mfa_token: String,
    /// What may complete the sign-in: `totp`, `recovery_code`.
    pub methods: Vec<&'static str>,
}

/// Logs in with a password. An account with a second factor gets no session yet: the answer
/// carries the `mfa_token` that `POST /sessions/mfa` completes with a code.
#[utoipa::path(tag = "original", request_body = Credentials, responses(
    (status = 200, description = "logged in (the session cookie is set), or a second factor required (no cookie)", body = LoginAnswer),
    (status = 401, description = "invalid email or password"),
    (status = 403, description = "email not verified (require_verified_email)"),
    (status = 429, description = "too many attempts"),
))]
#[post("/sessions", data = "<body>")]
async fn create_session(request: ApiRequest<'_>, body: Input<Credentials>) -> Answer<LoginAnswer> {
    Ok(Json(match request.log_in(body?.0).await? {
        LogIn::Done(email) => LoginAnswer::LoggedIn(EmailMessage {
            email,
            message: "logged in",
        }),
        LogIn::SecondFactor(pending) => LoginAnswer::SecondFactor(SecondFactorRequired {
            email: pending.email,
            message: "second factor required",
            mfa_token: pending.token,
            methods: pending.methods.iter().map(|m| m.name()).collect(),
        }),
    }))
}

/// Logs out this device only, then redirects (303) to `GET /` as the original did.
#[utoipa::path(tag = "original", security(("session" = [])), responses(
    (status = 303, description = "logged out; to GET /"),
))]
#[delete("/sessions")]
async fn destroy_session(request: ApiRequest<'_>) -> Result<Redirect, Problem> {
    let session_id = request.cookies.session_id().ok_or(AuthError::NoSession)?;
    request
        .auth
        .sessions()
        .end(&request.caller, &session_id)
        .await?;
    request.cookies.end_session();
    Ok(Redirect::to(uri!(index)))
}

/// The original's `{"email"}`, and whether that email is verified.
#[utoipa::path(tag = "original", security(("session" = [])), responses(
    (status = 200, description = "the account", body = Profile),
))]
#[get("/profile")]
async fn profile(request: ApiRequest<'_>) -> Answer<Profile> {
    let user = request.account().await?;
    let verified = user.is_verified();
    Ok(Profile::of(user.email, verified))
}

/// Asks for a reset link. With `expose_reset_token` (debug) the body carries the token, as in
/// the original, an unknown email is 403 and an email over its hourly cap 429; otherwise every
/// valid email gets the same answer.
#[utoipa::path(tag = "original", request_body = EmailInput, responses(
    (status = 200, description = "a reset link was sent (debug: the token)", body = ResetRequested),
    (status = 400, description = "the email is missing or invalid"),
    (status = 403, description = "no account has that email (debug)"),
    (status = 429, description = "too many requests"),
))]
#[post("/reset_password", data = "<body>")]
async fn reset_token(request: ApiRequest<'_>, body: Input<EmailInput>) -> Answer<ResetRequested> {
    let Body(body) = body?;
    let email = body.email.as_str().to_owned();
    match request.request_reset(&body).await? {
        ResetRequest::Issued(reset_token) => Ok(Json(ResetRequested::Token { email, reset_token })),
        ResetRequest::NoAccount => {
            Err(Problem::new(Status::Forbidden, "no account has that email"))
        }
        ResetRequest::Capped => Err(Problem::new(
            Status::TooManyRequests,
            "too many reset requests for this email: try again later",
        )),
        ResetRequest::Deferred => {
            let sent = EmailMessage {
                email,
                message: "reset link sent",
            };
            Ok(Json(ResetRequested::Sent(sent)))
        }
    }
}

#[utoipa::path(tag = "original", request_body = ResetInput, responses(
    (status = 200, description = "Password updated", body = EmailMessage),
    (status = 400, description = "a field is missing or the password fails the policy"),
    (status = 403, description = "the token is not valid for that email"),
    (status = 429, description = "too many wrong tokens"),
))]
#[put("/reset_password", data = "<body>")]
async fn update_password(request: ApiRequest<'_>, body: Input<ResetInput>) -> Answer<EmailMessage> {
    let Body(ResetInput {
        email,
        reset_token,
        new_password,
    }) = body?;
    let links = request.auth.links();
    let spent = links.spend_reset_token(&request.caller, &reset_token, Some(&email), new_password);
    Ok(EmailMessage::new(spent.await?.email, "Password updated"))
}
