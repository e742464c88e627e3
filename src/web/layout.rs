//! What the layout of every page shows, error pages included: who is visiting (the header's
//! account and its log-out form) and where they are (the header's current link); and the
//! templates' own filter.

use std::collections::HashMap;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{Value, json};
use rocket_dyn_templates::tera;

use super::cookies::Cookies;
use super::session::CurrentUser;
use crate::auth::{Account, AuthError};

/// The visitor: the account if logged in, and the CSRF token of the header's log-out form.
/// Fails, as [`CurrentUser`] does, when the session could not be looked up.
pub struct Visitor {
    pub account: Option<Account>,
    csrf_token: String,
    /// The request's path, for the header's `aria-current` link.
    path: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Visitor {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let account = match req.guard::<CurrentUser>().await {
            Outcome::Success(CurrentUser(user)) => Some(user),
            Outcome::Error((Status::Forbidden, _)) | Outcome::Forward(_) => None,
            Outcome::Error(failed) => return Outcome::Error(failed),
        };
        let cookies = req.guard::<Cookies<'_>>().await.unwrap();
        Outcome::Success(Visitor {
            account,
            csrf_token: cookies.csrf_token(),
            path: req.uri().path().to_string(),
        })
    }
}

impl Visitor {
    /// The layout's keys of a page's template context: `user` (only its email), `csrf_token`
    /// and `current`, the path.
    pub fn context(&self) -> Value {
        let user = self.account.as_ref().map(|a| json!({ "email": a.email }));
        json!({ "user": user, "csrf_token": self.csrf_token, "current": self.path })
    }
}

/// The layout's keys for a visitor whose session could not be looked up: the header shows
/// neither an account nor "Log in", since either could be wrong.
pub fn unknown_visitor(req: &Request<'_>) -> Value {
    json!({ "user": null, "unknown": true, "current": req.uri().path().to_string() })
}

/// Tera's `breakable` filter: the text, HTML-escaped, with a line-break opportunity (`<wbr>`)
/// after each `@`, `.`, `-`, `_` and `+`, so that an email wraps between its parts rather than
/// mid-word. Its output is markup: `{{ email | breakable | safe }}`.
pub fn breakable(
    value: &tera::Value,
    _: &HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = tera::try_get_value!("breakable", "value", String, value);
    let mut marked = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        marked.push_str(&tera::escape_html(c.encode_utf8(&mut [0; 4])));
        if matches!(c, '@' | '.' | '-' | '_' | '+') {
            marked.push_str("<wbr>");
        }
    }
    Ok(tera::Value::String(marked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_may_break_only_after_their_separators_and_stay_escaped() {
        let shown = |text: &str| breakable(&text.into(), &HashMap::new()).unwrap();
        assert_eq!(
            shown("ann.lee+x@mail-host.example"),
            "ann.<wbr>lee+<wbr>x@<wbr>mail-<wbr>host.<wbr>example"
        );
        assert_eq!(shown("<b>&\"@"), "&lt;b&gt;&amp;&quot;@<wbr>");
    }
}
