//! Passkeys through the API, with a software authenticator: registering one, signing in with
//! it alone and as a second factor, and each refusal (another origin, a replayed or expired
//! ceremony, another account's credential, no user verification, an unknown email).

use auth_service::db::schema::{passkeys, sessions, sign_in_steps};
use diesel::prelude::*;
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::blocking::LocalResponse;
use rocket::serde::json::{Value, json};

use crate::authenticator::SoftPasskey;
use crate::helpers::{TestApp, assert_message, json, logged_in};

const ANN: &str = "ann@example.com";
const ORIGIN: &str = "http://localhost:5000";

/// `body` posted as JSON to `path`, with the session `session` if given.
fn post<'c>(app: &'c TestApp, path: &str, session: Option<&str>, body: Value) -> LocalResponse<'c> {
    let mut request = app
        .client
        .post(path.to_owned())
        .header(ContentType::JSON)
        .body(body.to_string());
    if let Some(session) = session {
        request = request.cookie(Cookie::new("session_id", session.to_owned()));
    }
    request.dispatch()
}

/// Registers `passkey` for the session's account: the answer.
fn register<'c>(app: &'c TestApp, session: &str, passkey: &mut SoftPasskey) -> LocalResponse<'c> {
    let options = post(
        app,
        "/account/passkeys/options",
        Some(session),
        json!({"current_password": "pw"}),
    );
    assert_eq!(options.status(), Status::Ok);
    let options = json(options);
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let credential = passkey.register(&options["publicKey"]);
    let body = json!({"challenge_id": options["challenge_id"], "credential": credential, "name": "Laptop"});
    post(app, "/account/passkeys", Some(session), body)
}

/// Ann, signed in, with `passkey` registered: her session.
fn ann_with_passkey(app: &TestApp, passkey: &mut SoftPasskey) -> String {
    assert_eq!(app.register(ANN, "pw").status(), Status::Ok);
    let session = app.session_for(ANN, "pw");
    let added = register(app, &session, passkey);
    assert_eq!(added.status(), Status::Created);
    let body = json(added);
    assert_eq!(body["name"], "Laptop");
    session
}

/// Asserts that `passkey`'s answer to `options` signs no one in.
fn assert_refused(app: &TestApp, passkey: &mut SoftPasskey, options: &Value) {
    let credential = passkey.sign_in(&options["publicKey"]);
    let refused = sign_in(app, options, credential);
    assert_message(
        refused,
        Status::Unauthorized,
        "the passkey could not be verified",
    );
}

/// The options and ceremony id of a sign-in without a password for `email`.
fn sign_in_options(app: &TestApp, email: &str) -> Value {
    let options = post(
        app,
        "/sessions/passkey/options",
        None,
        json!({"email": email}),
    );
    assert_eq!(options.status(), Status::Ok);
    json(options)
}

fn sign_in<'c>(app: &'c TestApp, options: &Value, credential: Value) -> LocalResponse<'c> {
    let body = json!({"challenge_id": options["challenge_id"], "credential": credential});
    post(app, "/sessions/passkey", None, body)
}

#[test]
fn a_registered_passkey_signs_in_alone_and_as_a_second_factor() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    let session = ann_with_passkey(&app, &mut passkey);
    let listed = json(
        app.client
            .get("/account/mfa")
            .cookie(Cookie::new("session_id", session.clone()))
            .dispatch(),
    );
    assert_eq!(listed["passkeys"][0]["name"], "Laptop");
    assert_eq!(listed["passkeys"][0]["last_used_at"], Value::Null);

    // Without a password.
    let options = sign_in_options(&app, ANN);
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let credential = passkey.sign_in(&options["publicKey"]);
    let alone = logged_in(sign_in(&app, &options, credential.clone()), ANN);
    let sessions = json(
        app.client
            .get("/account/sessions")
            .cookie(Cookie::new("session_id", alone))
            .dispatch(),
    );
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true);
    assert_eq!(current.unwrap()["amr"], json!(["passkey"]));
    let replayed = sign_in(&app, &options, credential);
    assert_message(
        replayed,
        Status::Unauthorized,
        "the passkey could not be verified",
    );

    // After a password: the step lists passkey.
    let login = json(app.login(ANN, "pw"));
    assert_eq!(login["methods"], json!(["passkey"]));
    let token = login["mfa_token"].as_str().unwrap();
    let options = post(
        &app,
        "/sessions/mfa/passkey/options",
        None,
        json!({"mfa_token": token}),
    );
    let options = json(options);
    let credential = passkey.sign_in(&options["publicKey"]);
    let response = post(
        &app,
        "/sessions/mfa/passkey",
        None,
        json!({"mfa_token": token, "credential": credential}),
    );
    assert_eq!(response.status(), Status::Ok);
    assert!(response.cookies().get("session_id").is_some());
    let counts: Vec<(i64, Option<i64>)> = passkeys::table
        .select((passkeys::sign_count, passkeys::last_used_at))
        .load(&mut **app.db.conn())
        .unwrap();
    assert_eq!(counts[0].0, 2, "the sign counter is stored");
    assert!(counts[0].1.is_some(), "and the last use");
}

#[test]
fn a_form_body_carries_the_credential_as_text() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    ann_with_passkey(&app, &mut passkey);
    let options = sign_in_options(&app, ANN);
    let credential = passkey.sign_in(&options["publicKey"]).to_string();
    let challenge = options["challenge_id"].as_str().unwrap();
    let response = app.post_form(
        "/sessions/passkey",
        &[("challenge_id", challenge), ("credential", &credential)],
    );
    assert_eq!(response.status(), Status::Ok);
    let bad = app.post_form(
        "/sessions/passkey",
        &[("challenge_id", challenge), ("credential", "not json")],
    );
    assert_message(bad, Status::BadRequest, "credential must be a JSON object");
}

#[test]
fn a_wrong_origin_no_user_verification_or_an_expired_ceremony_is_refused() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    ann_with_passkey(&app, &mut passkey);
    let refused = "the passkey could not be verified";

    passkey.origin = "http://evil.example:5000".into();
    let options = sign_in_options(&app, ANN);
    let credential = passkey.sign_in(&options["publicKey"]);
    assert_message(
        sign_in(&app, &options, credential),
        Status::Unauthorized,
        refused,
    );
    passkey.origin = ORIGIN.into();

    passkey.verifies_user = false;
    let options = sign_in_options(&app, ANN);
    let credential = passkey.sign_in(&options["publicKey"]);
    assert_message(
        sign_in(&app, &options, credential),
        Status::Unauthorized,
        refused,
    );
    passkey.verifies_user = true;

    let options = sign_in_options(&app, ANN);
    app.db.write(|c| {
        diesel::update(sign_in_steps::table)
            .set(sign_in_steps::expires_at.eq(0))
            .execute(c)
    });
    let credential = passkey.sign_in(&options["publicKey"]);
    assert_message(
        sign_in(&app, &options, credential),
        Status::Unauthorized,
        refused,
    );
    assert_eq!(
        app.db.session_count(),
        1,
        "only the password's session of the setup"
    );
}

#[test]
fn a_passkey_without_user_verification_or_registered_elsewhere_is_not_added() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    ann_with_passkey(&app, &mut passkey);
    assert_eq!(app.register("bob@example.com", "pw").status(), Status::Ok);
    let bob = app.session_for("bob@example.com", "pw");
    let taken = register(&app, &bob, &mut passkey);
    assert_message(
        taken,
        Status::Conflict,
        "this passkey is registered already",
    );

    let mut lax = SoftPasskey::new(ORIGIN);
    lax.verifies_user = false;
    let refused = register(&app, &bob, &mut lax);
    assert_message(
        refused,
        Status::Unauthorized,
        "the passkey could not be verified",
    );

    // A ceremony is answered once.
    let mut other = SoftPasskey::new(ORIGIN);
    let options = json(post(
        &app,
        "/account/passkeys/options",
        Some(&bob),
        json!({"current_password": "pw"}),
    ));
    let credential = other.register(&options["publicKey"]);
    let body =
        json!({"challenge_id": options["challenge_id"], "credential": credential, "name": "Phone"});
    assert_eq!(
        post(&app, "/account/passkeys", Some(&bob), body.clone()).status(),
        Status::Created
    );
    let again = post(&app, "/account/passkeys", Some(&bob), body);
    assert_message(
        again,
        Status::Unauthorized,
        "sign-in step unknown or expired: sign in again",
    );
    let count: i64 = passkeys::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(count, 2);
}

#[test]
fn an_unknown_email_gets_options_of_the_same_shape_with_stable_decoys() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    ann_with_passkey(&app, &mut passkey);
    let real = sign_in_options(&app, ANN);
    let decoy = sign_in_options(&app, "nobody@example.com");
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&real), keys(&decoy));
    assert_eq!(keys(&real["publicKey"]), keys(&decoy["publicKey"]));
    let allowed = |v: &Value| v["publicKey"]["allowCredentials"].clone();
    assert_eq!(keys(&allowed(&real)[0]), keys(&allowed(&decoy)[0]));
    assert_eq!(
        allowed(&decoy),
        allowed(&sign_in_options(&app, "nobody@example.com")),
        "stable"
    );
    assert_ne!(
        allowed(&decoy),
        allowed(&sign_in_options(&app, "other@example.com"))
    );
    assert_eq!(decoy["publicKey"]["rpId"], real["publicKey"]["rpId"]);
    assert_refused(&app, &mut passkey, &decoy);
}

#[test]
fn removing_a_passkey_needs_the_password_and_only_the_owner_can() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    let session = ann_with_passkey(&app, &mut passkey);
    let status = json(
        app.client
            .get("/account/mfa")
            .cookie(Cookie::new("session_id", session.clone()))
            .dispatch(),
    );
    let id = status["passkeys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.register("bob@example.com", "pw").status(), Status::Ok);
    let bob = app.session_for("bob@example.com", "pw");
    let delete = |session: &str, password: &str| {
        app.client
            .delete(format!("/account/passkeys/{id}"))
            .header(ContentType::Form)
            .cookie(Cookie::new("session_id", session.to_owned()))
            .body(format!("current_password={password}"))
            .dispatch()
    };
    assert_message(
        delete(&bob, "pw"),
        Status::NotFound,
        "no such second factor",
    );
    assert_message(
        delete(&session, "nope"),
        Status::Unauthorized,
        "current password is wrong",
    );
    assert_message(delete(&session, "pw"), Status::Ok, "passkey removed");
    let response = app.login(ANN, "pw");
    assert!(
        response.cookies().get("session_id").is_some(),
        "a password alone again"
    );
    assert_eq!(app.db.mail("A passkey was removed", 1).len(), 1);
}

#[test]
fn the_operator_disable_removes_passkeys_too() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    ann_with_passkey(&app, &mut passkey);
    let auth = app
        .client
        .rocket()
        .state::<auth_service::auth::Auth>()
        .unwrap();
    let ann = auth_service::auth::Email::parse(ANN).unwrap();
    let had = rocket::async_test(auth.operator().disable_second_factors(&ann));
    assert!(had.unwrap());
    let count: i64 = passkeys::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(count, 0);
    let options = sign_in_options(&app, ANN);
    assert_refused(&app, &mut passkey, &options);
}

#[test]
fn a_passkey_sign_in_within_five_minutes_stands_in_for_the_password() {
    let app = TestApp::new();
    let mut passkey = SoftPasskey::new(ORIGIN);
    let by_password = ann_with_passkey(&app, &mut passkey);
    let renew =
        |session: &str, body: Value| post(&app, "/account/recovery-codes", Some(session), body);
    let required = "current_password is required";
    assert_message(
        renew(&by_password, json!({})),
        Status::Unauthorized,
        required,
    );

    let options = sign_in_options(&app, ANN);
    let credential = passkey.sign_in(&options["publicKey"]);
    let response = sign_in(&app, &options, credential);
    let by_passkey = response
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    drop(response);
    let renewed = renew(&by_passkey, json!({}));
    assert_eq!(renewed.status(), Status::Ok);
    assert_eq!(
        json(renewed)["recovery_codes"].as_array().unwrap().len(),
        10
    );
    let wrong = renew(&by_passkey, json!({"current_password": "nope"}));
    assert_message(wrong, Status::Unauthorized, "current password is wrong");

    app.db.write(|c| {
        diesel::update(sessions::table)
            .set(sessions::created_at.eq(sessions::created_at - 301))
            .execute(c)
    });
    assert_message(
        renew(&by_passkey, json!({})),
        Status::Unauthorized,
        required,
    );
}

#[test]
fn under_the_required_policy_a_passkey_enrolls_and_the_last_one_stays() {
    let app = TestApp::with(|f| f.merge(("mfa_policy", "required")));
    let mut passkey = SoftPasskey::new(ORIGIN);
    assert_eq!(app.register(ANN, "pw").status(), Status::Ok);
    let session = app.session_for(ANN, "pw");
    let profile = |session: &str| {
        let request = app.client.get("/profile");
        request
            .cookie(Cookie::new("session_id", session.to_owned()))
            .dispatch()
            .status()
    };
    assert_eq!(profile(&session), Status::Forbidden, "enrolling");
    assert_eq!(
        register(&app, &session, &mut passkey).status(),
        Status::Created
    );
    assert_eq!(profile(&session), Status::Ok, "enrolled");
    let status = json(
        app.client
            .get("/account/mfa")
            .cookie(Cookie::new("session_id", session.clone()))
            .dispatch(),
    );
    let id = status["passkeys"][0]["id"].as_str().unwrap().to_owned();
    let removal = app
        .client
        .delete(format!("/account/passkeys/{id}"))
        .header(ContentType::Form)
        .cookie(Cookie::new("session_id", session))
        .body("current_password=pw")
        .dispatch();
    let message = "the last second factor cannot be removed: every account needs one here";
    assert_message(removal, Status::Conflict, message);
}
