//! Second factors through the API: completing a sign-in that asked for one, and the owner's
//! setup (`/account/mfa`, `/account/totp`, `/account/recovery-codes`). The setup endpoints also
//! serve a session that may only set a second factor up (`mfa_policy = "required"`).

use rocket::serde::Serialize;
use rocket::serde::json::Json;
use rocket::{delete, get, post, routes};
use utoipa::ToSchema;

use super::{Answer, ApiRequest, EmailMessage, Input};
use crate::auth::{Ceremony, PasskeyView, SecondFactor};
use crate::time::rfc3339;
use crate::web::bodies::{
    EmailInput, FactorChange, MfaAnswer, MfaPasskey, MfaToken, NewPasskey, PasskeyAnswer, TotpCode,
};
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
        mfa_passkey_options,
        mfa_passkey,
        passkey_sign_in_options,
        passkey_sign_in,
        passkey_registration_options,
        register_passkey,
        remove_passkey,
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

impl From<PasskeyView> for Passkey {
    fn from(passkey: PasskeyView) -> Passkey {
        Passkey {
            id: passkey.id,
            name: passkey.name,
            created_at: rfc3339(passkey.created_at),
            last_used_at: passkey.last_used_at.map(rfc3339),
        }
    }
}

/// The options of `navigator.credentials.get()` (or `.create()`), as `{"publicKey": …}`.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct PublicKeyOptions {
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: rocket::serde::json::Value,
}

/// A ceremony: the id to answer it with, and its options.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct CeremonyOptions {
    pub challenge_id: String,
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: rocket::serde::json::Value,
}

impl From<Ceremony> for CeremonyOptions {
    fn from(ceremony: Ceremony) -> CeremonyOptions {
        CeremonyOptions {
            challenge_id: ceremony.challenge_id,
            public_key: ceremony.public_key,
        }
    }
}

/// A registered passkey.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Registered {
    pub id: String,
    pub name: String,
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
    let email = request
        .second_factor(&mfa_token, code.second_factor())
        .await?;
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
    let passkeys = match request.auth.passkeys().list(&account).await {
        Ok(passkeys) => passkeys.into_iter().map(Passkey::from).collect(),
        Err(crate::auth::AuthError::PasskeysOff) => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    Ok(Json(MfaStatus {
        totp: status.totp,
        passkeys,
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
#[utoipa::path(tag = "second factors", request_body = FactorChange, security(("session" = [])), responses(
    (status = 200, description = "the secret to add to the app", body = TotpSetup),
    (status = 401, description = "current_password is missing (and the session was not made with a passkey in the last 5 minutes) or wrong"),
))]
#[post("/account/totp", data = "<body>")]
async fn start_totp(request: ApiRequest<'_>, body: Input<FactorChange>) -> Answer<TotpSetup> {
    let account = request.enrolling_account().await?;
    let Body(body) = body?;
    let factors = request.auth.factors();
    let setup = factors
        .start_totp(&request.caller, &account, body.current_password.as_deref())
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
#[utoipa::path(tag = "second factors", request_body = FactorChange, security(("session" = [])), responses(
    (status = 200, description = "removed", body = Message),
    (status = 401, description = "current_password is missing (and the session was not made with a passkey in the last 5 minutes) or wrong"),
    (status = 404, description = "no authenticator app is set up"),
    (status = 409, description = "the last second factor, which mfa_policy requires"),
))]
#[delete("/account/totp", data = "<body>")]
async fn remove_totp(request: ApiRequest<'_>, body: Input<FactorChange>) -> Answer<Message> {
    let account = request.account().await?;
    let Body(body) = body?;
    let factors = request.auth.factors();
    factors
        .remove_totp(&request.caller, &account, body.current_password.as_deref())
        .await?;
    Ok(Message::new("authenticator app removed"))
}

/// A new set of 10 recovery codes, shown this once; the old set stops working.
#[utoipa::path(tag = "second factors", request_body = FactorChange, security(("session" = [])), responses(
    (status = 200, description = "the new codes", body = RecoveryCodes),
    (status = 401, description = "current_password is missing (and the session was not made with a passkey in the last 5 minutes) or wrong"),
    (status = 409, description = "the account has no second factor to recover"),
))]
#[post("/account/recovery-codes", data = "<body>")]
async fn new_recovery_codes(
    request: ApiRequest<'_>,
    body: Input<FactorChange>,
) -> Answer<RecoveryCodes> {
    let account = request.account().await?;
    let Body(body) = body?;
    let factors = request.auth.factors();
    let recovery_codes = factors
        .new_recovery_codes(&request.caller, &account, body.current_password.as_deref())
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// The options of a passkey as the second factor of a pending sign-in (`methods` lists
/// `passkey`); a new call replaces the step's last challenge.
#[utoipa::path(tag = "second factors", request_body = MfaToken, responses(
    (status = 200, description = "the request options", body = PublicKeyOptions),
    (status = 401, description = "the mfa_token is unknown, used or expired"),
    (status = 404, description = "the account has no passkey, or passkeys are off"),
))]
#[post("/sessions/mfa/passkey/options", data = "<body>")]
async fn mfa_passkey_options(
    request: ApiRequest<'_>,
    body: Input<MfaToken>,
) -> Answer<PublicKeyOptions> {
    let Body(MfaToken { mfa_token }) = body?;
    let public_key = request.auth.sign_in().passkey_options(&mfa_token).await?;
    Ok(Json(PublicKeyOptions { public_key }))
}

/// Completes a pending sign-in with a passkey: the `PublicKeyCredential` answering the last
/// options of `POST /sessions/mfa/passkey/options`.
#[utoipa::path(tag = "second factors", request_body = MfaPasskey, responses(
    (status = 200, description = "logged in; the session cookie is set", body = EmailMessage),
    (status = 400, description = "a field is missing, or the credential is not a JSON object"),
    (status = 401, description = "the passkey did not verify; or the mfa_token is unknown, used or expired"),
    (status = 429, description = "too many attempts"),
))]
#[post("/sessions/mfa/passkey", data = "<body>")]
async fn mfa_passkey(request: ApiRequest<'_>, body: Input<MfaPasskey>) -> Answer<EmailMessage> {
    let Body(MfaPasskey {
        mfa_token,
        credential,
    }) = body?;
    let answer = SecondFactor::Passkey(&credential.0);
    let email = request.second_factor(&mfa_token, answer).await?;
    Ok(EmailMessage::new(email, "logged in"))
}

/// The options of a sign-in with a passkey alone, for `email`. An email without an account
/// (or without a passkey) gets options of the same shape, with decoy credential ids.
#[utoipa::path(tag = "second factors", request_body = EmailInput, responses(
    (status = 200, description = "the ceremony", body = CeremonyOptions),
    (status = 400, description = "the email is missing or invalid"),
    (status = 404, description = "passkeys are off"),
))]
#[post("/sessions/passkey/options", data = "<body>")]
async fn passkey_sign_in_options(
    request: ApiRequest<'_>,
    body: Input<EmailInput>,
) -> Answer<CeremonyOptions> {
    let Body(EmailInput { email }) = body?;
    let ceremony = request.auth.passkeys().sign_in_options(&email).await?;
    Ok(Json(ceremony.into()))
}

/// Signs in with a passkey alone (its user verification counts as the second factor).
#[utoipa::path(tag = "second factors", request_body = PasskeyAnswer, responses(
    (status = 200, description = "logged in; the session cookie is set", body = EmailMessage),
    (status = 400, description = "a field is missing, or the credential is not a JSON object"),
    (status = 401, description = "the passkey did not verify, or the ceremony is unknown, used or expired"),
    (status = 429, description = "too many attempts"),
))]
#[post("/sessions/passkey", data = "<body>")]
async fn passkey_sign_in(
    request: ApiRequest<'_>,
    body: Input<PasskeyAnswer>,
) -> Answer<EmailMessage> {
    let Body(PasskeyAnswer {
        challenge_id,
        credential,
    }) = body?;
    let email = request.passkey_sign_in(&challenge_id, &credential).await?;
    Ok(EmailMessage::new(email, "logged in"))
}

/// Starts registering a passkey: the creation options (the account's passkeys excluded).
#[utoipa::path(tag = "second factors", request_body = FactorChange, security(("session" = [])), responses(
    (status = 200, description = "the ceremony", body = CeremonyOptions),
    (status = 401, description = "current_password is missing (and the session was not made with a passkey in the last 5 minutes) or wrong"),
    (status = 404, description = "passkeys are off"),
))]
#[post("/account/passkeys/options", data = "<body>")]
async fn passkey_registration_options(
    request: ApiRequest<'_>,
    body: Input<FactorChange>,
) -> Answer<CeremonyOptions> {
    let account = request.enrolling_account().await?;
    let Body(body) = body?;
    let passkeys = request.auth.passkeys();
    let ceremony = passkeys
        .start_registration(&request.caller, &account, body.current_password.as_deref())
        .await?;
    Ok(Json(ceremony.into()))
}

/// Registers a passkey: the `PublicKeyCredential` answering the creation options, and its
/// name. Every other session ends; a notice is mailed.
#[utoipa::path(tag = "second factors", request_body = NewPasskey, security(("session" = [])), responses(
    (status = 201, description = "registered", body = Registered),
    (status = 400, description = "a field is missing, or the name is empty or too long"),
    (status = 401, description = "the credential did not verify, or the ceremony is unknown, used or expired"),
    (status = 409, description = "this passkey is registered already"),
))]
#[post("/account/passkeys", data = "<body>")]
async fn register_passkey(
    request: ApiRequest<'_>,
    body: Input<NewPasskey>,
) -> Result<rocket::response::status::Created<Json<Registered>>, crate::web::error::Problem> {
    let account = request.enrolling_account().await?;
    let Body(NewPasskey {
        challenge_id,
        credential,
        name,
    }) = body?;
    let passkeys = request.auth.passkeys();
    let added = passkeys
        .finish_registration(
            &request.caller,
            &account,
            &challenge_id,
            &credential.0,
            &name,
        )
        .await?;
    let registered = Registered {
        id: added.id.clone(),
        name: added.name,
    };
    let location = format!("/account/passkeys/{}", added.id);
    Ok(rocket::response::status::Created::new(location).body(Json(registered)))
}

/// Removes one of the account's passkeys; every other session ends. Refused for the last
/// second factor where `mfa_policy` requires one.
#[utoipa::path(tag = "second factors", params(("id" = String, Path, description = "The passkey's id, from GET /account/mfa")), request_body = FactorChange, security(("session" = [])), responses(
    (status = 200, description = "removed", body = Message),
    (status = 401, description = "current_password is missing (and the session was not made with a passkey in the last 5 minutes) or wrong"),
    (status = 404, description = "no such passkey of this account"),
    (status = 409, description = "the last second factor, which mfa_policy requires"),
))]
#[delete("/account/passkeys/<id>", data = "<body>")]
async fn remove_passkey(
    id: &str,
    request: ApiRequest<'_>,
    body: Input<FactorChange>,
) -> Answer<Message> {
    let account = request.account().await?;
    let Body(body) = body?;
    let passkeys = request.auth.passkeys();
    passkeys
        .remove(
            &request.caller,
            &account,
            id,
            body.current_password.as_deref(),
        )
        .await?;
    Ok(Message::new("passkey removed"))
}
