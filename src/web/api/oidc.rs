//! The OpenID Connect provider's endpoints for applications (relying parties): discovery, the
//! JWK Set, the token endpoint, userinfo, introspection (RFC 7662) and revocation (RFC 7009);
//! and the owner's applications (`/account/applications`). Errors of the OAuth endpoints
//! carry OAuth's `error` and `error_description` beside `message`.
//!
//! These endpoints authenticate the client, not a browser session: no cookie is read, so the
//! API's cross-site refusal does not apply to them. Only discovery and the JWK Set are
//! readable cross-origin (`Access-Control-Allow-Origin: *`) and cacheable.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rocket::http::{Header, RawStr};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{Json, Value};
use rocket::serde::{Deserialize, Serialize};
use rocket::{Responder, delete, get, post, routes};
use utoipa::ToSchema;

use super::{Answer, ApiRequest, Input};
use crate::auth::oidc::{ClientAuth, SCOPES, TokenRequest, Tokens};
use crate::auth::{Auth, AuthError, Caller};
use crate::time::rfc3339;
use crate::web::bodies::{BearerForm, TokenForm, TokenLookup};
use crate::web::error::{Message, Problem};

pub fn routes() -> Vec<rocket::Route> {
    routes![
        discovery,
        jwks,
        token,
        userinfo_get,
        userinfo_post,
        introspect,
        revoke,
        list_applications,
        revoke_application,
    ]
}

/// A public, cacheable JSON document any origin may read.
#[derive(Responder)]
pub struct Published<T> {
    body: Json<T>,
    cache: Header<'static>,
    cors: Header<'static>,
}

impl<T> Published<T> {
    fn new(body: T, max_age: u32) -> Published<T> {
        Published {
            body: Json(body),
            cache: Header::new("Cache-Control", format!("public, max-age={max_age}")),
            cors: Header::new("Access-Control-Allow-Origin", "*"),
        }
    }
}

/// A JSON answer never to be cached (it carries tokens, or what a token grants).
#[derive(Responder)]
pub struct NoStore<T> {
    body: Json<T>,
    cache: Header<'static>,
    pragma: Header<'static>,
}

impl<T> NoStore<T> {
    fn new(body: T) -> NoStore<T> {
        NoStore {
            body: Json(body),
            cache: Header::new("Cache-Control", "no-store"),
            pragma: Header::new("Pragma", "no-cache"),
        }
    }
}

/// OpenID Connect Discovery 1.0's provider metadata.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Discovery {
    /// `public_base_url`, without a trailing slash.
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub prompt_values_supported: Vec<String>,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub claims_parameter_supported: bool,
    pub authorization_response_iss_parameter_supported: bool,
    pub frontchannel_logout_supported: bool,
    pub backchannel_logout_supported: bool,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// The provider's metadata (OpenID Connect Discovery 1.0); 404 when `public_base_url` is not
/// set (no issuer).
#[utoipa::path(tag = "openid connect", responses(
    (status = 200, description = "the provider's metadata; cacheable, readable from any origin", body = Discovery),
    (status = 404, description = "the provider is off: public_base_url is not set"),
))]
#[get("/.well-known/openid-configuration")]
fn discovery(auth: &rocket::State<Auth>) -> Result<Published<Discovery>, Problem> {
    let issuer = auth.oidc().issuer().ok_or(AuthError::OidcOff)?;
    let at = |path: &str| format!("{issuer}{path}");
    let secret_methods = ["client_secret_basic", "client_secret_post"];
    let metadata = Discovery {
        issuer: issuer.to_owned(),
        authorization_endpoint: at("/oauth/authorize"),
        token_endpoint: at("/oauth/token"),
        userinfo_endpoint: at("/oauth/userinfo"),
        jwks_uri: at("/oauth/jwks"),
        end_session_endpoint: at("/oauth/logout"),
        revocation_endpoint: at("/oauth/revoke"),
        introspection_endpoint: at("/oauth/introspect"),
        scopes_supported: strings(&SCOPES),
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query"]),
        grant_types_supported: strings(&["authorization_code", "refresh_token"]),
        subject_types_supported: strings(&["public"]),
        id_token_signing_alg_values_supported: strings(&["RS256", "EdDSA"]),
        token_endpoint_auth_methods_supported: strings(&[
            secret_methods[0],
            secret_methods[1],
            "none",
        ]),
        revocation_endpoint_auth_methods_supported: strings(&[
            secret_methods[0],
            secret_methods[1],
            "none",
        ]),
        introspection_endpoint_auth_methods_supported: strings(&secret_methods),
        code_challenge_methods_supported: strings(&["S256"]),
        claims_supported: strings(&[
            "iss",
            "sub",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "amr",
            "sid",
            "email",
            "email_verified",
        ]),
        prompt_values_supported: strings(&["none", "login", "consent"]),
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        claims_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        frontchannel_logout_supported: false,
        backchannel_logout_supported: false,
    };
    Ok(Published::new(metadata, 3600))
}

/// A JWK Set (RFC 7517).
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Jwks {
    /// Public keys: `kty`, `use`, `alg`, `kid` and the key's own members.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<Value>,
}

/// The public keys ID tokens are verified with: the current ones, and those retired less
/// than an ID token's lifetime ago.
#[utoipa::path(tag = "openid connect", responses(
    (status = 200, description = "the JWK Set; cacheable for 5 minutes, readable from any origin", body = Jwks),
    (status = 404, description = "the provider is off: public_base_url is not set"),
))]
#[get("/oauth/jwks")]
async fn jwks(auth: &rocket::State<Auth>) -> Result<Published<Jwks>, Problem> {
    let set = auth.oidc().jwks().await?;
    let keys = set["keys"].as_array().cloned().unwrap_or_default();
    Ok(Published::new(Jwks { keys }, 300))
}

/// The client's credentials from `Authorization: Basic` (RFC 6749 2.3.1: each part
/// form-urlencoded), if sent.
pub struct BasicAuth(Option<Result<(String, String), ()>>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BasicAuth {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let header = req.headers().get_one("Authorization");
        let basic = header.and_then(|value| {
            let (scheme, encoded) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then_some(encoded.trim())
        });
        Outcome::Success(BasicAuth(basic.map(|encoded| {
            let decoded = STANDARD.decode(encoded).map_err(|_| ())?;
            let text = String::from_utf8(decoded).map_err(|_| ())?;
            let (id, secret) = text.split_once(':').ok_or(())?;
            let part = |raw: &str| RawStr::new(raw).url_decode().map(|d| d.into_owned());
            Ok((part(id).map_err(|_| ())?, part(secret).map_err(|_| ())?))
        })))
    }
}

impl BasicAuth {
    /// The client's authentication: Basic, or the body's `client_id` and `client_secret`, never
    /// both (RFC 6749 2.3).
    fn with_body(
        self,
        client_id: Option<String>,
        secret: Option<String>,
    ) -> Result<ClientAuth, Problem> {
        let invalid = |description: &'static str| {
            Problem::from(AuthError::OAuth(crate::auth::oidc::OAuthFault {
                code: "invalid_request",
                description,
            }))
        };
        match self.0 {
            None => Ok(ClientAuth { client_id, secret }),
            Some(Err(())) => Err(Problem::from(AuthError::OAuth(
                crate::auth::oidc::OAuthFault {
                    code: "invalid_client",
                    description: "the Basic credentials could not be read",
                },
            ))),
            Some(Ok(_)) if secret.is_some() => Err(invalid(
                "authenticate with Basic or client_secret, not both",
            )),
            Some(Ok((id, _))) if client_id.as_ref().is_some_and(|body| *body != id) => {
                Err(invalid("client_id differs from the Basic credentials"))
            }
            Some(Ok((id, secret))) => Ok(ClientAuth {
                client_id: Some(id),
                secret: Some(secret),
            }),
        }
    }
}

/// A body that does not read, as OAuth's `invalid_request`.
fn oauth_body<T>(body: Input<T>) -> Result<T, Problem> {
    body.map(|body| body.0)
        .map_err(|problem| problem.as_oauth("invalid_request"))
}

/// The token endpoint's answer (RFC 6749 5.1; OpenID Connect Core 3.1.3.3).
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct TokenAnswer {
    /// Opaque; lives `oidc_access_token_ttl_secs`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// A JWS (RS256 unless the client was registered for EdDSA).
    pub id_token: String,
    /// With the `offline_access` scope; rotated on every use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl From<Tokens> for TokenAnswer {
    fn from(tokens: Tokens) -> TokenAnswer {
        TokenAnswer {
            access_token: tokens.access_token,
            token_type: tokens.token_type.to_owned(),
            expires_in: tokens.expires_in,
            id_token: tokens.id_token,
            refresh_token: tokens.refresh_token,
            scope: tokens.scope,
        }
    }
}

/// Exchanges an authorization code (with its PKCE verifier) or a refresh token for tokens.
#[utoipa::path(tag = "openid connect", request_body = TokenForm, responses(
    (status = 200, description = "tokens; never cached", body = TokenAnswer),
    (status = 400, description = "invalid_request, invalid_grant (the code or refresh token is unknown, expired, spent, another client's, or the verifier does not match), invalid_scope, unsupported_grant_type"),
    (status = 401, description = "invalid_client"),
    (status = 429, description = "too many failed client authentications"),
))]
#[post("/oauth/token", data = "<body>")]
async fn token(
    caller: Caller,
    basic: BasicAuth,
    auth: &rocket::State<Auth>,
    body: Input<TokenForm>,
) -> Result<NoStore<TokenAnswer>, Problem> {
    let form = oauth_body(body)?;
    let client = basic.with_body(form.client_id, form.client_secret)?;
    let request = TokenRequest {
        grant_type: form.grant_type,
        code: form.code,
        redirect_uri: form.redirect_uri,
        code_verifier: form.code_verifier,
        refresh_token: form.refresh_token,
        scope: form.scope,
    };
    let tokens = auth.oidc().token(&caller, client, request).await?;
    Ok(NoStore::new(tokens.into()))
}

/// The access token of `Authorization: Bearer` (RFC 6750 2.1).
pub struct Bearer(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let token = req.headers().get_one("Authorization").and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
        Outcome::Success(Bearer(token))
    }
}

/// The claims userinfo answers (OpenID Connect Core 5.3.2).
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct UserInfo {
    /// The account's subject: the ID token's `sub`.
    pub sub: String,
    /// With the `email` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// The claims for the access token of the `Authorization: Bearer` header or of the body,
/// never both (RFC 6750 2).
async fn userinfo(
    auth: &Auth,
    bearer: Bearer,
    in_body: Option<String>,
) -> Result<NoStore<UserInfo>, Problem> {
    let fault = |code, description| {
        Problem::from(AuthError::OAuth(crate::auth::oidc::OAuthFault {
            code,
            description,
        }))
    };
    let token = match (bearer.0, in_body) {
        (Some(_), Some(_)) => {
            return Err(fault(
                "invalid_request",
                "send the access token once: in the header or in the body",
            ));
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => {
            return Err(fault(
                "invalid_token",
                "an access token is required (Authorization: Bearer)",
            ));
        }
    };
    let claims = auth.oidc().userinfo(&token).await?;
    Ok(NoStore::new(UserInfo {
        sub: claims.subject,
        email: claims.email,
        email_verified: claims.email_verified,
    }))
}

/// The signed-in account's claims, for an access token (`Authorization: Bearer`).
#[utoipa::path(tag = "openid connect", security(("bearer" = [])), responses(
    (status = 200, description = "the claims the token's scopes allow", body = UserInfo),
    (status = 401, description = "invalid_token: missing, unknown, expired or revoked"),
))]
#[get("/oauth/userinfo")]
async fn userinfo_get(
    auth: &rocket::State<Auth>,
    bearer: Bearer,
) -> Result<NoStore<UserInfo>, Problem> {
    userinfo(auth, bearer, None).await
}

/// As `GET /oauth/userinfo`; the access token may come in the body instead (`access_token`).
#[utoipa::path(tag = "openid connect", request_body = BearerForm, security(("bearer" = [])), responses(
    (status = 200, description = "the claims the token's scopes allow", body = UserInfo),
    (status = 400, description = "invalid_request: the token both in the header and in the body"),
    (status = 401, description = "invalid_token: missing, unknown, expired or revoked"),
))]
#[post("/oauth/userinfo", data = "<body>")]
async fn userinfo_post(
    auth: &rocket::State<Auth>,
    bearer: Bearer,
    body: Input<BearerForm>,
) -> Result<NoStore<UserInfo>, Problem> {
    let in_body = oauth_body(body)?.access_token;
    userinfo(auth, bearer, in_body).await
}

/// RFC 7662's answer: `active`, and for an active token what it grants.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The account's subject, as in its ID tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `Bearer` (an access token) or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// Whether a token of this (confidential) client is active, and what it grants; a token of
/// another client, or none, is `{"active": false}`.
#[utoipa::path(tag = "openid connect", request_body = TokenLookup, responses(
    (status = 200, description = "the token's state", body = Introspection),
    (status = 401, description = "invalid_client (public clients may not introspect)"),
    (status = 429, description = "too many failed client authentications"),
))]
#[post("/oauth/introspect", data = "<body>")]
async fn introspect(
    caller: Caller,
    basic: BasicAuth,
    auth: &rocket::State<Auth>,
    body: Input<TokenLookup>,
) -> Result<NoStore<Introspection>, Problem> {
    let form = oauth_body(body)?;
    let client = basic.with_body(form.client_id, form.client_secret)?;
    let claims = auth.oidc().introspect(&caller, client, &form.token).await?;
    let answer =
        rocket::serde::json::from_value(claims).map_err(|e| AuthError::Internal(e.into()))?;
    Ok(NoStore::new(answer))
}

/// Revokes an access or refresh token of this client (a refresh token with every token of its
/// family). An unknown token is answered the same (RFC 7009 2.2).
#[utoipa::path(tag = "openid connect", request_body = TokenLookup, responses(
    (status = 200, description = "revoked (or was not a token of this client)", body = Message),
    (status = 401, description = "invalid_client"),
    (status = 429, description = "too many failed client authentications"),
))]
#[post("/oauth/revoke", data = "<body>")]
async fn revoke(
    caller: Caller,
    basic: BasicAuth,
    auth: &rocket::State<Auth>,
    body: Input<TokenLookup>,
) -> Answer<Message> {
    let form = oauth_body(body)?;
    let client = basic.with_body(form.client_id, form.client_secret)?;
    auth.oidc().revoke(&caller, client, &form.token).await?;
    Ok(Message::new("revoked"))
}

/// An application the account let sign it in.
#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Application {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// RFC 3339, UTC.
    pub granted_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Applications {
    pub applications: Vec<Application>,
}

/// The applications this account let sign it in (OpenID Connect), oldest first.
#[utoipa::path(tag = "account", security(("session" = [])), responses(
    (status = 200, description = "the applications granted access", body = Applications),
))]
#[get("/account/applications")]
async fn list_applications(request: ApiRequest<'_>) -> Answer<Applications> {
    let user = request.account().await?;
    let granted = request.auth.oidc().applications(&user).await?;
    let applications = granted
        .into_iter()
        .map(|app| Application {
            client_id: app.client_id,
            name: app.name,
            scopes: app.scopes,
            granted_at: rfc3339(app.granted_at),
        })
        .collect();
    Ok(Json(Applications { applications }))
}

/// Withdraws an application's access: its grant, and every token it holds for this account.
#[utoipa::path(tag = "account", params(("id" = String, Path, description = "The application's client_id, from GET /account/applications")), security(("session" = [])), responses(
    (status = 200, description = "access withdrawn", body = Message),
    (status = 404, description = "no such application"),
))]
#[delete("/account/applications/<id>")]
async fn revoke_application(id: &str, request: ApiRequest<'_>) -> Answer<Message> {
    let user = request.account().await?;
    let oidc = request.auth.oidc();
    oidc.revoke_application(&request.caller, &user, id).await?;
    Ok(Message::new("access withdrawn"))
}
