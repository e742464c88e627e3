//! Request bodies of the JSON API: the original's clients send form-encoded fields, newer ones a
//! JSON object. Both become one map of fields, read and checked by name.

use std::collections::HashMap;

use rocket::Request;
use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::form::Form;
use rocket::http::{RawStr, Status};
use serde_json::Value;

use super::error::Problem;
use crate::auth::{Email, Password, PasswordPolicy};

/// The fields of a request body. A body with no or another content type reads as no fields, so
/// the handler answers 400 naming the first missing one rather than Rocket's 404 or 422.
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

    /// The `current_password` an account action asks for: missing is 401, as a wrong one is.
    pub fn current_password(&self) -> Result<&str, Problem> {
        self.text("current_password")
            .map_err(|_| Problem::new(Status::Unauthorized, "current_password is required"))
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

#[rocket::async_trait]
impl<'r> FromData<'r> for Fields {
    type Error = Problem;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let Some(kind) = req.content_type() else {
            return Outcome::Success(Fields::default());
        };
        let (json, limit_name) = match () {
            _ if kind.is_json() => (true, "json"),
            _ if kind.is_form() => (false, "form"),
            _ => return Outcome::Success(Fields::default()),
        };
        let limit = req.limits().get(limit_name).unwrap_or(32.kibibytes());
        let body = match data.open(limit).into_bytes().await {
            Ok(body) if body.is_complete() => body.into_inner(),
            Ok(_) => {
                let error = Problem::new(Status::PayloadTooLarge, "request body is too large");
                return Outcome::Error((Status::PayloadTooLarge, error));
            }
            Err(_) => {
                let error = Problem::bad_request("request body could not be read");
                return Outcome::Error((Status::BadRequest, error));
            }
        };
        let fields = if json {
            Fields::from_json(&body)
        } else {
            std::str::from_utf8(&body)
                .map(Fields::from_form)
                .map_err(|_| Problem::bad_request("request body must be UTF-8 text"))
        };
        match fields {
            Ok(fields) => Outcome::Success(fields),
            Err(error) => Outcome::Error((Status::BadRequest, error)),
        }
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

    #[test]
    fn missing_empty_and_malformed_fields_are_named() {
        let fields = Fields::from_form("email=&password=%FF");
        assert_eq!(message(fields.text("email")), "email must not be empty");
        assert_eq!(
            message(fields.text("password")),
            "password must be a string of UTF-8 text"
        );
        assert_eq!(message(fields.text("other")), "other is required");
    }

    #[test]
    fn json_strings_are_fields_and_other_values_are_malformed() {
        let fields =
            Fields::from_json(br#"{"email": "a@b.com", "password": 5, "x": null}"#).unwrap();
        assert_eq!(fields.text("email").unwrap(), "a@b.com");
        assert_eq!(
            message(fields.text("password")),
            "password must be a string of UTF-8 text"
        );
        assert_eq!(message(fields.text("x")), "x is required");
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
