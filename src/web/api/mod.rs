//! The JSON API, keeping the original Flask service's paths, statuses and bodies to the letter;
//! the account self-service endpoints, additions beside them, are in [`account`].

mod account;
pub mod doc;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::{Json, Value, json};
use rocket::{State, delete, get, post, put, routes, uri};

use super::cookies::Cookies;
use super::error::Problem;
use super::input::Fields;
use super::origin::SameOrigin;
use super::session::CurrentUser;
use crate::auth::{Auth, AuthError, Caller, ResetRequest, Step};
use crate::config::Settings;

type ApiResult = Result<Json<Value>, Problem>;

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
    [original, account::routes(), routes![openapi]].concat()
}

/// The OpenAPI 3.1 description of this API.
#[get("/openapi.json")]
fn openapi() -> (rocket::http::ContentType, String) {
    use utoipa::OpenApi;
    let document = doc::ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    (rocket::http::ContentType::JSON, document)
}

#[utoipa::path(
    get,
    path = "/",
    tag = "original",
    responses(
        (status = 200, description = "Bienvenue", body = doc::Message)
    )
)]
#[get("/")]
pub fn index() -> Json<Value> {
    Json(json!({ "message": "Bienvenue" }))
}

/// Creates an account; a session the client presented ends with it.
#[utoipa::path(
    post,
    path = "/users",
    tag = "original",
    request_body(content((doc::Credentials = "application/x-www-form-urlencoded"), (doc::Credentials = "application/json"))),
    responses(
        (status = 200, description = "user created", body = doc::EmailMessage),
        (status = 400, description = "a field is missing or invalid, the password fails the policy, or the email is registered", body = doc::Message),
        (status = 429, description = "too many signups from this address", body = doc::Message)
    )
)]
#[post("/users", data = "<body>")]
async fn create_user(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> ApiResult {
    let body = body?;
    let email = body.email("email")?;
    let password = body.new_password("password", auth.policy())?;
    let user = auth.accounts().register(&caller, &email, password).await?;
    if caller.session_id.is_some() {
        cookies.end_session();
    }
    Ok(Json(
        json!({ "email": user.email, "message": "user created" }),
    ))
}

#[utoipa::path(
    post,
    path = "/sessions",
    tag = "original",
    request_body(content((doc::Credentials = "application/x-www-form-urlencoded"), (doc::Credentials = "application/json"))),
    responses(
        (status = 200, description = "logged in; the session cookie is set", body = doc::EmailMessage),
        (status = 401, description = "invalid email or password", body = doc::Message),
        (status = 403, description = "email not verified (require_verified_email)", body = doc::Message),
        (status = 429, description = "too many attempts", body = doc::Message)
    )
)]
#[post("/sessions", data = "<body>")]
async fn create_session(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> ApiResult {
    let body = body?;
    let email = body.email("email")?;
    let password = body.text("password")?;
    let Step::Session(signed_in) = auth.sign_in().password(&caller, &email, password).await?;
    let answer = json!({ "email": signed_in.account.email, "message": "logged in" });
    cookies.start_session(signed_in);
    Ok(Json(answer))
}

/// Logs out this device only, then redirects (303) to `GET /` as the original did.
#[utoipa::path(
    delete,
    path = "/sessions",
    tag = "original",
    responses(
        (status = 303, description = "logged out; to GET /"),
        (status = 403, description = "no live session", body = doc::Message)
    )
)]
#[delete("/sessions")]
async fn destroy_session(
    _origin: SameOrigin,
    caller: Caller,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Redirect, Problem> {
    let session_id = cookies.session_id().ok_or(AuthError::NoSession)?;
    auth.sessions().end(&caller, &session_id).await?;
    cookies.end_session();
    Ok(Redirect::to(uri!(index)))
}

/// The original's `{"email"}`, and whether that email is verified.
#[utoipa::path(
    get,
    path = "/profile",
    tag = "original",
    responses(
        (status = 200, description = "the account", body = doc::Profile),
        (status = 403, description = "no live session", body = doc::Message)
    )
)]
#[get("/profile")]
async fn profile(user: Result<CurrentUser, AuthError>) -> ApiResult {
    let CurrentUser(user) = user?;
    let verified = user.is_verified();
    Ok(Json(
        json!({ "email": user.email, "email_verified": verified }),
    ))
}

/// Asks for a reset link. With `expose_reset_token` (debug) the body carries the token, as in
/// the original, an unknown email is 403 and an email over its hourly cap 429; otherwise every
/// valid email gets the same answer.
#[utoipa::path(
    post,
    path = "/reset_password",
    tag = "original",
    request_body(content((doc::EmailInput = "application/x-www-form-urlencoded"), (doc::EmailInput = "application/json"))),
    responses(
        (status = 200, description = "a reset link was sent (debug: the token)", body = doc::ResetRequested),
        (status = 400, description = "the email is missing or invalid", body = doc::Message),
        (status = 403, description = "no account has that email (debug)", body = doc::Message),
        (status = 429, description = "too many requests", body = doc::Message)
    )
)]
#[post("/reset_password", data = "<body>")]
async fn reset_token(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> ApiResult {
    let email = body?.email("email")?;
    let expose = settings.expose_reset_token;
    match auth.links().request_reset(&caller, &email, expose).await? {
        ResetRequest::Issued(token) => Ok(Json(
            json!({ "email": email.as_str(), "reset_token": token }),
        )),
        ResetRequest::NoAccount => {
            Err(Problem::new(Status::Forbidden, "no account has that email"))
        }
        ResetRequest::Capped => Err(Problem::new(
            Status::TooManyRequests,
            "too many reset requests for this email: try again later",
        )),
        ResetRequest::Deferred => Ok(Json(
            json!({ "email": email.as_str(), "message": "reset link sent" }),
        )),
    }
}

#[utoipa::path(
    put,
    path = "/reset_password",
    tag = "original",
    request_body(content((doc::ResetInput = "application/x-www-form-urlencoded"), (doc::ResetInput = "application/json"))),
    responses(
        (status = 200, description = "Password updated", body = doc::EmailMessage),
        (status = 400, description = "a field is missing or the password fails the policy", body = doc::Message),
        (status = 403, description = "the token is not valid for that email", body = doc::Message),
        (status = 429, description = "too many wrong tokens", body = doc::Message)
    )
)]
#[put("/reset_password", data = "<body>")]
async fn update_password(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
) -> ApiResult {
    let body = body?;
    let email = body.email("email")?;
    let reset_token = body.text("reset_token")?;
    let password = body.new_password("new_password", auth.policy())?;
    let user = auth
        .links()
        .spend_reset_token(&caller, reset_token, Some(&email), password)
        .await?;
    Ok(Json(
        json!({ "email": user.email, "message": "Password updated" }),
    ))
}
