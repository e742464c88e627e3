//! Request bodies: the original's clients send form-encoded fields, newer ones a JSON object,
//! and the pages' forms are form-encoded. All become one map of fields ([`Fields`]), read into
//! a typed body ([`FromFields`], the types of `web::bodies`) field by field.

use std::collections::HashMap;

use rocket::Request;
use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::form::Form;
use rocket::http::{RawStr, Status};
use serde_json::Value;

use super::error::Problem;
use crate::auth::{Auth, Email, Password, PasswordPolicy};

/// A typed request body, read from its fields one after the other in the order the type
/// declares them, so a body with several faults is answered with the first field's, as the
/// original service did. `policy` judges the new passwords.
pub trait FromFields: Sized {
    fn from_fields(fields: &Fields, policy: &PasswordPolicy) -> Result<Self, Problem>;
}

/// A form with no fields but the CSRF token (a button).
impl FromFields for () {
    fn from_fields(_: &Fields, _: &PasswordPolicy) -> Result<(), Problem> {
        Ok(())
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
        match body.and_then(|fields| T::from_fields(&fields, auth.policy())) {
            Ok(body) => Outcome::Success(Body(body)),
            Err(problem) => Outcome::Error((problem.status(), problem)),
        }
    }
}

/// The fields of a request body, by name.
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, Field>);

#[derive(Debug)]
enum Field {
    Text(String),
    /// Present but unusable: a JSON number, or form text that is not UTF-8 once decoded.
    Malformed,
}

impl Fields {
    /// The non-empty text of field `name`, or a 400 naming it.
    pub fn text(&self, name: &str) -> Result<&str, Problem> {
        match self.0.get(name) {
            None => Err(Problem::bad_request(format!("{name} is required"))),
            Some(Field::Malformed) => Err(Problem::bad_request(format!(
                "{name} must be a string of UTF-8 text"
            ))),
            Some(Field::Text(text)) if text.is_empty() => {
                Err(Problem::bad_request(format!("{name} must not be empty")))
            }
            Some(Field::Text(text)) => Ok(text),
        }
    }

    /// What was typed in field `name` (empty if nothing usable), to show a refused form again.
    pub fn typed(&self, name: &str) -> &str {
        self.text(name).unwrap_or_default()
    }

    pub fn email(&self, name: &str) -> Result<Email, Problem> {
        Email::parse(self.text(name)?).map_err(|why| Problem::bad_request(format!("{name} {why}")))
    }

    /// A password that meets `policy`, for signup and reset.
    pub fn new_password(&self, name: &str, policy: &PasswordPolicy) -> Result<Password, Problem> {
        policy
            .new_password(self.text(name)?)
            .map_err(|why| Problem::bad_request(format!("{name} {why}")))
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
        for field in Form::values(body) {
            let value = RawStr::new(field.value)
                .url_decode()
                .map_or(Field::Malformed, |v| Field::Text(v.into_owned()));
            // Like Flask's `request.form.get`, the first occurrence of a name wins.
            let name = RawStr::new(field.name.source().as_str()).url_decode_lossy();
            fields.entry(name.into_owned()).or_insert(value);
        }
        Fields(fields)
    }

    fn from_json(body: &[u8]) -> Result<Fields, Problem> {
        let object: serde_json::Map<String, Value> = serde_json::from_slice(body)
            .map_err(|_| Problem::bad_request("request body must be a JSON object"))?;
        let fields = object
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::Null => None,
                Value::String(text) => Some((name, Field::Text(text))),
                _ => Some((name, Field::Malformed)),
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

    #[test]
    fn form_fields_are_percent_decoded_and_plus_is_a_space() {
        let fields = Fields::from_form("email=a%40b.com&password=p+w%26d");
        assert_eq!(fields.text("email").unwrap(), "a@b.com");
        assert_eq!(fields.text("password").unwrap(), "p w&d");
    }

    #[test]
    fn the_first_of_repeated_form_fields_wins() {
        let fields = Fields::from_form("email=first%40b.com&email=second%40b.com");
        assert_eq!(fields.text("email").unwrap(), "first@b.com");
    }

    /// The message of each field of `fields` named in `expected`, beside the one expected.
    fn messages<'e>(fields: &Fields, expected: &[(&'e str, &'e str)]) -> Vec<(&'e str, String)> {
        let named = expected
            .iter()
            .map(|(name, _)| (*name, message(fields.text(name))));
        named.collect()
    }

    fn owned<'e>(expected: &[(&'e str, &str)]) -> Vec<(&'e str, String)> {
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
