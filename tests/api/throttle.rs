//! Brute-force limits: failed logins per account and per address, signups, reset requests and
//! reset-token guesses per address, all stored in the database.

use std::net::SocketAddr;

use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::Client as AsyncClient;
use rocket::local::blocking::{Client, LocalResponse};

use crate::helpers::{TestApp, TestDb, alert, assert_message, form, set_cookie};

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
    app.log_out();
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
    assert!(alert(&page).starts_with("Too many attempts"), "{page}");
    assert!(page.contains("value=\"ann@example.com\""));
}

/// The statuses and `Retry-After` headers of `count` logins sent at once from one async client
/// of `db`'s app: the `n`th for `email(n)`, from `from(n)`, with `password`.
async fn login_burst(
    db: &TestDb,
    count: usize,
    email: impl Fn(usize) -> String,
    from: impl Fn(usize) -> String,
    password: &str,
) -> Vec<(Status, Option<String>)> {
    let client = AsyncClient::untracked(auth_service::build(db.figment.clone()))
        .await
        .unwrap();
    let logins = (0..count).map(|n| {
        let request = client
            .post("/sessions")
            .remote(from(n).parse::<SocketAddr>().unwrap())
            .header(ContentType::Form)
            .body(form(&[("email", &email(n)), ("password", password)]));
        async move {
            let response = request.dispatch().await;
            let retry = response.headers().get_one("Retry-After").map(str::to_owned);
            (response.status(), retry)
        }
    });
    futures::future::join_all(logins).await
}

fn count(answers: &[(Status, Option<String>)], status: Status) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

#[rocket::async_test]
async fn a_burst_of_wrong_logins_for_one_account_gets_at_most_the_limit_checked() {
    let db = TestDb::new(|f| {
        f.merge(("throttle_login_per_account", 3))
            .merge(("throttle_login_per_address", 1000))
    });
    let ann = |_| "ann@example.com".to_owned();
    let statuses = login_burst(&db, 40, ann, |n| format!("10.0.{n}.1:1"), "wrong").await;
    assert_eq!(count(&statuses, Status::Unauthorized), 3, "{statuses:?}");
    assert_eq!(
        count(&statuses, Status::TooManyRequests),
        37,
        "{statuses:?}"
    );
    assert_eq!(db.attempts("login_account"), 3);
}

#[rocket::async_test]
async fn a_burst_of_wrong_logins_from_one_address_gets_at_most_the_limit_checked() {
    let db = TestDb::new(|f| {
        f.merge(("throttle_login_per_account", 1000))
            .merge(("throttle_login_per_address", 4))
    });
    let anyone = |n| format!("user{n}@example.com");
    let statuses = login_burst(&db, 30, anyone, |_| "10.9.9.9:1".into(), "wrong").await;
    assert_eq!(count(&statuses, Status::Unauthorized), 4, "{statuses:?}");
    assert_eq!(
        count(&statuses, Status::TooManyRequests),
        26,
        "{statuses:?}"
    );
}

#[rocket::async_test]
async fn a_full_hash_queue_answers_503_before_any_hash_and_counts_no_failure() {
    let db = TestDb::new(|f| {
        f.merge(("bcrypt_cost", 12))
            .merge(("bcrypt_concurrency", 1))
            .merge(("bcrypt_queue", 1))
    });
    let ann = |_| "ann@example.com".to_owned();
    let statuses = login_burst(&db, 5, ann, |n| format!("10.0.{n}.1:1"), "wrong").await;
    assert_eq!(
        count(&statuses, Status::Unauthorized),
        2,
        "one hashing, one waiting"
    );
    assert_eq!(
        count(&statuses, Status::ServiceUnavailable),
        3,
        "{statuses:?}"
    );
    for (status, retry) in &statuses {
        if *status == Status::ServiceUnavailable {
            assert_eq!(
                retry.as_deref(),
                Some("5"),
                "a full queue drains in about 5 s"
            );
        }
    }
    assert_eq!(
        db.attempts("login_account"),
        2,
        "the refused ones count for nothing"
    );
}

/// A login for Ann from `from`, sending `device` (the decrypted device cookie) if given.
fn login_with_device<'c>(
    client: &'c Client,
    from: &str,
    device: Option<&Cookie<'static>>,
    password: &str,
) -> LocalResponse<'c> {
    let mut request = client
        .post("/sessions")
        .remote(from.parse::<SocketAddr>().unwrap())
        .header(ContentType::Form)
        .body(form(&[
            ("email", "ann@example.com"),
            ("password", password),
        ]));
    if let Some(device) = device {
        request = request.private_cookie(device.clone());
    }
    request.dispatch()
}

#[test]
fn failures_from_other_clients_do_not_lock_out_a_trusted_device_which_has_its_own_budget() {
    let app = app();
    app.register("ann@example.com", "right");
    let first = login_with_device(&app.client, "10.0.0.1:1", None, "right");
    assert_eq!(first.status(), Status::Ok);
    let device = first
        .cookies()
        .get_private("device")
        .expect("a device cookie");
    let set_device = set_cookie(&first, "device");
    assert!(
        set_device.contains("HttpOnly") && set_device.contains("Max-Age="),
        "{set_device}"
    );

    for n in 2..=4 {
        let from = format!("10.0.0.{n}:1");
        let guess = login_with_device(&app.client, &from, None, "guess");
        assert_eq!(guess.status(), Status::Unauthorized);
    }
    let untrusted = login_with_device(&app.client, "10.0.0.5:1", None, "right");
    assert_throttled(untrusted);
    let trusted = login_with_device(&app.client, "10.0.0.6:1", Some(&device), "right");
    assert_eq!(trusted.status(), Status::Ok, "the owner's device gets in");

    for _ in 0..3 {
        let typo = login_with_device(&app.client, "10.0.0.7:1", Some(&device), "typo");
        assert_eq!(typo.status(), Status::Unauthorized);
    }
    let spent = login_with_device(&app.client, "10.0.0.8:1", Some(&device), "right");
    assert_throttled(spent);
}

#[test]
fn a_device_cookie_of_another_account_or_forged_is_no_trusted_device() {
    let app = app();
    app.register("ann@example.com", "right");
    app.register("bob@example.com", "bobs");
    let bob = app.post_form(
        "/sessions",
        &[("email", "bob@example.com"), ("password", "bobs")],
    );
    let bobs_device = bob.cookies().get_private("device").unwrap();
    for n in 1..=3 {
        login_with_device(&app.client, &format!("10.0.1.{n}:1"), None, "guess");
    }
    let with_bobs = login_with_device(&app.client, "10.0.1.9:1", Some(&bobs_device), "right");
    assert_throttled(with_bobs);
    let forged = Cookie::new("device", "not-a-device-token");
    let with_forged = login_with_device(&app.client, "10.0.1.9:1", Some(&forged), "right");
    assert_throttled(with_forged);
}

#[test]
fn a_browser_that_logged_in_before_is_not_locked_out_by_guesses_elsewhere() {
    let app = TestApp::browser_with(|f| f.merge(("throttle_login_per_account", 2)));
    app.sign_up("ann@example.com", "right");
    assert_eq!(app.submit("/logout", &[]).status(), Status::SeeOther);
    let attacker = Client::untracked(auth_service::build(app.db.figment.clone())).unwrap();
    for n in 1..=2 {
        login_from(
            &attacker,
            &format!("10.0.2.{n}:1"),
            "ann@example.com",
            "guess",
        );
    }
    assert_throttled(login_from(
        &attacker,
        "10.0.2.9:1",
        "ann@example.com",
        "right",
    ));
    let owner = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "right")],
    );
    assert_eq!(
        owner.status(),
        Status::SeeOther,
        "the signup made this browser trusted"
    );
}

#[test]
fn a_forwarded_address_is_believed_from_a_trusted_proxy_only() {
    let app = TestApp::with(|f| {
        f.merge(("throttle_login_per_address", 2))
            .merge(("throttle_login_per_account", 100))
            .merge(("trusted_proxies", ["10.0.0.1"]))
    });
    let via = |peer: &str, forwarded: &str, email: &str| {
        app.client
            .post("/sessions")
            .remote(peer.parse::<SocketAddr>().unwrap())
            .header(Header::new("X-Forwarded-For", forwarded.to_owned()))
            .header(ContentType::Form)
            .body(form(&[("email", email), ("password", "wrong")]))
            .dispatch()
            .status()
    };
    // Behind the proxy, each client has its own budget.
    for n in 0..2 {
        assert_eq!(
            via("10.0.0.1:1", "192.0.2.1", &format!("a{n}@example.com")),
            Status::Unauthorized
        );
    }
    assert_eq!(
        via("10.0.0.1:1", "192.0.2.1", "a9@example.com"),
        Status::TooManyRequests
    );
    assert_eq!(
        via("10.0.0.1:1", "192.0.2.2", "b@example.com"),
        Status::Unauthorized
    );
    // A forged leftmost hop does not make another client.
    let forged = via("10.0.0.1:1", "198.51.100.7, 192.0.2.1", "c@example.com");
    assert_eq!(forged, Status::TooManyRequests);
    // From an untrusted peer the header means nothing: the peer is the client.
    for n in 0..2 {
        let status = via(
            "10.0.0.5:1",
            &format!("192.0.2.{}", 10 + n),
            "d@example.com",
        );
        assert_eq!(status, Status::Unauthorized);
    }
    assert_eq!(
        via("10.0.0.5:1", "192.0.2.99", "e@example.com"),
        Status::TooManyRequests
    );
}

#[test]
fn ipv6_clients_are_limited_by_their_64_prefix() {
    let app = app();
    for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
        let from = format!("[{host}]:1");
        login_from(
            &app.client,
            &from,
            &format!("{}@example.com", host.len()),
            "wrong",
        );
    }
    let same_64 = login_from(&app.client, "[2001:db8:1:2::77]:1", "z@example.com", "x");
    assert_throttled(same_64);
    let next_64 = login_from(&app.client, "[2001:db8:1:3::1]:1", "z@example.com", "x");
    assert_eq!(next_64.status(), Status::Unauthorized);
    let mapped = login_from(&app.client, "[::ffff:10.0.0.1]:1", "z@example.com", "x");
    assert_eq!(
        mapped.status(),
        Status::Unauthorized,
        "keyed as 10.0.0.1, unused so far"
    );
}
