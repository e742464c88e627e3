//! The release profile: what refuses a start, and what a started release serves differently.

use rocket::error::ErrorKind;
use rocket::http::Status;
use rocket::local::blocking::Client;

use crate::helpers::{TestDb, assert_message};

const SECRET_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";

fn release(configure: impl FnOnce(rocket::figment::Figment) -> rocket::figment::Figment) -> TestDb {
    TestDb::new(|f| configure(f.merge(("secret_key", SECRET_KEY)).select("release")))
}

/// Why the app refused to start, or `None` if it started.
fn start_failure(db: &TestDb) -> Option<String> {
    let error = Client::untracked(auth_service::build(db.figment.clone())).err()?;
    Some(match error.kind() {
        ErrorKind::FailedFairings(fairings) => format!("fairing {}", fairings[0].name),
        other => other.to_string(),
    })
}

#[test]
fn the_release_profile_refuses_to_start_without_a_public_base_url_or_with_a_cheap_cost() {
    let no_url = release(|f| f.merge(("bcrypt_cost", 10)));
    let cheap = release(|f| f.merge(("public_base_url", "https://auth.example.com")));
    for db in [no_url, cheap] {
        let failure = start_failure(&db).expect("the app refuses to start");
        assert_eq!(failure, "fairing Settings, database and auth");
    }

    let no_secret = TestDb::new(|f| {
        f.merge(("bcrypt_cost", 10))
            .merge(("public_base_url", "https://auth.example.com"))
            .select("release")
    });
    let failure = start_failure(&no_secret).expect("the app refuses to start");
    assert!(failure.contains("secret key"), "{failure}");

    let complete = release(|f| {
        f.merge(("bcrypt_cost", 10))
            .merge(("public_base_url", "https://auth.example.com"))
    });
    assert_eq!(start_failure(&complete), None);
}

#[test]
fn the_release_profile_sends_secure_cookies_hsts_and_no_reset_token() {
    let db = release(|f| {
        f.merge(("bcrypt_cost", 10))
            .merge(("public_base_url", "https://auth.example.com"))
    });
    let client = Client::untracked(auth_service::build(db.figment.clone())).unwrap();
    let form = |body: &str| {
        client
            .post("/users")
            .header(rocket::http::ContentType::Form)
            .body(body)
            .dispatch()
    };
    assert_message(
        form("email=ann%40example.com&password=short"),
        Status::BadRequest,
        "password must be at least 8 characters",
    );
    assert_eq!(
        form("email=ann%40example.com&password=long+enough+pw").status(),
        Status::Ok
    );
    let login = client
        .post("/sessions")
        .header(rocket::http::ContentType::Form)
        .body("email=ann%40example.com&password=long+enough+pw")
        .dispatch();
    let cookie = login.headers().get_one("Set-Cookie").unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    let hsts = login
        .headers()
        .get_one("Strict-Transport-Security")
        .unwrap();
    assert!(hsts.starts_with("max-age="), "{hsts}");

    let reset = client
        .post("/reset_password")
        .header(rocket::http::ContentType::Form)
        .body("email=ann%40example.com")
        .dispatch();
    assert_eq!(reset.status(), Status::Ok);
    let body = reset.into_string().unwrap();
    assert_eq!(
        body,
        r#"{"email":"ann@example.com","message":"reset link sent"}"#
    );
}
