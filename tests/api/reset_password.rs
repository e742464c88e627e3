use rocket::http::{ContentType, Status};
use rocket::serde::json::json;

use crate::helpers::{TestApp, assert_message, json};

fn app_with_bob() -> TestApp {
    TestApp::with_account("bob@bob.com", "oldPwd")
}

#[test]
fn a_reset_request_returns_a_token_in_the_debug_profile() {
    let app = app_with_bob();
    let response = app.request_reset("Bob@Bob.com");
    assert_eq!(response.status(), Status::Ok);
    let body = json(response);
    let token = body["reset_token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(
        body,
        json!({ "email": "bob@bob.com", "reset_token": token })
    );
    let digest = app.db.stored_reset_digest().unwrap();
    assert_ne!(digest, token.as_bytes(), "only the digest is stored");
}

#[test]
fn a_reset_request_for_an_unknown_email_is_403_in_the_debug_profile() {
    let app = app_with_bob();
    assert_message(
        app.request_reset("nobody@bob.com"),
        Status::Forbidden,
        "no account has that email",
    );
}

#[test]
fn without_exposed_tokens_every_valid_email_gets_the_same_answer() {
    let app = TestApp::with(|f| f.merge(("expose_reset_token", false)));
    app.register("bob@bob.com", "oldPwd");
    for email in ["bob@bob.com", "nobody@bob.com"] {
        let response = app.request_reset(email);
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(
            json(response),
            json!({ "email": email, "message": "reset link sent" })
        );
    }
    app.db.mail("Reset your password", 1); // the token is issued after the answer
    assert!(app.db.stored_reset_digest().is_some());
    assert_message(
        app.request_reset("not an email"),
        Status::BadRequest,
        "email is not a valid email address",
    );
}

#[test]
fn beyond_the_per_email_cap_the_debug_profile_says_so_and_sends_nothing() {
    let app = TestApp::with(|f| f.merge(("throttle_mail_per_account", 2)));
    app.register("bob@bob.com", "oldPwd");
    app.reset_token_for("bob@bob.com");
    let last = app.reset_token_for("bob@bob.com");
    let capped = app
        .client
        .post("/reset_password")
        .remote("192.0.2.50:1".parse().unwrap())
        .header(ContentType::Form)
        .body("email=bob%40bob.com")
        .dispatch();
    assert_eq!(capped.status(), Status::TooManyRequests);
    assert_eq!(app.db.mail("Reset your password", 2).len(), 2);
    let spent = app.update_password("bob@bob.com", &last, "newPwd");
    assert_eq!(spent.status(), Status::Ok, "the last link still works");
}

#[test]
fn a_reset_request_without_an_email_is_400() {
    let app = app_with_bob();
    assert_message(
        app.post_form("/reset_password", &[]),
        Status::BadRequest,
        "email is required",
    );
}

#[test]
fn a_valid_token_updates_the_password_and_ends_every_session() {
    let app = app_with_bob();
    let session = app.session_for("bob@bob.com", "oldPwd");
    let token = app.reset_token_for("bob@bob.com");

    let response = app.update_password("bob@bob.com", &token, "newPwd");
    assert_eq!(response.status(), Status::Ok);
    assert!(response.cookies().get("session_id").is_none(), "no login");
    assert_eq!(
        json(response),
        json!({ "email": "bob@bob.com", "message": "Password updated" })
    );
    assert_eq!(app.profile(Some(&session)).status(), Status::Forbidden);
    assert_eq!(app.db.session_count(), 0);
    assert_eq!(app.db.stored_reset_digest(), None);
    assert_eq!(
        app.login("bob@bob.com", "oldPwd").status(),
        Status::Unauthorized
    );
    assert_eq!(app.login("bob@bob.com", "newPwd").status(), Status::Ok);
}

#[test]
fn a_json_password_update_works_too() {
    let app = app_with_bob();
    let token = app.reset_token_for("bob@bob.com");
    let body = json!({ "email": "bob@bob.com", "reset_token": token, "new_password": "n" });
    let response = app
        .client
        .put("/reset_password")
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(app.login("bob@bob.com", "n").status(), Status::Ok);
}

#[test]
fn a_token_works_only_once() {
    let app = app_with_bob();
    let token = app.reset_token_for("bob@bob.com");
    assert_eq!(
        app.update_password("bob@bob.com", &token, "first").status(),
        Status::Ok
    );
    assert_message(
        app.update_password("bob@bob.com", &token, "second"),
        Status::Forbidden,
        "invalid reset token",
    );
    assert_eq!(app.login("bob@bob.com", "first").status(), Status::Ok);
}

#[test]
fn a_wrong_token_or_another_accounts_email_is_403_and_changes_nothing() {
    let app = app_with_bob();
    app.register("eve@eve.com", "evePwd");
    let token = app.reset_token_for("bob@bob.com");
    let before = app.db.stored_password_hash("bob@bob.com");
    for (email, reset_token) in [
        ("bob@bob.com", "not-the-token"),
        ("eve@eve.com", token.as_str()),
        ("nobody@bob.com", token.as_str()),
    ] {
        assert_message(
            app.update_password(email, reset_token, "hijacked"),
            Status::Forbidden,
            "invalid reset token",
        );
    }
    assert_eq!(app.db.stored_password_hash("bob@bob.com"), before);
    assert_eq!(app.login("eve@eve.com", "evePwd").status(), Status::Ok);
    assert_eq!(
        app.update_password("bob@bob.com", &token, "newPwd")
            .status(),
        Status::Ok
    );
}

#[test]
fn missing_fields_are_400_naming_the_field_and_keep_the_token() {
    let app = app_with_bob();
    let token = app.reset_token_for("bob@bob.com");
    let put = |fields: &[(&str, &str)]| {
        app.client
            .put("/reset_password")
            .header(ContentType::Form)
            .body(crate::helpers::form(fields))
            .dispatch()
    };
    assert_message(
        put(&[("reset_token", &token), ("new_password", "n")]),
        Status::BadRequest,
        "email is required",
    );
    assert_message(
        put(&[("email", "bob@bob.com"), ("new_password", "n")]),
        Status::BadRequest,
        "reset_token is required",
    );
    assert_message(
        put(&[("email", "bob@bob.com"), ("reset_token", &token)]),
        Status::BadRequest,
        "new_password is required",
    );
    assert_message(
        app.update_password("bob@bob.com", &token, &"n".repeat(73)),
        Status::BadRequest,
        "new_password must be at most 72 bytes (bcrypt ignores the rest)",
    );
    assert!(
        app.db.stored_reset_digest().is_some(),
        "the token is not spent"
    );
    assert_eq!(
        app.update_password("bob@bob.com", &token, "fine").status(),
        Status::Ok
    );
}

#[test]
fn the_release_password_minimum_applies_to_resets() {
    let app = TestApp::with(|f| f.merge(("password_min_length", 8)));
    app.register("bob@bob.com", "longEnough");
    let token = app.reset_token_for("bob@bob.com");
    assert_message(
        app.update_password("bob@bob.com", &token, "short"),
        Status::BadRequest,
        "new_password must be at least 8 characters",
    );
    assert_message(
        app.register("ann@bob.com", "short"),
        Status::BadRequest,
        "password must be at least 8 characters",
    );
}
