//! What pages say when a form is refused, in the words of the form's labels: the API's field
//! names ("new_password must not be empty") never reach a page.

use std::borrow::Cow;

use crate::auth::{AuthError, EmailFault, PasswordFault, PasswordPolicy};
use crate::web::input::{Fault, FaultKind};

/// The message shown beside a field for its fault.
pub fn fault(fault: &Fault) -> Cow<'static, str> {
    match fault.kind {
        FaultKind::Missing
        | FaultKind::Empty
        | FaultKind::NoCurrentPassword
        | FaultKind::Email(EmailFault::Empty)
        | FaultKind::Password(PasswordFault::Empty) => match asked(fault.field) {
            Some(what) => format!("Enter {what}").into(),
            None => incomplete(),
        },
        FaultKind::Malformed => "This could not be read: type it again".into(),
        FaultKind::NoAnswer => "Enter the code".into(),
        FaultKind::NotObject => "The passkey's answer could not be read: try again".into(),
        FaultKind::TwoAnswers => incomplete(),
        FaultKind::Email(EmailFault::TooLong) => {
            "Enter an email address of at most 254 characters".into()
        }
        FaultKind::Email(EmailFault::Invisible | EmailFault::Invalid) => {
            "Enter an email address like name@example.com".into()
        }
        FaultKind::Password(PasswordFault::TooLong) => {
            "Use a shorter password: at most 72 bytes (a plain letter is 1 byte, an accented one 2)"
                .into()
        }
        FaultKind::Password(PasswordFault::TooShort(least)) => {
            format!("Use at least {least} characters").into()
        }
        FaultKind::Password(PasswordFault::Common) => {
            "This password is one of the most common ones: choose another".into()
        }
    }
}

/// What a field asks for, as its label would say it; `None` for fields the visitor does not
/// type (a button's hidden choice).
fn asked(field: &str) -> Option<&'static str> {
    Some(match field {
        "email" => "your email",
        "new_email" => "the new email",
        "password" => "a password",
        "new_password" => "a new password",
        "current_password" => "your current password",
        "code" => "the 6-digit code",
        "recovery_code" => "a recovery code",
        _ => return None,
    })
}

/// The message of a form whose hidden fields did not come through.
fn incomplete() -> Cow<'static, str> {
    "This form was incomplete: reload the page and try again".into()
}

/// The field a refusal of the auth layer is about, among `present` (the form's fields), and
/// what the page says of it; `None` where the API's message, capitalized, says it well.
pub fn refusal(
    error: &AuthError,
    present: impl Fn(&str) -> bool,
) -> (Option<&'static str>, Option<&'static str>) {
    let (fields, words): (&[&'static str], &'static str) = match error {
        AuthError::WrongPassword => (&["current_password"], "This is not your current password"),
        AuthError::CurrentPasswordRequired => {
            (&["current_password"], "Enter your current password")
        }
        AuthError::EmailTaken => (
            &["email", "new_email"],
            "An account already uses this email",
        ),
        AuthError::SameEmail => (&["new_email"], "This is already your account's email"),
        AuthError::InvalidCredentials => (&[], "Wrong email or password"),
        AuthError::WrongCode => (
            &["code", "recovery_code"],
            "This code is not right, or was used already",
        ),
        _ => return (None, None),
    };
    let field = fields.iter().copied().find(|name| present(name));
    (field, Some(words))
}

/// What the policy asks of a new password, for the hint under its field.
pub fn password_rule(policy: &PasswordPolicy) -> String {
    match (policy.min_length, policy.check_common) {
        (0 | 1, false) => {
            "Any password will do: this server runs with development settings.".into()
        }
        (0 | 1, true) => "Any password but the most common ones will do.".into(),
        (least, _) => format!("Use at least {least} characters."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worded(field: &'static str, kind: FaultKind) -> String {
        fault(&Fault { field, kind }).into_owned()
    }

    #[test]
    fn faults_are_worded_from_the_labels_without_field_names() {
        let cases = [
            ("new_password", FaultKind::Empty, "Enter a new password"),
            (
                "current_password",
                FaultKind::NoCurrentPassword,
                "Enter your current password",
            ),
            ("new_email", FaultKind::Missing, "Enter the new email"),
            (
                "new_email",
                FaultKind::Email(EmailFault::Invalid),
                "Enter an email address like name@example.com",
            ),
            (
                "password",
                FaultKind::Password(PasswordFault::TooShort(8)),
                "Use at least 8 characters",
            ),
            (
                "id",
                FaultKind::Missing,
                "This form was incomplete: reload the page and try again",
            ),
        ];
        for (field, kind, expected) in cases {
            let said = worded(field, kind);
            assert_eq!(said, expected);
            assert!(!said.contains('_'), "{said}");
        }
    }

    #[test]
    fn the_hint_says_what_the_policy_asks() {
        let rule = |min_length, check_common| {
            password_rule(&PasswordPolicy {
                min_length,
                check_common,
            })
        };
        assert!(rule(1, false).starts_with("Any password will do"));
        assert_eq!(
            rule(1, true),
            "Any password but the most common ones will do."
        );
        assert_eq!(rule(8, true), "Use at least 8 characters.");
    }

    #[test]
    fn a_refusal_is_tied_to_the_field_the_form_has() {
        let signup = |name: &str| name == "email";
        let email_change = |name: &str| name == "new_email";
        let taken = AuthError::EmailTaken;
        assert_eq!(refusal(&taken, signup).0, Some("email"));
        assert_eq!(refusal(&taken, email_change).0, Some("new_email"));
        let (field, said) = refusal(&AuthError::SameEmail, email_change);
        assert_eq!(field, Some("new_email"));
        assert!(!said.unwrap().contains('_'));
        assert_eq!(refusal(&AuthError::Busy, signup), (None, None));
    }
}
