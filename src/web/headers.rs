//! Security headers on every response (spec 3.7), set in one place so no handler can forget them.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Request, Response};

/// No inline script or style (scripts and styles only from this site's files), no framing,
/// forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub struct SecurityHeaders {
    /// Send `Strict-Transport-Security` (release profile; meaningful only behind TLS).
    pub hsts: bool,
}

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "Security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let path = req.uri().path();
        res.set_header(Header::new("Content-Security-Policy", CSP));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        if self.hsts {
            res.set_header(Header::new(
                "Strict-Transport-Security",
                "max-age=31536000; includeSubDomains",
            ));
        }
        // The pages of mailed links carry (or just carried) a token in their URL: never leak it
        // onward.
        // So do the OpenID Connect pages: their URLs carry an application's state, and the way
        // back carries its code.
        let tokens_in_url = ["/password/reset", "/email/", "/oauth/"];
        let referrer = match tokens_in_url.iter().any(|prefix| path.starts_with(prefix)) {
            true => "no-referrer",
            false => "same-origin",
        };
        res.set_header(Header::new("Referrer-Policy", referrer));
        // Pages and API answers show account data or forms; only static assets and the OpenID
        // Connect provider's public documents (which set their own lifetime) may be cached
        // (not an error page under their path: it shows the visitor's header).
        let asset = path.starts_with("/static/") || path == "/favicon.ico";
        let published = path == "/.well-known/openid-configuration" || path == "/oauth/jwks";
        if !((asset || published) && res.status().class().is_success()) {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}
