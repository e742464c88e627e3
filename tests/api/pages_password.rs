//! Browser pages for a forgotten password: request the link, open it, set a new password.

use rocket::http::Status;

use crate::helpers::{TestApp, field_error, html, location};

const FORGOT_SENT: &str = "If an account exists for that email, we have sent a reset link to it.";

/// Signs up Ann, logs her out and asks for a reset link; returns the link shown (debug).
fn link_for_ann(app: &TestApp) -> String {
    app.sign_up("ann@example.com", "old");
    app.log_out();
    let page = html(app.submit("/password/forgot", &[("email", "ann@example.com")]));
    assert!(page.contains(FORGOT_SENT));
    let start = page.find("id=\"reset-link\" href=\"").unwrap() + 22;
    let end = page[start..].find('"').unwrap() + start;
    // Tera escapes `/` in attributes as `&#x2F;`; a browser reads it back as `/`.
    page[start..end].replace("&#x2F;", "/")
}

#[test]
fn the_forgot_page_answers_alike_for_unknown_emails_without_a_link() {
    let app = TestApp::browser();
    let page = html(app.submit("/password/forgot", &[("email", "nobody@example.com")]));
    assert!(page.contains(FORGOT_SENT));
    assert!(!page.contains("reset-link"));
}

#[test]
fn the_debug_link_is_built_from_the_public_base_url() {
    let app = TestApp::browser_with(|f| f.merge(("public_base_url", "https://auth.example.com/")));
    let link = link_for_ann(&app);
    assert!(
        link.starts_with("https://auth.example.com/password/reset?token="),
        "{link}"
    );
    assert_eq!(
        link.len(),
        "https://auth.example.com/password/reset?token=".len() + 43
    );
}

#[test]
fn without_exposed_tokens_the_page_shows_no_link() {
    let app = TestApp::browser_with(|f| f.merge(("expose_reset_token", false)));
    app.sign_up("ann@example.com", "old");
    let page = html(app.submit("/password/forgot", &[("email", "ann@example.com")]));
    assert!(page.contains(FORGOT_SENT));
    assert!(!page.contains("reset-link"));
    app.db.mail("Reset your password", 1); // the token is issued after the answer
    assert!(app.db.stored_reset_digest().is_some());
}

#[test]
fn a_malformed_email_rerenders_the_forgot_form() {
    let app = TestApp::browser();
    let response = app.submit("/password/forgot", &[("email", "not-an-email")]);
    assert_eq!(response.status(), Status::BadRequest);
    let page = html(response);
    assert_eq!(
        field_error(&page, "email"),
        "Enter an email address like name@example.com"
    );
    assert!(page.contains("value=\"not-an-email\""));
}

#[test]
fn opening_the_link_moves_the_token_out_of_the_url() {
    let app = TestApp::browser();
    let link = link_for_ann(&app);
    let path = link.trim_start_matches("http://localhost:5000");
    let response = app.page(path);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/password/reset");
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("no-referrer")
    );
    let cookie = response.headers().get_one("Set-Cookie").unwrap().to_owned();
    assert!(cookie.starts_with("reset_token="), "{cookie}");
    assert!(
        cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(cookie.contains("Path=/password/reset"), "{cookie}");
    let token = path.rsplit('=').next().unwrap();
    assert!(!cookie.contains(token), "the cookie is encrypted");

    let form = app.page("/password/reset");
    assert_eq!(form.status(), Status::Ok);
    assert_eq!(
        form.headers().get_one("Referrer-Policy"),
        Some("no-referrer")
    );
    let page = html(form);
    assert!(page.contains("value=\"ann@example.com\""));
    assert!(page.contains("autocomplete=\"new-password\""));
    assert!(
        app.db.stored_reset_digest().is_some(),
        "opening the page spends nothing"
    );
    assert_eq!(app.page("/password/reset").status(), Status::Ok);
}

#[test]
fn a_new_password_ends_every_session_and_sends_the_visitor_to_log_in() {
    let app = TestApp::browser();
    let link = link_for_ann(&app);
    let response = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "old")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    let live_session = app
        .client
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    app.page(link.trim_start_matches("http://localhost:5000"));
    let response = app.submit("/password/reset", &[("new_password", "brand new")]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login");
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("no-referrer")
    );
    assert_eq!(app.db.session_count(), 0);
    assert_eq!(app.db.stored_reset_digest(), None);

    let login = html(app.page("/login"));
    assert!(login.contains("Your password has been changed."));
    let stale = app
        .client
        .get("/profile")
        .cookie(rocket::http::Cookie::new("session_id", live_session))
        .dispatch();
    assert_eq!(stale.status(), Status::Forbidden);
    let response = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "brand new")],
    );
    assert_eq!(location(&response), "/profile");
}

#[test]
fn a_too_long_password_rerenders_the_reset_form_and_keeps_the_token() {
    let app = TestApp::browser();
    let link = link_for_ann(&app);
    app.page(link.trim_start_matches("http://localhost:5000"));
    let response = app.submit("/password/reset", &[("new_password", &"x".repeat(73))]);
    assert_eq!(response.status(), Status::BadRequest);
    let page = html(response);
    assert!(
        field_error(&page, "new_password").starts_with("Use a shorter password: at most 72 bytes")
    );
    assert!(app.db.stored_reset_digest().is_some());
}

#[test]
fn invalid_and_used_links_get_one_403_page() {
    let app = TestApp::browser();
    let link = link_for_ann(&app);
    let path = link.trim_start_matches("http://localhost:5000").to_owned();

    let bogus = TestApp::browser();
    bogus.page("/password/reset?token=not-a-token");
    let response = bogus.page("/password/reset");
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("no-referrer")
    );
    let invalid_page = html(response);
    assert!(invalid_page.contains("This link has expired or was already used"));

    let fresh = TestApp::browser();
    let no_cookie = fresh.page("/password/reset");
    assert_eq!(no_cookie.status(), Status::Forbidden);
    assert_eq!(html(no_cookie), invalid_page, "one identical answer");

    app.page(&path);
    app.submit("/password/reset", &[("new_password", "first")]);
    app.page(&path);
    let used = app.page("/password/reset");
    assert_eq!(used.status(), Status::Forbidden);
    assert_eq!(html(used), invalid_page, "one identical answer");
    let post = app.submit("/password/reset", &[("new_password", "second")]);
    assert_eq!(post.status(), Status::Forbidden);
}
