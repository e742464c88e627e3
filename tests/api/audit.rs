//! The audit log of a whole journey: what is recorded and what never is.

use rocket::http::Status;

use crate::helpers::TestApp;

#[test]
fn a_journey_is_audited_with_ids_and_emails_but_no_secrets() {
    let app = TestApp::with(|f| {
        f.merge(("throttle_login_per_account", 2))
            .merge(("log_format", "text"))
    });
    let signup = app.register("Ann@Example.com", "first-secret-pw");
    let signup_id = signup.headers().get_one("X-Request-Id").unwrap().to_owned();
    app.login("ann@example.com", "wrong-secret-pw");
    let login = app.login("ann@example.com", "first-secret-pw");
    let login_id = login.headers().get_one("X-Request-Id").unwrap().to_owned();
    let session_id = login
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    assert_eq!(app.logout(Some(&session_id)).status(), Status::SeeOther);
    let token = app.reset_token_for("ann@example.com");
    app.update_password("ann@example.com", "not-the-token", "x");
    app.update_password("ann@example.com", &token, "second-secret-pw");
    app.login("ann@example.com", "bad-1");
    app.login("ann@example.com", "bad-2");
    app.login("ann@example.com", "second-secret-pw");

    let audit = app.db.audit_log();
    let events: Vec<&str> = audit
        .lines()
        .map(|line| {
            line.split("event=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        events,
        [
            "signup",
            "login.failed",
            "login",
            "logout",
            "reset.requested",
            "reset.invalid_token",
            "reset.completed",
            "login.failed",
            "login.failed",
            "login.throttled",
        ]
    );
    let line = |event: &str| {
        audit
            .lines()
            .find(|l| l.contains(&format!("event=\"{event}\"")))
            .unwrap()
    };
    assert!(line("signup").contains(&format!("request_id=\"{signup_id}\"")));
    assert!(line("login").contains(&format!("request_id=\"{login_id}\"")));
    assert!(line("login").contains("email=\"ann@example.com\""));
    assert!(line("login").contains("user_id=1"));
    assert!(line("logout").contains("user_id=1"));
    assert!(line("reset.completed").contains("user_id=1"));
    assert!(line("login.throttled").contains("retry_after="));

    for secret in [
        "first-secret-pw",
        "second-secret-pw",
        "wrong-secret-pw",
        "bad-1",
        session_id.as_str(),
        token.as_str(),
        "not-the-token",
        "token=",
    ] {
        assert!(
            !audit.contains(secret),
            "{secret:?} leaked into the audit log"
        );
    }
}

#[test]
fn audit_lines_can_be_json() {
    let app = TestApp::with(|f| f.merge(("log_format", "json")));
    app.register("ann@example.com", "pw");
    let audit = app.db.audit_log();
    let line: rocket::serde::json::Value =
        rocket::serde::json::from_str(audit.trim_start_matches("audit ").trim()).unwrap();
    assert_eq!(line["event"], "signup");
    assert_eq!(line["email"], "ann@example.com");
}

#[test]
fn the_audit_log_is_written_whatever_rockets_log_level() {
    let app = TestApp::with(|f| f.merge(("log_level", "off")));
    app.register("ann@example.com", "pw");
    assert!(app.db.audit_log().contains("event=\"signup\""));
}
