//! The OpenID Connect provider's rules that real providers got wrong, one test each: exact
//! redirect URIs, single-use short-lived codes bound to their request, PKCE S256 only, no
//! unsigned tokens or request objects, a request bound to its browser, throttled client
//! authentication, refresh rotation, and every credential change revoking what was derived
//! from it.

use auth_service::auth::oidc::{NewClient, Registered};
use auth_service::db::schema::{oidc_codes, oidc_tokens};
use diesel::prelude::*;
use rocket::http::{ContentType, Header, Status};

use crate::helpers::{TestApp, html, json};
use crate::oidc::{
    AFTER_LOGOUT, CHALLENGE, ISSUER, REDIRECT, VERIFIER, answer_consent, approve, auth,
    authorize_path, base64_basic, claims_of, code_for, confidential, destination, exchange,
    provider, query_value, register, signed_in_with_client, token_request, userinfo_status,
};

/// The answer of an authorization request that must not redirect: an error page, 400.
fn assert_error_page(app: &TestApp, path: &str) {
    let response = app.page(path);
    assert_eq!(response.status(), Status::BadRequest, "{path}");
    assert!(response.headers().get_one("Location").is_none(), "{path}");
    let page = html(response);
    assert!(page.contains("This sign-in cannot go on"), "{page}");
}

#[test]
fn a_redirect_uri_is_one_registered_exactly_and_an_unknown_one_or_client_never_redirects() {
    let (app, client) = signed_in_with_client();
    let id = client.client.client_id.as_str();
    for uri in [
        "https://app.example.com/callback/",
        "https://app.example.com/callback?x=1",
        "https://app.example.com/callbac",
        "https://APP.example.com/callback",
        "https://app.example.com/Callback",
        "https://app.example.com:443/callback",
        "https://app.example.com/./callback",
        "https://app.example.com/callback%2F..",
        "http://app.example.com/callback",
        "https://app.example.com.evil.test/callback",
        "https://evil.test/?https://app.example.com/callback",
    ] {
        let path = authorize_path(id, &[]).replace(
            &crate::helpers::form(&[("redirect_uri", REDIRECT)]),
            &crate::helpers::form(&[("redirect_uri", uri)]),
        );
        assert_error_page(&app, &path);
    }
    assert_error_page(&app, &authorize_path("no-such-client", &[]));
    let without_client = authorize_path(id, &[]).replace(&format!("client_id={id}"), "");
    assert_error_page(&app, &without_client);
    // A parameter sent twice is refused too, before anything is trusted.
    assert_error_page(
        &app,
        &authorize_path(id, &[("redirect_uri", "https://evil.test/")]),
    );
}

#[test]
fn only_a_loopback_redirect_uri_may_vary_its_port() {
    let app = provider();
    app.sign_up("ann@example.com", "pw");
    let native = register(
        &app,
        NewClient {
            public: true,
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            ..confidential()
        },
    );
    let id = native.client.client_id.as_str();
    let with = |uri: &str| {
        authorize_path(id, &[]).replace(
            &crate::helpers::form(&[("redirect_uri", REDIRECT)]),
            &crate::helpers::form(&[("redirect_uri", uri)]),
        )
    };
    let url = approve(&app, &with("http://127.0.0.1:53127/callback"));
    assert!(
        url.starts_with("http://127.0.0.1:53127/callback?code="),
        "{url}"
    );
    assert_error_page(&app, &with("http://127.0.0.1:53127/other"));
    assert_error_page(&app, &with("http://localhost:53127/callback"));
}

#[test]
fn a_code_is_spent_once_and_a_second_use_revokes_what_the_first_issued() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let tokens = exchange(&app, &client, &code);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access), Status::Ok);

    let again = token_request(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(again.status(), Status::BadRequest);
    assert_eq!(again.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(json(again)["error"], "invalid_grant");
    assert_eq!(userinfo_status(&app, access), Status::Unauthorized);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed = token_request(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(refreshed.status(), Status::BadRequest);
    assert!(app.db.audit_log().contains("oidc.code_reused"));
}

/// `fields` sent to the token endpoint by 8 concurrent requests of `client`: their statuses.
fn burst(app: &TestApp, client: &Registered, fields: &[(&str, &str)]) -> Vec<u16> {
    let rocket = auth_service::build(app.db.figment.clone());
    let basic = base64_basic(&client.client.client_id, client.secret.as_deref().unwrap());
    let body = crate::helpers::form(fields);
    rocket::async_test(async move {
        let local = rocket::local::asynchronous::Client::untracked(rocket)
            .await
            .unwrap();
        let requests = (0..8).map(|_| {
            local
                .post("/oauth/token")
                .header(ContentType::Form)
                .header(Header::new("Authorization", basic.clone()))
                .body(body.clone())
                .dispatch()
        });
        let answers = futures::future::join_all(requests).await;
        answers.iter().map(|r| r.status().code).collect()
    })
}

/// One of a burst's answers issued tokens, the others were refused as second uses, which
/// revoked what the one issued: no token is left.
fn assert_one_then_revoked(app: &TestApp, statuses: &[u16]) {
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    let live: i64 = oidc_tokens::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(live, 0);
}

#[test]
fn concurrent_exchanges_of_one_code_issue_tokens_once() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    assert_one_then_revoked(&app, &burst(&app, &client, &fields));
}

#[test]
fn a_burst_of_first_jwks_requests_makes_one_signing_key() {
    use auth_service::db::schema::oidc_keys;
    let app = provider();
    let rocket = auth_service::build(app.db.figment.clone());
    let sets: Vec<usize> = rocket::async_test(async move {
        let local = rocket::local::asynchronous::Client::untracked(rocket)
            .await
            .unwrap();
        let requests = (0..8).map(|_| local.get("/oauth/jwks").dispatch());
        let mut sets = Vec::new();
        for response in futures::future::join_all(requests).await {
            let set: serde_json::Value = response.into_json().await.unwrap();
            sets.push(set["keys"].as_array().unwrap().len());
        }
        sets
    });
    assert_eq!(sets, [1; 8]);
    let stored: i64 = oidc_keys::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(stored, 1);
}

#[test]
fn concurrent_refreshes_of_one_token_rotate_it_once() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let tokens = exchange(&app, &client, &code);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let fields = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    assert_one_then_revoked(&app, &burst(&app, &client, &fields));
}

#[test]
fn a_code_expires_after_a_minute_and_is_bound_to_its_client_redirect_uri_and_verifier() {
    let (app, client) = signed_in_with_client();
    let other = register(&app, confidential());
    let id = client.client.client_id.clone();
    let exchange_with =
        |who: &auth_service::auth::oidc::Registered, code: &str, uri: &str, verifier: &str| {
            let response = token_request(
                &app,
                who,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", uri),
                    ("code_verifier", verifier),
                ],
            );
            let status = response.status();
            (
                status,
                json(response)["error"].as_str().unwrap_or("").to_owned(),
            )
        };
    let refused = (Status::BadRequest, "invalid_grant".to_owned());
    let code = code_for(&app, &id, &[]);
    assert_eq!(exchange_with(&other, &code, REDIRECT, VERIFIER), refused);
    let code = code_for(&app, &id, &[]);
    assert_eq!(
        exchange_with(&client, &code, "https://app.example.com/other", VERIFIER),
        refused
    );
    let code = code_for(&app, &id, &[]);
    assert_eq!(exchange_with(&client, &code, REDIRECT, CHALLENGE), refused);
    // A refused exchange spent the code: the right one fails after it.
    assert_eq!(exchange_with(&client, &code, REDIRECT, VERIFIER), refused);

    let code = code_for(&app, &id, &[]);
    let lifetime: i64 = oidc_codes::table
        .select(oidc_codes::expires_at)
        .order(oidc_codes::expires_at.desc())
        .first::<i64>(&mut **app.db.conn())
        .unwrap()
        - auth_service::db::now();
    assert!((59..=60).contains(&lifetime), "{lifetime}");
    app.db.write(|c| {
        diesel::update(oidc_codes::table)
            .set(oidc_codes::expires_at.eq(auth_service::db::now() - 1))
            .execute(c)
    });
    assert_eq!(exchange_with(&client, &code, REDIRECT, VERIFIER), refused);
}

#[test]
fn the_nonce_is_echoed_exactly_and_the_sub_is_stable_and_not_the_email() {
    let (app, client) = signed_in_with_client();
    let id = client.client.client_id.as_str();
    let nonce = "a nonce with spaces & symbols/+=";
    let code = code_for(&app, id, &[]);
    let first = claims_of(exchange(&app, &client, &code)["id_token"].as_str().unwrap());
    let url = approve(
        &app,
        &authorize_path(id, &[]).replace("nonce=n-0S6", &crate::helpers::form(&[("nonce", nonce)])),
    );
    let code = query_value(&url, "code").unwrap();
    let second = claims_of(exchange(&app, &client, &code)["id_token"].as_str().unwrap());
    assert_eq!(second["nonce"], nonce);
    assert_eq!(first["nonce"], "n-0S6");
    assert_eq!(first["sub"], second["sub"]);
    assert_eq!(first["iss"], ISSUER);
    assert_eq!(first["aud"], id);
    assert!(!first["sub"].as_str().unwrap().contains("ann"));
    let lifetime = first["exp"].as_i64().unwrap() - first["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 600);
}

#[test]
fn pkce_is_s256_only_and_required_unless_a_confidential_client_is_registered_without_it() {
    let app = provider();
    app.sign_up("ann@example.com", "pw");
    let public = register(
        &app,
        NewClient {
            public: true,
            ..confidential()
        },
    );
    let id = public.client.client_id.as_str();
    let error_of = |path: &str| {
        let url = destination(app.page(path));
        assert!(url.starts_with(REDIRECT), "{url}");
        assert_eq!(query_value(&url, "state").as_deref(), Some("xyz"));
        assert_eq!(query_value(&url, "iss").as_deref(), Some(ISSUER));
        query_value(&url, "error").unwrap()
    };
    let plain = authorize_path(id, &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    assert_eq!(error_of(&plain), "invalid_request");
    let missing = authorize_path(id, &[])
        .replace(&format!("&code_challenge={CHALLENGE}"), "")
        .replace("&code_challenge_method=S256", "");
    assert_eq!(error_of(&missing), "invalid_request");
    let no_method = authorize_path(id, &[]).replace("&code_challenge_method=S256", "");
    assert_eq!(error_of(&no_method), "invalid_request");

    // A confidential client registered without PKCE may leave it out, and then no verifier
    // passes; one registered normally may not.
    let strict = register(&app, confidential());
    let missing_strict = authorize_path(&strict.client.client_id, &[])
        .replace(&format!("&code_challenge={CHALLENGE}"), "")
        .replace("&code_challenge_method=S256", "");
    assert_eq!(error_of(&missing_strict), "invalid_request");
    let legacy = register(
        &app,
        NewClient {
            pkce_optional: true,
            ..confidential()
        },
    );
    let path = authorize_path(&legacy.client.client_id, &[])
        .replace(&format!("&code_challenge={CHALLENGE}"), "")
        .replace("&code_challenge_method=S256", "");
    let code = query_value(&approve(&app, &path), "code").unwrap();
    let response = token_request(
        &app,
        &legacy,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    );
    assert_eq!(response.status(), Status::Ok);
    // Public clients cannot be registered without PKCE.
    let refused = rocket::async_test(auth(&app).oidc().clients().add(NewClient {
        public: true,
        pkce_optional: true,
        ..confidential()
    }));
    assert!(refused.is_err());
}

#[test]
fn no_unsigned_tokens_and_no_request_objects() {
    let (app, client) = signed_in_with_client();
    let discovery = app
        .client
        .get("/.well-known/openid-configuration")
        .dispatch();
    assert_eq!(
        discovery.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    assert!(
        discovery
            .headers()
            .get_one("Cache-Control")
            .unwrap()
            .starts_with("public")
    );
    let metadata = json(discovery);
    assert_eq!(metadata["issuer"], ISSUER);
    let algs = metadata["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.iter().all(|alg| alg != "none"));
    assert_eq!(metadata["request_parameter_supported"], false);
    assert_eq!(metadata["request_uri_parameter_supported"], false);
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks = app.client.get("/oauth/jwks").dispatch();
    assert_eq!(
        jwks.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    let keys = json(jwks);
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["alg"] != "none" && k.get("d").is_none())
    );
    // Only those two are readable from other origins.
    let token = token_request(&app, &client, &[("grant_type", "password")]);
    assert_eq!(token.headers().get_one("Access-Control-Allow-Origin"), None);
    assert_eq!(json(token)["error"], "unsupported_grant_type");

    let id = client.client.client_id.as_str();
    for (param, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let url =
            destination(app.page(&authorize_path(id, &[(param, "eyJhbGciOiJub25lIn0.e30.")])));
        assert_eq!(query_value(&url, "error").as_deref(), Some(error), "{url}");
    }
    // An ID token whose header says `none` is no hint: the logout page refuses it.
    let code = code_for(&app, id, &[]);
    let id_token = exchange(&app, &client, &code)["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = id_token.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIn0.{payload}.");
    let response = app.page(&format!("/oauth/logout?id_token_hint={unsigned}"));
    assert_eq!(response.status(), Status::BadRequest);
}

#[test]
fn the_pending_request_is_bound_to_its_browser_and_consent_needs_the_csrf_token() {
    let (app, client) = signed_in_with_client();
    let first = html(app.page(&authorize_path(&client.client.client_id, &[])));
    // A request started since (another tab, another site's link) replaces the pending one:
    // the first page's form no longer answers anything.
    let consent = app
        .page(&authorize_path(&client.client.client_id, &[]).replace("state=xyz", "state=second"));
    assert_eq!(consent.status(), Status::Ok);
    let stale = answer_consent(&app, &first, "allow");
    assert_eq!(stale.status(), Status::BadRequest);
    assert!(stale.headers().get_one("Location").is_none());
    let csp = consent
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = html(consent);
    assert!(
        page.contains("Team wiki") && page.contains("app.example.com"),
        "{page}"
    );
    let consent = page;

    // Without the token, the form is refused and nothing is granted.
    let forged = app.submit_raw("/oauth/authorize", &[("decision", "allow")]);
    assert_eq!(forged.status(), Status::Forbidden);
    // Another browser (an attacker's, logged in as someone else) has no pending request.
    let other = TestApp {
        client: app.other_client(true),
        db: crate::helpers::TestDb::new(|f| f),
    };
    other.sign_up("eve@example.com", "pw");
    let token = other.csrf_token();
    let stolen = other
        .client
        .post("/oauth/authorize")
        .header(ContentType::Form)
        .header(rocket::http::Accept::HTML)
        .body(crate::helpers::form(&[
            ("decision", "allow"),
            ("csrf_token", &token),
        ]))
        .dispatch();
    assert_eq!(stolen.status(), Status::BadRequest);
    assert_eq!(
        app.page("/login").headers().get_one("X-Frame-Options"),
        Some("DENY")
    );
    let login_csp = app
        .page("/login")
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap()
        .to_owned();
    assert!(login_csp.contains("frame-ancestors 'none'"));

    // Denying goes back with access_denied, and the state of the request shown.
    let url = destination(answer_consent(&app, &consent, "deny"));
    assert_eq!(query_value(&url, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_value(&url, "state").as_deref(), Some("second"));
}

#[test]
fn prompt_max_age_and_login_hint_are_honoured() {
    let app = provider();
    let client = register(&app, confidential());
    let id = client.client.client_id.clone();
    // Not logged in: prompt=none answers login_required; otherwise the login page, with the
    // hint's email.
    let url = destination(app.page(&authorize_path(&id, &[("prompt", "none")])));
    assert_eq!(
        query_value(&url, "error").as_deref(),
        Some("login_required")
    );
    let to_login = app.page(&authorize_path(&id, &[("login_hint", "ann@example.com")]));
    assert_eq!(to_login.headers().get_one("Location"), Some("/login"));
    let login = html(app.page("/login"));
    assert!(login.contains("value=\"ann@example.com\""), "{login}");
    // Signing up from there goes back to the application (consent first).
    app.sign_up("ann@example.com", "pw");
    let resumed = html(app.page("/oauth/authorize/resume"));
    assert!(resumed.contains("Allow"));
    let url = destination(answer_consent(&app, &resumed, "allow"));
    assert!(query_value(&url, "code").is_some(), "{url}");

    // Consented: prompt=none now gets a code; prompt=consent asks again.
    let url = destination(app.page(&authorize_path(&id, &[("prompt", "none")])));
    assert!(query_value(&url, "code").is_some(), "{url}");
    let asked = app.page(&authorize_path(&id, &[("prompt", "consent")]));
    assert_eq!(asked.status(), Status::Ok);
    assert!(html(asked).contains("Allow"));
    // More scopes than granted ask again; prompt=none then answers consent_required.
    let other = register(&app, confidential());
    let url = destination(app.page(&authorize_path(
        &other.client.client_id,
        &[("prompt", "none")],
    )));
    assert_eq!(
        query_value(&url, "error").as_deref(),
        Some("consent_required")
    );

    // prompt=login, and max_age older than the session, need a new login: this session
    // ends, the login page shows, and the application gets the new session's auth_time.
    for extra in [("prompt", "login"), ("max_age", "50")] {
        app.db.write(|c| {
            diesel::update(auth_service::db::schema::sessions::table)
                .set(
                    auth_service::db::schema::sessions::created_at
                        .eq(auth_service::db::now() - 100),
                )
                .execute(c)
        });
        // A link cannot log anyone out: a page asks first, and its form does.
        let asked = html(app.page(&authorize_path(&id, &[extra])));
        assert!(asked.contains("Log in again"), "{extra:?}: {asked}");
        assert_eq!(app.page("/profile").status(), Status::Ok, "{extra:?}");
        let request_id = crate::helpers::hidden_value(&asked, "request_id").unwrap();
        let response = app.submit("/oauth/authorize/login", &[("request_id", &request_id)]);
        assert_eq!(
            response.headers().get_one("Location"),
            Some("/login"),
            "{extra:?}"
        );
        assert_eq!(
            app.page("/profile").status(),
            Status::SeeOther,
            "{extra:?}: logged out"
        );
        let logged_in = app.submit(
            "/login",
            &[("email", "ann@example.com"), ("password", "pw")],
        );
        assert_eq!(
            logged_in.headers().get_one("Location"),
            Some("/oauth/authorize/resume")
        );
        let url = destination(app.page("/oauth/authorize/resume"));
        let code = query_value(&url, "code").expect("a code after the new login");
        let claims = claims_of(exchange(&app, &client, &code)["id_token"].as_str().unwrap());
        assert!(claims["auth_time"].as_i64().unwrap() >= auth_service::db::now() - 1);
    }
}

#[test]
fn failed_client_authentication_is_throttled_and_audited() {
    let app = TestApp::browser_with(|figment| {
        figment
            .merge(("public_base_url", ISSUER))
            .merge(("throttle_login_per_account", 3))
    });
    let client = register(&app, confidential());
    let mut wrong = client.clone();
    wrong.secret = Some("not-the-secret".into());
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            let response = token_request(
                &app,
                &wrong,
                &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            );
            let status = response.status().code;
            if status == 401 {
                assert!(
                    response
                        .headers()
                        .get_one("WWW-Authenticate")
                        .unwrap()
                        .starts_with("Basic")
                );
                assert_eq!(json(response)["error"], "invalid_client");
            }
            status
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // The right secret always passes (a client id is public: anyone could lock it out).
    let right = token_request(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    );
    assert_eq!(json(right)["error"], "invalid_grant", "authenticated");
    let audit = app.db.audit_log();
    assert_eq!(
        audit.matches("oidc.client_auth_failed").count(),
        3,
        "{audit}"
    );
    assert!(audit.contains("oidc.client_auth_throttled"));
    assert!(!audit.contains("not-the-secret"));
    // A client_secret_post secret and Basic at once are refused.
    let both = app
        .client
        .post("/oauth/token")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            base64_basic(&client.client.client_id, "x"),
        ))
        .body(crate::helpers::form(&[
            ("grant_type", "refresh_token"),
            ("client_secret", "x"),
        ]))
        .dispatch();
    assert_eq!(json(both)["error"], "invalid_request");
}

#[test]
fn refresh_tokens_rotate_and_a_reused_or_stolen_one_revokes_its_family() {
    let (app, client) = signed_in_with_client();
    let other = register(&app, confidential());
    let code = code_for(&app, &client.client.client_id, &[]);
    let first = exchange(&app, &client, &code);
    let refresh = |who: &auth_service::auth::oidc::Registered, token: &str| {
        let response = token_request(
            &app,
            who,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        );
        let status = response.status();
        (status, json(response))
    };
    let old = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&client, old);
    assert_eq!(status, Status::Ok);
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    // The old one again: refused, and the new one and its access token die with it.
    assert_eq!(refresh(&client, old).0, Status::BadRequest);
    assert_eq!(refresh(&client, new).0, Status::BadRequest);
    assert_eq!(
        userinfo_status(&app, second["access_token"].as_str().unwrap()),
        Status::Unauthorized
    );
    assert!(app.db.audit_log().contains("oidc.refresh_reused"));

    // Another client presenting it: refused, and the family is revoked.
    let code = code_for(&app, &client.client.client_id, &[]);
    let tokens = exchange(&app, &client, &code);
    let token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&other, token).0, Status::BadRequest);
    assert_eq!(refresh(&client, token).0, Status::BadRequest);
    // A refresh may narrow the scopes, never widen them.
    let code = code_for(&app, &client.client.client_id, &[]);
    let tokens = exchange(&app, &client, &code);
    let token = tokens["refresh_token"].as_str().unwrap();
    let widened = token_request(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("scope", "openid email offline_access phone"),
        ],
    );
    assert_eq!(json(widened)["error"], "invalid_scope");
    // Without offline_access no refresh token is issued.
    let path = authorize_path(&client.client.client_id, &[]).replace("offline_access", "");
    let code = query_value(&approve(&app, &path), "code").unwrap();
    assert!(
        exchange(&app, &client, &code)
            .get("refresh_token")
            .is_none()
    );
}

#[test]
fn a_password_change_an_account_deletion_and_an_operator_revocation_revoke_the_tokens() {
    let (app, client) = signed_in_with_client();
    let tokens =
        |app: &TestApp| exchange(app, &client, &code_for(app, &client.client.client_id, &[]));
    let dead = |app: &TestApp, tokens: &serde_json::Value| {
        let refreshed = token_request(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        );
        refreshed.status() == Status::BadRequest
            && userinfo_status(app, tokens["access_token"].as_str().unwrap())
                == Status::Unauthorized
    };
    let before = tokens(&app);
    let changed = app.submit(
        "/account/password",
        &[("current_password", "pw"), ("new_password", "pw2")],
    );
    assert_eq!(changed.status(), Status::SeeOther);
    assert!(dead(&app, &before), "password change");

    // A code issued before a reset is void too.
    let code = code_for(&app, &client.client.client_id, &[]);
    let reset = app.reset_token_for("ann@example.com");
    assert_eq!(
        app.update_password("ann@example.com", &reset, "pw3")
            .status(),
        Status::Ok
    );
    let late = token_request(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(late.status(), Status::BadRequest, "reset");

    app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "pw3")],
    );
    let before = tokens(&app);
    let email = auth_service::auth::Email::parse("ann@example.com").unwrap();
    rocket::async_test(auth(&app).operator().revoke_sessions(&email)).unwrap();
    assert!(dead(&app, &before), "operator's revocation");

    app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "pw3")],
    );
    let before = tokens(&app);
    let deleted = app.submit("/account/delete", &[("current_password", "pw3")]);
    assert_eq!(deleted.status(), Status::SeeOther);
    assert!(dead(&app, &before), "deletion");
}

#[test]
fn an_operators_disable_revokes_everything_and_refuses_sign_in_until_enabled() {
    let (app, client) = signed_in_with_client();
    let tokens = exchange(
        &app,
        &client,
        &code_for(&app, &client.client.client_id, &[]),
    );
    let email = auth_service::auth::Email::parse("ann@example.com").unwrap();
    let operator = auth(&app).operator();
    assert_eq!(
        rocket::async_test(operator.disable_user(&email)).unwrap(),
        1
    );
    assert_eq!(
        app.page("/profile").status(),
        Status::SeeOther,
        "its session ended"
    );
    assert_eq!(
        userinfo_status(&app, tokens["access_token"].as_str().unwrap()),
        Status::Unauthorized
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed = token_request(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(refreshed.status(), Status::BadRequest);
    let login = app.login("ann@example.com", "pw");
    assert_eq!(login.status(), Status::Forbidden);
    assert_eq!(json(login)["message"], "this account is disabled");
    assert_eq!(
        app.login("ann@example.com", "wrong").status(),
        Status::Unauthorized,
        "told only after the right password"
    );
    let summary = rocket::async_test(operator.account_summary(&email)).unwrap();
    assert!(summary.disabled_at.is_some());
    assert!(app.db.audit_log().contains("login.disabled"));

    rocket::async_test(operator.enable_user(&email)).unwrap();
    assert_eq!(app.login("ann@example.com", "pw").status(), Status::Ok);
}

#[test]
fn logout_needs_a_registered_return_uri_and_asks_without_a_matching_hint() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let id_token = exchange(&app, &client, &code)["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = client.client.client_id.as_str();
    // An unregistered return URI, or one without a client to check it against: an error page.
    for query in [
        format!("id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.test%2F"),
        format!(
            "client_id={id}&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fsigned-out%2F"
        ),
        "post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fsigned-out".to_owned(),
        "id_token_hint=not.a.token".to_owned(),
    ] {
        let response = app.page(&format!("/oauth/logout?{query}"));
        assert_eq!(response.status(), Status::BadRequest, "{query}");
        assert!(response.headers().get_one("Location").is_none());
    }
    assert_eq!(app.page("/profile").status(), Status::Ok, "still logged in");
    // Without a hint: a page asks first (a link elsewhere cannot log anyone out).
    let asked = app.page(&format!("/oauth/logout?client_id={id}&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fsigned-out&state=s1"));
    assert_eq!(asked.status(), Status::Ok);
    assert!(html(asked).contains("Log out?"));
    assert_eq!(app.page("/profile").status(), Status::Ok, "still logged in");
    let done = app.submit(
        "/oauth/logout",
        &[
            ("client_id", id),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "s1"),
        ],
    );
    assert_eq!(
        done.headers().get_one("Location"),
        Some(format!("{AFTER_LOGOUT}?state=s1").as_str())
    );
    assert_eq!(
        app.page("/profile").status(),
        Status::SeeOther,
        "logged out"
    );
}

#[test]
fn the_owner_lists_and_withdraws_applications_which_revokes_their_tokens() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let tokens = exchange(&app, &client, &code);
    let listed = json(app.client.get("/account/applications").dispatch());
    assert_eq!(listed["applications"][0]["name"], "Team wiki");
    assert_eq!(
        listed["applications"][0]["client_id"],
        client.client.client_id.as_str()
    );
    let page = html(app.page("/account/applications"));
    assert!(page.contains("Team wiki") && page.contains("Withdraw access"));

    let withdrawn = app
        .client
        .delete(format!("/account/applications/{}", client.client.client_id))
        .dispatch();
    assert_eq!(withdrawn.status(), Status::Ok);
    assert_eq!(
        userinfo_status(&app, tokens["access_token"].as_str().unwrap()),
        Status::Unauthorized
    );
    let again = app
        .client
        .delete(format!("/account/applications/{}", client.client.client_id))
        .dispatch();
    assert_eq!(again.status(), Status::NotFound);
    assert_eq!(
        json(app.client.get("/account/applications").dispatch())["applications"],
        serde_json::json!([])
    );
    // It must ask again.
    assert_eq!(
        app.page(&authorize_path(&client.client.client_id, &[]))
            .status(),
        Status::Ok
    );
}

#[test]
fn a_rotated_key_signs_new_tokens_and_the_retired_one_stays_published() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let before = exchange(&app, &client, &code)["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kids = rocket::async_test(auth(&app).oidc().rotate_key()).unwrap();
    assert_eq!(kids.len(), 1);
    let code = code_for(&app, &client.client.client_id, &[]);
    let after = exchange(&app, &client, &code)["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = |jwt: &str| {
        crate::oidc::header_of(jwt)["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(kid(&after), kids[0]);
    assert_ne!(kid(&before), kid(&after));
    let published: Vec<String> = json(app.client.get("/oauth/jwks").dispatch())["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        published.contains(&kid(&before)) && published.contains(&kid(&after)),
        "{published:?}"
    );
    // The stored private key is sealed, not PKCS #8 in the clear.
    let stored: Vec<Vec<u8>> = auth_service::db::schema::oidc_keys::table
        .select(auth_service::db::schema::oidc_keys::private_key)
        .load(&mut **app.db.conn())
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|key| !key.windows(3).any(|w| w == [0x30, 0x82, 0x04]))
    );
}

#[test]
fn the_cleanup_purges_expired_tokens_and_keys_retired_longer_than_a_token_lives() {
    use auth_service::db::schema::oidc_keys;
    let (app, client) = signed_in_with_client();
    let tokens = exchange(
        &app,
        &client,
        &code_for(&app, &client.client.client_id, &[]),
    );
    let access = tokens["access_token"].as_str().unwrap();
    // Userinfo answers a POST as a GET.
    let posted = app
        .client
        .post("/oauth/userinfo")
        .header(Header::new("Authorization", format!("Bearer {access}")))
        .dispatch();
    assert_eq!(json(posted)["email"], "ann@example.com");
    rocket::async_test(auth(&app).oidc().rotate_key()).unwrap();
    let keys = |app: &TestApp| {
        json(app.client.get("/oauth/jwks").dispatch())["keys"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(keys(&app), 2);
    let long_ago = auth_service::db::now() - 601;
    app.db.write(|c| {
        diesel::update(oidc_keys::table.filter(oidc_keys::retired_at.is_not_null()))
            .set(oidc_keys::retired_at.eq(long_ago))
            .execute(c)?;
        diesel::update(oidc_tokens::table)
            .set(oidc_tokens::expires_at.eq(long_ago))
            .execute(c)
    });
    assert_eq!(keys(&app), 1, "nothing it signed is still valid");
    assert_eq!(
        userinfo_status(&app, access),
        Status::Unauthorized,
        "expired"
    );
    let purged = rocket::async_test(auth(&app).operator().purge_expired()).unwrap();
    assert_eq!(purged.oidc, 3, "an access token, a refresh token and a key");
    let stored: i64 = oidc_keys::table
        .count()
        .get_result(&mut **app.db.conn())
        .unwrap();
    assert_eq!(stored, 1);
}

/// What the OpenID Foundation's basic certification plan also sends: requests without a
/// nonce, with unknown parameters, display, locales and acr_values, scopes in another order,
/// a generous max_age; a redirect URI with a query; the access token in userinfo's body.
#[test]
fn requests_as_the_conformance_suite_sends_them_succeed() {
    let (app, client) = signed_in_with_client();
    let id = client.client.client_id.as_str();
    let code = code_for(&app, id, &[]);
    exchange(&app, &client, &code);
    let without_nonce = authorize_path(id, &[]).replace("&nonce=n-0S6", "");
    let code = query_value(&approve(&app, &without_nonce), "code").unwrap();
    let tokens = exchange(&app, &client, &code);
    assert!(
        claims_of(tokens["id_token"].as_str().unwrap())
            .get("nonce")
            .is_none()
    );
    for extra in [
        ("extra", "unknown parameter"),
        ("display", "popup"),
        ("ui_locales", "se"),
        ("claims_locales", "se"),
        ("acr_values", "1 2"),
        ("max_age", "10000"),
        ("id_token_hint", "ignored.when.logged.in"),
    ] {
        let url = approve(&app, &authorize_path(id, &[extra]));
        assert!(query_value(&url, "code").is_some(), "{extra:?}: {url}");
    }
    let reordered = authorize_path(id, &[]).replace(
        "scope=openid+email+offline_access",
        "scope=email+offline_access+openid",
    );
    assert!(query_value(&approve(&app, &reordered), "code").is_some());
    let missing = authorize_path(id, &[]).replace("response_type=code&", "");
    let url = destination(app.page(&missing));
    assert_eq!(
        query_value(&url, "error").as_deref(),
        Some("unsupported_response_type")
    );
    let long = "n".repeat(513);
    let too_long = destination(
        app.page(&authorize_path(id, &[]).replace("nonce=n-0S6", &format!("nonce={long}"))),
    );
    assert_eq!(
        query_value(&too_long, "error").as_deref(),
        Some("invalid_request")
    );
    let no_openid = authorize_path(id, &[]).replace("scope=openid+", "scope=");
    assert_eq!(
        query_value(&destination(app.page(&no_openid)), "error").as_deref(),
        Some("invalid_scope")
    );

    let access = tokens["access_token"].as_str().unwrap();
    let in_body = app
        .client
        .post("/oauth/userinfo")
        .header(ContentType::Form)
        .body(format!("access_token={access}"))
        .dispatch();
    assert_eq!(json(in_body)["email"], "ann@example.com");
    let twice = app
        .client
        .post("/oauth/userinfo")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Bearer {access}")))
        .body(format!("access_token={access}"))
        .dispatch();
    assert_eq!(json(twice)["error"], "invalid_request");

    // A registered redirect URI with a query: the same query only, the code appended to it.
    let with_query = register(
        &app,
        NewClient {
            redirect_uris: vec!["https://app.example.com/callback?tenant=1".into()],
            ..confidential()
        },
    );
    let path = |uri: &str| {
        authorize_path(&with_query.client.client_id, &[]).replace(
            &crate::helpers::form(&[("redirect_uri", REDIRECT)]),
            &crate::helpers::form(&[("redirect_uri", uri)]),
        )
    };
    let url = approve(&app, &path("https://app.example.com/callback?tenant=1"));
    assert!(
        url.starts_with("https://app.example.com/callback?tenant=1&code="),
        "{url}"
    );
    for uri in [
        "https://app.example.com/callback?tenant=2",
        "https://app.example.com/callback?tenant=1&x=2",
        REDIRECT,
    ] {
        assert_error_page(&app, &path(uri));
    }
}

/// NUL and other control characters, and strings that are no client id, are refused as bad
/// input (PostgreSQL refuses NUL in text: a query with one would fail as a 500).
#[test]
fn control_characters_and_junk_ids_are_refused_never_a_5xx() {
    let (app, client) = signed_in_with_client();
    let id = client.client.client_id.as_str();
    assert_error_page(
        &app,
        &authorize_path("%00", &[]).replace("client_id=%2500", "client_id=%00"),
    );
    for param in ["nonce=n-0S6", "state=xyz"] {
        let name = param.split('=').next().unwrap();
        let path = authorize_path(id, &[]).replace(param, &format!("{name}=a%00b"));
        let url = destination(app.page(&path));
        assert_eq!(
            query_value(&url, "error").as_deref(),
            Some("invalid_request"),
            "{name}"
        );
    }
    let token = app
        .client
        .post("/oauth/token")
        .header(ContentType::Form)
        .body("grant_type=refresh_token&refresh_token=x&client_id=%00&client_secret=%00")
        .dispatch();
    assert_eq!(token.status(), Status::Unauthorized);
    let long = "x".repeat(30_000);
    let token = app
        .client
        .post("/oauth/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=refresh_token&refresh_token=x&client_id={long}"
        ))
        .dispatch();
    assert_eq!(token.status(), Status::Unauthorized);
    assert!(
        !app.db.audit_log().contains(&long[..100]),
        "a junk id is not written out"
    );
    let revoke = app.client.delete("/account/applications/%00").dispatch();
    assert_eq!(revoke.status(), Status::NotFound);
    let logout = app.page("/oauth/logout?client_id=%00&post_logout_redirect_uri=x");
    assert_eq!(logout.status(), Status::BadRequest);
    let introspect = app
        .client
        .post("/oauth/introspect")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            base64_basic(id, client.secret.as_deref().unwrap()),
        ))
        .body("token=%00")
        .dispatch();
    assert_eq!(json(introspect)["active"], false);
}

#[test]
fn token_endpoint_answers_are_never_cached_and_bad_requests_are_oauth_errors() {
    let (app, client) = signed_in_with_client();
    let code = code_for(&app, &client.client.client_id, &[]);
    let response = token_request(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
    assert_eq!(response.headers().get_one("Pragma"), Some("no-cache"));
    let missing = token_request(&app, &client, &[]);
    assert_eq!(missing.status(), Status::BadRequest);
    let body = json(missing);
    assert_eq!(body["error"], "invalid_request");
    assert!(body["message"].as_str().unwrap().contains("grant_type"));
    let no_code = token_request(&app, &client, &[("grant_type", "authorization_code")]);
    assert_eq!(json(no_code)["error"], "invalid_request");
    let unknown = app
        .client
        .post("/oauth/token")
        .header(ContentType::Form)
        .body("grant_type=authorization_code&code=x&client_id=nobody")
        .dispatch();
    assert_eq!(unknown.status(), Status::Unauthorized);
    let bearer = app.client.get("/oauth/userinfo").dispatch();
    assert_eq!(bearer.status(), Status::Unauthorized);
    assert!(
        bearer
            .headers()
            .get_one("WWW-Authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
}
