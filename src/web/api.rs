//! The JSON API, keeping the original Flask service's paths, statuses and bodies to the letter.

use rocket::http::CookieJar;
use rocket::response::Redirect;
use rocket::serde::json::{Json, Value, json};
use rocket::{State, delete, get, post, put, routes, uri};

use super::error::ApiError;
use super::input::Fields;
use super::origin::SameOrigin;
use super::session::{self, CurrentUser, SessionCookie};
use crate::auth::{Auth, AuthError, Caller};
use crate::config::Settings;

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Vec<rocket::Route> {
    routes![
        index,
        create_user,
        create_session,
        destroy_session,
        profile,
        reset_token,
        update_password
    ]
}

#[get("/")]
pub fn index() -> Json<Value> {
    Json(json!({ "message": "Bienvenue" }))
}

#[post("/users", data = "<body>")]
async fn create_user(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, ApiError>,
    auth: &State<Auth>,
) -> ApiResult {
    let body = body?;
    let email = body.email("email")?;
    let password = body.new_password("password", auth.policy())?;
    let user = auth.register(&caller, &email, password).await?;
    Ok(Json(
        json!({ "email": user.email, "message": "user created" }),
    ))
}

#[post("/sessions", data = "<body>")]
async fn create_session(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, ApiError>,
    auth: &State<Auth>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
) -> ApiResult {
    let user = session::start(&caller, &body?, auth, cookies, settings).await?;
    Ok(Json(json!({ "email": user.email, "message": "logged in" })))
}

/// Logs out this device only, then redirects (303) to `GET /` as the original did.
#[delete("/sessions")]
async fn destroy_session(
    _origin: SameOrigin,
    caller: Caller,
    cookie: SessionCookie,
    auth: &State<Auth>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
) -> Result<Redirect, ApiError> {
    session::end(&caller, &cookie, auth, cookies, settings).await?;
    Ok(Redirect::to(uri!(index)))
}

#[get("/profile")]
async fn profile(user: Result<CurrentUser, AuthError>) -> ApiResult {
    let CurrentUser(user) = user?;
    Ok(Json(json!({ "email": user.email })))
}

/// Issues a reset token. With `expose_reset_token` (debug) the body carries it, as in the
/// original, and an unknown email is 403; otherwise every valid email gets the same answer.
#[post("/reset_password", data = "<body>")]
async fn reset_token(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, ApiError>,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> ApiResult {
    let email = body?.email("email")?;
    match auth.reset_token(&caller, &email).await {
        Ok(token) if settings.expose_reset_token => Ok(Json(
            json!({ "email": email.as_str(), "reset_token": token }),
        )),
        Err(AuthError::UnknownEmail) if settings.expose_reset_token => {
            Err(AuthError::UnknownEmail.into())
        }
        Ok(_) | Err(AuthError::UnknownEmail) => Ok(Json(
            json!({ "email": email.as_str(), "message": "reset link sent" }),
        )),
        Err(error) => Err(error.into()),
    }
}

#[put("/reset_password", data = "<body>")]
async fn update_password(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, ApiError>,
    auth: &State<Auth>,
) -> ApiResult {
    let body = body?;
    let email = body.email("email")?;
    let reset_token = body.text("reset_token")?;
    let password = body.new_password("new_password", auth.policy())?;
    let user = auth
        .update_password(&caller, &email, reset_token, password)
        .await?;
    Ok(Json(
        json!({ "email": user.email, "message": "Password updated" }),
    ))
}
