//! Browser pages for signing up, logging in, the profile and logging out.

use rocket::http::{Accept, ContentType, Status};
use rocket::serde::json::json;

use crate::helpers::{TestApp, alert, assert_form_page, field_error, html, json, location};

#[test]
fn root_and_profile_serve_html_to_browsers_and_json_to_everyone_else() {
    let app = TestApp::browser();
    let page = html(app.page("/"));
    assert!(page.contains("<h1>"), "{page}");
    assert!(page.contains("href=\"/signup\""));

    for accept in [Some(Accept::Any), Some(Accept::JSON), None] {
        let mut request = app.client.get("/");
        if let Some(accept) = accept {
            request = request.header(accept);
        }
        assert_eq!(json(request.dispatch()), json!({ "message": "Bienvenue" }));
    }
    let api_profile = app.client.get("/profile").header(Accept::Any).dispatch();
    assert_eq!(api_profile.status(), Status::Forbidden);
    assert_eq!(api_profile.content_type(), Some(ContentType::JSON));
}

#[test]
fn the_profile_page_without_a_session_redirects_to_login() {
    let app = TestApp::browser();
    let response = app.page("/profile");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login");
}

#[test]
fn form_pages_have_one_h1_labelled_inputs_and_password_manager_hints() {
    let app = TestApp::browser();
    for (path, inputs) in [
        (
            "/signup",
            &[
                ("email", "email", "username"),
                ("password", "password", "new-password"),
            ][..],
        ),
        (
            "/login",
            &[
                ("email", "email", "username"),
                ("password", "password", "current-password"),
            ],
        ),
        ("/password/forgot", &[("email", "email", "email")]),
    ] {
        assert_form_page(&html(app.page(path)), path, inputs);
    }
}

#[test]
fn signing_up_logs_in_and_shows_the_profile_with_a_welcome() {
    let app = TestApp::browser();
    let response = app.submit(
        "/signup",
        &[("email", "Ann@Example.com"), ("password", "pw")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/profile");
    assert!(response.cookies().get("session_id").is_some());
    assert_eq!(app.db.user_count(), 1);
    assert_eq!(app.db.session_count(), 1);

    let profile = html(app.page("/profile"));
    assert!(profile.contains("ann@example.com"));
    assert!(profile.contains("Welcome! Your account is ready."));
    assert!(profile.contains("role=\"status\""));
    let again = html(app.page("/profile"));
    assert!(!again.contains("Welcome!"), "the flash shows once");
}

#[test]
fn a_failed_signup_rerenders_the_form_with_the_error_and_the_email() {
    let app = TestApp::browser_with(|f| f.merge(("password_min_length", 8)));
    let response = app.submit(
        "/signup",
        &[("email", "ann@example.com"), ("password", "short")],
    );
    assert_eq!(response.status(), Status::BadRequest);
    let page = html(response);
    assert_eq!(field_error(&page, "password"), "Use at least 8 characters");
    assert!(page.contains("value=\"ann@example.com\""));
    assert!(!page.contains("value=\"short\""));
    assert_eq!(app.db.user_count(), 0);

    app.sign_up("taken@example.com", "longenough");
    app.log_out();
    let taken = app.submit(
        "/signup",
        &[("email", "taken@example.com"), ("password", "longenough")],
    );
    assert_eq!(taken.status(), Status::BadRequest);
    assert_eq!(
        field_error(&html(taken), "email"),
        "An account already uses this email"
    );
}

#[test]
fn a_failed_login_is_401_with_one_message_for_any_cause() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "right");
    app.log_out();
    for email in ["ann@example.com", "nobody@example.com"] {
        let response = app.submit("/login", &[("email", email), ("password", "wrong")]);
        assert_eq!(response.status(), Status::Unauthorized);
        let page = html(response);
        assert_eq!(alert(&page), "Wrong email or password");
        assert!(page.contains(&format!("value=\"{email}\"")));
        assert!(!page.contains("value=\"wrong\""));
    }
    assert_eq!(app.db.session_count(), 0, "failed logins start no session");
}

#[test]
fn logging_in_goes_to_the_profile() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "right");
    app.log_out();
    let response = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "right")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/profile");
    assert!(html(app.page("/profile")).contains("ann@example.com"));
}

#[test]
fn logged_in_visitors_skip_the_login_and_signup_pages() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    for path in ["/login", "/signup"] {
        let response = app.page(path);
        assert_eq!(response.status(), Status::SeeOther, "{path}");
        assert_eq!(location(&response), "/profile");
    }
}

#[test]
fn logging_in_as_someone_else_ends_the_browsers_session_first() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    let anns = app
        .client
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    app.register("bob@example.com", "pw");
    let response = app.submit(
        "/login",
        &[("email", "bob@example.com"), ("password", "pw")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(app.profile(Some(&anns)).status(), Status::Forbidden);
    assert_eq!(app.db.session_count(), 1);
}

#[test]
fn logging_out_ends_the_session_and_says_so_once() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    let response = app.submit("/logout", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/");
    assert_eq!(
        response.headers().get_one("Clear-Site-Data"),
        Some("\"cache\"")
    );
    assert_eq!(app.db.session_count(), 0);

    let home = html(app.page("/"));
    assert!(home.contains("You have been logged out."));
    assert!(!html(app.page("/")).contains("You have been logged out."));
    assert_eq!(app.page("/profile").status(), Status::SeeOther);
}

#[test]
fn user_supplied_text_is_escaped() {
    let app = TestApp::browser();
    let typed = "<script>alert(1)</script>@x.com";
    let page = html(app.submit("/signup", &[("email", typed), ("password", "pw")]));
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"));

    app.sign_up("o'hara&co@example.com", "pw");
    let profile = html(app.page("/profile"));
    assert!(
        profile.contains("o&#x27;hara&amp;co@example.com"),
        "{profile}"
    );
    assert!(!profile.contains("o'hara&co"));
}
