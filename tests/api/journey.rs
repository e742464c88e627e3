//! The original service's own end-to-end script (its `main.py`), step by step, as its clients
//! run it: form-encoded bodies, the cookie sent back by hand, the logout redirect followed.

use rocket::http::Status;
use rocket::serde::json::json;

use crate::helpers::{TestApp, json};

const EMAIL: &str = "guillaume@holberton.io";
const PASSWD: &str = "b4l0u";
const NEW_PASSWD: &str = "t4rt1fl3tt3";

#[test]
fn the_original_end_to_end_flow_passes() {
    let app = TestApp::new();

    // register_user
    let response = app.register(EMAIL, PASSWD);
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": EMAIL, "message": "user created" })
    );

    // log_in_wrong_password
    assert_eq!(app.login(EMAIL, NEW_PASSWD).status(), Status::Unauthorized);

    // profile_unlogged
    assert_eq!(app.profile(None).status(), Status::Forbidden);

    // log_in
    let response = app.login(EMAIL, PASSWD);
    assert_eq!(response.status(), Status::Ok);
    let session_id = response
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    assert_eq!(
        json(response),
        json!({ "email": EMAIL, "message": "logged in" })
    );

    // profile_logged
    let response = app.profile(Some(&session_id));
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": EMAIL, "email_verified": false })
    );

    // log_out, following the redirect like `requests` does
    let response = app.logout(Some(&session_id));
    assert_eq!(response.status(), Status::SeeOther);
    let location = response.headers().get_one("Location").unwrap().to_owned();
    let followed = app.client.get(location).dispatch();
    assert_eq!(followed.status(), Status::Ok);
    assert_eq!(json(followed), json!({ "message": "Bienvenue" }));

    // reset_password_token
    let response = app.request_reset(EMAIL);
    assert_eq!(response.status(), Status::Ok);
    let body = json(response);
    let reset_token = body["reset_token"].as_str().unwrap().to_owned();
    assert_eq!(body, json!({ "email": EMAIL, "reset_token": reset_token }));

    // update_password
    let response = app.update_password(EMAIL, &reset_token, NEW_PASSWD);
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": EMAIL, "message": "Password updated" })
    );

    // log_in with the new password
    let response = app.login(EMAIL, NEW_PASSWD);
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        json(response),
        json!({ "email": EMAIL, "message": "logged in" })
    );
}
