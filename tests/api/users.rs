use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::json;

use crate::helpers::{TestApp, TestDb, assert_message, json};

#[test]
fn a_form_encoded_signup_creates_the_user() {
    let app = TestApp::new();
    let response = app.register("bob@bob.com", "mySuperPwd");
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": "bob@bob.com", "message": "user created" })
    );
    assert_eq!(app.db.user_count(), 1);
    let hash = app.db.stored_password_hash("bob@bob.com");
    assert!(bcrypt::verify("mySuperPwd", &hash).unwrap());
}

#[test]
fn a_json_signup_creates_the_user() {
    let app = TestApp::new();
    let response = app
        .client
        .post("/users")
        .header(ContentType::JSON)
        .body(r#"{"email": "json@example.com", "password": "pw", "extra": [1, 2]}"#)
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": "json@example.com", "message": "user created" })
    );
}

#[test]
fn a_taken_email_is_400_and_keeps_the_first_account() {
    let app = TestApp::new();
    app.register("bob@bob.com", "first");
    assert_message(
        app.register("bob@bob.com", "second"),
        Status::BadRequest,
        "email already registered",
    );
    assert_eq!(app.db.user_count(), 1);
    assert!(bcrypt::verify("first", &app.db.stored_password_hash("bob@bob.com")).unwrap());
}

#[test]
fn emails_are_stored_normalized_so_case_variants_are_one_account() {
    let app = TestApp::new();
    let response = app.register("  Bob@Example.COM ", "pw");
    assert_eq!(json(response)["email"], "bob@example.com");
    assert_message(
        app.register("BOB@example.com", "pw"),
        Status::BadRequest,
        "email already registered",
    );
    assert_eq!(app.db.user_count(), 1);
}

#[test]
fn missing_empty_and_malformed_fields_are_400_naming_the_field() {
    let app = TestApp::new();
    for (body, message) in [
        ("password=pw", "email is required"),
        ("email=a%40b.com", "password is required"),
        ("email=&password=pw", "email must not be empty"),
        ("email=a%40b.com&password=", "password must not be empty"),
        (
            "email=not-an-email&password=pw",
            "email is not a valid email address",
        ),
        (
            "email=a%40b.com&password=%FF",
            "password must be a string of UTF-8 text",
        ),
    ] {
        let response = app
            .client
            .post("/users")
            .header(ContentType::Form)
            .body(body)
            .dispatch();
        assert_message(response, Status::BadRequest, message);
    }
    assert_eq!(app.db.user_count(), 0);
}

#[test]
fn json_fields_of_the_wrong_type_and_malformed_json_are_400() {
    let app = TestApp::new();
    let post = |body: &str| {
        app.client
            .post("/users")
            .header(ContentType::JSON)
            .body(body)
            .dispatch()
    };
    assert_message(
        post(r#"{"email": 42, "password": "pw"}"#),
        Status::BadRequest,
        "email must be a string of UTF-8 text",
    );
    assert_message(
        post(r#"{"email": "a@b.com""#),
        Status::BadRequest,
        "request body must be a JSON object",
    );
    assert_message(
        post(r#"["a@b.com", "pw"]"#),
        Status::BadRequest,
        "request body must be a JSON object",
    );
    assert_eq!(app.db.user_count(), 0);
}

#[test]
fn a_body_without_a_known_content_type_reads_as_an_empty_form() {
    let app = TestApp::new();
    let no_type = app.client.post("/users").body("email=a@b.com").dispatch();
    assert_message(no_type, Status::BadRequest, "email is required");
    let text = app
        .client
        .post("/users")
        .header(ContentType::Plain)
        .body("email=a@b.com&password=pw")
        .dispatch();
    assert_message(text, Status::BadRequest, "email is required");
}

#[test]
fn a_password_over_72_bytes_is_refused_not_truncated() {
    let app = TestApp::new();
    let response = app.register("long@b.com", &"x".repeat(73));
    assert_message(
        response,
        Status::BadRequest,
        "password must be at most 72 bytes (bcrypt ignores the rest)",
    );
    assert_eq!(app.db.user_count(), 0);

    let exactly = "y".repeat(72);
    assert_eq!(app.register("long@b.com", &exactly).status(), Status::Ok);
    assert_eq!(app.login("long@b.com", &exactly).status(), Status::Ok);
    assert_eq!(
        app.login("long@b.com", &exactly[..71]).status(),
        Status::Unauthorized
    );
}

#[test]
fn passwords_keep_spaces_and_symbols() {
    let app = TestApp::new();
    let password = " p@ss w+rd&= ";
    assert_eq!(app.register("sym@b.com", password).status(), Status::Ok);
    assert_eq!(app.login("sym@b.com", password).status(), Status::Ok);
    assert_eq!(
        app.login("sym@b.com", password.trim()).status(),
        Status::Unauthorized
    );
}

#[test]
fn an_oversized_body_is_413() {
    let app = TestApp::new();
    let huge = format!("email=a%40b.com&password={}", "a".repeat(64 * 1024));
    let response = app
        .client
        .post("/users")
        .header(ContentType::Form)
        .body(huge)
        .dispatch();
    assert_message(
        response,
        Status::PayloadTooLarge,
        "request body is too large",
    );
    assert_eq!(app.db.user_count(), 0);
}

#[rocket::async_test]
async fn concurrent_registrations_of_one_email_give_one_account() {
    let db = TestDb::new(|f| f);
    let client = Client::untracked(auth_service::build(db.figment.clone()))
        .await
        .unwrap();
    let register = || {
        client
            .post("/users")
            .header(ContentType::Form)
            .body("email=race%40b.com&password=pw")
            .dispatch()
    };
    let responses = rocket::tokio::join!(
        register(),
        register(),
        register(),
        register(),
        register(),
        register()
    );
    let statuses = [
        responses.0.status(),
        responses.1.status(),
        responses.2.status(),
        responses.3.status(),
        responses.4.status(),
        responses.5.status(),
    ];
    assert_eq!(statuses.iter().filter(|s| **s == Status::Ok).count(), 1);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == Status::BadRequest)
            .count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(db.user_count(), 1);
}

#[test]
fn a_signup_from_a_client_with_a_live_session_ends_that_session() {
    let app = TestApp::with_account("bob@bob.com", "pw");
    let bobs = app.session_for("bob@bob.com", "pw");
    let signup = app
        .client
        .post("/users")
        .header(ContentType::Form)
        .cookie(rocket::http::Cookie::new("session_id", bobs.clone()))
        .body("email=ann%40example.com&password=pw")
        .dispatch();
    assert_eq!(signup.status(), Status::Ok);
    let removal = crate::helpers::set_cookie(&signup, "session_id");
    assert!(removal.starts_with("session_id=;"), "{removal}");
    assert_eq!(app.profile(Some(&bobs)).status(), Status::Forbidden);
}

#[test]
fn emails_with_invisible_characters_are_refused() {
    let app = TestApp::new();
    assert_message(
        app.register("ann\u{200B}@example.com", "pw"),
        Status::BadRequest,
        "email must not contain control, invisible or unassigned characters",
    );
    assert_eq!(app.db.user_count(), 0);
}

#[test]
fn one_password_typed_two_ways_is_one_password() {
    let app = TestApp::new();
    assert_eq!(
        app.register("ann@example.com", "\u{FB01}sh and \u{FF43}hips")
            .status(),
        Status::Ok
    );
    assert_eq!(
        app.login("ann@example.com", "fish and chips").status(),
        Status::Ok
    );
    assert!(
        bcrypt::verify(
            "fish and chips",
            &app.db.stored_password_hash("ann@example.com")
        )
        .unwrap()
    );
}

#[test]
fn common_passwords_are_refused_when_the_check_is_on() {
    let app = TestApp::with(|f| f.merge(("password_check_common", true)));
    assert_message(
        app.register("ann@example.com", "QwertyUIOP"),
        Status::BadRequest,
        "password is one of the most common passwords: choose another",
    );
    assert_eq!(app.db.user_count(), 0);
    assert_eq!(
        app.register("ann@example.com", "violet tractor mango")
            .status(),
        Status::Ok
    );
}

#[test]
fn the_debug_profile_accepts_the_originals_short_test_password() {
    let app = TestApp::new();
    assert_eq!(
        app.register("guillaume@holberton.io", "b4l0u").status(),
        Status::Ok
    );
}
