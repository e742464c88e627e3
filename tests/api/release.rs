//! The release profile: what refuses a start, and what a started release serves differently.

use rocket::error::ErrorKind;
use rocket::http::Status;
use rocket::local::blocking::Client;

use crate::helpers::{TestDb, assert_message, link_in, set_cookie};

const SECRET_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
const MFA_KEY: &str = "1Sx8QvZ9+3N5yWq0b7kF2m4HcT6rLpE8jUoYdAiBnCs=";

fn release(configure: impl FnOnce(rocket::figment::Figment) -> rocket::figment::Figment) -> TestDb {
    TestDb::new(|f| {
        let keys = f
            .merge(("secret_key", SECRET_KEY))
            .merge(("mfa_key", MFA_KEY));
        configure(keys.select("release"))
    })
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
            .merge(("mfa_key", MFA_KEY))
            .select("release")
    });
    let failure = start_failure(&no_secret).expect("the app refuses to start");
    assert_eq!(
        failure, "fairing Settings, database and auth",
        "before Rocket's own check"
    );

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
    let log_in = || {
        client
            .post("/sessions")
            .header(rocket::http::ContentType::Form)
            .body("email=ann%40example.com&password=long+enough+pw")
            .dispatch()
    };
    assert_message(
        log_in(),
        Status::Forbidden,
        "email not verified: open the link we sent to it (a new one is on its way)",
    );
    let mailed = db.mail("Verify your email", 2);
    assert_eq!(
        mailed.len(),
        2,
        "the signup's link, and a new one for the refused login"
    );
    let link = link_in(&mailed[1]);
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(
        link.starts_with("https://auth.example.com/email/verify?token="),
        "{link}"
    );
    let verified = client
        .post("/account/verification/confirm")
        .header(rocket::http::ContentType::Form)
        .body(format!("token={token}"))
        .dispatch();
    assert_eq!(verified.status(), Status::Ok);
    let login = log_in();
    let cookie = set_cookie(&login, "__Host-session_id");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(
        cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let session = login.cookies().get("__Host-session_id").unwrap().clone();
    let profile = client.get("/profile").cookie(session).dispatch();
    assert_eq!(
        profile.status(),
        Status::Ok,
        "the prefixed cookie is the session"
    );
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

fn started(
    configure: impl FnOnce(rocket::figment::Figment) -> rocket::figment::Figment,
) -> (TestDb, Client) {
    let db = release(|f| {
        configure(
            f.merge(("bcrypt_cost", 10))
                .merge(("public_base_url", "https://auth.example.com")),
        )
    });
    let client = Client::untracked(auth_service::build(db.figment.clone())).unwrap();
    (db, client)
}

#[test]
fn the_release_profile_refuses_to_start_with_exposed_reset_tokens() {
    let exposed = release(|f| {
        f.merge(("bcrypt_cost", 10))
            .merge(("public_base_url", "https://auth.example.com"))
            .merge(("expose_reset_token", true))
    });
    assert_eq!(
        start_failure(&exposed).as_deref(),
        Some("fairing Settings, database and auth")
    );
}

#[test]
fn release_forms_get_a_host_prefixed_csrf_cookie() {
    let (_db, client) = started(|f| f);
    let page = client
        .get("/login")
        .header(rocket::http::Accept::HTML)
        .dispatch();
    let cookie = set_cookie(&page, "__Host-csrf_token");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

#[test]
fn in_release_the_api_trusts_only_the_public_origin_not_the_requests_host() {
    let (db, client) = started(|f| f);
    let signup = |origin: &str, host: &str| {
        client
            .post("/users")
            .header(rocket::http::ContentType::Form)
            .header(rocket::http::Header::new("Origin", origin.to_owned()))
            .header(rocket::http::Header::new("Host", host.to_owned()))
            .body("email=ann%40example.com&password=long+enough+pw")
            .dispatch()
            .status()
    };
    // DNS rebinding: the attacker's page reaches the service under the attacker's name.
    assert_eq!(
        signup("http://rebound.example", "rebound.example"),
        Status::Forbidden
    );
    assert_eq!(db.user_count(), 0);
    let own = signup("https://auth.example.com", "auth.example.com");
    assert_eq!(own, Status::Ok);
}

#[test]
fn beyond_the_per_email_cap_a_release_answers_alike_and_sends_nothing() {
    let (db, client) = started(|f| f.merge(("throttle_reset_per_email", 1)));
    let request = |from: &str| {
        let response = client
            .post("/reset_password")
            .remote(from.parse().unwrap())
            .header(rocket::http::ContentType::Form)
            .body("email=ann%40example.com")
            .dispatch();
        (response.status(), response.into_string().unwrap())
    };
    let signup = client
        .post("/users")
        .header(rocket::http::ContentType::Form)
        .body("email=ann%40example.com&password=long+enough+pw")
        .dispatch();
    assert_eq!(signup.status(), Status::Ok);
    let first = request("192.0.2.1:1");
    let capped = request("192.0.2.2:1");
    assert_eq!(first, capped, "the same answer");
    assert_eq!(first.0, Status::Ok);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(db.mail("Reset your password", 2).len(), 1, "one link sent");
}

#[test]
fn a_release_deletes_its_host_prefixed_session_cookie_with_secure() {
    let (_db, client) = started(|f| f.merge(("require_verified_email", false)));
    let form = |path: &str| {
        client
            .post(path.to_owned())
            .header(rocket::http::ContentType::Form)
            .body("email=ann%40example.com&password=long+enough+pw")
            .dispatch()
    };
    assert_eq!(form("/users").status(), Status::Ok);
    let login = form("/sessions");
    let session = login.cookies().get("__Host-session_id").unwrap().clone();
    let logout = client.delete("/sessions").cookie(session).dispatch();
    assert_eq!(logout.status(), Status::SeeOther);
    // A browser ignores the deletion of a __Host- cookie that lacks Secure.
    let deletion = set_cookie(&logout, "__Host-session_id");
    for attribute in ["Secure", "Path=/", "Max-Age=0", "HttpOnly", "SameSite=Lax"] {
        assert!(deletion.contains(attribute), "{attribute}: {deletion}");
    }
}

#[test]
fn a_hardened_debug_profile_is_refused_without_a_secret_key_like_a_release() {
    let hardened = |f: rocket::figment::Figment| {
        f.merge(("hardened", true))
            .merge(("bcrypt_cost", 10))
            .merge(("expose_reset_token", false))
            .merge(("public_base_url", "https://auth.example.com"))
            .merge(("mfa_key", MFA_KEY))
    };
    assert_eq!(
        start_failure(&TestDb::new(hardened)).as_deref(),
        Some("fairing Settings, database and auth")
    );
    let keyed = TestDb::new(|f| hardened(f).merge(("secret_key", SECRET_KEY)));
    assert_eq!(start_failure(&keyed), None);
}
