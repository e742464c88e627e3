//! CSRF protection of the HTML forms (synchronizer pattern): a random token per visitor, kept in
//! a private cookie (`cookies::Cookies::csrf_token`) and echoed in every form's hidden
//! `csrf_token` field. A cross-site page can make a browser send the cookie but cannot read it
//! to fill in the field, so its POST fails the comparison.

use rocket::data::{self, Data, FromData};
use rocket::http::Status;
use rocket::request::Request;

use super::cookies::Cookies;
use super::error::note;
use super::input::{Faults, Fields, FromFields};
use crate::auth::Auth;

/// Name of the hidden form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// A page's form, admitted only with this visitor's CSRF token: anything else is refused with
/// 403 before the handler runs, so a forged POST changes nothing. `body` is the form read as
/// `T`, or the faults to show on the form again; `fields` keeps what was typed, for that.
pub struct CheckedForm<T = ()> {
    pub fields: Fields,
    pub body: Result<T, Faults>,
}

#[rocket::async_trait]
impl<'r, T: FromFields> FromData<'r> for CheckedForm<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let fields = match Fields::read(req, data).await {
            Ok(fields) => fields,
            Err(problem) => return data::Outcome::Error((problem.status(), ())),
        };
        let cookies = req.guard::<Cookies<'_>>().await.unwrap();
        if !cookies.csrf_matches(fields.text(FIELD).ok()) {
            note(
                req,
                "This form has expired",
                "This form has expired or did not come from this site. \
                 Go back, reload the page and try again.",
            );
            return data::Outcome::Error((Status::Forbidden, ()));
        }
        let auth = req.rocket().state::<Auth>().expect("auth is managed");
        let body = T::from_fields(&fields, auth.policy());
        data::Outcome::Success(CheckedForm { fields, body })
    }
}
