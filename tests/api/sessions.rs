use rocket::http::{ContentType, Status};
use rocket::serde::json::json;

use crate::helpers::{TestApp, assert_message, json, set_cookie};

fn app_with_bob() -> TestApp {
    TestApp::with_account("bob@bob.com", "mySuperPwd")
}

#[test]
fn a_login_answers_logged_in_and_sets_a_hardened_session_cookie() {
    let app = app_with_bob();
    let response = app.login("bob@bob.com", "mySuperPwd");
    assert_eq!(response.status(), Status::Ok);
    let set_cookie = set_cookie(&response, "session_id");
    let cookie = response.cookies().get("session_id").unwrap().clone();
    assert_eq!(
        json(response),
        json!({ "email": "bob@bob.com", "message": "logged in" })
    );
    assert_eq!(cookie.value().len(), 43);
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "debug serves plain http: {set_cookie}"
    );
    assert_eq!(app.db.session_count(), 1);
}

#[test]
fn the_cookie_is_secure_and_renamed_when_configured() {
    let app = TestApp::with(|f| {
        f.merge(("session_cookie_secure", true))
            .merge(("session_cookie_name", "sid"))
    });
    app.register("bob@bob.com", "pw");
    let response = app.login("bob@bob.com", "pw");
    let set_cookie = set_cookie(&response, "sid");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
}

#[test]
fn a_json_login_works_too() {
    let app = app_with_bob();
    let response = app
        .client
        .post("/sessions")
        .header(ContentType::JSON)
        .body(r#"{"email": "bob@bob.com", "password": "mySuperPwd"}"#)
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert!(response.cookies().get("session_id").is_some());
}

#[test]
fn the_email_of_a_login_is_case_insensitive() {
    let app = app_with_bob();
    let response = app.login(" BOB@Bob.com", "mySuperPwd");
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(json(response)["email"], "bob@bob.com");
}

#[test]
fn a_wrong_password_or_unknown_email_is_401_without_a_cookie() {
    let app = app_with_bob();
    for (email, password) in [
        ("bob@bob.com", "wrong"),
        ("bob@bob.com", "MYSUPERPWD"),
        ("nobody@bob.com", "mySuperPwd"),
        ("bob@bob.com", &"m".repeat(73)),
    ] {
        let response = app.login(email, password);
        assert_eq!(response.status(), Status::Unauthorized, "{email}");
        assert!(response.cookies().get("session_id").is_none());
        assert_eq!(
            json(response),
            json!({ "message": "invalid email or password" })
        );
    }
    assert_eq!(app.db.session_count(), 0);
}

#[test]
fn a_login_without_fields_is_400_naming_the_field() {
    let app = app_with_bob();
    assert_message(
        app.post_form("/sessions", &[("password", "mySuperPwd")]),
        Status::BadRequest,
        "email is required",
    );
    assert_message(
        app.post_form("/sessions", &[("email", "bob@bob.com")]),
        Status::BadRequest,
        "password is required",
    );
}

#[test]
fn two_logins_give_two_sessions_that_both_work() {
    let app = app_with_bob();
    let laptop = app.session_for("bob@bob.com", "mySuperPwd");
    let phone = app.session_for("bob@bob.com", "mySuperPwd");
    assert_ne!(laptop, phone);
    assert_eq!(app.db.session_count(), 2);
    for session in [&laptop, &phone] {
        let response = app.profile(Some(session));
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(
            json(response),
            json!({ "email": "bob@bob.com", "email_verified": false })
        );
    }
}

#[test]
fn logging_out_redirects_home_and_ends_only_that_session() {
    let app = app_with_bob();
    let laptop = app.session_for("bob@bob.com", "mySuperPwd");
    let phone = app.session_for("bob@bob.com", "mySuperPwd");

    let response = app.logout(Some(&laptop));
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(response.headers().get_one("Location"), Some("/"));
    let removal = response.headers().get_one("Set-Cookie").unwrap();
    assert!(removal.starts_with("session_id=;"), "{removal}");

    assert_eq!(app.profile(Some(&laptop)).status(), Status::Forbidden);
    assert_eq!(app.profile(Some(&phone)).status(), Status::Ok);
    assert_eq!(app.db.session_count(), 1);
}

#[test]
fn a_login_from_a_client_with_a_live_session_ends_that_session_first() {
    let app = app_with_bob();
    app.register("ann@example.com", "annsPwd");
    let bobs = app.session_for("bob@bob.com", "mySuperPwd");
    let as_ann = app
        .client
        .post("/sessions")
        .header(ContentType::Form)
        .cookie(rocket::http::Cookie::new("session_id", bobs.clone()))
        .body("email=ann%40example.com&password=annsPwd")
        .dispatch();
    assert_eq!(as_ann.status(), Status::Ok);
    assert_eq!(
        app.profile(Some(&bobs)).status(),
        Status::Forbidden,
        "Bob's session ended"
    );
    assert_eq!(app.db.session_count(), 1);
}

#[test]
fn a_failed_login_leaves_the_clients_session_alone() {
    let app = app_with_bob();
    let bobs = app.session_for("bob@bob.com", "mySuperPwd");
    let failed = app
        .client
        .post("/sessions")
        .header(ContentType::Form)
        .cookie(rocket::http::Cookie::new("session_id", bobs.clone()))
        .body("email=bob%40bob.com&password=wrong")
        .dispatch();
    assert_eq!(failed.status(), Status::Unauthorized);
    assert_eq!(app.profile(Some(&bobs)).status(), Status::Ok);
}

#[test]
fn logging_out_without_a_live_session_is_403() {
    let app = app_with_bob();
    assert_message(app.logout(None), Status::Forbidden, "no live session");
    assert_message(
        app.logout(Some("not-a-session")),
        Status::Forbidden,
        "no live session",
    );
    let session = app.session_for("bob@bob.com", "mySuperPwd");
    app.logout(Some(&session));
    assert_eq!(app.logout(Some(&session)).status(), Status::Forbidden);
}

#[test]
fn a_login_rehashes_a_password_stored_at_a_lower_cost() {
    use rocket::local::blocking::Client;
    let app = app_with_bob();
    assert!(
        app.db
            .stored_password_hash("bob@bob.com")
            .starts_with("$2b$04$")
    );

    let raised = Client::untracked(auth_service::build(
        app.db.figment.clone().merge(("bcrypt_cost", 5)),
    ))
    .unwrap();
    let login = raised
        .post("/sessions")
        .header(ContentType::Form)
        .body("email=bob%40bob.com&password=mySuperPwd")
        .dispatch();
    assert_eq!(login.status(), Status::Ok);
    let upgraded = app.db.stored_password_hash("bob@bob.com");
    assert!(upgraded.starts_with("$2b$05$"), "{upgraded}");
    assert!(bcrypt::verify("mySuperPwd", &upgraded).unwrap());

    let wrong = raised
        .post("/sessions")
        .header(ContentType::Form)
        .body("email=bob%40bob.com&password=nope")
        .dispatch();
    assert_eq!(wrong.status(), Status::Unauthorized);
    assert_eq!(app.db.stored_password_hash("bob@bob.com"), upgraded);
}

/// Each instance caches live sessions (`session_cache_ms`); a session ended on one instance is
/// refused by another within that bound, never later, and by the one that ended it at once.
#[test]
fn a_session_ended_on_one_instance_is_refused_by_another_within_the_cache_bound() {
    use rocket::http::Cookie;
    use rocket::local::blocking::Client;
    use std::time::{Duration, Instant};

    let bound = Duration::from_millis(400);
    let app = TestApp::with(|figment| {
        figment
            .merge(("database_exclusive", false))
            .merge(("session_cache_ms", 400))
            .merge(("metrics_enabled", true))
    });
    let other = Client::untracked(auth_service::build(app.db.figment.clone())).unwrap();
    assert_eq!(app.register("bob@bob.com", "pw").status(), Status::Ok);
    let session = app.session_for("bob@bob.com", "pw");
    let profile = |client: &Client| {
        let request = client
            .get("/profile")
            .cookie(Cookie::new("session_id", session.clone()));
        request.dispatch().status()
    };
    // The other instance reads the session for a while, so that its cache holds it.
    for _ in 0..20 {
        assert_eq!(profile(&other), Status::Ok);
        std::thread::sleep(Duration::from_millis(10));
    }
    let metrics = other.get("/metrics").dispatch().into_string().unwrap();
    let hits = metrics
        .lines()
        .find_map(|line| line.strip_prefix("session_cache_lookups_total{result=\"hit\"} "))
        .and_then(|count| count.parse::<u64>().ok());
    assert!(
        hits.is_some_and(|hits| hits > 10),
        "served from its cache: {hits:?}"
    );
    assert_eq!(app.logout(Some(&session)).status(), Status::SeeOther);
    let ended = Instant::now();
    assert_eq!(
        profile(&app.client),
        Status::Forbidden,
        "at once where it ended"
    );
    let mut refused = None;
    while ended.elapsed() < bound * 5 {
        let asked = Instant::now();
        match profile(&other) {
            Status::Ok => assert!(
                asked.duration_since(ended) < bound,
                "honoured {:?} after the logout",
                asked.duration_since(ended)
            ),
            Status::Forbidden => {
                refused.get_or_insert(asked.duration_since(ended));
            }
            status => panic!("{status}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        refused.is_some(),
        "the other instance refuses it in the end"
    );
    assert_eq!(profile(&other), Status::Forbidden, "and keeps refusing it");
}
