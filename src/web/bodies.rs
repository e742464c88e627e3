//! The request bodies of the account flows, typed: the API's handlers take them as
//! [`Body`](super::input::Body), the pages' as [`CheckedForm`](super::csrf::CheckedForm), and
//! the OpenAPI document describes them from these very types. Each is read field by field in
//! the order declared ([`FromFields`], written by [`bodies!`]): the API names the first
//! field's fault, pages show each.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::input::{FaultKind, Faults, Fields, FromFields};
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
}
