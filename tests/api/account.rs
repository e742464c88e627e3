//! The account self-service API: sessions, password change, email verification and change,
//! account deletion. Every action is tried on another account's data and without the current
//! password where it needs one.

use auth_service::db::schema::{account_tokens, devices, throttle_events, users};
use diesel::prelude::*;
use rocket::http::{ContentType, Cookie, Header, Method, Status};
use rocket::local::asynchronous::Client as AsyncClient;
use rocket::local::blocking::LocalResponse;
use rocket::serde::json::{Value, json};

use crate::helpers::{TestApp, TestDb, assert_message, form, json, link_in, set_cookie};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

impl TestApp {
    /// `method path` with the form `fields` and, if given, the session cookie.
    fn call(
        &self,
        method: Method,
        path: &str,
        session: Option<&str>,
        fields: &[(&str, &str)],
    ) -> LocalResponse<'_> {
        let mut request = self
            .client
            .req(method, path.to_owned())
            .header(ContentType::Form)
            .body(form(fields));
        if let Some(id) = session {
            request = request.cookie(Cookie::new("session_id", id.to_owned()));
        }
        request.dispatch()
    }

    /// Logs in from `address` with this `User-Agent` and returns the session id.
    fn session_from(&self, email: &str, password: &str, address: &str, agent: &str) -> String {
        let response = self
            .client
            .post("/sessions")
            .remote(std::net::SocketAddr::new(address.parse().unwrap(), 1000))
            .header(Header::new("User-Agent", agent.to_owned()))
            .header(ContentType::Form)
            .body(form(&[("email", email), ("password", password)]))
            .dispatch();
        assert_eq!(response.status(), Status::Ok);
        response
            .cookies()
            .get("session_id")
            .unwrap()
            .value()
            .to_owned()
    }

    /// The `sessions` list that `session` sees.
    fn sessions(&self, session: &str) -> Vec<Value> {
        let response = self.call(Method::Get, "/account/sessions", Some(session), &[]);
        assert_eq!(response.status(), Status::Ok);
        json(response)["sessions"].as_array().unwrap().clone()
    }

    /// The verification token the debug profile hands out for `session`'s account.
    fn verification_token(&self, session: &str) -> String {
        let response = self.call(Method::Post, "/account/verification", Some(session), &[]);
        assert_eq!(response.status(), Status::Ok);
        json(response)["verification_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn profile_status(&self, session: &str) -> Status {
        self.profile(Some(session)).status()
    }
}

/// The token of a mailed link.
fn token_of(message: &str) -> String {
    link_in(message).split("token=").nth(1).unwrap().to_owned()
}

fn ann_and_bob() -> TestApp {
    let app = TestApp::with_account("ann@example.com", "ann-pw");
    assert_eq!(
        app.register("bob@example.com", "bob-pw").status(),
        Status::Ok
    );
    app
}

#[test]
fn the_sessions_list_shows_each_device_by_an_opaque_id_and_marks_this_one() {
    let app = ann_and_bob();
    let laptop = app.session_from("ann@example.com", "ann-pw", "192.0.2.7", FIREFOX);
    let phone = app.session_from("ann@example.com", "ann-pw", "2001:db8::1", "curl/8.5.0");
    app.session_from("bob@example.com", "bob-pw", "192.0.2.9", FIREFOX);

    let listed = app.sessions(&laptop);
    assert_eq!(listed.len(), 2, "Ann's two, not Bob's: {listed:?}");
    let this = listed.iter().find(|s| s["current"] == true).unwrap();
    let other = listed.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(this["user_agent"], "Firefox on Linux");
    assert_eq!(this["address"], "192.0.2.7");
    assert_eq!(other["user_agent"], "curl");
    assert_eq!(other["address"], "2001:db8::1");
    for session in &listed {
        let id = session["id"].as_str().unwrap();
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            !laptop.contains(id) && !phone.contains(id),
            "never the token"
        );
        for time in ["created_at", "last_seen_at"] {
            let text = session[time].as_str().unwrap();
            assert!(
                text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
                "RFC 3339: {text}"
            );
        }
        let mut keys: Vec<&String> = session.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "address",
                "amr",
                "created_at",
                "current",
                "id",
                "last_seen_at",
                "user_agent"
            ]
        );
    }
    assert_eq!(app.sessions(&phone).len(), 2);
}

#[test]
fn a_session_is_ended_by_its_id_only_by_its_own_account() {
    let app = ann_and_bob();
    let ann = app.session_for("ann@example.com", "ann-pw");
    let ann_phone = app.session_for("ann@example.com", "ann-pw");
    let bob = app.session_for("bob@example.com", "bob-pw");
    let phone_id = app
        .sessions(&ann)
        .into_iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let path = format!("/account/sessions/{phone_id}");
    assert_message(
        app.call(Method::Delete, &path, Some(&bob), &[]),
        Status::NotFound,
        "no such session",
    );
    assert_eq!(
        app.profile_status(&ann_phone),
        Status::Ok,
        "Bob cannot end it"
    );
    assert_message(
        app.call(Method::Delete, &path, None, &[]),
        Status::Forbidden,
        "no live session",
    );

    assert_message(
        app.call(Method::Delete, &path, Some(&ann), &[]),
        Status::Ok,
        "session ended",
    );
    assert_eq!(app.profile_status(&ann_phone), Status::Forbidden);
    assert_eq!(app.profile_status(&ann), Status::Ok);
    assert_eq!(app.profile_status(&bob), Status::Ok);
    assert_message(
        app.call(Method::Delete, &path, Some(&ann), &[]),
        Status::NotFound,
        "no such session",
    );
    assert!(app.db.audit_log().contains("event=\"session.revoked\""));
}

#[test]
fn ending_this_very_session_by_its_id_drops_its_cookie() {
    let app = TestApp::with_account("ann@example.com", "ann-pw");
    let ann = app.session_for("ann@example.com", "ann-pw");
    let id = app.sessions(&ann)[0]["id"].as_str().unwrap().to_owned();
    let response = app.call(
        Method::Delete,
        &format!("/account/sessions/{id}"),
        Some(&ann),
        &[],
    );
    assert_eq!(response.status(), Status::Ok);
    assert!(set_cookie(&response, "session_id").contains("Max-Age=0"));
    assert_eq!(app.profile_status(&ann), Status::Forbidden);
}

#[test]
fn all_other_sessions_end_and_other_accounts_keep_theirs() {
    let app = ann_and_bob();
    let ann = app.session_for("ann@example.com", "ann-pw");
    let others: Vec<String> = (0..3)
        .map(|_| app.session_for("ann@example.com", "ann-pw"))
        .collect();
    let bob = app.session_for("bob@example.com", "bob-pw");
    let ended = app.call(Method::Delete, "/account/sessions", Some(&ann), &[]);
    assert_eq!(ended.status(), Status::Ok);
    assert_eq!(json(ended), json!({ "ended": 3 }));
    for other in &others {
        assert_eq!(app.profile_status(other), Status::Forbidden);
    }
    assert_eq!(app.profile_status(&ann), Status::Ok);
    assert_eq!(app.profile_status(&bob), Status::Ok);
    assert_eq!(app.sessions(&ann).len(), 1);
    let again = app.call(Method::Delete, "/account/sessions", Some(&ann), &[]);
    assert_eq!(json(again), json!({ "ended": 0 }));
}

#[test]
fn a_password_change_needs_the_current_password_and_follows_the_policy() {
    let app = TestApp::with(|f| f.merge(("password_min_length", 8)));
    app.register("ann@example.com", "first password");
    let ann = app.session_for("ann@example.com", "first password");
    let change =
        |fields: &[(&str, &str)]| app.call(Method::Put, "/account/password", Some(&ann), fields);
    assert_message(
        change(&[("new_password", "second password")]),
        Status::Unauthorized,
        "current_password is required",
    );
    assert_message(
        change(&[
            ("current_password", "wrong password"),
            ("new_password", "second password"),
        ]),
        Status::Unauthorized,
        "current password is wrong",
    );
    assert_message(
        change(&[
            ("current_password", "first password"),
            ("new_password", "short"),
        ]),
        Status::BadRequest,
        "new_password must be at least 8 characters",
    );
    assert_message(
        app.call(
            Method::Put,
            "/account/password",
            None,
            &[
                ("current_password", "first password"),
                ("new_password", "second password"),
            ],
        ),
        Status::Forbidden,
        "no live session",
    );
    assert_eq!(
        app.login("ann@example.com", "first password").status(),
        Status::Ok
    );
}

#[test]
fn a_password_change_replaces_this_session_ends_the_others_and_voids_reset_links() {
    let app = ann_and_bob();
    let ann = app.session_for("ann@example.com", "ann-pw");
    let ann_phone = app.session_for("ann@example.com", "ann-pw");
    let bob = app.session_for("bob@example.com", "bob-pw");
    let reset_token = app.reset_token_for("ann@example.com");

    let response = app.call(
        Method::Put,
        "/account/password",
        Some(&ann),
        &[
            ("current_password", "ann-pw"),
            ("new_password", "new-ann-pw"),
        ],
    );
    assert_eq!(response.status(), Status::Ok);
    let new_session = response
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    assert_eq!(json(response), json!({ "message": "password changed" }));
    assert_ne!(new_session, ann);
    assert_eq!(app.profile_status(&new_session), Status::Ok);
    assert_eq!(app.profile_status(&ann), Status::Forbidden, "replaced");
    assert_eq!(app.profile_status(&ann_phone), Status::Forbidden, "ended");
    assert_eq!(app.profile_status(&bob), Status::Ok, "another account");
    assert_eq!(app.sessions(&new_session).len(), 1);

    assert_eq!(
        app.login("ann@example.com", "ann-pw").status(),
        Status::Unauthorized
    );
    assert_eq!(
        app.login("ann@example.com", "new-ann-pw").status(),
        Status::Ok
    );
    assert_eq!(
        app.update_password("ann@example.com", &reset_token, "third-pw")
            .status(),
        Status::Forbidden,
        "a reset link from before the change is void"
    );
    let notice = app.db.mail("Your password was changed", 1);
    assert!(notice[0].contains("To: ann@example.com"));
    assert!(app.db.audit_log().contains("event=\"password.changed\""));
    assert!(!app.db.audit_log().contains("new-ann-pw"));
}

#[test]
fn wrong_current_passwords_count_as_failed_logins_of_the_account() {
    let app = TestApp::with(|f| f.merge(("throttle_login_per_account", 2)));
    app.register("ann@example.com", "ann-pw");
    let ann = app.session_for("ann@example.com", "ann-pw");
    for _ in 0..2 {
        let wrong = app.call(
            Method::Delete,
            "/account",
            Some(&ann),
            &[("current_password", "guess")],
        );
        assert_eq!(wrong.status(), Status::Unauthorized);
    }
    let throttled = app.call(
        Method::Put,
        "/account/password",
        Some(&ann),
        &[("current_password", "ann-pw"), ("new_password", "new-pw")],
    );
    assert_eq!(throttled.status(), Status::TooManyRequests);
    assert!(throttled.headers().get_one("Retry-After").is_some());
    assert_eq!(app.db.attempts("login_account"), 2);
    assert!(app.db.audit_log().contains("event=\"reauth.failed\""));
    assert_eq!(app.db.user_count(), 1, "nothing deleted");
}

#[test]
fn signup_mails_a_verification_link_that_verifies_once() {
    let app = TestApp::with(|f| f.merge(("public_base_url", "https://auth.example.com")));
    app.register("ann@example.com", "ann-pw");
    let ann = app.session_for("ann@example.com", "ann-pw");
    let mailed = app.db.mail("Verify your email", 1);
    assert!(mailed[0].contains("To: ann@example.com"));
    let link = link_in(&mailed[0]);
    assert!(
        link.starts_with("https://auth.example.com/email/verify?token="),
        "{link}"
    );
    assert_eq!(json(app.profile(Some(&ann)))["email_verified"], false);

    let confirm = |token: &str| {
        app.call(
            Method::Post,
            "/account/verification/confirm",
            None,
            &[("token", token)],
        )
    };
    let verified = confirm(&token_of(&mailed[0]));
    assert_eq!(verified.status(), Status::Ok);
    assert_eq!(
        json(verified),
        json!({ "email": "ann@example.com", "email_verified": true })
    );
    assert_eq!(json(app.profile(Some(&ann)))["email_verified"], true);
    assert_message(
        confirm(&token_of(&mailed[0])),
        Status::Forbidden,
        "invalid, expired or used token",
    );
    assert_message(
        app.call(Method::Post, "/account/verification", Some(&ann), &[]),
        Status::Conflict,
        "email is already verified",
    );
    assert_message(
        app.call(Method::Post, "/account/verification/confirm", None, &[]),
        Status::BadRequest,
        "token is required",
    );
    assert!(app.db.audit_log().contains("event=\"email.verified\""));
}

#[test]
fn a_resent_verification_link_replaces_the_last_and_resends_are_capped() {
    let app = TestApp::with(|f| f.merge(("throttle_reset_per_email", 2)));
    app.register("ann@example.com", "ann-pw");
    let ann = app.session_for("ann@example.com", "ann-pw");
    let first = token_of(&app.db.mail("Verify your email", 1)[0]);
    let second = app.verification_token(&ann);
    assert_eq!(app.db.mail("Verify your email", 2).len(), 2);
    app.verification_token(&ann);
    let capped = app.call(Method::Post, "/account/verification", Some(&ann), &[]);
    assert_eq!(capped.status(), Status::TooManyRequests);
    assert_eq!(
        app.db.mail("Verify your email", 4).len(),
        3,
        "no fourth mail"
    );

    let confirm = |token: &str| {
        app.call(
            Method::Post,
            "/account/verification/confirm",
            None,
            &[("token", token)],
        )
        .status()
    };
    assert_eq!(confirm(&first), Status::Forbidden, "replaced");
    assert_eq!(confirm(&second), Status::Forbidden, "replaced");
    assert_message(
        app.call(Method::Post, "/account/verification", None, &[]),
        Status::Forbidden,
        "no live session",
    );
}

#[test]
fn with_required_verification_only_the_right_password_hears_the_email_is_unverified() {
    let app = TestApp::with(|f| f.merge(("require_verified_email", true)));
    app.register("ann@example.com", "ann-pw");
    assert_message(
        app.login("ann@example.com", "wrong"),
        Status::Unauthorized,
        "invalid email or password",
    );
    let refused = app.login("ann@example.com", "ann-pw");
    assert!(refused.cookies().get("session_id").is_none());
    assert_message(
        refused,
        Status::Forbidden,
        "email not verified: open the link we sent to it (a new one is on its way)",
    );
    assert_eq!(app.db.session_count(), 0);
    assert_eq!(
        app.db.attempts("login_account"),
        1,
        "only the wrong one counted"
    );
    let mailed = app.db.mail("Verify your email", 2);
    assert_eq!(mailed.len(), 2, "the signup's link and a new one");
    let verified = app.call(
        Method::Post,
        "/account/verification/confirm",
        None,
        &[("token", &token_of(&mailed[1]))],
    );
    assert_eq!(verified.status(), Status::Ok);
    assert_eq!(app.login("ann@example.com", "ann-pw").status(), Status::Ok);
}

#[test]
fn a_reset_link_opened_verifies_the_email_too() {
    let app = TestApp::with(|f| f.merge(("require_verified_email", true)));
    app.register("ann@example.com", "ann-pw");
    let token = app.reset_token_for("ann@example.com");
    assert_eq!(
        app.update_password("ann@example.com", &token, "new-pw")
            .status(),
        Status::Ok
    );
    assert_eq!(app.login("ann@example.com", "new-pw").status(), Status::Ok);
}

#[test]
fn an_email_change_needs_the_password_and_takes_effect_only_when_confirmed() {
    let app = ann_and_bob();
    let ann = app.session_for("ann@example.com", "ann-pw");
    let reset_token = app.reset_token_for("ann@example.com");
    let request =
        |fields: &[(&str, &str)]| app.call(Method::Post, "/account/email", Some(&ann), fields);
    assert_message(
        request(&[("new_email", "new@example.com")]),
        Status::Unauthorized,
        "current_password is required",
    );
    assert_message(
        request(&[
            ("new_email", "new@example.com"),
            ("current_password", "bob-pw"),
        ]),
        Status::Unauthorized,
        "current password is wrong",
    );
    let taken = request(&[
        ("new_email", "bob@example.com"),
        ("current_password", "ann-pw"),
    ]);
    assert_eq!(
        taken.status(),
        Status::Ok,
        "a taken address is not disclosed"
    );
    assert_eq!(
        json(taken),
        json!({ "message": "confirmation link sent" }),
        "no link was issued, so not even debug shows a token"
    );
    let told = app.db.mail("Your address already has an account", 1);
    assert!(told[0].contains("To: bob@example.com"));
    assert!(!told[0].contains("token="), "no link to a taken address");
    assert_message(
        request(&[
            ("new_email", "ANN@example.com"),
            ("current_password", "ann-pw"),
        ]),
        Status::BadRequest,
        "new_email is already this account's email",
    );
    assert_message(
        request(&[
            ("new_email", "not an email"),
            ("current_password", "ann-pw"),
        ]),
        Status::BadRequest,
        "new_email is not a valid email address",
    );

    let sent = request(&[
        ("new_email", "New@Example.com"),
        ("current_password", "ann-pw"),
    ]);
    assert_eq!(sent.status(), Status::Ok);
    let sent = json(sent);
    assert_eq!(sent["message"], "confirmation link sent");
    let token = sent["email_token"].as_str().unwrap().to_owned();
    let link = app.db.mail("Confirm your new email", 1);
    assert!(link[0].contains("To: new@example.com"));
    assert_eq!(token_of(&link[0]), token);
    let notices = app.db.mail("A change of your email was requested", 2);
    assert_eq!(
        notices.len(),
        2,
        "one for the taken address, one for the free one"
    );
    let notice = &notices[1];
    assert!(notice.contains("To: ann@example.com"));
    assert!(notice.contains("n***@e***.com"), "{notice}");
    assert!(!notice.contains("new@example.com"), "masked");

    assert_eq!(
        app.login("new@example.com", "ann-pw").status(),
        Status::Unauthorized
    );
    assert_eq!(
        app.login("ann@example.com", "ann-pw").status(),
        Status::Ok,
        "not yet"
    );

    let confirm = |token: &str| {
        app.call(
            Method::Post,
            "/account/email/confirm",
            None,
            &[("token", token)],
        )
    };
    let confirmed = confirm(&token);
    assert_eq!(confirmed.status(), Status::Ok);
    assert_eq!(json(confirmed), json!({ "email": "new@example.com" }));
    assert_message(
        confirm(&token),
        Status::Forbidden,
        "invalid, expired or used token",
    );
    assert_eq!(app.login("new@example.com", "ann-pw").status(), Status::Ok);
    assert_eq!(
        app.login("ann@example.com", "ann-pw").status(),
        Status::Unauthorized
    );
    assert_eq!(json(app.profile(Some(&ann)))["email"], "new@example.com");
    assert_eq!(json(app.profile(Some(&ann)))["email_verified"], true);
    assert_eq!(
        app.update_password("new@example.com", &reset_token, "other")
            .status(),
        Status::Forbidden,
        "reset links from before the change are void"
    );
    let audit = app.db.audit_log();
    assert!(audit.contains("event=\"email.change_requested\""));
    assert!(audit.contains("event=\"email.changed\""));
    assert!(!audit.contains(&token));
}

#[test]
fn email_change_requests_count_against_the_client_addresss_limit_on_mailed_links() {
    let app = TestApp::with(|f| f.merge(("throttle_reset_per_address", 2)));
    assert_eq!(
        app.register("ann@example.com", "ann-pw").status(),
        Status::Ok
    );
    let ann = app.session_for("ann@example.com", "ann-pw");
    let request = |to: &str| {
        let fields = [("new_email", to), ("current_password", "ann-pw")];
        app.call(Method::Post, "/account/email", Some(&ann), &fields)
    };
    assert_eq!(request("one@example.com").status(), Status::Ok);
    assert_eq!(request("not an email").status(), Status::BadRequest);
    assert_eq!(request("two@example.com").status(), Status::Ok);
    let third = request("three@example.com");
    assert_eq!(third.status(), Status::TooManyRequests);
    assert_eq!(app.db.attempts("reset"), 2);
}

#[rocket::async_test]
async fn two_accounts_racing_for_one_address_cannot_both_get_it() {
    let db = TestDb::new(|f| f);
    let client = AsyncClient::untracked(auth_service::build(db.figment.clone()))
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for name in ["ann", "bob", "cid", "dee"] {
        let email = format!("{name}@example.com");
        let signup = form(&[("email", &email), ("password", "pw")]);
        let post = |path: &'static str, body: String| {
            client.post(path).header(ContentType::Form).body(body)
        };
        assert_eq!(
            post("/users", signup.clone()).dispatch().await.status(),
            Status::Ok
        );
        let login = post("/sessions", signup).dispatch().await;
        let session = login.cookies().get("session_id").unwrap().clone();
        let change = form(&[
            ("new_email", "prize@example.com"),
            ("current_password", "pw"),
        ]);
        let sent = post("/account/email", change)
            .cookie(session)
            .dispatch()
            .await;
        let body: Value = sent.into_json().await.unwrap();
        tokens.push(body["email_token"].as_str().unwrap().to_owned());
    }
    let confirms = tokens.iter().map(|token| {
        let request = client
            .post("/account/email/confirm")
            .header(ContentType::Form)
            .body(form(&[("token", token)]));
        async move { request.dispatch().await.status() }
    });
    let statuses = futures::future::join_all(confirms).await;
    let won = statuses.iter().filter(|s| **s == Status::Ok).count();
    let lost = statuses
        .iter()
        .filter(|s| **s == Status::BadRequest)
        .count();
    assert_eq!((won, lost), (1, 3), "{statuses:?}");
    let holders: i64 = users::table
        .filter(users::email.eq("prize@example.com"))
        .count()
        .get_result(&mut **db.conn())
        .unwrap();
    assert_eq!(holders, 1);
}

#[test]
fn deleting_the_account_needs_the_password_and_removes_everything_about_it() {
    let app = ann_and_bob();
    let ann = app.session_for("ann@example.com", "ann-pw");
    let ann_phone = app.session_for("ann@example.com", "ann-pw");
    let bob = app.session_for("bob@example.com", "bob-pw");
    app.login("ann@example.com", "wrong");
    app.reset_token_for("ann@example.com");
    let delete = |fields: &[(&str, &str)]| app.call(Method::Delete, "/account", Some(&ann), fields);
    assert_message(
        delete(&[]),
        Status::Unauthorized,
        "current_password is required",
    );
    assert_message(
        delete(&[("current_password", "bob-pw")]),
        Status::Unauthorized,
        "current password is wrong",
    );
    let crossed = app
        .client
        .delete("/account")
        .header(Header::new("Sec-Fetch-Site", "cross-site"))
        .cookie(Cookie::new("session_id", ann.clone()))
        .header(ContentType::Form)
        .body(form(&[("current_password", "ann-pw")]))
        .dispatch();
    assert_eq!(crossed.status(), Status::Forbidden);
    assert_eq!(app.db.user_count(), 2);

    let deleted = delete(&[("current_password", "ann-pw")]);
    assert_eq!(deleted.status(), Status::Ok);
    assert!(set_cookie(&deleted, "session_id").contains("Max-Age=0"));
    assert_eq!(json(deleted), json!({ "message": "account deleted" }));
    assert_eq!(app.profile_status(&ann), Status::Forbidden);
    assert_eq!(app.profile_status(&ann_phone), Status::Forbidden);
    assert_eq!(app.profile_status(&bob), Status::Ok);

    let mut c = app.db.conn();
    let c = &mut **c;
    let left: Vec<String> = users::table.select(users::email).load(c).unwrap();
    assert_eq!(left, ["bob@example.com"]);
    let ann_rows: i64 = throttle_events::table
        .filter(throttle_events::key.eq("ann@example.com"))
        .count()
        .get_result(c)
        .unwrap();
    assert_eq!(ann_rows, 0, "throttle rows about the account");
    let devices_left: i64 = devices::table.count().get_result(c).unwrap();
    assert_eq!(devices_left, 1, "Bob's device only");
    let tokens_left: Vec<i32> = account_tokens::table
        .select(account_tokens::user_id)
        .load(c)
        .unwrap();
    assert!(tokens_left.iter().all(|id| *id != 1), "{tokens_left:?}");
    assert_eq!(app.db.mail("Your account was deleted", 1).len(), 1);
    assert!(app.db.audit_log().contains("event=\"account.deleted\""));
    assert_eq!(
        app.register("ann@example.com", "again").status(),
        Status::Ok,
        "free again"
    );
}

#[test]
fn every_account_endpoint_needs_a_live_session_and_refuses_cross_site_calls() {
    let app = TestApp::with_account("ann@example.com", "ann-pw");
    let ann = app.session_for("ann@example.com", "ann-pw");
    let endpoints = [
        (Method::Get, "/account/sessions"),
        (Method::Delete, "/account/sessions"),
        (Method::Delete, "/account/sessions/abc"),
        (Method::Put, "/account/password"),
        (Method::Post, "/account/verification"),
        (Method::Post, "/account/email"),
        (Method::Delete, "/account"),
    ];
    for (method, path) in endpoints {
        let response = app.call(method, path, None, &[("current_password", "ann-pw")]);
        assert_eq!(response.status(), Status::Forbidden, "{method} {path}");
    }
    for (method, path) in endpoints.iter().filter(|(m, _)| *m != Method::Get) {
        let response = app
            .client
            .req(*method, path.to_string())
            .header(Header::new("Origin", "https://evil.example"))
            .cookie(Cookie::new("session_id", ann.clone()))
            .dispatch();
        assert_message(response, Status::Forbidden, "cross-site request refused");
    }
    assert_eq!(app.profile_status(&ann), Status::Ok);
}
