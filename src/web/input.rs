//! Request bodies: the original's clients send form-encoded fields, newer ones a JSON object,
//! and the pages' forms are form-encoded. All become one map of fields ([`Fields`]), read into
//! a typed body ([`FromFields`], the types of `web::bodies`) field by field.

use std::collections::HashMap;
use std::fmt;

use rocket::Request;
use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::form::Form;
use rocket::http::{RawStr, Status};
use serde_json::Value;

use super::error::Problem;
use crate::auth::{Auth, EmailFault, PasswordFault, PasswordPolicy};

/// A typed request body, read from its fields in the order the type declares them. Every
/// field is read: the API answers the first fault, as the original service did, and pages show
/// each beside its field. `policy` judges the new passwords.
pub trait FromFields: Sized {
    fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Faults>;
}

/// A form with no fields but the CSRF token (a button).
impl FromFields for () {
    fn from_fields(_: &Fields, _: &PasswordPolicy) -> Result<(), Faults> {
        Ok(())
    }
}

/// What is wrong with one field's text. Its text completes a sentence that starts with the
/// field's name: the API's wording (pages have their own, `pages::wording`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Missing,
    Empty,
    /// A JSON value that is not a string, or form text that is not UTF-8 once decoded.
    Malformed,
    Email(EmailFault),
    Password(PasswordFault),
    /// The current password an account action asks for is missing: 401, as a wrong one is.
    NoCurrentPassword,
    /// Not a JSON object (a passkey's credential), nor the text of one.
    NotObject,
    /// Neither of a second factor's answers (`code`, `recovery_code`) was sent.
    NoAnswer,
    /// Both of them were.
    TwoAnswers,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Missing | FaultKind::NoCurrentPassword => f.write_str("is required"),
            FaultKind::Empty => f.write_str("must not be empty"),
            FaultKind::Malformed => f.write_str("must be a string of UTF-8 text"),
            FaultKind::Email(why) => why.fmt(f),
            FaultKind::Password(why) => why.fmt(f),
            FaultKind::NotObject => f.write_str("must be a JSON object"),
            FaultKind::NoAnswer => f.write_str("or recovery_code is required"),
            FaultKind::TwoAnswers => f.write_str("and recovery_code: send one of them"),
        }
    }
}

/// One field's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub field: &'static str,
    pub kind: FaultKind,
}

/// The faults of a body that does not read, in the order of its fields; never empty.
#[derive(Debug, Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    /// `read`'s value, or `None` with its fault noted against `field`.
    pub fn check<T>(&mut self, field: &'static str, read: Result<T, FaultKind>) -> Option<T> {
        read.map_err(|kind| self.0.push(Fault { field, kind })).ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Fault> {
        self.0.iter()
    }
}

/// The API's answer to a body that does not read: its first field's fault, by name.
impl From<Faults> for Problem {
    fn from(faults: Faults) -> Problem {
        let Some(Fault { field, kind }) = faults.0.first() else {
            return Problem::bad_request("request body could not be read");
        };
        let status = match kind {
            FaultKind::NoCurrentPassword => Status::Unauthorized,
            _ => Status::BadRequest,
        };
        Problem::new(status, format!("{field} {kind}"))
    }
}

/// The API's typed body. A body that does not read is the handler's to answer (the
/// `Result<Body<T>, Problem>` parameter), after the checks that come first (the session).
pub struct Body<T>(pub T);

#[rocket::async_trait]
impl<'r, T: FromFields> FromData<'r> for Body<T> {
    type Error = Problem;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let auth = req.rocket().state::<Auth>().expect("auth is managed");
        let body = Fields::read(req, data).await;
        let read = |fields| T::from_fields(&fields, auth.policy()).map_err(Problem::from);
        match body.and_then(read) {
            Ok(body) => Outcome::Success(Body(body)),
            Err(problem) => Outcome::Error((problem.status(), problem)),
        }
    }
}

/// The fields of a request body, by name, each with its position in the body: a form sends its
/// fields in the page's order (a JSON object's come alphabetically).
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, (usize, Field)>);

#[derive(Debug)]
enum Field {
    Text(String),
    /// A JSON object (a passkey's credential).
    Object(serde_json::Value),
    /// Present but unusable: a JSON number, or form text that is not UTF-8 once decoded.
    Malformed,
}

impl Fields {
    /// The non-empty text of field `name`.
    pub fn text(&self, name: &str) -> Result<&str, FaultKind> {
        match self.0.get(name).map(|(_, field)| field) {
            None => Err(FaultKind::Missing),
            Some(Field::Malformed | Field::Object(_)) => Err(FaultKind::Malformed),
            Some(Field::Text(text)) if text.is_empty() => Err(FaultKind::Empty),
            Some(Field::Text(text)) => Ok(text),
        }
    }

    /// The JSON object of field `name`: nested in a JSON body, or as the text of a form field.
    pub fn object(&self, name: &str) -> Result<serde_json::Value, FaultKind> {
        match self.0.get(name).map(|(_, field)| field) {
            Some(Field::Object(value)) => Ok(value.clone()),
            Some(Field::Text(text)) if text.is_empty() => Err(FaultKind::Empty),
            Some(Field::Text(text)) => match serde_json::from_str(text) {
                Ok(value @ serde_json::Value::Object(_)) => Ok(value),
                _ => Err(FaultKind::NotObject),
            },
            Some(Field::Malformed) => Err(FaultKind::NotObject),
            None => Err(FaultKind::Missing),
        }
    }

    /// Whether the body has a field `name` at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Where field `name` came in the body (after every field it has if it has none).
    pub fn position(&self, name: &str) -> usize {
        self.0.get(name).map_or(usize::MAX, |(at, _)| *at)
    }

    /// What was typed in field `name` (empty if nothing usable), to show a refused form again.
    pub fn typed(&self, name: &str) -> &str {
        self.text(name).unwrap_or_default()
    }

    /// The fields of the request's body. A body with no or another content type reads as no
    /// fields, so the handler answers 400 naming the first missing one rather than Rocket's 404
    /// or 422; a body too large is 413.
    pub async fn read(req: &Request<'_>, data: Data<'_>) -> Result<Fields, Problem> {
        let Some(kind) = req.content_type() else {
            return Ok(Fields::default());
        };
        let (json, limit_name) = match () {
            _ if kind.is_json() => (true, "json"),
            _ if kind.is_form() => (false, "form"),
            _ => return Ok(Fields::default()),
        };
        let limit = req.limits().get(limit_name).unwrap_or(32.kibibytes());
        let body = match data.open(limit).into_bytes().await {
            Ok(body) if body.is_complete() => body.into_inner(),
            Ok(_) => {
                return Err(Problem::new(
                    Status::PayloadTooLarge,
                    "request body is too large",
                ));
            }
            Err(_) => return Err(Problem::bad_request("request body could not be read")),
        };
        match json {
            true => Fields::from_json(&body),
            false => std::str::from_utf8(&body)
                .map(Fields::from_form)
                .map_err(|_| Problem::bad_request("request body must be UTF-8 text")),
        }
    }

    fn from_form(body: &str) -> Fields {
        let mut fields = HashMap::new();
        for (at, field) in Form::values(body).enumerate() {
            let value = RawStr::new(field.value)
                .url_decode()
                .map_or(Field::Malformed, |v| Field::Text(v.into_owned()));
            // Like Flask's `request.form.get`, the first occurrence of a name wins.
            let name = RawStr::new(field.name.source().as_str()).url_decode_lossy();
            fields.entry(name.into_owned()).or_insert((at, value));
        }
        Fields(fields)
    }

    fn from_json(body: &[u8]) -> Result<Fields, Problem> {
        let object: serde_json::Map<String, Value> = serde_json::from_slice(body)
            .map_err(|_| Problem::bad_request("request body must be a JSON object"))?;
        let fields = object
            .into_iter()
            .enumerate()
            .filter_map(|(at, (name, value))| match value {
                Value::Null => None,
                Value::String(text) => Some((name, (at, Field::Text(text)))),
                object @ Value::Object(_) => Some((name, (at, Field::Object(object)))),
                _ => Some((name, (at, Field::Malformed))),
            })
            .collect();
        Ok(Fields(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug, Problem>) -> String {
        result.unwrap_err().message().to_string()
    }

    /// The API's message for field `name`'s fault.
    fn fault(fields: &Fields, name: &'static str) -> String {
        let mut faults = Faults::default();
        faults.check(name, fields.text(name));
        Problem::from(faults).message().to_string()
    }

    #[test]
    fn form_fields_are_percent_decoded_and_plus_is_a_space() {
        let fields = Fields::from_form("email=a%40b.com&password=p+w%26d");
        assert_eq!(fields.text("email").unwrap(), "a@b.com");
        assert_eq!(fields.text("password").unwrap(), "p w&d");
    }

    #[test]
    fn form_fields_keep_the_order_they_came_in() {
        let fields = Fields::from_form("new_email=x&current_password=&csrf_token=t");
        let order = ["new_email", "current_password", "csrf_token", "absent"];
        let positions: Vec<_> = order.iter().map(|name| fields.position(name)).collect();
        assert_eq!(positions, [0, 1, 2, usize::MAX]);
    }

    #[test]
    fn the_first_of_repeated_form_fields_wins() {
        let fields = Fields::from_form("email=first%40b.com&email=second%40b.com");
        assert_eq!(fields.text("email").unwrap(), "first@b.com");
    }

    /// The message of each field of `fields` named in `expected`, beside the one expected.
    fn messages(fields: &Fields, expected: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let named = expected
            .iter()
            .map(|(name, _)| (*name, fault(fields, name)));
        named.collect()
    }

    fn owned(expected: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        expected
            .iter()
            .map(|(name, m)| (*name, m.to_string()))
            .collect()
    }

    #[test]
    fn missing_empty_and_malformed_fields_are_named() {
        let fields = Fields::from_form("email=&password=%FF");
        let expected = [
            ("email", "email must not be empty"),
            ("password", "password must be a string of UTF-8 text"),
            ("other", "other is required"),
        ];
        assert_eq!(messages(&fields, &expected), owned(&expected));
    }

    #[test]
    fn json_strings_are_fields_and_other_values_are_malformed() {
        let fields =
            Fields::from_json(br#"{"email": "a@b.com", "password": 5, "x": null}"#).unwrap();
        assert_eq!(fields.text("email").unwrap(), "a@b.com");
        let expected = [
            ("password", "password must be a string of UTF-8 text"),
            ("x", "x is required"),
        ];
        assert_eq!(messages(&fields, &expected), owned(&expected));
    }

    #[test]
    fn a_json_body_that_is_not_an_object_is_refused() {
        for body in [&b"[1]"[..], b"\"a\"", b"{", b"", b"\xff"] {
            assert_eq!(
                message(Fields::from_json(body)),
                "request body must be a JSON object"
            );
        }
    }
}
