//! The account self-service API, beside the original's endpoints: the same body formats, error
//! shape and session cookie. A missing or wrong `current_password` is 401; a new password that
//! fails the policy is 400 naming its field. With `expose_reset_token` (debug) the bodies also
//! carry the mailed tokens, as `POST /reset_password` does.

use rocket::serde::json::{Json, Value, json};
use rocket::{State, delete, get, post, put, routes};

use super::{ApiResult, doc};
use crate::auth::{Auth, AuthError, Caller, DeviceSession};
use crate::config::Settings;
use crate::web::cookies::Cookies;
use crate::web::error::Problem;
use crate::web::input::Fields;
use crate::web::origin::SameOrigin;
use crate::web::session::CurrentUser;
use crate::web::time::rfc3339;

pub fn routes() -> Vec<rocket::Route> {
    routes![
        list_sessions,
        end_session,
        end_other_sessions,
        change_password,
        send_verification,
        confirm_verification,
        change_email,
        confirm_email_change,
        delete_account,
    ]
}

/// A session as the API shows it: its public id, never its token or digest.
fn session_json(listed: &DeviceSession) -> Value {
    let session = &listed.session;
    json!({
        "id": session.public_id,
        "created_at": rfc3339(session.created_at),
        "last_seen_at": rfc3339(session.last_seen_at),
        "user_agent": session.user_agent,
        "address": session.address,
        "current": listed.current,
    })
}

/// `{"message": message}`, with the mailed token (if a link was mailed) under `token_field`
/// when tokens are exposed (debug).
fn sent(
    message: &str,
    token_field: &str,
    token: Option<String>,
    settings: &Settings,
) -> Json<Value> {
    let mut body = json!({ "message": message });
    if let Some(token) = token.filter(|_| settings.expose_reset_token) {
        body[token_field] = token.into();
    }
    Json(body)
}

#[utoipa::path(
    get,
    path = "/account/sessions",
    tag = "account",
    responses(
        (status = 200, description = "the live sessions, the most recently used first", body = doc::Sessions),
        (status = 403, description = "no live session", body = doc::Message)
    )
)]
#[get("/account/sessions")]
async fn list_sessions(
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    let sessions = auth.accounts().sessions_of(&caller, &user).await?;
    let listed: Vec<Value> = sessions.iter().map(session_json).collect();
    Ok(Json(json!({ "sessions": listed })))
}

/// Ends one of the account's sessions; 404 for an id that is not one of them. Ending this
/// very session also drops its cookie.
#[utoipa::path(
    delete,
    path = "/account/sessions/{id}",
    tag = "account",
    params(("id" = String, Path, description = "The session's public id, from GET /account/sessions")),
    responses(
        (status = 200, description = "session ended", body = doc::Message),
        (status = 403, description = "no live session", body = doc::Message),
        (status = 404, description = "no such session", body = doc::Message)
    )
)]
#[delete("/account/sessions/<id>")]
async fn end_session(
    _origin: SameOrigin,
    id: &str,
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    if auth
        .accounts()
        .end_session_by_id(&caller, &user, id)
        .await?
        .current
    {
        cookies.end_session();
    }
    Ok(Json(json!({ "message": "session ended" })))
}

/// Ends every session of the account but this one.
#[utoipa::path(
    delete,
    path = "/account/sessions",
    tag = "account",
    responses(
        (status = 200, description = "every other session ended", body = doc::Ended),
        (status = 403, description = "no live session", body = doc::Message)
    )
)]
#[delete("/account/sessions")]
async fn end_other_sessions(
    _origin: SameOrigin,
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    let ended = auth.accounts().end_other_sessions(&caller, &user).await?;
    Ok(Json(json!({ "ended": ended })))
}

/// Changes the password; every other session ends and this client gets a new session cookie.
#[utoipa::path(
    put,
    path = "/account/password",
    tag = "account",
    request_body(content((doc::PasswordChange = "application/x-www-form-urlencoded"), (doc::PasswordChange = "application/json"))),
    responses(
        (status = 200, description = "password changed; a new session cookie is set", body = doc::Message),
        (status = 400, description = "new_password fails the policy", body = doc::Message),
        (status = 401, description = "current_password is missing or wrong", body = doc::Message),
        (status = 403, description = "no live session", body = doc::Message),
        (status = 429, description = "too many attempts", body = doc::Message)
    )
)]
#[put("/account/password", data = "<body>")]
async fn change_password(
    _origin: SameOrigin,
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    let body = body?;
    let current = body.current_password()?;
    let new = body.new_password("new_password", auth.policy())?;
    let login = auth
        .accounts()
        .change_password(&caller, &user, current, new)
        .await?;
    cookies.start_session(login);
    Ok(Json(json!({ "message": "password changed" })))
}

#[utoipa::path(
    post,
    path = "/account/verification",
    tag = "account",
    responses(
        (status = 200, description = "verification link sent", body = doc::LinkSent),
        (status = 403, description = "no live session", body = doc::Message),
        (status = 409, description = "email is already verified", body = doc::Message),
        (status = 429, description = "too many mails this hour", body = doc::Message)
    )
)]
#[post("/account/verification")]
async fn send_verification(
    _origin: SameOrigin,
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    let token = auth.links().send_verification(&caller, &user).await?;
    let message = "verification link sent";
    Ok(sent(message, "verification_token", Some(token), settings))
}

/// Spends a verification token; no session is needed (the link may be opened anywhere).
#[utoipa::path(
    post,
    path = "/account/verification/confirm",
    tag = "account",
    request_body(content((doc::TokenInput = "application/x-www-form-urlencoded"), (doc::TokenInput = "application/json"))),
    responses(
        (status = 200, description = "the email is verified", body = doc::Verified),
        (status = 400, description = "token is required", body = doc::Message),
        (status = 403, description = "invalid, expired or used token", body = doc::Message)
    )
)]
#[post("/account/verification/confirm", data = "<body>")]
async fn confirm_verification(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
) -> ApiResult {
    let body = body?;
    let user = auth
        .links()
        .verify_email(&caller, body.text("token")?)
        .await?;
    Ok(Json(json!({ "email": user.email, "email_verified": true })))
}

/// Asks to move the account to `new_email`; it moves when the mailed link is confirmed.
#[utoipa::path(
    post,
    path = "/account/email",
    tag = "account",
    request_body(content((doc::EmailChange = "application/x-www-form-urlencoded"), (doc::EmailChange = "application/json"))),
    responses(
        (status = 200, description = "confirmation link sent to the new address (an address that has an account gets a mail saying so instead, and the same answer)", body = doc::LinkSent),
        (status = 400, description = "new_email is invalid or already this account's", body = doc::Message),
        (status = 401, description = "current_password is missing or wrong", body = doc::Message),
        (status = 403, description = "no live session", body = doc::Message),
        (status = 429, description = "too many attempts or mails", body = doc::Message)
    )
)]
#[post("/account/email", data = "<body>")]
async fn change_email(
    _origin: SameOrigin,
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
    settings: &State<Settings>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    let body = body?;
    let current = body.current_password()?;
    let new_email = body.email("new_email")?;
    let token = auth
        .accounts()
        .request_email_change(&caller, &user, current, &new_email)
        .await?;
    Ok(sent(
        "confirmation link sent",
        "email_token",
        token,
        settings,
    ))
}

#[utoipa::path(
    post,
    path = "/account/email/confirm",
    tag = "account",
    request_body(content((doc::TokenInput = "application/x-www-form-urlencoded"), (doc::TokenInput = "application/json"))),
    responses(
        (status = 200, description = "the account moved to the new email", body = doc::EmailOnly),
        (status = 400, description = "the address was taken meanwhile", body = doc::Message),
        (status = 403, description = "invalid, expired or used token", body = doc::Message)
    )
)]
#[post("/account/email/confirm", data = "<body>")]
async fn confirm_email_change(
    _origin: SameOrigin,
    caller: Caller,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
) -> ApiResult {
    let body = body?;
    let user = auth
        .links()
        .confirm_email_change(&caller, body.text("token")?)
        .await?;
    Ok(Json(json!({ "email": user.email })))
}

/// Deletes the account and drops the session cookie.
#[utoipa::path(
    delete,
    path = "/account",
    tag = "account",
    request_body(content((doc::CurrentPassword = "application/x-www-form-urlencoded"), (doc::CurrentPassword = "application/json"))),
    responses(
        (status = 200, description = "account deleted; the cookie is removed", body = doc::Message),
        (status = 401, description = "current_password is missing or wrong", body = doc::Message),
        (status = 403, description = "no live session", body = doc::Message),
        (status = 429, description = "too many attempts", body = doc::Message)
    )
)]
#[delete("/account", data = "<body>")]
async fn delete_account(
    _origin: SameOrigin,
    caller: Caller,
    user: Result<CurrentUser, AuthError>,
    body: Result<Fields, Problem>,
    auth: &State<Auth>,
    cookies: Cookies<'_>,
) -> ApiResult {
    let CurrentUser(user) = user?;
    let body = body?;
    auth.accounts()
        .delete_account(&caller, &user, body.current_password()?)
        .await?;
    cookies.end_session();
    Ok(Json(json!({ "message": "account deleted" })))
}
