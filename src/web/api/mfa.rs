//! Second factors through the API: completing a sign-in that asked for one, and the owner's
//! setup (`/account/mfa`, `/account/totp`, `/account/recovery-codes`). The setup endpoints also
//! serve a session that may only set a second factor up (`mfa_policy = "required"`).

use rocket::serde::Serialize;
use rocket::serde::json::Json;
use rocket::{delete, get, post, routes};
use utoipa::ToSchema;

use super::{Answer, ApiRequest, EmailMessage, Input};
use crate::web::bodies::{CurrentPassword, MfaAnswer, TotpCode};
use crate::web::error::Message;
use crate::web::input::Body;

pub fn routes() -> Vec<rocket::Route> {
    routes![
        complete_sign_in,
        status,
        start_totp,
        confirm_totp,
        remove_totp,
        new_recovery_codes,
    ]
}

/// An account's second factors.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct MfaStatus {
    /// An authenticator app is set up (and confirmed).
    pub totp: bool,
    pub passkeys: Vec<Passkey>,
    pub recovery_codes_left: i64,
    /// `mfa_policy`: "optional" or "required".
    pub policy: &'static str,
}

/// A registered passkey.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Passkey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// An authenticator app's setup: type the secret in, or open the URI (the QR code holds it).
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct TotpSetup {
    /// Base32, no padding.
    pub secret: String,
    pub otpauth_uri: String,
}

/// One-time recovery codes: shown this once.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Confirming an authenticator app: the first factor of an account comes with recovery codes.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde", untagged)]
pub enum Confirmed {
    First(RecoveryCodes),
    Replaced(Message),
}

/// Completes a sign-in that asked for a second factor: the `mfa_token` of `POST /sessions`
/// and either `code` (the authenticator app's) or `recovery_code`.
#[utoipa::path(tag = "second factors", request_body = MfaAnswer, responses(
    (status = 200, description = "logged in; the session cookie is set", body = EmailMessage),
    (status = 400, description = "a field is missing, or both code and recovery_code were sent"),
    (status = 401, description = "a wrong or used code; or the mfa_token is unknown, used or expired (5 wrong codes end it)"),
    (status = 429, description = "too many attempts"),
))]
#[post("/sessions/mfa", data = "<body>")]
async fn complete_sign_in(request: ApiRequest<'_>, body: Input<MfaAnswer>) -> Answer<EmailMessage> {
    let Body(MfaAnswer { mfa_token, code }) = body?;
    let email = request.second_factor(&mfa_token, &code).await?;
    Ok(EmailMessage::new(email, "logged in"))
}

/// The account's second factors.
#[utoipa::path(tag = "second factors", security(("session" = [])), responses(
    (status = 200, description = "the second factors", body = MfaStatus),
))]
#[get("/account/mfa")]
async fn status(request: ApiRequest<'_>) -> Answer<MfaStatus> {
    let account = request.enrolling_account().await?;
    let status = request.auth.factors().status(&account).await?;
    Ok(Json(MfaStatus {
        totp: status.totp,
        passkeys: Vec::new(),
        recovery_codes_left: status.recovery_codes_left,
        policy: if status.required {
            "required"
        } else {
            "optional"
        },
    }))
}

/// Starts setting up an authenticator app: a new secret, pending until
/// `POST /account/totp/confirm` (a new call replaces a pending one).
#[utoipa::path(tag = "second factors", request_body = CurrentPassword, security(("session" = [])), responses(
    (status = 200, description = "the secret to add to the app", body = TotpSetup),
    (status = 401, description = "current_password is missing or wrong"),
))]
#[post("/account/totp", data = "<body>")]
async fn start_totp(request: ApiRequest<'_>, body: Input<CurrentPassword>) -> Answer<TotpSetup> {
    let account = request.enrolling_account().await?;
    let Body(body) = body?;
    let factors = request.auth.factors();
    let setup = factors
        .start_totp(&request.caller, &account, &body.current_password)
        .await?;
    Ok(Json(TotpSetup {
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
    }))
}

/// Confirms the pending authenticator app with its current code; every other session ends.
/// The account's first second factor comes with 10 recovery codes, shown this once.
#[utoipa::path(tag = "second factors", request_body = TotpCode, security(("session" = [])), responses(
    (status = 200, description = "confirmed: the recovery codes (first factor) or a message", body = Confirmed),
    (status = 401, description = "the code is wrong"),
    (status = 409, description = "no setup is pending"),
))]
#[post("/account/totp/confirm", data = "<body>")]
async fn confirm_totp(request: ApiRequest<'_>, body: Input<TotpCode>) -> Answer<Confirmed> {
    let account = request.enrolling_account().await?;
    let Body(TotpCode { code }) = body?;
    let factors = request.auth.factors();
    Ok(Json(
        match factors
            .confirm_totp(&request.caller, &account, &code)
            .await?
        {
            Some(recovery_codes) => Confirmed::First(RecoveryCodes { recovery_codes }),
            None => Confirmed::Replaced(Message {
                message: "authenticator app confirmed".into(),
            }),
        },
    ))
}

/// Removes the authenticator app; every other session ends. Refused for the last second
/// factor where `mfa_policy` requires one.
#[utoipa::path(tag = "second factors", request_body = CurrentPassword, security(("session" = [])), responses(
    (status = 200, description = "removed", body = Message),
    (status = 401, description = "current_password is missing or wrong"),
    (status = 404, description = "no authenticator app is set up"),
    (status = 409, description = "the last second factor, which mfa_policy requires"),
))]
#[delete("/account/totp", data = "<body>")]
async fn remove_totp(request: ApiRequest<'_>, body: Input<CurrentPassword>) -> Answer<Message> {
    let account = request.account().await?;
    let Body(body) = body?;
    let factors = request.auth.factors();
    factors
        .remove_totp(&request.caller, &account, &body.current_password)
        .await?;
    Ok(Message::new("authenticator app removed"))
}

/// A new set of 10 recovery codes, shown this once; the old set stops working.
#[utoipa::path(tag = "second factors", request_body = CurrentPassword, security(("session" = [])), responses(
    (status = 200, description = "the new codes", body = RecoveryCodes),
    (status = 401, description = "current_password is missing or wrong"),
    (status = 409, description = "the account has no second factor to recover"),
))]
#[post("/account/recovery-codes", data = "<body>")]
async fn new_recovery_codes(
    request: ApiRequest<'_>,
    body: Input<CurrentPassword>,
) -> Answer<RecoveryCodes> {
    let account = request.account().await?;
    let Body(body) = body?;
    let factors = request.auth.factors();
    let recovery_codes = factors
        .new_recovery_codes(&request.caller, &account, &body.current_password)
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}
