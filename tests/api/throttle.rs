//! Brute-force limits: failed logins per account and per address, signups, reset requests and
//! reset-token guesses per address, all stored in the database.

use std::net::SocketAddr;

use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::{Client, LocalResponse};

use crate::helpers::{TestApp, assert_message, form};

const THROTTLED: &str = "too many attempts: try again later";

/// The debug profile with every limit at 3 in a 900-second window.
fn app() -> TestApp {
    TestApp::with(|f| {
        f.merge(("throttle_login_per_account", 3))
            .merge(("throttle_login_per_address", 3))
            .merge(("throttle_signup_per_address", 3))
            .merge(("throttle_reset_per_address", 3))
    })
}

fn login_from<'c>(
    client: &'c Client,
    from: &str,
    email: &str,
    password: &str,
) -> LocalResponse<'c> {
    client
        .post("/sessions")
        .remote(from.parse::<SocketAddr>().unwrap())
        .header(ContentType::Form)
        .body(form(&[("email", email), ("password", password)]))
        .dispatch()
}

fn assert_throttled(response: LocalResponse<'_>) {
    let retry: i64 = response
        .headers()
        .get_one("Retry-After")
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_message(response, Status::TooManyRequests, THROTTLED);
}

#[test]
fn after_too_many_failures_an_account_is_throttled_even_with_the_right_password() {
    let app = app();
    app.register("ann@example.com", "right");
    for from in ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"] {
        let response = login_from(&app.client, from, "ann@example.com", "wrong");
        assert_eq!(response.status(), Status::Unauthorized);
    }
    assert_throttled(login_from(
        &app.client,
        "10.0.0.4:1",
        "ANN@example.com",
        "right",
    ));
    assert_eq!(app.db.session_count(), 0);
    let audit = app.db.audit_log();
    assert_eq!(
        audit.matches("event=\"login.failed\"").count(),
        3,
        "{audit}"
    );
    assert!(
        audit.contains("event=\"login.throttled\""),
        "the password was not checked"
    );
    assert!(!audit.contains("event=\"login\" "), "{audit}");
}

#[test]
fn after_too_many_failures_an_address_is_throttled_for_every_account() {
    let app = app();
    app.register("ann@example.com", "right");
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        login_from(&app.client, "10.0.0.1:1", email, "wrong");
    }
    assert_throttled(login_from(
        &app.client,
        "10.0.0.1:2",
        "ann@example.com",
        "right",
    ));
    let elsewhere = login_from(&app.client, "10.0.0.2:1", "ann@example.com", "right");
    assert_eq!(elsewhere.status(), Status::Ok);
}

#[test]
fn a_forged_x_real_ip_header_does_not_dodge_the_address_limit() {
    let app = app();
    for (n, email) in ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .enumerate()
    {
        app.client
            .post("/sessions")
            .remote("10.0.0.1:1".parse().unwrap())
            .header(Header::new("X-Real-IP", format!("192.0.2.{n}")))
            .header(ContentType::Form)
            .body(form(&[("email", email), ("password", "wrong")]))
            .dispatch();
    }
    assert_throttled(login_from(&app.client, "10.0.0.1:1", "d@example.com", "x"));
}

#[test]
fn a_successful_login_forgives_the_accounts_failures() {
    let app = app();
    app.register("ann@example.com", "right");
    for round in 0..2 {
        for _ in 0..2 {
            login_from(
                &app.client,
                &format!("10.0.{round}.1:1"),
                "ann@example.com",
                "wrong",
            );
        }
        let ok = login_from(
            &app.client,
            &format!("10.0.{round}.2:1"),
            "ann@example.com",
            "right",
        );
        assert_eq!(ok.status(), Status::Ok, "round {round}");
    }
}

#[test]
fn a_throttled_owner_can_still_reset_and_the_reset_forgives_the_failures() {
    let app = app();
    app.register("ann@example.com", "old");
    for n in 1..=3 {
        login_from(
            &app.client,
            &format!("10.0.0.{n}:1"),
            "ann@example.com",
            "wrong",
        );
    }
    assert_throttled(login_from(
        &app.client,
        "10.0.0.9:1",
        "ann@example.com",
        "old",
    ));

    let token = app.reset_token_for("ann@example.com");
    assert_eq!(
        app.update_password("ann@example.com", &token, "new")
            .status(),
        Status::Ok
    );
    let ok = login_from(&app.client, "10.0.0.9:1", "ann@example.com", "new");
    assert_eq!(ok.status(), Status::Ok);
}

#[test]
fn the_limits_survive_a_restart() {
    let app = app();
    app.register("ann@example.com", "right");
    for n in 1..=3 {
        login_from(
            &app.client,
            &format!("10.0.0.{n}:1"),
            "ann@example.com",
            "wrong",
        );
    }
    let restarted = Client::untracked(auth_service::build(app.db.figment.clone())).unwrap();
    assert_throttled(login_from(
        &restarted,
        "10.0.0.9:1",
        "ann@example.com",
        "right",
    ));
}

#[test]
fn signups_are_limited_per_address() {
    let app = app();
    for n in 1..=3 {
        let email = format!("user{n}@example.com");
        assert_eq!(app.register(&email, "pw").status(), Status::Ok);
    }
    assert_throttled(app.register("user4@example.com", "pw"));
    assert_eq!(app.db.user_count(), 3);
}

#[test]
fn reset_requests_are_limited_per_address() {
    let app = app();
    app.register("ann@example.com", "pw");
    for _ in 0..3 {
        assert_eq!(app.request_reset("ann@example.com").status(), Status::Ok);
    }
    assert_throttled(app.request_reset("ann@example.com"));
}

#[test]
fn reset_token_guessing_is_throttled() {
    let app = app();
    app.register("ann@example.com", "old");
    let token = app.reset_token_for("ann@example.com");
    for guess in ["guess-1", "guess-2", "guess-3"] {
        assert_message(
            app.update_password("ann@example.com", guess, "new"),
            Status::Forbidden,
            "invalid reset token",
        );
    }
    assert_throttled(app.update_password("ann@example.com", &token, "new"));
    assert_eq!(app.login("ann@example.com", "old").status(), Status::Ok);
}

#[test]
fn the_master_switch_turns_every_limit_off() {
    let app = TestApp::with(|f| {
        f.merge(("throttle_login_per_account", 1))
            .merge(("throttle_enabled", false))
    });
    app.register("ann@example.com", "right");
    for _ in 0..3 {
        assert_eq!(
            app.login("ann@example.com", "wrong").status(),
            Status::Unauthorized
        );
    }
    assert_eq!(app.login("ann@example.com", "right").status(), Status::Ok);
}

#[test]
fn a_throttled_browser_sees_the_login_page_with_the_reason() {
    let app = TestApp::browser_with(|f| f.merge(("throttle_login_per_account", 1)));
    app.sign_up("ann@example.com", "right");
    app.client.cookies().remove("session_id");
    app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "wrong")],
    );
    let response = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "right")],
    );
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response.headers().get_one("Retry-After").is_some());
    assert_eq!(response.content_type(), Some(ContentType::HTML));
    let page = response.into_string().unwrap();
    assert!(page.contains("role=\"alert\">too many attempts"), "{page}");
    assert!(page.contains("value=\"ann@example.com\""));
}
