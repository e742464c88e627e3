//! Session lifetimes, reset-token expiry, the periodic cleanup and the release profile's checks.

use auth_service::db::schema::{sessions, users};
use diesel::prelude::*;
use rocket::error::ErrorKind;
use rocket::http::Status;
use rocket::local::blocking::Client;

use crate::helpers::{TestApp, TestDb, assert_message};

fn now() -> i64 {
    auth_service::db::now()
}

fn app_with_session() -> (TestApp, String) {
    let app = TestApp::new();
    app.register("ann@example.com", "pw");
    let session = app.session_for("ann@example.com", "pw");
    (app, session)
}

/// Moves the (only) session's clock: it was created `created_ago` and last used `seen_ago`
/// seconds ago.
fn age_session(app: &TestApp, created_ago: i64, seen_ago: i64) {
    app.db.write(|c| {
        diesel::update(sessions::table)
            .set((
                sessions::created_at.eq(now() - created_ago),
                sessions::last_seen_at.eq(now() - seen_ago),
            ))
            .execute(c)
    });
}

fn last_seen(app: &TestApp) -> i64 {
    sessions::table
        .select(sessions::last_seen_at)
        .first(&mut app.db.conn())
        .unwrap()
}

#[test]
fn a_session_idle_longer_than_the_idle_timeout_is_absent() {
    let (app, session) = app_with_session();
    age_session(&app, 3000, 3599);
    assert_eq!(app.profile(Some(&session)).status(), Status::Ok);
    age_session(&app, 3700, 3601);
    assert_message(
        app.profile(Some(&session)),
        Status::Forbidden,
        "no live session",
    );
    assert_eq!(app.logout(Some(&session)).status(), Status::Forbidden);
}

#[test]
fn a_session_older_than_the_absolute_lifetime_is_absent_however_active() {
    let (app, session) = app_with_session();
    age_session(&app, 86_401, 0);
    assert_message(
        app.profile(Some(&session)),
        Status::Forbidden,
        "no live session",
    );
}

#[test]
fn an_expired_session_sends_a_browser_to_log_in() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    age_session(&app, 3700, 3601);
    let response = app.page("/profile");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(crate::helpers::location(&response), "/login");
}

#[test]
fn use_is_recorded_at_most_once_a_minute() {
    let (app, session) = app_with_session();
    age_session(&app, 100, 30);
    let before = last_seen(&app);
    app.profile(Some(&session));
    assert_eq!(last_seen(&app), before, "a recent session is only read");

    age_session(&app, 100, 61);
    app.profile(Some(&session));
    assert!(last_seen(&app) >= now() - 1, "an older one is touched");
}

#[test]
fn the_session_cookie_lasts_as_long_as_the_absolute_lifetime() {
    let app = TestApp::new();
    app.register("ann@example.com", "pw");
    let response = app.login("ann@example.com", "pw");
    let cookie = response.headers().get_one("Set-Cookie").unwrap();
    assert!(cookie.contains("Max-Age=86400"), "{cookie}");
}

#[test]
fn an_expired_reset_token_gets_the_same_answer_as_a_wrong_one() {
    let app = TestApp::new();
    app.register("ann@example.com", "old");
    let token = app.reset_token_for("ann@example.com");
    let expires: Option<i64> = users::table
        .select(users::reset_token_expires_at)
        .first(&mut app.db.conn())
        .unwrap();
    let expires = expires.unwrap();
    assert!((now() + 3599..=now() + 3600).contains(&expires), "an hour");

    app.db.write(|c| {
        diesel::update(users::table)
            .set(users::reset_token_expires_at.eq(now() - 1))
            .execute(c)
    });
    assert_message(
        app.update_password("ann@example.com", &token, "new"),
        Status::Forbidden,
        "invalid reset token",
    );
    assert_eq!(app.login("ann@example.com", "old").status(), Status::Ok);
}

#[test]
fn the_periodic_cleanup_purges_expired_sessions_and_reset_tokens() {
    let app = TestApp::with(|f| f.merge(("cleanup_interval_secs", 1)));
    app.register("ann@example.com", "pw");
    app.session_for("ann@example.com", "pw");
    app.reset_token_for("ann@example.com");
    age_session(&app, 3700, 3601);
    app.db.write(|c| {
        diesel::update(users::table)
            .set(users::reset_token_expires_at.eq(now() - 1))
            .execute(c)
    });

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let token_left = || -> Option<Vec<u8>> {
        users::table
            .select(users::reset_token)
            .first(&mut app.db.conn())
            .unwrap()
    };
    while (app.db.session_count() > 0 || token_left().is_some())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(app.db.session_count(), 0);
    assert_eq!(token_left(), None);
}

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
