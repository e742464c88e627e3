//! CSRF protection of the HTML forms (synchronizer pattern): a random token per visitor, kept in
//! a private cookie (`cookies::Cookies::csrf_token`) and echoed in every form's hidden
//! `csrf_token` field. A cross-site page can make a browser send the cookie but cannot read it
//! to fill in the field, so its POST fails the comparison.

use rocket::data::{self, Data, FromData};
use rocket::http::Status;
use rocket::request::Request;

use super::cookies::Cookies;
use super::error::note;
use super::input::Fields;

/// Name of the hidden form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// The fields of a page's form, admitted only with this visitor's CSRF token. Anything else is
/// refused with 403 before the handler runs, so a forged POST changes nothing.
pub struct CheckedForm(pub Fields);

#[rocket::async_trait]
impl<'r> FromData<'r> for CheckedForm {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let fields = match Fields::from_data(req, data).await {
            data::Outcome::Success(fields) => fields,
            data::Outcome::Error((status, _)) => return data::Outcome::Error((status, ())),
            data::Outcome::Forward(forward) => return data::Outcome::Forward(forward),
        };
        let cookies = req.guard::<Cookies<'_>>().await.unwrap();
        if !cookies.csrf_matches(fields.text(FIELD).ok()) {
            note(
                req,
                "This form has expired or did not come from this site. \
                 Go back, reload the page and try again.",
            );
            return data::Outcome::Error((Status::Forbidden, ()));
        }
        data::Outcome::Success(CheckedForm(fields))
    }
}
