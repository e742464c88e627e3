//! Session lifetimes, reset-token expiry and the periodic cleanup.

use auth_service::db::schema::{account_tokens, sessions};
use diesel::prelude::*;
use rocket::http::Status;

use crate::helpers::{TestApp, assert_message, set_cookie};

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
        .first(&mut **app.db.conn())
        .unwrap()
}

#[test]
fn a_session_idle_longer_than_the_idle_timeout_is_absent() {
    let (app, session) = app_with_session();
    age_session(&app, 3000, 3598); // live for two more seconds: the write waits out the session cache
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
    let cookie = set_cookie(&response, "session_id");
    assert!(cookie.contains("Max-Age=86400"), "{cookie}");
}

#[test]
fn an_expired_reset_token_gets_the_same_answer_as_a_wrong_one() {
    let app = TestApp::new();
    app.register("ann@example.com", "old");
    let token = app.reset_token_for("ann@example.com");
    let expires: i64 = account_tokens::table
        .filter(account_tokens::purpose.eq("reset"))
        .select(account_tokens::expires_at)
        .first(&mut **app.db.conn())
        .unwrap();
    assert!((now() + 3599..=now() + 3600).contains(&expires), "an hour");

    app.db.write(|c| {
        diesel::update(account_tokens::table.filter(account_tokens::purpose.eq("reset")))
            .set(account_tokens::expires_at.eq(now() - 1))
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
        diesel::update(account_tokens::table.filter(account_tokens::purpose.eq("reset")))
            .set(account_tokens::expires_at.eq(now() - 1))
            .execute(c)
    });

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let token_left = || -> Option<Vec<u8>> {
        account_tokens::table
            .filter(account_tokens::purpose.eq("reset"))
            .select(account_tokens::token_hash)
            .first(&mut **app.db.conn())
            .optional()
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
