//! Second factors on the pages: setting an authenticator app up from the security page (QR
//! code and key, confirmed with a code, recovery codes shown once), the login's second step,
//! removing the app, and `mfa_policy = "required"` sending an enrolling session to set one up.

use auth_service::auth::totp;
use auth_service::db::schema::sign_in_steps;
use diesel::prelude::*;
use rocket::http::Status;

use crate::helpers::{TestApp, assert_form_page, field_error, html, location, set_cookie};

const ANN: &str = "ann@example.com";

/// The code of `secret` (base32, as the page shows it, spaced) `offset` steps from now.
fn code(secret: &str, offset: i64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.replace(' ', "").as_bytes())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp::code(&key, totp::step_at(now) + offset)
}

/// The text of the element `<tag id="id">` in `page`.
fn text_of(page: &str, tag: &str, id: &str) -> String {
    let marker = format!("<{tag} id=\"{id}\">");
    let start = page.find(&marker).unwrap_or_else(|| panic!("{page}")) + marker.len();
    let end = start + page[start..].find(&format!("</{tag}>")).unwrap();
    page[start..end].to_owned()
}

/// Signs Ann up through the pages and sets up an authenticator app from the security page:
/// the key the page showed, and the recovery codes it listed.
fn enroll(app: &TestApp) -> (String, Vec<String>) {
    app.sign_up(ANN, "pw");
    let security = html(app.page("/account/security"));
    assert!(
        security.contains("Set up an authenticator app"),
        "{security}"
    );
    assert_form_page(
        &html(app.page("/account/security/totp")),
        "/account/security/totp",
        &[("current_password", "password", "current-password")],
    );
    let wrong = app.submit("/account/security/totp", &[("current_password", "nope")]);
    assert_eq!(wrong.status(), Status::Unauthorized);
    let page = html(wrong);
    assert_eq!(
        field_error(&page, "current_password"),
        "This is not your current password"
    );

    let setup = app.submit("/account/security/totp", &[("current_password", "pw")]);
    assert_eq!(setup.status(), Status::Ok);
    let page = html(setup);
    assert!(
        page.contains("<svg") && page.contains("</svg>"),
        "an inline QR code"
    );
    assert!(
        !page.contains("<img") && !page.contains("data:image"),
        "no image request"
    );
    let secret = text_of(&page, "code", "secret");
    assert_eq!(secret.replace(' ', "").len(), 32, "{secret}");
    assert!(page.contains("autocomplete=\"one-time-code\""), "{page}");

    let refused = app.submit("/account/security/totp/confirm", &[("code", "000000")]);
    assert_eq!(refused.status(), Status::Unauthorized);
    let page = html(refused);
    let words = "This code is not right, or was used already";
    assert_eq!(field_error(&page, "code"), words);
    assert!(
        !page.contains(&secret) && !page.contains("<svg"),
        "the key is never shown again"
    );

    let confirmed = app.submit(
        "/account/security/totp/confirm",
        &[("code", &code(&secret, 0))],
    );
    assert_eq!(confirmed.status(), Status::Ok);
    let page = html(confirmed);
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find("</code>").unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    let security = html(app.page("/account/security"));
    assert!(security.contains("10 left"), "{security}");
    (secret, codes)
}

#[test]
fn an_app_set_up_on_the_security_page_is_asked_for_at_the_next_login() {
    let app = TestApp::browser();
    let (secret, _) = enroll(&app);
    app.log_out();

    let login = app.submit("/login", &[("email", ANN), ("password", "pw")]);
    assert_eq!(login.status(), Status::SeeOther);
    assert_eq!(location(&login), "/login/second-factor");
    let held = set_cookie(&login, "sign_in_step");
    assert!(
        held.contains("Path=/login/second-factor") && held.contains("HttpOnly"),
        "{held}"
    );
    assert!(
        login.cookies().get("session_id").is_none(),
        "no session yet"
    );
    drop(login);
    assert_eq!(
        location(&app.page("/profile")),
        "/login",
        "not logged in yet"
    );

    let page = html(app.page("/login/second-factor"));
    assert!(page.contains("inputmode=\"numeric\""), "{page}");
    let wrong = app.submit("/login/second-factor", &[("code", "123456")]);
    assert_eq!(wrong.status(), Status::Unauthorized);
    let page = html(wrong);
    assert_eq!(
        field_error(&page, "code"),
        "This code is not right, or was used already"
    );
    assert!(page.contains("<title>Error: "), "{page}");

    let right = app.submit("/login/second-factor", &[("code", &code(&secret, 1))]);
    assert_eq!(right.status(), Status::SeeOther);
    assert_eq!(location(&right), "/profile");
    drop(right);
    assert_eq!(app.page("/profile").status(), Status::Ok);
    assert_eq!(
        location(&app.page("/login/second-factor")),
        "/login",
        "the step is spent"
    );
}

#[test]
fn a_recovery_code_signs_in_on_the_page_and_an_ended_step_goes_back_to_log_in() {
    let app = TestApp::browser();
    let (_, codes) = enroll(&app);
    app.log_out();
    app.submit("/login", &[("email", ANN), ("password", "pw")]);
    let used = app.submit("/login/second-factor", &[("recovery_code", &codes[2])]);
    assert_eq!(location(&used), "/profile");
    drop(used);
    assert!(html(app.page("/account/security")).contains("9 left"));

    app.log_out();
    app.submit("/login", &[("email", ANN), ("password", "pw")]);
    app.db.write(|c| {
        diesel::update(sign_in_steps::table)
            .set(sign_in_steps::expires_at.eq(0))
            .execute(c)
    });
    let late = app.submit("/login/second-factor", &[("recovery_code", &codes[3])]);
    assert_eq!(late.status(), Status::SeeOther);
    assert_eq!(location(&late), "/login");
    drop(late);
    let page = html(app.page("/login"));
    assert!(
        page.contains("role=\"status\">Your sign-in ended"),
        "{page}"
    );
}

#[test]
fn the_app_is_removed_with_the_password_and_new_codes_replace_the_old() {
    let app = TestApp::browser();
    let (_, first) = enroll(&app);
    let renewed = app.submit(
        "/account/security/recovery-codes",
        &[("current_password", "pw")],
    );
    assert_eq!(renewed.status(), Status::Ok);
    let page = html(renewed);
    assert!(!page.contains(&first[0]), "a new set");
    let removed = app.submit(
        "/account/security/totp/remove",
        &[("current_password", "pw")],
    );
    assert_eq!(location(&removed), "/account/security");
    drop(removed);
    let page = html(app.page("/account/security"));
    assert!(page.contains("The authenticator app was removed"), "{page}");
    app.log_out();
    let login = app.submit("/login", &[("email", ANN), ("password", "pw")]);
    assert_eq!(location(&login), "/profile", "a password alone again");
}

#[test]
fn under_the_required_policy_every_page_sends_an_enrolling_session_to_set_up() {
    let app = TestApp::browser_with(|f| f.merge(("mfa_policy", "required")));
    app.sign_up(ANN, "pw");
    assert_eq!(location(&app.page("/profile")), "/account/security");
    assert_eq!(
        location(&app.page("/account/password")),
        "/account/security"
    );
    let page = html(app.page("/account/security"));
    assert!(page.contains("requires a second factor"), "{page}");
    let refused = app.submit("/account/delete", &[("current_password", "pw")]);
    assert_eq!(location(&refused), "/account/security");
    drop(refused);
    assert_eq!(app.db.user_count(), 1, "nothing done");
    let setup = html(app.submit("/account/security/totp", &[("current_password", "pw")]));
    let secret = text_of(&setup, "code", "secret");
    let confirmed = app.submit(
        "/account/security/totp/confirm",
        &[("code", &code(&secret, 0))],
    );
    assert_eq!(confirmed.status(), Status::Ok);
    drop(confirmed);
    assert_eq!(app.page("/profile").status(), Status::Ok);
    let page = html(app.page("/account/security"));
    assert!(
        !page.contains("/account/security/totp/remove"),
        "the last factor stays"
    );
}
