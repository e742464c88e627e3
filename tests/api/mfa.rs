//! Second factors through the API: an authenticator app (TOTP) and recovery codes, the sign-in
//! step that asks for them, `mfa_policy = "required"`, and what a credential change voids.

use auth_service::auth::totp;
use auth_service::db::schema::{recovery_codes, sessions, sign_in_steps, totp_credentials};
use diesel::prelude::*;
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::Client as AsyncClient;
use rocket::local::blocking::LocalResponse;
use rocket::serde::json::json;

use crate::helpers::{TestApp, assert_message, form, json, logged_in};

const ANN: &str = "ann@example.com";
const PASSWORD: &str = "pw";

/// An authenticator app set up with a secret.
struct App(Vec<u8>);

impl App {
    fn from_base32(secret: &str) -> App {
        App(data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .unwrap())
    }

    /// The code `offset` steps from now.
    fn code(&self, offset: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        totp::code(&self.0, totp::step_at(now) + offset)
    }
}

/// `fields` posted to `path` as a form, with the session `session` if given.
fn post<'c>(
    app: &'c TestApp,
    path: &str,
    session: Option<&str>,
    fields: &[(&str, &str)],
) -> LocalResponse<'c> {
    let mut request = app
        .client
        .post(path.to_owned())
        .header(ContentType::Form)
        .body(form(fields));
    if let Some(session) = session {
        request = request.cookie(Cookie::new("session_id", session.to_owned()));
    }
    request.dispatch()
}

fn get<'c>(app: &'c TestApp, path: &str, session: &str) -> LocalResponse<'c> {
    app.client
        .get(path.to_owned())
        .cookie(Cookie::new("session_id", session.to_owned()))
        .dispatch()
}

fn delete<'c>(app: &'c TestApp, path: &str, session: &str, password: &str) -> LocalResponse<'c> {
    app.client
        .delete(path.to_owned())
        .header(ContentType::Form)
        .cookie(Cookie::new("session_id", session.to_owned()))
        .body(form(&[("current_password", password)]))
        .dispatch()
}

/// Starts an authenticator setup for the session: the app holding its secret.
fn start_setup(app: &TestApp, session: &str) -> App {
    let response = post(
        app,
        "/account/totp",
        Some(session),
        &[("current_password", PASSWORD)],
    );
    assert_eq!(response.status(), Status::Ok);
    let body = json(response);
    let secret = body["secret"].as_str().unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    App::from_base32(secret)
}

/// Ann's account with an authenticator app confirmed: her session, the app, her recovery codes.
fn ann_enrolled(app: &TestApp) -> (String, App, Vec<String>) {
    assert_eq!(app.register(ANN, PASSWORD).status(), Status::Ok);
    let session = app.session_for(ANN, PASSWORD);
    let authenticator = start_setup(app, &session);
    let code = authenticator.code(0);
    let response = post(
        app,
        "/account/totp/confirm",
        Some(&session),
        &[("code", &code)],
    );
    assert_eq!(response.status(), Status::Ok);
    let codes: Vec<String> = json(response)["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (session, authenticator, codes)
}

/// Logs Ann in with her password: the `mfa_token` of the second step (checked to set no cookie).
fn mfa_token(app: &TestApp) -> String {
    let response = app.login(ANN, PASSWORD);
    assert_eq!(response.status(), Status::Ok);
    assert!(
        response.cookies().get("session_id").is_none(),
        "no session yet"
    );
    let body = json(response);
    assert_eq!(body["email"], ANN);
    assert_eq!(body["message"], "second factor required");
    body["mfa_token"].as_str().unwrap().to_owned()
}

/// Completes the step `token` with `field` = `value`.
fn answer<'c>(app: &'c TestApp, token: &str, field: &str, value: &str) -> LocalResponse<'c> {
    post(
        app,
        "/sessions/mfa",
        None,
        &[("mfa_token", token), (field, value)],
    )
}

/// The session cookie of a response that must have signed Ann in.
fn signed_in(response: LocalResponse<'_>) -> String {
    logged_in(response, ANN)
}

/// Lets every time step be used again (a test that signs in twice within one step).
fn forget_used_codes(app: &TestApp) {
    app.db.write(|c| {
        diesel::update(totp_credentials::table)
            .set(totp_credentials::last_step.eq(-1))
            .execute(c)
    });
}

#[test]
fn an_account_without_a_second_factor_logs_in_as_the_original_did() {
    let app = TestApp::with_account(ANN, PASSWORD);
    let response = app.login(ANN, PASSWORD);
    assert!(response.cookies().get("session_id").is_some());
    assert_eq!(
        json(response),
        json!({"email": ANN, "message": "logged in"})
    );
    let session = app.session_for(ANN, PASSWORD);
    let status = json(get(&app, "/account/mfa", &session));
    assert_eq!(
        status,
        json!({"totp": false, "passkeys": [], "recovery_codes_left": 0, "policy": "optional"})
    );
}

#[test]
fn an_authenticator_app_is_set_up_with_a_code_and_then_asked_for_at_every_login() {
    let app = TestApp::new();
    let (session, authenticator, codes) = ann_enrolled(&app);
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3, "{code}");
    }
    let status = json(get(&app, "/account/mfa", &session));
    assert_eq!(
        (
            status["totp"].clone(),
            status["recovery_codes_left"].clone()
        ),
        (json!(true), json!(10))
    );

    let response = app.login(ANN, PASSWORD);
    let body = json(response);
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    let token = body["mfa_token"].as_str().unwrap();
    assert_eq!(token.len(), 43);

    // The code that confirmed the setup was spent: it cannot sign in.
    let setup_code = authenticator.code(0);
    assert_message(
        answer(&app, token, "code", &setup_code),
        Status::Unauthorized,
        "invalid code",
    );
    assert_message(
        answer(&app, token, "code", "000000x"),
        Status::Unauthorized,
        "invalid code",
    );
    let next = authenticator.code(1);
    let new_session = signed_in(answer(&app, token, "code", &next));
    assert_eq!(get(&app, "/profile", &new_session).status(), Status::Ok);
    let amr: Vec<String> = sessions::table
        .select(sessions::amr)
        .order(sessions::created_at.desc())
        .load(&mut **app.db.conn())
        .unwrap();
    assert!(amr.contains(&"pwd otp".to_owned()), "{amr:?}");
    let listed = json(get(&app, "/account/sessions", &new_session));
    let current = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true);
    assert_eq!(current.unwrap()["amr"], json!(["pwd", "otp"]));

    // The token was spent; a new login with the same code is a replay.
    let message = "sign-in step unknown or expired: sign in again";
    assert_message(
        answer(&app, token, "code", &next),
        Status::Unauthorized,
        message,
    );
    let token = mfa_token(&app);
    assert_message(
        answer(&app, &token, "code", &next),
        Status::Unauthorized,
        "invalid code",
    );
    assert_eq!(
        app.login(ANN, "wrong").status(),
        Status::Unauthorized,
        "as today"
    );
}

#[test]
fn a_wrong_setup_code_confirms_nothing_and_a_confirmed_app_asks_for_no_new_codes() {
    let app = TestApp::with_account(ANN, PASSWORD);
    let session = app.session_for(ANN, PASSWORD);
    let confirm = |code: &str| {
        post(
            &app,
            "/account/totp/confirm",
            Some(&session),
            &[("code", code)],
        )
    };
    let message = "no authenticator setup is pending: start one first";
    assert_message(confirm("123456"), Status::Conflict, message);
    let wrong = post(
        &app,
        "/account/totp",
        Some(&session),
        &[("current_password", "nope")],
    );
    assert_message(wrong, Status::Unauthorized, "current password is wrong");
    let first = start_setup(&app, &session);
    let second = start_setup(&app, &session); // replaces the pending one
    let stale = first.code(0);
    if stale != second.code(0) {
        assert_message(confirm(&stale), Status::Unauthorized, "invalid code");
    }
    let response = app.login(ANN, PASSWORD);
    assert!(
        response.cookies().get("session_id").is_some(),
        "nothing confirmed yet"
    );
    assert_eq!(confirm(&second.code(0)).status(), Status::Ok);

    // A new phone: set up again while the old app keeps working until the new one is confirmed.
    let third = start_setup(&app, &session);
    let token = mfa_token(&app);
    forget_used_codes(&app);
    let session = signed_in(answer(&app, &token, "code", &second.code(0)));
    let response = post(
        &app,
        "/account/totp/confirm",
        Some(&session),
        &[("code", &third.code(0))],
    );
    assert_eq!(
        json(response),
        json!({"message": "authenticator app confirmed"})
    );
    forget_used_codes(&app);
    let token = mfa_token(&app);
    if second.code(0) != third.code(0) {
        assert_message(
            answer(&app, &token, "code", &second.code(0)),
            Status::Unauthorized,
            "invalid code",
        );
    }
    signed_in(answer(&app, &token, "code", &third.code(0)));
}

#[test]
fn a_recovery_code_signs_in_once_and_a_new_set_voids_the_old() {
    let app = TestApp::new();
    let (session, _, codes) = ann_enrolled(&app);
    let token = mfa_token(&app);
    let typed = codes[0].to_uppercase().replace('-', " ");
    let new_session = signed_in(answer(&app, &token, "recovery_code", &typed));
    let listed = json(get(&app, "/account/sessions", &new_session));
    let current = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true);
    assert_eq!(current.unwrap()["amr"], json!(["pwd", "rc"]));
    let token = mfa_token(&app);
    assert_message(
        answer(&app, &token, "recovery_code", &codes[0]),
        Status::Unauthorized,
        "invalid code",
    );
    assert_eq!(
        json(get(&app, "/account/mfa", &session))["recovery_codes_left"],
        9
    );

    let renewed = post(
        &app,
        "/account/recovery-codes",
        Some(&session),
        &[("current_password", PASSWORD)],
    );
    assert_eq!(renewed.status(), Status::Ok);
    let fresh = json(renewed)["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(fresh.len(), 10);
    assert_message(
        answer(&app, &token, "recovery_code", &codes[1]),
        Status::Unauthorized,
        "invalid code",
    );
    signed_in(answer(
        &app,
        &token,
        "recovery_code",
        fresh[0].as_str().unwrap(),
    ));
    let stored: Vec<Vec<u8>> = recovery_codes::table
        .select(recovery_codes::code_hash)
        .load(&mut **app.db.conn())
        .unwrap();
    assert_eq!(stored.len(), 9);
    for code in &fresh {
        let raw = code.as_str().unwrap().as_bytes();
        assert!(
            stored.iter().all(|digest| digest.as_slice() != raw),
            "digests only"
        );
    }
    assert_eq!(app.db.mail("New recovery codes", 1).len(), 1);
}

#[test]
fn two_concurrent_uses_of_one_recovery_code_give_exactly_one_session() {
    let app = TestApp::new();
    let (_, _, codes) = ann_enrolled(&app);
    let tokens: Vec<String> = (0..4).map(|_| mfa_token(&app)).collect();
    let sessions_before = app.db.session_count();
    let statuses = rocket::async_test(async {
        let client = AsyncClient::untracked(auth_service::build(app.db.figment.clone()))
            .await
            .unwrap();
        let uses = tokens.iter().map(|token| {
            client
                .post("/sessions/mfa")
                .header(ContentType::Form)
                .body(form(&[("mfa_token", token), ("recovery_code", &codes[3])]))
                .dispatch()
        });
        let responses = futures::future::join_all(uses).await;
        responses.iter().map(|r| r.status()).collect::<Vec<_>>()
    });
    let ok = statuses.iter().filter(|s| **s == Status::Ok).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == Status::Unauthorized)
        .count();
    assert_eq!((ok, refused), (1, 3), "{statuses:?}");
    assert_eq!(app.db.session_count(), sessions_before + 1);
}

#[test]
fn two_concurrent_uses_of_one_authenticator_code_give_exactly_one_session() {
    let app = TestApp::new();
    let (_, authenticator, _) = ann_enrolled(&app);
    let tokens: Vec<String> = (0..4).map(|_| mfa_token(&app)).collect();
    let code = authenticator.code(1);
    let sessions_before = app.db.session_count();
    let statuses = rocket::async_test(async {
        let client = AsyncClient::untracked(auth_service::build(app.db.figment.clone()))
            .await
            .unwrap();
        let uses = tokens.iter().map(|token| {
            client
                .post("/sessions/mfa")
                .header(ContentType::Form)
                .body(form(&[("mfa_token", token), ("code", &code)]))
                .dispatch()
        });
        let responses = futures::future::join_all(uses).await;
        responses.iter().map(|r| r.status()).collect::<Vec<_>>()
    });
    let ok = statuses.iter().filter(|s| **s == Status::Ok).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert_eq!(app.db.session_count(), sessions_before + 1);
}

#[test]
fn a_step_token_ends_after_five_wrong_codes_when_it_expires_and_at_a_credential_change() {
    let app = TestApp::new();
    let (session, authenticator, codes) = ann_enrolled(&app);
    let gone = "sign-in step unknown or expired: sign in again";
    let token = mfa_token(&app);
    for _ in 0..5 {
        assert_message(
            answer(&app, &token, "code", "000000"),
            Status::Unauthorized,
            "invalid code",
        );
    }
    assert_message(
        answer(&app, &token, "recovery_code", &codes[0]),
        Status::Unauthorized,
        gone,
    );
    assert_message(
        answer(&app, "no-such-token", "code", "000000"),
        Status::Unauthorized,
        gone,
    );

    let token = mfa_token(&app);
    app.db.write(|c| {
        diesel::update(sign_in_steps::table)
            .set(sign_in_steps::expires_at.eq(0))
            .execute(c)
    });
    assert_message(
        answer(&app, &token, "code", &authenticator.code(1)),
        Status::Unauthorized,
        gone,
    );

    // A password change voids the steps started with the old password.
    let token = mfa_token(&app);
    let change = app
        .client
        .put("/account/password")
        .header(ContentType::Form)
        .cookie(Cookie::new("session_id", session.clone()))
        .body(form(&[
            ("current_password", PASSWORD),
            ("new_password", "pw2"),
        ]))
        .dispatch();
    assert_eq!(change.status(), Status::Ok);
    assert_message(
        answer(&app, &token, "code", &authenticator.code(1)),
        Status::Unauthorized,
        gone,
    );
}

#[test]
fn bad_answers_are_400_naming_the_field() {
    let app = TestApp::new();
    ann_enrolled(&app);
    let token = mfa_token(&app);
    let both = [
        ("mfa_token", token.as_str()),
        ("code", "123456"),
        ("recovery_code", "x"),
    ];
    let message = "code and recovery_code: send one of them";
    assert_message(
        post(&app, "/sessions/mfa", None, &both),
        Status::BadRequest,
        message,
    );
    let neither = [("mfa_token", token.as_str())];
    let message = "code or recovery_code is required";
    assert_message(
        post(&app, "/sessions/mfa", None, &neither),
        Status::BadRequest,
        message,
    );
    let no_token = [("code", "123456")];
    let message = "mfa_token is required";
    assert_message(
        post(&app, "/sessions/mfa", None, &no_token),
        Status::BadRequest,
        message,
    );
}

#[test]
fn second_factor_failures_count_in_the_login_limits() {
    let app = TestApp::with(|f| f.merge(("throttle_login_per_account", 3)));
    let (_, authenticator, _) = ann_enrolled(&app);
    let token = mfa_token(&app);
    for _ in 0..3 {
        assert_message(
            answer(&app, &token, "code", "000000"),
            Status::Unauthorized,
            "invalid code",
        );
    }
    let response = answer(&app, &token, "code", &authenticator.code(1));
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response.headers().get_one("Retry-After").is_some());
    assert_eq!(app.login(ANN, PASSWORD).status(), Status::TooManyRequests);
}

#[test]
fn removing_the_app_needs_the_password_ends_other_sessions_and_is_mailed() {
    let app = TestApp::new();
    let (session, authenticator, _) = ann_enrolled(&app);
    let token = mfa_token(&app);
    let other = signed_in(answer(&app, &token, "code", &authenticator.code(1)));
    let wrong = delete(&app, "/account/totp", &session, "nope");
    assert_message(wrong, Status::Unauthorized, "current password is wrong");
    let removed = delete(&app, "/account/totp", &session, PASSWORD);
    assert_message(removed, Status::Ok, "authenticator app removed");
    assert_eq!(
        get(&app, "/profile", &other).status(),
        Status::Forbidden,
        "ended"
    );
    assert_eq!(get(&app, "/profile", &session).status(), Status::Ok, "kept");
    let status = json(get(&app, "/account/mfa", &session));
    assert_eq!(
        (
            status["totp"].clone(),
            status["recovery_codes_left"].clone()
        ),
        (json!(false), json!(0))
    );
    let response = app.login(ANN, PASSWORD);
    assert!(
        response.cookies().get("session_id").is_some(),
        "a password alone again"
    );
    let again = delete(&app, "/account/totp", &session, PASSWORD);
    assert_message(again, Status::NotFound, "no such second factor");
    let codes = post(
        &app,
        "/account/recovery-codes",
        Some(&session),
        &[("current_password", PASSWORD)],
    );
    assert_message(
        codes,
        Status::Conflict,
        "set up an authenticator app or a passkey first",
    );
    assert_eq!(app.db.mail("An authenticator app was added", 1).len(), 1);
    assert_eq!(app.db.mail("An authenticator app was removed", 1).len(), 1);
}

#[test]
fn confirming_an_app_ends_the_other_sessions() {
    let app = TestApp::with_account(ANN, PASSWORD);
    let session = app.session_for(ANN, PASSWORD);
    let other = app.session_for(ANN, PASSWORD);
    let authenticator = start_setup(&app, &session);
    let confirmed = post(
        &app,
        "/account/totp/confirm",
        Some(&session),
        &[("code", &authenticator.code(0))],
    );
    assert_eq!(confirmed.status(), Status::Ok);
    assert_eq!(get(&app, "/profile", &other).status(), Status::Forbidden);
    assert_eq!(get(&app, "/profile", &session).status(), Status::Ok);
}

#[test]
fn a_reset_never_opens_a_session_for_an_account_with_a_second_factor() {
    let app = TestApp::new();
    let (session, _, _) = ann_enrolled(&app);
    let token = app.reset_token_for(ANN);
    let response = app.update_password(ANN, &token, "new");
    assert_eq!(response.status(), Status::Ok);
    assert!(response.cookies().get("session_id").is_none());
    assert_eq!(app.db.session_count(), 0);
    assert_eq!(get(&app, "/profile", &session).status(), Status::Forbidden);
    let response = app.login(ANN, "new");
    assert_eq!(json(response)["message"], "second factor required");
    let status: i64 = totp_credentials::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(status, 1, "the reset kept the second factor");
}

#[test]
fn deleting_the_account_deletes_its_second_factors_and_steps() {
    let app = TestApp::new();
    let (session, _, _) = ann_enrolled(&app);
    mfa_token(&app);
    let deleted = delete(&app, "/account", &session, PASSWORD);
    assert_eq!(deleted.status(), Status::Ok);
    let conn = &mut **app.db.conn();
    let left: (i64, i64, i64) = (
        totp_credentials::table.count().get_result(conn).unwrap(),
        recovery_codes::table.count().get_result(conn).unwrap(),
        sign_in_steps::table.count().get_result(conn).unwrap(),
    );
    assert_eq!(left, (0, 0, 0));
}

#[test]
fn the_required_policy_gives_a_password_alone_a_session_that_can_only_enroll() {
    let app = TestApp::with(|f| f.merge(("mfa_policy", "required")));
    assert_eq!(app.register(ANN, PASSWORD).status(), Status::Ok);
    let session = app.session_for(ANN, PASSWORD);
    let required = "second factor enrollment required";
    assert_message(get(&app, "/profile", &session), Status::Forbidden, required);
    assert_message(
        get(&app, "/account/sessions", &session),
        Status::Forbidden,
        required,
    );
    let status = json(get(&app, "/account/mfa", &session));
    assert_eq!(status["policy"], "required");
    let authenticator = start_setup(&app, &session);
    let confirmed = post(
        &app,
        "/account/totp/confirm",
        Some(&session),
        &[("code", &authenticator.code(0))],
    );
    assert_eq!(confirmed.status(), Status::Ok);
    assert_eq!(
        get(&app, "/profile", &session).status(),
        Status::Ok,
        "enrolled"
    );
    let last = delete(&app, "/account/totp", &session, PASSWORD);
    let message = "the last second factor cannot be removed: every account needs one here";
    assert_message(last, Status::Conflict, message);
    let status = json(get(&app, "/account/mfa", &session));
    assert_eq!(status["totp"], true);
    // An enrolling session (the factor gone behind its back) can still log out.
    app.db
        .write(|c| diesel::delete(totp_credentials::table).execute(c));
    assert_message(get(&app, "/profile", &session), Status::Forbidden, required);
    assert_eq!(app.logout(Some(&session)).status(), Status::SeeOther);
    assert_eq!(app.db.session_count(), 0);
}

#[test]
fn the_debug_key_file_keeps_factors_usable_across_a_restart() {
    let app = TestApp::new();
    if app.db.is_postgres() {
        return; // the key file lies beside a SQLite database; PostgreSQL's tests set mfa_key
    }
    let (_, authenticator, _) = ann_enrolled(&app);
    let restarted = app.other_client(false);
    let send = |fields: &[(&str, &str)], path: &str| {
        let request = restarted.post(path.to_owned()).header(ContentType::Form);
        request.body(form(fields)).dispatch()
    };
    let response = send(&[("email", ANN), ("password", PASSWORD)], "/sessions");
    let token = json(response)["mfa_token"].as_str().unwrap().to_owned();
    let code = authenticator.code(1);
    signed_in(send(
        &[("mfa_token", &token), ("code", &code)],
        "/sessions/mfa",
    ));
}

#[test]
fn the_operator_turns_off_a_lost_phone_and_the_owner_is_told() {
    let app = TestApp::new();
    let (session, _, _) = ann_enrolled(&app);
    let auth = app
        .client
        .rocket()
        .state::<auth_service::auth::Auth>()
        .unwrap();
    let ann = auth_service::auth::Email::parse(ANN).unwrap();
    let had = rocket::async_test(auth.operator().disable_second_factors(&ann));
    assert!(had.unwrap());
    assert_eq!(
        get(&app, "/profile", &session).status(),
        Status::Forbidden,
        "ended"
    );
    let response = app.login(ANN, PASSWORD);
    assert_eq!(
        json(response),
        json!({"email": ANN, "message": "logged in"})
    );
    let conn = &mut **app.db.conn();
    let left: (i64, i64) = (
        totp_credentials::table.count().get_result(conn).unwrap(),
        recovery_codes::table.count().get_result(conn).unwrap(),
    );
    assert_eq!(left, (0, 0));
    assert_eq!(
        app.db.mail("The second factors of your account", 1).len(),
        1
    );
    assert!(app.db.audit_log().contains("admin.mfa_disabled"));
}

#[test]
fn the_cleanup_purges_expired_sign_in_steps() {
    let app = TestApp::new();
    ann_enrolled(&app);
    mfa_token(&app);
    mfa_token(&app);
    app.db.write(|c| {
        let first = sign_in_steps::table
            .select(sign_in_steps::token_hash)
            .first::<Vec<u8>>(c)?;
        diesel::update(sign_in_steps::table.find(first))
            .set(sign_in_steps::expires_at.eq(0))
            .execute(c)
    });
    let auth = app
        .client
        .rocket()
        .state::<auth_service::auth::Auth>()
        .unwrap();
    let purged = rocket::async_test(auth.operator().purge_expired()).unwrap();
    assert_eq!(purged.sign_in_steps, 1);
    let left: i64 = sign_in_steps::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(left, 1);
}

#[test]
fn the_owner_is_warned_when_two_recovery_codes_are_left() {
    let app = TestApp::new();
    let (_, _, codes) = ann_enrolled(&app);
    let warning = "Your account is running out of recovery codes";
    for code in &codes[..7] {
        let token = mfa_token(&app);
        signed_in(answer(&app, &token, "recovery_code", code));
    }
    assert!(app.db.mail(warning, 0).is_empty(), "3 left: no warning yet");
    let token = mfa_token(&app);
    signed_in(answer(&app, &token, "recovery_code", &codes[7]));
    let mails = app.db.mail(warning, 1);
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("2 are"), "{}", mails[0]);
}

#[test]
fn a_started_setup_is_void_after_a_reset_and_after_ten_minutes() {
    let app = TestApp::with_account(ANN, PASSWORD);
    let session = app.session_for(ANN, PASSWORD);
    let pending = "no authenticator setup is pending: start one first";
    let abandoned = start_setup(&app, &session);
    app.db.write(|c| {
        diesel::update(totp_credentials::table)
            .set(totp_credentials::created_at.eq(totp_credentials::created_at - 601))
            .execute(c)
    });
    let code = abandoned.code(0);
    let late = post(
        &app,
        "/account/totp/confirm",
        Some(&session),
        &[("code", &code)],
    );
    assert_message(late, Status::Conflict, pending);

    let started = start_setup(&app, &session);
    let token = app.reset_token_for(ANN);
    assert_eq!(
        app.update_password(ANN, &token, PASSWORD).status(),
        Status::Ok
    );
    let session = app.session_for(ANN, PASSWORD);
    let code = started.code(0);
    let voided = post(
        &app,
        "/account/totp/confirm",
        Some(&session),
        &[("code", &code)],
    );
    assert_message(voided, Status::Conflict, pending);
}

#[test]
fn failures_from_elsewhere_do_not_lock_a_trusted_device_out_of_its_second_step() {
    let app = TestApp::browser_with(|f| f.merge(("throttle_login_per_account", 3)));
    app.sign_up(ANN, PASSWORD);
    let setup = app.submit("/account/security/totp", &[("current_password", PASSWORD)]);
    let page = crate::helpers::html(setup);
    let start = page.find("<code id=\"secret\">").unwrap() + "<code id=\"secret\">".len();
    let end = start + page[start..].find("</code>").unwrap();
    let authenticator = App::from_base32(&page[start..end].replace(' ', ""));
    let code = authenticator.code(0);
    let confirmed = app.submit("/account/security/totp/confirm", &[("code", &code)]);
    assert_eq!(confirmed.status(), Status::Ok);
    drop(confirmed);
    app.log_out();
    // Someone elsewhere spends the account's budget.
    let elsewhere = app.other_client(false);
    for _ in 0..3 {
        let wrong = elsewhere
            .post("/sessions")
            .header(ContentType::Form)
            .body(form(&[("email", ANN), ("password", "wrong")]))
            .dispatch();
        assert_eq!(wrong.status(), Status::Unauthorized);
    }
    // The owner's browser, a trusted device, still gets through both steps.
    let login = app.submit("/login", &[("email", ANN), ("password", PASSWORD)]);
    assert_eq!(crate::helpers::location(&login), "/login/second-factor");
    drop(login);
    let code = authenticator.code(1);
    let done = app.submit("/login/second-factor", &[("code", &code)]);
    assert_eq!(crate::helpers::location(&done), "/profile");
}
