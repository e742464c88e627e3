//! Refusal of cross-site API calls (spec 3.6). Browsers label their requests: a page on another
//! site that calls the API carries `Sec-Fetch-Site: cross-site` or a foreign `Origin`. Scripts,
//! curl and Python `requests` send neither header and are unaffected.
//!
//! In the release profile only `public_base_url` is this service's origin. The request's own
//! `Host` is not: under DNS rebinding, an attacker's page reaches the service under the
//! attacker's host name, and `Origin` and `Host` then agree.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};

use super::error::note;
use crate::config::Settings;

/// A request guard that passes unless a browser marks the request as cross-site.
pub struct SameOrigin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOrigin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let headers = req.headers();
        let cross_site = headers.get_one("Sec-Fetch-Site") == Some("cross-site");
        let foreign_origin = headers.get_one("Origin").is_some_and(|origin| {
            let settings = req
                .rocket()
                .state::<Settings>()
                .expect("settings are managed");
            let host = headers.get_one("Host").filter(|_| !settings.release);
            !is_own_origin(origin, host, settings.public_base_url.as_deref())
        });
        if cross_site || foreign_origin {
            note(req, "Request refused", "cross-site request refused");
            return Outcome::Error((Status::Forbidden, ()));
        }
        Outcome::Success(SameOrigin)
    }
}

/// Whether `origin` is this service: the request's own host (when given), or the configured
/// public URL.
fn is_own_origin(origin: &str, host: Option<&str>, public_base_url: Option<&str>) -> bool {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let same_host = authority
        .zip(host)
        .is_some_and(|(a, h)| a.eq_ignore_ascii_case(h));
    let public = public_base_url.is_some_and(|url| url.trim_end_matches('/') == origin);
    same_host || public
}

#[cfg(test)]
mod tests {
    use super::is_own_origin;

    #[test]
    fn the_requests_own_host_is_its_origin() {
        assert!(is_own_origin(
            "http://localhost:5000",
            Some("localhost:5000"),
            None
        ));
        assert!(is_own_origin(
            "https://Auth.Example.com",
            Some("auth.example.com"),
            None
        ));
    }

    #[test]
    fn the_public_base_url_is_an_origin() {
        let public = Some("https://auth.example.com/");
        assert!(is_own_origin(
            "https://auth.example.com",
            Some("10.0.0.5:8000"),
            public
        ));
    }

    #[test]
    fn other_origins_are_foreign() {
        let host = Some("localhost:5000");
        for origin in [
            "http://evil.com",
            "null",
            "http://localhost:5001",
            "localhost:5000",
        ] {
            assert!(
                !is_own_origin(origin, host, Some("http://localhost:5000/x")),
                "{origin}"
            );
        }
        assert!(!is_own_origin("http://localhost:5000", None, None));
    }
}
