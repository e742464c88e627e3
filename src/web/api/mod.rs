//! The JSON API, keeping the original Flask service's paths, statuses and bodies to the letter;
//! the account self-service endpoints, additions beside them, are in [`account`].

mod account;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::{Json, Value, json};
use rocket::{State, delete, get, post, put, routes, uri};

use super::cookies::Cookies;
use super::error::Problem;
use super::input::Fields;
use super::origin::SameOrigin;
use super::session::CurrentUser;
use crate::auth::{Auth, AuthError, Caller, ResetRequest};
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
    [original, account::routes()].concat()
}

#[get("/")]
pub fn index() -> Json<Value> {
    Json(json!({ "message": "Bienvenue" }))
}

/// Creates an account; a session the client presented ends with it.
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
    let user = auth.register(&caller, &email, password).await?;
    if caller.session_id.is_some() {
        cookies.end_session();
    }
    Ok(Json(
        json!({ "email": user.email, "message": "user created" }),
    ))
}

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
    let login = auth.login(&caller, &email, body.text("password")?).await?;
    let answer = json!({ "email": login.user.email, "message": "logged in" });
    cookies.start_session(login);
    Ok(Json(answer))
}

/// Logs out this device only, then redirects (303) to `GET /` as the original did.
#[delete("/sessions")]
async fn destroy_session(
    _origin: SameOrigin,
    caller: Caller,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> Result<Redirect, Problem> {
    let session_id = cookies.session_id().ok_or(AuthError::NoSession)?;
    auth.destroy_session(&caller, &session_id).await?;
    cookies.end_session();
    Ok(Redirect::to(uri!(index)))
}

/// The original's `{"email"}`, and whether that email is verified.
#[get("/profile")]
async fn profile(user: Result<CurrentUser, AuthError>) -> ApiResult {
    let CurrentUser(user) = user?;
    let verified = user.email_verified_at.is_some();
    Ok(Json(
        json!({ "email": user.email, "email_verified": verified }),
    ))
}

/// Asks for a reset link. With `expose_reset_token` (debug) the body carries the token, as in
/// the original, an unknown email is 403 and an email over its hourly cap 429; otherwise every
/// valid email gets the same answer.
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
    match auth.request_reset(&caller, &email, expose).await? {
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
        .spend_reset_token(&caller, reset_token, Some(&email), password)
        .await?;
    Ok(Json(
        json!({ "email": user.email, "message": "Password updated" }),
    ))
}
