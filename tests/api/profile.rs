use rocket::http::Status;
use rocket::serde::json::json;

use crate::helpers::{TestApp, assert_message, json};

#[test]
fn the_profile_of_a_live_session_is_its_email() {
    let app = TestApp::new();
    app.register("Ann@Example.com", "pw");
    let session = app.session_for("ann@example.com", "pw");
    let response = app.profile(Some(&session));
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": "ann@example.com", "email_verified": false })
    );
}

#[test]
fn the_profile_without_a_cookie_is_403() {
    let app = TestApp::new();
    assert_message(app.profile(None), Status::Forbidden, "no live session");
}

#[test]
fn the_profile_with_an_unknown_session_is_403() {
    let app = TestApp::new();
    app.register("ann@example.com", "pw");
    let session = app.session_for("ann@example.com", "pw");
    let last = if session.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &session[..42]);
    assert_message(
        app.profile(Some(&forged)),
        Status::Forbidden,
        "no live session",
    );
    assert_message(app.profile(Some("")), Status::Forbidden, "no live session");
}
