//! The OpenID Connect provider against an unmodified client library (`openidconnect`, the
//! Rust ecosystem's certified-style relying party): discovery, PKCE, the code exchange, ID-token
//! verification, userinfo, refresh, introspection, revocation and RP-initiated logout, with the
//! browser's part (login, consent) played by a cookie-keeping local client. Helpers here serve
//! `oidc_rules.rs` too.

use auth_service::auth::Auth;
use auth_service::auth::oidc::{NewClient, Registered};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata,
    CoreTokenIntrospectionResponse, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl,
    IntrospectionUrl, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PostLogoutRedirectUrl, RedirectUrl, RevocationUrl, Scope, TokenIntrospectionResponse,
    TokenResponse,
};
use rocket::http::{ContentType, Header, Status};
use rocket::serde::json::Value;

use crate::helpers::{TestApp, html, json};

/// The issuer of the library test: HTTPS, as the library demands of a revocation endpoint
/// (the requests themselves are dispatched in-process).
pub const ISSUER: &str = "https://auth.example.test";
pub const REDIRECT: &str = "https://app.example.com/callback";
pub const AFTER_LOGOUT: &str = "https://app.example.com/signed-out";
/// RFC 7636 appendix B's verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The service's auth layer (for what only the operator does: registering clients).
pub fn auth(app: &TestApp) -> &Auth {
    app.client.rocket().state::<Auth>().unwrap()
}

/// A browser of the service whose `public_base_url` is [`ISSUER`].
pub fn provider() -> TestApp {
    TestApp::browser_with(|figment| figment.merge(("public_base_url", ISSUER)))
}

/// A registration as most tests want it: confidential, with `REDIRECT` and `AFTER_LOGOUT`.
pub fn confidential() -> NewClient {
    NewClient {
        name: "Team wiki".into(),
        redirect_uris: vec![REDIRECT.into()],
        public: false,
        post_logout_uris: vec![AFTER_LOGOUT.into()],
        skip_consent: false,
        scopes: Vec::new(),
        pkce_optional: false,
        id_token_alg: None,
    }
}

/// Registers `new` as the operator does.
pub fn register(app: &TestApp, new: NewClient) -> Registered {
    rocket::async_test(auth(app).oidc().clients().add(new)).unwrap()
}

/// A browser with an account, logged in, and a confidential client registered.
pub fn signed_in_with_client() -> (TestApp, Registered) {
    let app = provider();
    app.sign_up("ann@example.com", "pw");
    let client = register(&app, confidential());
    (app, client)
}

/// The query of an authorization request of `client` with PKCE, `openid email offline_access`,
/// state `xyz` and nonce `n-0S6`, then `extra` pairs.
pub fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email offline_access"),
        ("state", "xyz"),
        ("nonce", "n-0S6"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    format!("/oauth/authorize?{}", crate::helpers::form(&pairs))
}

/// Where a browser's answer sends it: a redirect's `Location`, or the URL of the page that
/// sends it on after a form.
pub fn destination(response: rocket::local::blocking::LocalResponse<'_>) -> String {
    if let Some(location) = response.headers().get_one("Location") {
        assert_eq!(response.status(), Status::SeeOther);
        return location.to_owned();
    }
    assert_eq!(response.status(), Status::Ok);
    let page = html(response);
    let start = page.find("url=").expect("a page that sends the browser on") + 4;
    let end = page[start..].find('"').unwrap() + start;
    let entities = [
        ("&#x2F;", "/"),
        ("&#x27;", "'"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
    ];
    let mut url = page[start..end].to_owned();
    for (entity, text) in entities {
        url = url.replace(entity, text);
    }
    url.replace("&amp;", "&")
}

/// The value of `name` in `url`'s query, decoded.
pub fn query_value(url: &str, name: &str) -> Option<String> {
    let parsed = openidconnect::url::Url::parse(url).unwrap();
    parsed
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Sends the browser through the authorization request and, where asked, the consent page;
/// the URL it ends at.
pub fn approve(app: &TestApp, path: &str) -> String {
    let response = app.page(path);
    if response.status() == Status::Ok && response.headers().get_one("Location").is_none() {
        let page = html(response);
        assert!(page.contains("Allow"), "{page}");
        return destination(answer_consent(app, &page, "allow"));
    }
    destination(response)
}

/// Answers the consent `page` with `decision`, as its form does.
pub fn answer_consent<'a>(
    app: &'a TestApp,
    page: &str,
    decision: &str,
) -> rocket::local::blocking::LocalResponse<'a> {
    let request_id = crate::helpers::hidden_value(page, "request_id").expect("a request_id");
    app.submit(
        "/oauth/authorize",
        &[("decision", decision), ("request_id", &request_id)],
    )
}

/// A code for `client` (consented in the browser).
pub fn code_for(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let url = approve(app, &authorize_path(client_id, extra));
    assert!(url.starts_with(REDIRECT), "{url}");
    query_value(&url, "code").expect("a code")
}

/// `POST /oauth/token` with `fields`, the client authenticating with Basic.
pub fn token_request<'a>(
    app: &'a TestApp,
    client: &Registered,
    fields: &[(&str, &str)],
) -> rocket::local::blocking::LocalResponse<'a> {
    let secret = client.secret.clone().unwrap_or_default();
    let basic = base64_basic(&client.client.client_id, &secret);
    app.client
        .post("/oauth/token")
        .header(ContentType::Form)
        .header(Header::new("Authorization", basic))
        .body(crate::helpers::form(fields))
        .dispatch()
}

pub fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let pair = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Exchanges `code` (with the RFC's verifier) for tokens: the JSON answer.
pub fn exchange(app: &TestApp, client: &Registered, code: &str) -> Value {
    let response = token_request(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(response.status(), Status::Ok);
    json(response)
}

/// Userinfo's status for `access_token`.
pub fn userinfo_status(app: &TestApp, access_token: &str) -> Status {
    app.client
        .get("/oauth/userinfo")
        .header(Header::new(
            "Authorization",
            format!("Bearer {access_token}"),
        ))
        .dispatch()
        .status()
}

/// The claims of a JWS, unverified (the library test verifies).
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The header of a JWS.
pub fn header_of(jwt: &str) -> Value {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The library's HTTP client: each request dispatched to the app in-process, as it would go
/// over the network.
fn http(
    client: &rocket::local::blocking::Client,
) -> impl Fn(openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, std::io::Error> + '_
{
    move |request| {
        let uri = request.uri().clone();
        assert_eq!(
            uri.authority().map(|a| a.as_str()),
            Some("auth.example.test"),
            "the library calls the issuer's host"
        );
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let method: rocket::http::Method = request.method().as_str().parse().unwrap();
        let mut local = client.req(method, path);
        for (name, value) in request.headers() {
            let value = value.to_str().unwrap().to_owned();
            local = local.header(Header::new(name.as_str().to_owned(), value));
        }
        let response = local.body(request.body().clone()).dispatch();
        let mut answer = openidconnect::http::Response::builder().status(response.status().code);
        for header in response.headers().iter() {
            answer = answer.header(header.name().as_str(), header.value());
        }
        Ok(answer
            .body(response.into_bytes().unwrap_or_default())
            .unwrap())
    }
}

#[test]
fn a_standard_client_library_completes_sign_in_refresh_userinfo_introspection_revocation_and_logout()
 {
    let (app, registered) = signed_in_with_client();
    let backend = app.other_client(false);
    let http = http(&backend);

    // Discovery, and a client configured from it as any application would.
    let issuer = IssuerUrl::new(ISSUER.into()).unwrap();
    let metadata = CoreProviderMetadata::discover(&issuer, &http).unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client.client_id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_revocation_url(RevocationUrl::new(format!("{ISSUER}/oauth/revoke")).unwrap())
    .set_introspection_url(IntrospectionUrl::new(format!("{ISSUER}/oauth/introspect")).unwrap());

    // The browser: the authorization request, login (already), consent, back with a code.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        url.as_str()
            .starts_with(&format!("{ISSUER}/oauth/authorize?"))
    );
    let path = &url.as_str()[ISSUER.len()..];
    let back = approve(&app, path);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(
        query_value(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(query_value(&back, "iss").as_deref(), Some(ISSUER));
    let code = query_value(&back, "code").unwrap();

    // The code exchange, and the ID token checked by the library (signature with the JWKS,
    // issuer, audience, expiry, nonce) and the access token's hash.
    let tokens: CoreTokenResponse = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request(&http)
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims: &CoreIdTokenClaims = id_token.claims(&verifier, &nonce).unwrap();
    let signing_alg = id_token.signing_alg().unwrap();
    let signing_key = id_token.signing_key(&verifier).unwrap();
    let expected_hash =
        AccessTokenHash::from_token(tokens.access_token(), signing_alg, signing_key).unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ann@example.com"));
    assert_eq!(claims.email_verified(), Some(false));
    let subject = claims.subject().as_str().to_owned();
    assert!(!subject.contains('@'), "the subject is never the email");
    let raw = claims_of(&id_token.to_string());
    assert_eq!(raw["azp"], registered.client.client_id.as_str());
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));
    assert!(raw["sid"].as_str().is_some_and(|sid| !sid.is_empty()));
    let auth_time = raw["auth_time"].as_i64().unwrap();
    assert_eq!(header_of(&id_token.to_string())["alg"], "RS256");

    // Userinfo with the access token.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request(&http)
        .unwrap();
    assert_eq!(info.subject().as_str(), subject);
    assert_eq!(info.email().map(|e| e.as_str()), Some("ann@example.com"));

    // Introspection by the confidential client.
    let introspected: CoreTokenIntrospectionResponse = client
        .introspect(tokens.access_token())
        .request(&http)
        .unwrap();
    assert!(introspected.active());
    assert_eq!(introspected.sub(), Some(subject.as_str()));

    // Refresh: new tokens, the old refresh token spent, auth_time kept.
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed: CoreTokenResponse = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request(&http)
        .unwrap();
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), refresh.secret());
    let refreshed_id = refreshed.id_token().unwrap();
    let refreshed_claims = claims_of(&refreshed_id.to_string());
    assert_eq!(refreshed_claims["auth_time"].as_i64(), Some(auth_time));
    assert_eq!(refreshed_claims["sub"], subject.as_str());
    refreshed_id
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();

    // Revocation: the refreshed access token stops working at userinfo and introspection.
    client
        .revoke_token(refreshed.access_token().into())
        .unwrap()
        .request(&http)
        .unwrap();
    assert_eq!(
        userinfo_status(&app, refreshed.access_token().secret()),
        Status::Unauthorized
    );
    let gone: CoreTokenIntrospectionResponse = client
        .introspect(refreshed.access_token())
        .request(&http)
        .unwrap();
    assert!(!gone.active());
    client
        .revoke_token(new_refresh.clone().into())
        .unwrap()
        .request(&http)
        .unwrap();
    assert!(
        client
            .exchange_refresh_token(&new_refresh)
            .unwrap()
            .request(&http)
            .is_err()
    );

    // RP-initiated logout with the ID token as hint: this browser's session ends, and it goes
    // back to the registered URI with the state.
    let logout = LogoutRequest::from(EndSessionUrl::new(format!("{ISSUER}/oauth/logout")).unwrap())
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(AFTER_LOGOUT.into()).unwrap())
        .set_state(CsrfToken::new("bye".into()))
        .http_get_url();
    let response = app.page(&logout.as_str()[ISSUER.len()..]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(
        response.headers().get_one("Location"),
        Some(format!("{AFTER_LOGOUT}?state=bye").as_str())
    );
    assert_eq!(
        app.page("/profile").status(),
        Status::SeeOther,
        "logged out here"
    );
}

#[test]
fn eddsa_id_tokens_verify_with_the_library_for_a_client_registered_for_them() {
    let app = provider();
    app.sign_up("ann@example.com", "pw");
    let registered = register(
        &app,
        NewClient {
            id_token_alg: Some("EdDSA".into()),
            ..confidential()
        },
    );
    let backend = app.other_client(false);
    let http = http(&backend);
    let metadata =
        CoreProviderMetadata::discover(&IssuerUrl::new(ISSUER.into()).unwrap(), &http).unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client.client_id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let code = code_for(&app, &registered.client.client_id, &[]);
    let tokens = exchange(&app, &registered, &code);
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(header_of(id_token)["alg"], "EdDSA");
    // The JWKS now holds both keys; the library picks the EdDSA one by kid.
    let jwks = json(app.client.get("/oauth/jwks").dispatch());
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let parsed: openidconnect::core::CoreIdToken = id_token.parse().unwrap();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![openidconnect::core::CoreJwsSigningAlgorithm::EdDsa]);
    let claims = parsed
        .claims(&verifier, &Nonce::new("n-0S6".into()))
        .unwrap();
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ann@example.com"));
    // at_hash with the hash Ed25519 goes with (SHA-512), as the library computes it.
    let access = openidconnect::AccessToken::new(tokens["access_token"].as_str().unwrap().into());
    let key = parsed.signing_key(&verifier).unwrap();
    let expected =
        AccessTokenHash::from_token(&access, parsed.signing_alg().unwrap(), key).unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
}
