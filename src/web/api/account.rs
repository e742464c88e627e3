//! The account self-service API, beside the original's endpoints: the same body formats, error
//! shape and session cookie. A missing or wrong `current_password` is 401; a new password that
//! fails the policy is 400 naming its field. With `expose_reset_token` (debug) the bodies also
//! carry the mailed tokens, as `POST /reset_password` does.

use rocket::serde::Serialize;
use rocket::serde::json::Json;
use rocket::{delete, get, post, put, routes};
use utoipa::ToSchema;

use super::{Answer, ApiRequest, Input, Profile};
use crate::auth::DeviceSession;
use crate::time::rfc3339;
use crate::web::bodies::{CurrentPassword, EmailChange, PasswordChange, TokenInput};
use crate::web::error::Message;

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
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Session {
    /// An opaque public id: never the session's token or digest.
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub last_seen_at: String,
    /// A summary such as "Firefox on Linux".
    pub user_agent: Option<String>,
    pub address: Option<String>,
    /// The session of the request that asked.
    pub current: bool,
    /// How it was made (OpenID's `amr`): `pwd`, and `otp` (an authenticator app's code) or
    /// `rc` (a recovery code).
    pub amr: Vec<String>,
}

impl From<DeviceSession> for Session {
    fn from(listed: DeviceSession) -> Session {
        let session = listed.session;
        Session {
            id: session.public_id,
            created_at: rfc3339(session.created_at),
            last_seen_at: rfc3339(session.last_seen_at),
            user_agent: session.user_agent,
            address: session.address,
            current: listed.current,
            amr: session.amr.split(' ').map(str::to_owned).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Sessions {
    pub sessions: Vec<Session>,
}

#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Ended {
    pub ended: usize,
}

/// A verification link was mailed; with `expose_reset_token` (debug) its token too.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct VerificationSent {
    pub message: &'static str,
    #[serde(rename = "verification_token", skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A confirmation link was mailed to the new address; with `expose_reset_token` (debug) its
/// token too.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct EmailChangeSent {
    pub message: &'static str,
    #[serde(rename = "email_token", skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct EmailOnly {
    pub email: String,
}

#[utoipa::path(tag = "account", security(("session" = [])), responses(
    (status = 200, description = "the live sessions, the most recently used first", body = Sessions),
))]
#[get("/account/sessions")]
async fn list_sessions(request: ApiRequest<'_>) -> Answer<Sessions> {
    let user = request.account().await?;
    let listed = request.sessions(&user).await?;
    let sessions = listed.into_iter().map(Session::from).collect();
    Ok(Json(Sessions { sessions }))
}

/// Ends one of the account's sessions; 404 for an id that is not one of them. Ending this
/// very session also drops its cookie.
#[utoipa::path(tag = "account", params(("id" = String, Path, description = "The session's public id, from GET /account/sessions")), security(("session" = [])), responses(
    (status = 200, description = "session ended", body = Message),
    (status = 404, description = "no such session"),
))]
#[delete("/account/sessions/<id>")]
async fn end_session(id: &str, request: ApiRequest<'_>) -> Answer<Message> {
    let user = request.account().await?;
    request.end_session(&user, id).await?;
    Ok(Message::new("session ended"))
}

/// Ends every session of the account but this one.
#[utoipa::path(tag = "account", security(("session" = [])), responses(
    (status = 200, description = "every other session ended", body = Ended),
))]
#[delete("/account/sessions")]
async fn end_other_sessions(request: ApiRequest<'_>) -> Answer<Ended> {
    let user = request.account().await?;
    let ended = request.end_other_sessions(&user).await?;
    Ok(Json(Ended { ended }))
}

/// Changes the password; every other session ends and this client gets a new session cookie.
#[utoipa::path(tag = "account", request_body = PasswordChange, security(("session" = [])), responses(
    (status = 200, description = "password changed; a new session cookie is set", body = Message),
    (status = 400, description = "new_password fails the policy"),
    (status = 429, description = "too many attempts"),
))]
#[put("/account/password", data = "<body>")]
async fn change_password(request: ApiRequest<'_>, body: Input<PasswordChange>) -> Answer<Message> {
    let user = request.account().await?;
    request.change_password(&user, body?.0).await?;
    Ok(Message::new("password changed"))
}

#[utoipa::path(tag = "account", security(("session" = [])), responses(
    (status = 200, description = "verification link sent", body = VerificationSent),
    (status = 409, description = "email is already verified"),
    (status = 429, description = "too many mails this hour"),
))]
#[post("/account/verification")]
async fn send_verification(request: ApiRequest<'_>) -> Answer<VerificationSent> {
    let user = request.account().await?;
    let token = request.send_verification(&user).await?;
    let message = "verification link sent";
    Ok(Json(VerificationSent { message, token }))
}

/// Spends a verification token; no session is needed (the link may be opened anywhere).
#[utoipa::path(tag = "account", request_body = TokenInput, responses(
    (status = 200, description = "the email is verified", body = Profile),
    (status = 400, description = "token is required"),
    (status = 403, description = "invalid, expired or used token"),
))]
#[post("/account/verification/confirm", data = "<body>")]
async fn confirm_verification(request: ApiRequest<'_>, body: Input<TokenInput>) -> Answer<Profile> {
    let email = request.verify_email(&body?.0.token).await?;
    Ok(Profile::of(email, true))
}

/// Asks to move the account to `new_email`; it moves when the mailed link is confirmed.
#[utoipa::path(tag = "account", request_body = EmailChange, security(("session" = [])), responses(
    (status = 200, description = "confirmation link sent to the new address (an address that has an account gets a mail saying so instead, and the same answer)", body = EmailChangeSent),
    (status = 400, description = "new_email is invalid or already this account's"),
    (status = 429, description = "too many attempts or mails"),
))]
#[post("/account/email", data = "<body>")]
async fn change_email(
    request: ApiRequest<'_>,
    body: Input<EmailChange>,
) -> Answer<EmailChangeSent> {
    let user = request.account().await?;
    let token = request.request_email_change(&user, &body?.0).await?;
    let message = "confirmation link sent";
    Ok(Json(EmailChangeSent { message, token }))
}

#[utoipa::path(tag = "account", request_body = TokenInput, responses(
    (status = 200, description = "the account moved to the new email", body = EmailOnly),
    (status = 400, description = "the address was taken meanwhile"),
    (status = 403, description = "invalid, expired or used token"),
))]
#[post("/account/email/confirm", data = "<body>")]
async fn confirm_email_change(
    request: ApiRequest<'_>,
    body: Input<TokenInput>,
) -> Answer<EmailOnly> {
    let email = request.confirm_email_change(&body?.0.token).await?;
    Ok(Json(EmailOnly { email }))
}

/// Deletes the account and drops the session cookie.
#[utoipa::path(tag = "account", request_body = CurrentPassword, security(("session" = [])), responses(
    (status = 200, description = "account deleted; the cookie is removed", body = Message),
    (status = 429, description = "too many attempts"),
))]
#[delete("/account", data = "<body>")]
async fn delete_account(request: ApiRequest<'_>, body: Input<CurrentPassword>) -> Answer<Message> {
    let user = request.account().await?;
    request.delete_account(&user, &body?.0).await?;
    Ok(Message::new("account deleted"))
}
