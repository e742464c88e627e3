//! A property-based sweep of bad input: arbitrary methods, bodies, content types, field values
//! and cookies at every endpoint and page. No answer may be a 5xx, and a rejected request must
//! leave users, sessions, reset tokens and second factors exactly as they were (throttling rows
//! and a pending step's count of wrong answers excepted).
//! `PROPTEST_CASES` sets the number of requests (256 by default).

use auth_service::db::schema::{
    account_tokens, oidc_grants, oidc_tokens, recovery_codes, sessions, totp_credentials, users,
};
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rocket::http::{Accept, ContentType, Cookie, Header, Method};

use crate::helpers::TestApp;

const PATHS: &[&str] = &[
    "/",
    "/users",
    "/sessions",
    "/profile",
    "/reset_password",
    "/signup",
    "/login",
    "/logout",
    "/password/forgot",
    "/password/reset",
    "/account",
    "/account/sessions",
    "/account/sessions/abcdefghijklmnopqrstuv",
    "/account/sessions/end",
    "/account/sessions/end-others",
    "/account/password",
    "/account/verification",
    "/account/verification/confirm",
    "/account/verification/send",
    "/account/email",
    "/account/email/confirm",
    "/account/delete",
    "/sessions/mfa",
    "/account/mfa",
    "/account/totp",
    "/account/totp/confirm",
    "/account/recovery-codes",
    "/login/second-factor",
    "/sessions/mfa/passkey/options",
    "/sessions/mfa/passkey",
    "/sessions/passkey/options",
    "/sessions/passkey",
    "/account/passkeys/options",
    "/account/passkeys",
    "/account/passkeys/abcdefghijklmnopqrstuv",
    "/account/security/passkeys/new",
    "/account/security/passkeys",
    "/account/security/passkeys/remove",
    "/account/security/passkeys/remove?id=abc",
    "/login/passkey",
    "/login/passkey/finish",
    "/login/second-factor/passkey",
    "/account/security",
    "/account/security/totp",
    "/account/security/totp/confirm",
    "/account/security/totp/remove",
    "/account/security/recovery-codes",
    "/email/verify",
    "/email/confirm",
    "/static/css/style.css",
    "/.well-known/openid-configuration",
    "/oauth/jwks",
    "/oauth/authorize",
    "/oauth/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.test%2F",
    "/oauth/authorize/resume",
    "/oauth/token",
    "/oauth/userinfo",
    "/oauth/introspect",
    "/oauth/revoke",
    "/oauth/logout",
    "/oauth/logout?id_token_hint=a.b.c&post_logout_redirect_uri=x",
    "/account/applications",
    "/account/applications/abcdefghijklmnopqrstuv",
    "/account/applications/revoke",
];

#[derive(Clone)]
struct BadRequest {
    method: Method,
    path: String,
    content_type: Option<String>,
    accept_html: bool,
    body: Vec<u8>,
    session: Option<String>,
    csrf: Option<String>,
}

/// Shows the body as a short lossy prefix and its length, so a failure report stays readable.
impl std::fmt::Debug for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = String::from_utf8_lossy(&self.body[..self.body.len().min(120)]);
        f.debug_struct("BadRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("accept_html", &self.accept_html)
            .field("body_len", &self.body.len())
            .field("body_prefix", &prefix)
            .field("session", &self.session)
            .field("csrf", &self.csrf)
            .finish()
    }
}

/// Text meant to break things: SQL, templates, markup, control characters, bad encodings.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("' OR 1=1; DROP TABLE users; --".to_owned()),
        Just("{{ 7*7 }}{% raw %}<script>alert(1)</script>".to_owned()),
        Just("%FF%FE%00".to_owned()),
        Just("\0\r\n\t\u{7f}".to_owned()),
        Just("a".repeat(100_000)),
        Just("ann@example.com".to_owned()),
        "[a-z]{1,8}@[a-z]{1,8}\\.(com|io)",
        ".{0,80}",
        any::<String>(),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("email".to_owned()),
        Just("password".to_owned()),
        Just("new_password".to_owned()),
        Just("reset_token".to_owned()),
        Just("csrf_token".to_owned()),
        Just("current_password".to_owned()),
        Just("new_email".to_owned()),
        Just("token".to_owned()),
        Just("id".to_owned()),
        Just("mfa_token".to_owned()),
        Just("code".to_owned()),
        Just("recovery_code".to_owned()),
        Just("challenge_id".to_owned()),
        Just("credential".to_owned()),
        Just("name".to_owned()),
        Just("grant_type".to_owned()),
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        Just("refresh_token".to_owned()),
        Just("code_verifier".to_owned()),
        Just("redirect_uri".to_owned()),
        Just("decision".to_owned()),
        Just("id_token_hint".to_owned()),
        "[a-z_\\[\\].%]{0,10}",
    ]
}

/// A body: raw bytes, a form (sometimes with raw, unencoded values) or a JSON document.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let fields = || prop::collection::vec((field_name(), nasty_text()), 0..5);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        fields().prop_map(|fields| {
            let pairs: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join("&").into_bytes()
        }),
        fields().prop_map(|fields| {
            let object: serde_json::Map<String, serde_json::Value> =
                fields.into_iter().map(|(k, v)| (k, v.into())).collect();
            serde_json::to_vec(&object).unwrap()
        }),
        Just(br#"{"email": 1, "password": [true], "new_password": {"a": null}}"#.to_vec()),
    ]
}

fn request(live_session: String, client_id: String) -> impl Strategy<Value = BadRequest> {
    let method = prop_oneof![
        Just(Method::Get),
        Just(Method::Post),
        Just(Method::Put),
        Just(Method::Delete),
        Just(Method::Patch),
    ];
    let path = prop_oneof![
        prop::sample::select(PATHS).prop_map(str::to_owned),
        ("(password/reset|email/verify|email/confirm)", "[a-z]{0,12}")
            .prop_map(|(page, token)| format!("/{page}?token={token}")),
        // A registered client's authorization request, with junk in one parameter.
        (
            "(scope|state|nonce|prompt|max_age|code_challenge|login_hint|request)",
            "[ -~]{0,40}"
        )
            .prop_map(move |(name, junk)| {
                let junk = crate::helpers::form(&[(&name, &junk)]);
                format!(
                    "/oauth/authorize?response_type=code&client_id={client_id}\
                     &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=openid\
                     &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
                     &code_challenge_method=S256&{junk}"
                )
            }),
        "[ -~]{0,30}".prop_map(|junk| format!("/{}", junk.replace(['#', '?', ' '], ""))),
    ];
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        Just(Some("application/json".to_owned())),
        Just(Some("text/plain".to_owned())),
        Just(Some("multipart/form-data; boundary=x".to_owned())),
        "[a-z]{1,8}/[a-z+.-]{1,12}".prop_map(Some),
    ];
    let session = prop_oneof![
        Just(None),
        Just(Some(live_session)),
        "[A-Za-z0-9_-]{0,60}".prop_map(Some),
    ];
    let csrf = prop_oneof![Just(None), "[A-Za-z0-9_-]{0,60}".prop_map(Some)];
    (
        method,
        path,
        content_type,
        any::<bool>(),
        body(),
        session,
        csrf,
    )
        .prop_map(
            |(method, path, content_type, accept_html, body, session, csrf)| BadRequest {
                method,
                path,
                content_type,
                accept_html,
                body,
                session,
                csrf,
            },
        )
}

type Snapshot = (
    Vec<(i32, String, String)>,
    Vec<(Vec<u8>, i32, i64)>,
    Vec<(Vec<u8>, i32, i64, i64)>,
    Vec<(i32, bool, Vec<u8>, i64)>,
    Vec<Vec<u8>>,
    (Vec<(Vec<u8>, Option<i64>)>, Vec<(i32, String, String)>),
);

/// Everything a rejected request must not change.
fn snapshot(app: &TestApp) -> Snapshot {
    let conn = &mut **app.db.conn();
    let accounts = users::table
        .select((users::id, users::email, users::hashed_password))
        .order(users::id)
        .load(conn)
        .unwrap();
    let reset_tokens = account_tokens::table
        .filter(account_tokens::purpose.eq("reset"))
        .select((
            account_tokens::token_hash,
            account_tokens::user_id,
            account_tokens::expires_at,
        ))
        .order(account_tokens::user_id)
        .load(conn)
        .unwrap();
    let live = sessions::table
        .select((
            sessions::token_hash,
            sessions::user_id,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .order(sessions::token_hash)
        .load(conn)
        .unwrap();
    let totp = totp_credentials::table
        .select((
            totp_credentials::user_id,
            totp_credentials::confirmed,
            totp_credentials::secret,
            totp_credentials::last_step,
        ))
        .order((totp_credentials::user_id, totp_credentials::confirmed))
        .load(conn)
        .unwrap();
    let codes = recovery_codes::table
        .select(recovery_codes::code_hash)
        .order(recovery_codes::code_hash)
        .load(conn)
        .unwrap();
    let tokens = oidc_tokens::table
        .select((oidc_tokens::token_hash, oidc_tokens::spent_at))
        .order(oidc_tokens::token_hash)
        .load(conn)
        .unwrap();
    let grants = oidc_grants::table
        .select((
            oidc_grants::user_id,
            oidc_grants::client_id,
            oidc_grants::scopes,
        ))
        .order((oidc_grants::user_id, oidc_grants::client_id))
        .load(conn)
        .unwrap();
    (accounts, reset_tokens, live, totp, codes, (tokens, grants))
}

#[test]
fn arbitrary_requests_never_get_a_5xx_and_rejected_ones_change_nothing() {
    let app = TestApp::new();
    app.register("ann@example.com", "pw");
    let live_session = app.session_for("ann@example.com", "pw");
    app.reset_token_for("ann@example.com");
    let setup = app
        .client
        .post("/account/totp")
        .header(ContentType::Form)
        .cookie(Cookie::new("session_id", live_session.clone()))
        .body("current_password=pw")
        .dispatch();
    assert_eq!(
        setup.status(),
        rocket::http::Status::Ok,
        "a pending authenticator"
    );

    // A registered application, so that authorization requests get past the client check.
    let client = crate::oidc::register(
        &app,
        auth_service::auth::oidc::NewClient {
            public: true,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            ..crate::oidc::confidential()
        },
    );
    let client_id = client.client.client_id.clone();

    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&request(live_session, client_id), |bad| {
        let before = snapshot(&app);
        let mut request = app.client.req(bad.method, bad.path.clone()).body(&bad.body);
        if let Some(content_type) = &bad.content_type {
            request = request.header(Header::new("Content-Type", content_type.clone()));
        }
        if bad.accept_html {
            request = request.header(Accept::HTML);
        }
        if let Some(session) = &bad.session {
            request = request.cookie(Cookie::new("session_id", session.clone()));
        }
        if let Some(csrf) = &bad.csrf {
            request = request.cookie(Cookie::new("csrf_token", csrf.clone()));
        }
        let response = request.dispatch();
        let status = response.status();
        prop_assert!(status.code < 500, "{status} for {bad:?}");
        let is_api = response.content_type() != Some(ContentType::HTML);
        if status.code >= 400 && is_api && bad.path != "/static/css/style.css" {
            let body = response.into_string().unwrap_or_default();
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            prop_assert!(json["message"].is_string(), "{status} {body:?} for {bad:?}");
        }
        if status.code >= 400 {
            prop_assert_eq!(
                snapshot(&app),
                before,
                "{} changed state: {:?}",
                status,
                bad
            );
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
