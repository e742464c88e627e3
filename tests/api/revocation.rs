//! A credential change voids what was derived from the old credential. A password change, a
//! completed reset, an operator's set-password and "log out other devices" each end the
//! account's mailed links (email change, verification, reset: all but the one being spent) and
//! the trust of its devices (all, or all but the caller's); ending a session from the list ends
//! its device's trust. A revoked device cookie counts as none and is replaced at the next login.

use std::net::SocketAddr;

use auth_service::auth::{Auth, Email, Password, token};
use auth_service::db::schema::{devices, users};
use diesel::prelude::*;
use rocket::http::{ContentType, Cookie, Method, Status};
use rocket::local::asynchronous::Client as AsyncClient;
use rocket::local::blocking::{Client, LocalResponse};
use rocket::serde::json::Value;

use crate::helpers::{TestApp, assert_message, form, json};

const INVALID_LINK: &str = "invalid, expired or used token";

/// One client of Ann's: its session and its device cookie (decrypted).
struct Device {
    session: String,
    cookie: Cookie<'static>,
}

impl Device {
    /// The digest the database keeps of this device's cookie.
    fn digest(&self) -> Vec<u8> {
        token::digest(self.cookie.value()).to_vec()
    }
}

/// A request from `from` with `fields`, the session cookie and the device cookie, if given.
fn send<'c>(
    client: &'c Client,
    method: Method,
    path: &str,
    from: &str,
    device: Option<&Device>,
    fields: &[(&str, &str)],
) -> LocalResponse<'c> {
    let mut request = client
        .req(method, path.to_owned())
        .remote(from.parse::<SocketAddr>().unwrap())
        .header(ContentType::Form)
        .body(form(fields));
    if let Some(device) = device {
        request = request
            .cookie(Cookie::new("session_id", device.session.clone()))
            .private_cookie(device.cookie.clone());
    }
    request.dispatch()
}

/// Logs Ann in from `from`, presenting `device`'s cookie if given; a new device for the client
/// unless the one presented is trusted.
fn log_in(app: &TestApp, from: &str, device: Option<&Device>, password: &str) -> Device {
    let fields = [("email", "ann@example.com"), ("password", password)];
    let mut request = app
        .client
        .post("/sessions")
        .remote(from.parse::<SocketAddr>().unwrap())
        .header(ContentType::Form)
        .body(form(&fields));
    if let Some(device) = device {
        request = request.private_cookie(device.cookie.clone());
    }
    let response = request.dispatch();
    assert_eq!(response.status(), Status::Ok);
    let session = response
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    let cookie = match response.cookies().get_private("device") {
        Some(new) => new,
        None => device
            .expect("a first login sets a device cookie")
            .cookie
            .clone(),
    };
    Device { session, cookie }
}

/// The links mailed to Ann's account before a change: a change of email to a free address, a
/// verification link and a reset link (the debug profile hands out their tokens).
struct Pending {
    email_change: String,
    verification: String,
    reset: String,
}

fn token_in(response: LocalResponse<'_>, field: &str) -> String {
    assert_eq!(response.status(), Status::Ok);
    let body: Value = json(response);
    body[field].as_str().unwrap().to_owned()
}

fn pending_links(app: &TestApp, laptop: &Device) -> Pending {
    let change = [
        ("new_email", "attacker@example.com"),
        ("current_password", "ann-pw"),
    ];
    let (client, from) = (&app.client, "10.0.0.1:1");
    let email_change = send(
        client,
        Method::Post,
        "/account/email",
        from,
        Some(laptop),
        &change,
    );
    let verification = send(
        client,
        Method::Post,
        "/account/verification",
        from,
        Some(laptop),
        &[],
    );
    Pending {
        email_change: token_in(email_change, "email_token"),
        verification: token_in(verification, "verification_token"),
        reset: app.reset_token_for("ann@example.com"),
    }
}

/// Every pending link (but the reset link, when it was the one spent) answers like an unknown
/// link, and the account's email is still Ann's.
fn assert_links_void(app: &TestApp, pending: &Pending, reset_spent: bool) {
    let confirm = |path: &str, token: &str| {
        send(
            &app.client,
            Method::Post,
            path,
            "10.0.0.9:1",
            None,
            &[("token", token)],
        )
    };
    let change = confirm("/account/email/confirm", &pending.email_change);
    assert_message(change, Status::Forbidden, INVALID_LINK);
    let verify = confirm("/account/verification/confirm", &pending.verification);
    assert_message(verify, Status::Forbidden, INVALID_LINK);
    if !reset_spent {
        let reset = app.update_password("ann@example.com", &pending.reset, "third-pw");
        assert_message(reset, Status::Forbidden, "invalid reset token");
    }
    let emails: Vec<String> = users::table
        .select(users::email)
        .load(&mut **app.db.conn())
        .unwrap();
    assert_eq!(emails, ["ann@example.com"], "the email did not move");
}

/// The digests of the devices trusted for Ann, sorted.
fn trusted(app: &TestApp) -> Vec<Vec<u8>> {
    let mut digests: Vec<Vec<u8>> = devices::table
        .select(devices::token_hash)
        .load(&mut **app.db.conn())
        .unwrap();
    digests.sort();
    digests
}

/// Ann, logged in on a laptop and a phone, with links pending.
fn ann_on_two_devices() -> (TestApp, Device, Device, Pending) {
    let app = TestApp::with_account("ann@example.com", "ann-pw");
    let laptop = log_in(&app, "10.0.0.1:1", None, "ann-pw");
    let phone = log_in(&app, "10.0.0.2:1", None, "ann-pw");
    assert_eq!(trusted(&app).len(), 2);
    let pending = pending_links(&app, &laptop);
    (app, laptop, phone, pending)
}

/// The phone's cookie, revoked, is no trusted device: a login with it gets a new one.
fn assert_replaced_at_next_login(app: &TestApp, phone: &Device, password: &str) {
    assert!(!trusted(app).contains(&phone.digest()));
    let again = log_in(app, "10.0.0.2:1", Some(phone), password);
    assert_ne!(
        again.cookie.value(),
        phone.cookie.value(),
        "a new device cookie"
    );
    assert!(trusted(app).contains(&again.digest()));
}

#[test]
fn a_password_change_voids_mailed_links_and_every_other_device() {
    let (app, laptop, phone, pending) = ann_on_two_devices();
    let fields = [
        ("current_password", "ann-pw"),
        ("new_password", "new-ann-pw"),
    ];
    let changed = send(
        &app.client,
        Method::Put,
        "/account/password",
        "10.0.0.1:1",
        Some(&laptop),
        &fields,
    );
    assert_eq!(changed.status(), Status::Ok);
    assert_links_void(&app, &pending, false);
    assert_eq!(trusted(&app), [laptop.digest()], "the laptop changed it");
    assert_replaced_at_next_login(&app, &phone, "new-ann-pw");
    let notice = app.db.mail("Your password was changed", 1);
    assert!(notice[0].contains("no longer works"), "{}", notice[0]);
}

#[test]
fn a_completed_reset_voids_the_other_links_and_every_device() {
    let (app, _laptop, phone, pending) = ann_on_two_devices();
    let reset = app.update_password("ann@example.com", &pending.reset, "new-ann-pw");
    assert_eq!(reset.status(), Status::Ok);
    assert_links_void(&app, &pending, true);
    assert_eq!(trusted(&app), Vec::<Vec<u8>>::new());
    assert_replaced_at_next_login(&app, &phone, "new-ann-pw");
}

#[test]
fn logging_out_the_other_devices_voids_mailed_links_and_their_trust() {
    let (app, laptop, phone, pending) = ann_on_two_devices();
    let ended = send(
        &app.client,
        Method::Delete,
        "/account/sessions",
        "10.0.0.1:1",
        Some(&laptop),
        &[],
    );
    assert_eq!(ended.status(), Status::Ok);
    assert_eq!(json(ended)["ended"], 1);
    assert_links_void(&app, &pending, false);
    assert_eq!(trusted(&app), [laptop.digest()]);
    assert_replaced_at_next_login(&app, &phone, "ann-pw");
}

#[test]
fn an_operators_new_password_voids_mailed_links_and_every_device() {
    let (app, _laptop, phone, pending) = ann_on_two_devices();
    let email = Email::parse("ann@example.com").unwrap();
    let password = Password::parse("set-by-operator").unwrap();
    operator(&app, |auth| async move {
        auth.operator().set_password(&email, password).await
    });
    assert_links_void(&app, &pending, false);
    assert_eq!(trusted(&app), Vec::<Vec<u8>>::new());
    assert_replaced_at_next_login(&app, &phone, "set-by-operator");
}

#[test]
fn an_operators_revocation_of_the_sessions_voids_mailed_links_and_every_device() {
    let (app, _laptop, phone, pending) = ann_on_two_devices();
    let email = Email::parse("ann@example.com").unwrap();
    assert_eq!(
        operator(&app, |auth| async move {
            auth.operator().revoke_sessions(&email).await
        }),
        2
    );
    assert_links_void(&app, &pending, false);
    assert_eq!(trusted(&app), Vec::<Vec<u8>>::new());
    assert_eq!(app.profile_status_of(&phone.session), Status::Forbidden);
    assert_replaced_at_next_login(&app, &phone, "ann-pw");
}

/// Runs an operator's command on the app's `Auth`, as the admin socket would.
fn operator<T, F>(app: &TestApp, command: impl FnOnce(Auth) -> F) -> T
where
    F: std::future::Future<Output = Result<T, auth_service::auth::AuthError>>,
{
    let auth = app.client.rocket().state::<Auth>().unwrap().clone();
    let runtime = rocket::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(command(auth)).unwrap()
}

#[test]
fn ending_a_session_from_the_list_ends_its_devices_trust() {
    let (app, laptop, phone, _pending) = ann_on_two_devices();
    let listed = send(
        &app.client,
        Method::Get,
        "/account/sessions",
        "10.0.0.1:1",
        Some(&laptop),
        &[],
    );
    let sessions = json(listed)["sessions"].as_array().unwrap().clone();
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    let path = format!("/account/sessions/{}", other["id"].as_str().unwrap());
    let ended = send(
        &app.client,
        Method::Delete,
        &path,
        "10.0.0.1:1",
        Some(&laptop),
        &[],
    );
    assert_eq!(ended.status(), Status::Ok);
    assert_eq!(trusted(&app), [laptop.digest()]);
    assert_eq!(app.profile_status_of(&phone.session), Status::Forbidden);
    assert_replaced_at_next_login(&app, &phone, "ann-pw");
}

#[test]
fn an_account_trusts_at_most_its_cap_of_devices_the_least_recently_used_go_first() {
    let app = TestApp::with(|f| f.merge(("trusted_devices_per_account", 3)));
    assert_eq!(
        app.register("ann@example.com", "ann-pw").status(),
        Status::Ok
    );
    let first = log_in(&app, "10.0.0.1:1", None, "ann-pw");
    // Used a minute ago: the others are used within the same second as each other.
    let earlier =
        diesel::update(devices::table).set(devices::last_used_at.eq(devices::last_used_at - 60));
    app.db.write(|c| earlier.execute(c));
    let others: Vec<Device> = (2..=4)
        .map(|n| log_in(&app, &format!("10.0.0.{n}:1"), None, "ann-pw"))
        .collect();
    let mut expected: Vec<Vec<u8>> = others.iter().map(Device::digest).collect();
    expected.sort();
    assert_eq!(trusted(&app), expected, "the first device went");
    assert!(!trusted(&app).contains(&first.digest()));
}

/// 30 device cookies of one account, each with a budget of 1 failure, get no more than the
/// account-wide ceiling (10 budgets) of guesses in a window, however they are spread.
#[rocket::async_test]
async fn a_stockpile_of_device_cookies_cannot_buy_more_guesses_than_the_ceiling() {
    let db = crate::helpers::TestDb::new(|f| {
        f.merge(("throttle_login_per_account", 1))
            .merge(("throttle_login_per_address", 1000))
            .merge(("trusted_devices_per_account", 30))
    });
    let client = AsyncClient::untracked(auth_service::build(db.figment.clone()))
        .await
        .unwrap();
    let register = client.post("/users").header(ContentType::Form).body(form(&[
        ("email", "ann@example.com"),
        ("password", "ann-pw"),
    ]));
    assert_eq!(register.dispatch().await.status(), Status::Ok);
    let mut cookies = Vec::new();
    for n in 0..30 {
        let login = client
            .post("/sessions")
            .remote(format!("10.1.0.{n}:1").parse::<SocketAddr>().unwrap())
            .header(ContentType::Form)
            .body(form(&[
                ("email", "ann@example.com"),
                ("password", "ann-pw"),
            ]))
            .dispatch()
            .await;
        assert_eq!(login.status(), Status::Ok);
        cookies.push(login.cookies().get_private("device").unwrap());
    }
    let guesses = cookies.iter().enumerate().map(|(n, cookie)| {
        client
            .post("/sessions")
            .remote(format!("10.2.0.{n}:1").parse::<SocketAddr>().unwrap())
            .header(ContentType::Form)
            .private_cookie(cookie.clone())
            .body(form(&[("email", "ann@example.com"), ("password", "guess")]))
            .dispatch()
    });
    let statuses: Vec<Status> = futures::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == Status::Unauthorized)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == Status::TooManyRequests)
        .count();
    assert_eq!((checked, refused), (10, 20), "{statuses:?}");
    assert_eq!(db.attempts("login_devices"), 10);
}

impl TestApp {
    fn profile_status_of(&self, session: &str) -> Status {
        self.profile(Some(session)).status()
    }
}

/// Ann signed up in a browser (so logged in and trusted) and logged in on a phone, with links
/// pending (asked for through the API with the browser's session).
fn ann_in_a_browser_and_on_a_phone() -> (TestApp, Client, Pending) {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "ann-pw");
    let phone = app.other_client(true);
    let login = phone
        .post("/sessions")
        .header(ContentType::Form)
        .body(form(&[
            ("email", "ann@example.com"),
            ("password", "ann-pw"),
        ]))
        .dispatch()
        .status();
    assert_eq!(login, Status::Ok);
    assert_eq!(trusted(&app).len(), 2);
    let api = |path: &str, fields: &[(&str, &str)]| {
        app.client
            .post(path.to_owned())
            .header(ContentType::Form)
            .body(form(fields))
            .dispatch()
    };
    let change = [
        ("new_email", "attacker@example.com"),
        ("current_password", "ann-pw"),
    ];
    let pending = Pending {
        email_change: token_in(api("/account/email", &change), "email_token"),
        verification: token_in(api("/account/verification", &[]), "verification_token"),
        reset: app.reset_token_for("ann@example.com"),
    };
    (app, phone, pending)
}

/// The digest of the device cookie in a browser's jar.
fn device_of(browser: &Client) -> Vec<u8> {
    let cookie = browser.cookies().get_private("device").unwrap();
    token::digest(cookie.value()).to_vec()
}

/// Each pending link, opened in another browser (the attacker's), shows the invalid-link page,
/// and the account's email is still Ann's.
fn assert_link_pages_void(app: &TestApp, pending: &Pending, reset_spent: bool) {
    let attacker = app.other_client(true);
    let mut links = vec![
        ("/email/confirm", &pending.email_change),
        ("/email/verify", &pending.verification),
    ];
    if !reset_spent {
        links.push(("/password/reset", &pending.reset));
    }
    for (path, token) in links {
        let opened = attacker.get(format!("{path}?token={token}")).dispatch();
        assert_eq!(opened.status(), Status::SeeOther, "{path}");
        let page = attacker
            .get(path)
            .header(rocket::http::Accept::HTML)
            .dispatch();
        assert_eq!(page.status(), Status::Forbidden, "{path}");
    }
    assert_links_void(app, pending, reset_spent);
}

#[test]
fn the_password_page_voids_mailed_links_and_the_other_devices() {
    let (app, phone, pending) = ann_in_a_browser_and_on_a_phone();
    let fields = [
        ("current_password", "ann-pw"),
        ("new_password", "new-ann-pw"),
    ];
    assert_eq!(
        app.submit("/account/password", &fields).status(),
        Status::SeeOther
    );
    assert_link_pages_void(&app, &pending, false);
    assert_eq!(trusted(&app), [device_of(&app.client)]);
    assert!(!trusted(&app).contains(&device_of(&phone)));
}

#[test]
fn the_reset_page_voids_the_other_links_and_every_device() {
    let (app, phone, pending) = ann_in_a_browser_and_on_a_phone();
    let opened = app
        .client
        .get(format!("/password/reset?token={}", pending.reset))
        .dispatch();
    assert_eq!(opened.status(), Status::SeeOther);
    let reset = app.submit("/password/reset", &[("new_password", "new-ann-pw")]);
    assert_eq!(reset.status(), Status::SeeOther);
    assert_link_pages_void(&app, &pending, true);
    assert_eq!(trusted(&app), Vec::<Vec<u8>>::new());
    assert!(!trusted(&app).contains(&device_of(&phone)));
}

#[test]
fn the_log_out_other_devices_button_voids_mailed_links_and_their_trust() {
    let (app, phone, pending) = ann_in_a_browser_and_on_a_phone();
    let ended = app.submit("/account/sessions/end-others", &[]);
    assert_eq!(ended.status(), Status::SeeOther);
    assert_link_pages_void(&app, &pending, false);
    assert_eq!(trusted(&app), [device_of(&app.client)]);
    assert!(!trusted(&app).contains(&device_of(&phone)));
}

#[test]
fn ending_a_session_on_the_profile_page_ends_its_devices_trust() {
    let (app, phone, _pending) = ann_in_a_browser_and_on_a_phone();
    let listed = app.client.get("/account/sessions").dispatch();
    let sessions = json(listed)["sessions"].as_array().unwrap().clone();
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    let id = other["id"].as_str().unwrap();
    assert_eq!(
        app.submit("/account/sessions/end", &[("id", id)]).status(),
        Status::SeeOther
    );
    assert_eq!(trusted(&app), [device_of(&app.client)]);
    assert!(!trusted(&app).contains(&device_of(&phone)));
}
