//! The paths that more than one place needs, in one place: the pages mailed links open (mail
//! gets them through `config::LinkPaths`, the link cookies are scoped to them, their forms post
//! to them). Rocket's route attributes must spell a path as a literal, so each route repeats
//! its path; a test checks that every path here is a mounted page.

use crate::config::LinkPaths;

/// The page a reset link opens.
pub const RESET: &str = "/password/reset";
/// The page a verification link opens.
pub const VERIFY: &str = "/email/verify";
/// The page an email-change link opens.
pub const EMAIL_CHANGE: &str = "/email/confirm";

/// The page that asks for a second factor (its step's cookie is scoped to it).
pub const SECOND_FACTOR: &str = "/login/second-factor";

/// The security page, where a session that must set up a second factor is sent.
pub const SECURITY: &str = "/account/security";

/// The link pages, as the mailer is given them.
pub const LINKS: LinkPaths = LinkPaths {
    reset: RESET,
    verify: VERIFY,
    email_change: EMAIL_CHANGE,
};

#[cfg(test)]
mod tests {
    use rocket::http::Method;

    #[test]
    fn every_link_path_is_a_page_that_shows_and_spends_the_link() {
        let routes = crate::web::pages::routes();
        for path in [
            super::RESET,
            super::VERIFY,
            super::EMAIL_CHANGE,
            super::SECOND_FACTOR,
        ] {
            for method in [Method::Get, Method::Post] {
                let mounted = routes
                    .iter()
                    .any(|r| r.method == method && r.uri.path() == path);
                assert!(mounted, "{method} {path}");
            }
        }
    }
}
