//! The request bodies of the account flows, typed: the API's handlers take them as
//! [`Body`](super::input::Body), the pages' as [`CheckedForm`](super::csrf::CheckedForm), and
//! the OpenAPI document describes them from these very types. Each is read field by field in
//! the order declared ([`FromFields`], written by [`bodies!`]): the API names the first
//! field's fault, pages show each.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::input::{FaultKind, Faults, Fields, FromFields};
use crate::auth::{Email, Password, PasswordPolicy, SecondFactor};

/// A string field in the document; `format` says more (an email).
fn string(format: Option<KnownFormat>) -> RefOr<Schema> {
    let format = format.map(SchemaFormat::KnownFormat);
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format)
        .build()
        .into()
}

/// An email field: parsed and checked as the auth layer's [`Email`].
impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        string(Some(KnownFormat::Email))
    }
}

impl ToSchema for Email {}

/// A new password: it must meet the password policy ([`Password`]).
impl PartialSchema for Password {
    fn schema() -> RefOr<Schema> {
        string(None)
    }
}

impl ToSchema for Password {}

/// Declares bodies and their [`FromFields`]: each field is read from the submitted field of the
/// same name by the reader after its `=`, in the order declared; every fault is kept.
macro_rules! bodies {
    ($($(#[$attr:meta])* pub struct $name:ident {
        $($(#[$field_attr:meta])* pub $field:ident: $type:ty = $read:ident,)*
    })*) => {$(
        $(#[$attr])*
        pub struct $name {
            $($(#[$field_attr])* pub $field: $type,)*
        }

        impl FromFields for $name {
            fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Faults> {
                let mut faults = Faults::default();
                $(let $field = faults.check(stringify!($field), $read(fields, stringify!($field), policy));)*
                match ($($field,)*) {
                    ($(Some($field),)*) => Ok($name { $($field),* }),
                    _ => Err(faults),
                }
            }
        }
    )*};
}

/// An email, parsed and checked.
fn email(fields: &Fields, name: &str, _: &PasswordPolicy) -> Result<Email, FaultKind> {
    Email::parse(fields.text(name)?).map_err(FaultKind::Email)
}

/// A new password, which must meet the policy.
fn new_password(
    fields: &Fields,
    name: &str,
    policy: &PasswordPolicy,
) -> Result<Password, FaultKind> {
    let text = fields.text(name)?;
    policy.new_password(text).map_err(FaultKind::Password)
}

/// Any non-empty text.
fn text(fields: &Fields, name: &str, _: &PasswordPolicy) -> Result<String, FaultKind> {
    Ok(fields.text(name)?.to_owned())
}

/// The `current_password` an account action asks for: missing is 401, as a wrong one is.
fn current_password(fields: &Fields, name: &str, _: &PasswordPolicy) -> Result<String, FaultKind> {
    match fields.text(name) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(FaultKind::NoCurrentPassword),
    }
}

/// The answer to a pending sign-in step: `code` (an authenticator app's) or `recovery_code`,
/// exactly one of them; read under `code`, whose fault names both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Code(String),
    RecoveryCode(String),
}

impl Answer {
    /// As the auth layer takes it.
    pub fn second_factor(&self) -> SecondFactor<'_> {
        match self {
            Answer::Code(code) => SecondFactor::Code(code),
            Answer::RecoveryCode(code) => SecondFactor::RecoveryCode(code),
        }
    }
}

/// `code` or `recovery_code`, whichever was sent (non-empty): one of them.
fn answer(fields: &Fields, _: &str, _: &PasswordPolicy) -> Result<Answer, FaultKind> {
    let read = |name| match fields.has(name) {
        true => fields.text(name).map(|text| Some(text.to_owned())),
        false => Ok(None),
    };
    match (read("code")?, read("recovery_code")?) {
        (Some(code), None) => Ok(Answer::Code(code)),
        (None, Some(code)) => Ok(Answer::RecoveryCode(code)),
        (None, None) => Err(FaultKind::NoAnswer),
        (Some(_), Some(_)) => Err(FaultKind::TwoAnswers),
    }
}

/// A passkey's `PublicKeyCredential`: a JSON object (nested in a JSON body, or as the text of
/// a form field).
fn credential(fields: &Fields, name: &str, _: &PasswordPolicy) -> Result<Credential, FaultKind> {
    fields.object(name).map(Credential)
}

/// A passkey's answer to a ceremony, as the browser's `PublicKeyCredential` JSON.
#[derive(Debug, Clone)]
pub struct Credential(pub serde_json::Value);

impl PartialSchema for Credential {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The PublicKeyCredential of navigator.credentials (its JSON form, with \
                 base64url fields): an object in a JSON body, its text in a form body.",
            ))
            .build()
            .into()
    }
}

impl ToSchema for Credential {}

/// In the OpenAPI document: the token, and the two answers of which one is sent.
impl PartialSchema for MfaAnswer {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property("mfa_token", string(None))
            .required("mfa_token")
            .property("code", string(None))
            .property("recovery_code", string(None))
            .description(Some(
                "The mfa_token of POST /sessions and one answer: code (the authenticator \
                 app's 6 digits) or recovery_code.",
            ))
            .build()
            .into()
    }
}

impl ToSchema for MfaAnswer {}

/// Text that may be left out (or empty): the current password of a factor change (a session
/// made with a passkey in the last 5 minutes needs none), OAuth's optional parameters.
fn optional(fields: &Fields, name: &str, _: &PasswordPolicy) -> Result<Option<String>, FaultKind> {
    match fields.text(name) {
        Ok(text) => Ok(Some(text.to_owned())),
        Err(FaultKind::Missing | FaultKind::Empty) => Ok(None),
        Err(other) => Err(other),
    }
}

bodies! {
    /// Signing up: a new account's email and password (which must meet the policy).
    #[derive(ToSchema)]
    pub struct NewAccount {
        pub email: Email = email,
        pub password: Password = new_password,
    }

    /// Logging in.
    #[derive(ToSchema)]
    pub struct Credentials {
        pub email: Email = email,
        pub password: String = text,
    }

    /// Asking for a reset link.
    #[derive(ToSchema)]
    pub struct EmailInput {
        pub email: Email = email,
    }

    /// Spending a reset token through the API: the account's email, the token and the new
    /// password.
    #[derive(ToSchema)]
    pub struct ResetInput {
        pub email: Email = email,
        pub reset_token: String = text,
        pub new_password: Password = new_password,
    }

    /// The reset page's form: the token is the one the browser holds for the link.
    pub struct NewPassword {
        pub new_password: Password = new_password,
    }

    /// Changing the password.
    #[derive(ToSchema)]
    pub struct PasswordChange {
        pub current_password: String = current_password,
        pub new_password: Password = new_password,
    }

    /// Moving the account to a new email.
    #[derive(ToSchema)]
    pub struct EmailChange {
        pub current_password: String = current_password,
        pub new_email: Email = email,
    }

    /// Deleting the account.
    #[derive(ToSchema)]
    pub struct CurrentPassword {
        pub current_password: String = current_password,
    }

    /// Spending a mailed link's token through the API.
    #[derive(ToSchema)]
    pub struct TokenInput {
        /// The token of the mailed link.
        pub token: String = text,
    }

    /// The profile's button that logs out one device: the session's public id.
    pub struct SessionChoice {
        pub id: String = text,
    }

    /// The second step of a sign-in: the `mfa_token` of the first, and one answer.
    pub struct MfaAnswer {
        pub mfa_token: String = text,
        pub code: Answer = answer,
    }

    /// A pending sign-in step's answer on the page (its token is the browser's cookie).
    pub struct PageAnswer {
        pub code: Answer = answer,
    }

    /// An authenticator app's code.
    #[derive(ToSchema)]
    pub struct TotpCode {
        /// The 6-digit code the app shows now.
        pub code: String = text,
    }

    /// A pending sign-in step's token, for its passkey options.
    #[derive(ToSchema)]
    pub struct MfaToken {
        pub mfa_token: String = text,
    }

    /// A passkey as the second factor of a pending sign-in step.
    #[derive(ToSchema)]
    pub struct MfaPasskey {
        pub mfa_token: String = text,
        pub credential: Credential = credential,
    }

    /// A passkey's answer to a ceremony (a sign-in without a password).
    #[derive(ToSchema)]
    pub struct PasskeyAnswer {
        /// The id the options came with.
        pub challenge_id: String = text,
        pub credential: Credential = credential,
    }

    /// A new passkey: the registration ceremony's answer, and its name.
    #[derive(ToSchema)]
    pub struct NewPasskey {
        pub challenge_id: String = text,
        pub credential: Credential = credential,
        /// What the owner calls it ("Laptop"), 1 to 64 characters.
        pub name: String = text,
    }

    /// The security page's start of a passkey: its name, and the current password.
    pub struct PasskeyStart {
        pub name: String = text,
        pub current_password: Option<String> = optional,
    }

    /// The removal of one passkey on the security page.
    pub struct PasskeyRemoval {
        pub id: String = text,
        pub current_password: Option<String> = optional,
    }

    /// A passkey's answer on a page whose step the browser holds (the second factor).
    pub struct PageCredential {
        pub credential: Credential = credential,
    }

    /// Confirming a change to the account's second factors.
    #[derive(ToSchema)]
    pub struct FactorChange {
        /// Needed unless this session was made with a passkey in the last 5 minutes.
        pub current_password: Option<String> = optional,
    }

    /// A token request (RFC 6749 4.1.3 and 6), form-encoded as OAuth clients send it. A client
    /// authenticates with HTTP Basic (`client_secret_basic`) or with `client_id` and
    /// `client_secret` here (`client_secret_post`); a public client sends only `client_id`.
    #[derive(ToSchema)]
    pub struct TokenForm {
        /// `authorization_code` or `refresh_token`.
        pub grant_type: String = text,
        pub code: Option<String> = optional,
        pub redirect_uri: Option<String> = optional,
        /// PKCE (RFC 7636): the verifier whose S256 challenge the authorization request sent.
        pub code_verifier: Option<String> = optional,
        pub refresh_token: Option<String> = optional,
        /// A refresh may narrow the scopes granted, never widen them.
        pub scope: Option<String> = optional,
        pub client_id: Option<String> = optional,
        pub client_secret: Option<String> = optional,
    }

    /// A userinfo request's access token in the body (RFC 6750 2.2), for clients that cannot
    /// send `Authorization: Bearer`; never both.
    #[derive(ToSchema)]
    pub struct BearerForm {
        pub access_token: Option<String> = optional,
    }

    /// A token to introspect (RFC 7662) or revoke (RFC 7009), and the client's credentials.
    #[derive(ToSchema)]
    pub struct TokenLookup {
        pub token: String = text,
        /// `access_token` or `refresh_token`: a hint only, every kind is looked up.
        pub token_type_hint: Option<String> = optional,
        pub client_id: Option<String> = optional,
        pub client_secret: Option<String> = optional,
    }
}
