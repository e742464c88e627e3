//! The request bodies of the account flows, typed: the API's handlers take them as
//! [`Body`](super::input::Body), the pages' as [`CheckedForm`](super::csrf::CheckedForm), and
//! the OpenAPI document describes them from these very types. Each is read field by field in
//! the order declared ([`FromFields`]), so the first fault named is the first field's.

use rocket::http::Status;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::error::Problem;
use super::input::{Fields, FromFields};
use crate::auth::{Email, Password, PasswordPolicy};

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

/// The `current_password` an account action asks for: missing is 401, as a wrong one is.
fn current_password(fields: &Fields) -> Result<String, Problem> {
    match fields.text("current_password") {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(Problem::new(
            Status::Unauthorized,
            "current_password is required",
        )),
    }
}

/// Signing up: a new account's email and password (which must meet the policy).
#[derive(ToSchema)]
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
}

impl FromFields for NewAccount {
    fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Problem> {
        let email = fields.email("email")?;
        let password = fields.new_password("password", policy)?;
        Ok(NewAccount { email, password })
    }
}

/// Logging in.
#[derive(ToSchema)]
pub struct Credentials {
    pub email: Email,
    pub password: String,
}

impl FromFields for Credentials {
    fn from_fields(fields: &Fields, _: &PasswordPolicy) -> Result<Self, Problem> {
        let email = fields.email("email")?;
        let password = fields.text("password")?.to_owned();
        Ok(Credentials { email, password })
    }
}

/// Asking for a reset link.
#[derive(ToSchema)]
pub struct EmailInput {
    pub email: Email,
}

impl FromFields for EmailInput {
    fn from_fields(fields: &Fields, _: &PasswordPolicy) -> Result<Self, Problem> {
        let email = fields.email("email")?;
        Ok(EmailInput { email })
    }
}

/// Spending a reset token through the API: the account's email, the token and the new password.
#[derive(ToSchema)]
pub struct ResetInput {
    pub email: Email,
    pub reset_token: String,
    pub new_password: Password,
}

impl FromFields for ResetInput {
    fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Problem> {
        let email = fields.email("email")?;
        let reset_token = fields.text("reset_token")?.to_owned();
        let new_password = fields.new_password("new_password", policy)?;
        Ok(ResetInput {
            email,
            reset_token,
            new_password,
        })
    }
}

/// The reset page's form: the token is the one the browser holds for the link.
pub struct NewPassword {
    pub new_password: Password,
}

impl FromFields for NewPassword {
    fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Problem> {
        let new_password = fields.new_password("new_password", policy)?;
        Ok(NewPassword { new_password })
    }
}

/// Changing the password.
#[derive(ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: Password,
}

impl FromFields for PasswordChange {
    fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Problem> {
        let current_password = current_password(fields)?;
        let new_password = fields.new_password("new_password", policy)?;
        Ok(PasswordChange {
            current_password,
            new_password,
        })
    }
}

/// Moving the account to a new email.
#[derive(ToSchema)]
pub struct EmailChange {
    pub current_password: String,
    pub new_email: Email,
}

impl FromFields for EmailChange {
    fn from_fields(fields: &Fields, _: &PasswordPolicy) -> Result<Self, Problem> {
        let current_password = current_password(fields)?;
        let new_email = fields.email("new_email")?;
        Ok(EmailChange {
            current_password,
            new_email,
        })
    }
}

/// Deleting the account.
#[derive(ToSchema)]
pub struct CurrentPassword {
    pub current_password: String,
}

impl FromFields for CurrentPassword {
    fn from_fields(fields: &Fields, _: &PasswordPolicy) -> Result<Self, Problem> {
        let current_password = current_password(fields)?;
        Ok(CurrentPassword { current_password })
    }
}

/// Spending a mailed link's token through the API.
#[derive(ToSchema)]
pub struct TokenInput {
    /// The token of the mailed link.
    pub token: String,
}

impl FromFields for TokenInput {
    fn from_fields(fields: &Fields, _: &PasswordPolicy) -> Result<Self, Problem> {
        let token = fields.text("token")?.to_owned();
        Ok(TokenInput { token })
    }
}

/// The profile's button that logs out one device: the session's public id (field `id`).
pub struct SessionChoice(pub String);

impl FromFields for SessionChoice {
    fn from_fields(fields: &Fields, _: &PasswordPolicy) -> Result<Self, Problem> {
        Ok(SessionChoice(fields.text("id")?.to_owned()))
    }
}
