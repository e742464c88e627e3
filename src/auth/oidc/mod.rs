//! The OpenID Connect provider (`auth.oidc()`): other applications sign their users in here.
//! Authorization code flow with PKCE (S256 only), consent, the token endpoint's two grants,
//! ID tokens, opaque access tokens, userinfo, introspection, revocation and RP-initiated
//! logout, on top of this service's own sessions (the ID token's `sid`, `auth_time` and `amr`
//! come from the session the browser holds here).
//!
//! The rules real providers got wrong are kept here, where the web layer cannot forget them:
//! a redirect URI is one registered, byte for byte (only a loopback one may change its port);
//! a code lives a minute and is spent by one conditional write, and a second use revokes what
//! the first issued; a refresh token is rotated on every use and a reused one revokes its
//! family; every token is bound to its client; confidential clients' failed authentications
//! are throttled and audited as logins are.

mod clients;
mod jose;
mod keys;

pub use clients::{ClientInfo, NewClient, Registered};
pub use jose::Alg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::Field;
use super::throttle::Scope;
use super::{Account, Auth, AuthError, Caller, token};
use crate::db::oidc::{self as stored, Client, Code, Spent, Token};
use crate::db::{Tx, now};

/// How long an authorization code may wait for its exchange.
pub const CODE_TTL_SECS: i64 = 60;

/// How long a browser's pending authorization request lasts (login and consent included).
pub const REQUEST_TTL_SECS: i64 = 10 * 60;

/// The longest `state`, `nonce` or `login_hint` taken (each is kept in the browser's cookie
/// while it logs in, and `nonce` with the code).
pub const MAX_ECHOED_LEN: usize = 256;

/// The scopes this provider knows; others asked for are ignored (OpenID Connect Core 3.1.2.1).
pub const SCOPES: [&str; 3] = ["openid", "email", "offline_access"];

/// The provider's settings, and the signing keys unsealed so far.
#[derive(Clone)]
pub(super) struct Provider {
    /// `public_base_url` without its trailing slash; `None`: the provider is off.
    issuer: Option<String>,
    access_ttl: i64,
    refresh_ttl: i64,
    private_keys: Arc<Mutex<HashMap<String, Arc<jose::PrivateKey>>>>,
    /// Held while a missing signing key is made.
    generating: Arc<tokio::sync::Mutex<()>>,
}

impl Provider {
    pub(super) fn new(settings: &crate::config::Settings) -> Provider {
        Provider {
            issuer: (settings.public_base_url.as_deref())
                .map(|url| url.trim_end_matches('/').to_owned()),
            access_ttl: settings.oidc_access_token_ttl_secs,
            refresh_ttl: settings.oidc_refresh_token_ttl_secs,
            private_keys: Default::default(),
            generating: Default::default(),
        }
    }
}

impl Auth {
    /// How long an ID token lives: a key retired longer ago signed nothing still valid.
    pub(super) fn oidc_signed_lifetime(&self) -> i64 {
        self.oidc.access_ttl
    }
}

/// An OAuth error, as RFC 6749 names it (`error`), with a description safe to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthFault {
    pub code: &'static str,
    pub description: &'static str,
}

const fn fault(code: &'static str, description: &'static str) -> AuthError {
    AuthError::OAuth(OAuthFault { code, description })
}

/// The token endpoint's refusal of a code, refresh token or verifier (RFC 6749 5.2).
const INVALID_GRANT: AuthError = fault(
    "invalid_grant",
    "the code or refresh token is invalid, expired, spent, or not this client's",
);
const INVALID_CLIENT: AuthError = fault("invalid_client", "client authentication failed");
const INVALID_TOKEN: AuthError = fault("invalid_token", "the access token is invalid or expired");

/// What `GET /oauth/authorize` carries (every parameter as sent).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// A checked authorization request, waiting for the browser's login and consent: what the
/// browser's cookie holds (sealed by the web layer), so it is bound to that browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// A random id the consent and re-login forms carry: a form answers only the request it
    /// was shown for, not one that replaced it in the cookie since.
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The scopes asked for that this provider knows and the client may have, space-separated.
    pub scopes: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// `prompt=login`: a session made after `started_at` is needed.
    pub login: bool,
    /// `prompt=consent`: ask again even if granted.
    pub consent: bool,
    /// `prompt=none`: never show a page; answer the client with an error instead.
    pub silent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub started_at: i64,
}

/// A refused authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An unknown client or unregistered redirect URI: said on a page, never redirected.
    Page(&'static str),
    /// Told to the client: the URL of its redirect URI with the error.
    Client(String),
}

/// What the browser does next with an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Log in (again, for `prompt=login` or `max_age`), then come back.
    LogIn,
    /// Show the consent page.
    Consent(ConsentView),
    /// Back to the client, with a code or an error.
    Redirect(String),
}

/// What the consent page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
    pub client_name: String,
    pub scopes: Vec<&'static str>,
    /// The host the browser will be sent back to.
    pub redirect_host: String,
}

/// How a client authenticated at an endpoint: `client_secret_basic` or `client_secret_post`
/// give a secret, a public client (`none`) only its id.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    pub client_id: Option<String>,
    pub secret: Option<String>,
}

/// A token request (`POST /oauth/token`).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// The token endpoint's answer (RFC 6749 5.1, OpenID Connect Core 3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// The claims userinfo answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaims {
    pub subject: String,
    /// With the `email` scope.
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// What RP-initiated logout decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    /// Where to send the browser (a registered post-logout URI, with `state`).
    pub redirect: Option<String>,
    /// Whether the hint named this browser's session, so it may end without asking.
    pub confirmed: bool,
}

/// An application an account granted access, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Application {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// The provider.
#[derive(Clone, Copy)]
pub struct Oidc<'a>(pub(super) &'a Auth);

impl<'a> Oidc<'a> {
    /// The issuer (`public_base_url`, without a trailing slash); `None`: the provider is off.
    pub fn issuer(self) -> Option<&'a str> {
        self.0.oidc.issuer.as_deref()
    }

    fn issuer_or_off(self) -> Result<&'a str, AuthError> {
        self.issuer().ok_or(AuthError::OidcOff)
    }

    /// The public keys ID tokens are verified with (a JWK Set): the current keys and those
    /// retired less than a token's lifetime ago. Makes the first key on first use.
    pub async fn jwks(self) -> Result<Value, AuthError> {
        self.issuer_or_off()?;
        self.keys().signing(Alg::Rs256).await?;
        let keys = self.keys().published().await?;
        Ok(json!({ "keys": keys }))
    }

    fn keys(self) -> keys::Keys<'a> {
        keys::Keys(self.0)
    }

    /// The operator's registrations.
    pub fn clients(self) -> clients::Clients<'a> {
        clients::Clients(self.0)
    }

    /// Adds a new current signing key for each algorithm in use; the old ones retire (they
    /// stay published while tokens they signed may live). Its `kid`.
    pub async fn rotate_key(self) -> Result<Vec<String>, AuthError> {
        self.keys().rotate().await
    }

    /// Checks an authorization request (OpenID Connect Core 3.1.2.1). Until the client and its
    /// redirect URI are known good, a refusal is a page; after, it goes to the client.
    pub async fn authorize(self, params: AuthorizeParams) -> Result<Authorization, Refusal> {
        let issuer = self.issuer().ok_or(Refusal::Page(
            "This service is not an OpenID Connect provider.",
        ))?;
        let client_id = params
            .client_id
            .as_deref()
            .ok_or(Refusal::Page("The application sent no client_id."))?;
        let client = self
            .client(client_id)
            .await
            .map_err(|_| Refusal::Page("The application's sign-in could not be checked now."))?
            .ok_or(Refusal::Page("The application is not registered here."))?;
        let redirect_uri = params
            .redirect_uri
            .as_deref()
            .ok_or(Refusal::Page("The application sent no redirect_uri."))?;
        if !redirect_allowed(&client.redirect_uris, redirect_uri) {
            return Err(Refusal::Page(
                "The application asked to return to an address it did not register.",
            ));
        }
        let refuse = |code: &'static str, description: &'static str| {
            Refusal::Client(error_redirect(
                redirect_uri,
                issuer,
                code,
                description,
                params.state.as_deref(),
            ))
        };
        if params.request.is_some() {
            return Err(refuse(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if params.request_uri.is_some() {
            return Err(refuse(
                "request_uri_not_supported",
                "request_uri is not supported",
            ));
        }
        // They travel in the browser's cookie and are stored with the code.
        let echoed = [&params.state, &params.nonce, &params.login_hint];
        let unfit = echoed
            .into_iter()
            .flatten()
            .any(|v| v.len() > MAX_ECHOED_LEN || !is_clean(v));
        if unfit {
            return Err(refuse(
                "invalid_request",
                "state, nonce and login_hint are at most 256 bytes each, without control characters",
            ));
        }
        if params.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "response_type must be code",
            ));
        }
        if params
            .response_mode
            .as_deref()
            .is_some_and(|mode| mode != "query")
        {
            return Err(refuse("invalid_request", "response_mode must be query"));
        }
        let asked: Vec<&str> = params.scope.as_deref().unwrap_or("").split(' ').collect();
        if !asked.contains(&"openid") {
            return Err(refuse("invalid_scope", "scope must include openid"));
        }
        let allowed: Vec<&str> = client.scopes.split(' ').collect();
        let scopes: Vec<&str> = SCOPES
            .into_iter()
            .filter(|scope| asked.contains(scope) && allowed.contains(scope))
            .collect();
        let code_challenge = match (
            params.code_challenge.as_deref(),
            params.code_challenge_method.as_deref(),
        ) {
            (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => {
                Some(challenge.to_owned())
            }
            (Some(_), Some("S256")) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge must be 43 base64url characters",
                ));
            }
            (Some(_), _) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ));
            }
            (None, _) if client.secret_hash.is_some() && client.pkce_optional => None,
            (None, _) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge (PKCE, S256) is required",
                ));
            }
        };
        let prompts: Vec<&str> = params.prompt.as_deref().unwrap_or("").split(' ').collect();
        let silent = prompts.contains(&"none");
        if silent && prompts.iter().any(|p| !p.is_empty() && *p != "none") {
            return Err(refuse(
                "invalid_request",
                "prompt=none goes with no other value",
            ));
        }
        let max_age = match params.max_age.as_deref() {
            None => None,
            Some(text) => match text.parse::<i64>() {
                Ok(secs) if secs >= 0 => Some(secs),
                _ => return Err(refuse("invalid_request", "max_age must be whole seconds")),
            },
        };
        Ok(Authorization {
            id: token::public_id(),
            client_id: client.client_id,
            redirect_uri: redirect_uri.to_owned(),
            scopes: scopes.join(" "),
            state: params.state,
            nonce: params.nonce,
            code_challenge,
            login: prompts.contains(&"login"),
            consent: prompts.contains(&"consent"),
            silent,
            max_age,
            login_hint: params.login_hint,
            started_at: now(),
        })
    }

    /// The next step of a checked request for the browser's `account` (`None`: not logged
    /// in), with the consent page's answer when there is one: a code once the session is
    /// recent enough and the scopes are granted.
    pub async fn proceed(
        self,
        caller: &Caller,
        request: &Authorization,
        account: Option<&Account>,
        consent: Option<bool>,
    ) -> Result<Next, AuthError> {
        let issuer = self.issuer_or_off()?;
        let to_client = |code: &'static str, description: &'static str| {
            Next::Redirect(error_redirect(
                &request.redirect_uri,
                issuer,
                code,
                description,
                request.state.as_deref(),
            ))
        };
        if now() - request.started_at > REQUEST_TTL_SECS {
            return Ok(to_client("invalid_request", "the sign-in took too long"));
        }
        let Some(client) = self.client(&request.client_id).await? else {
            return Ok(to_client("unauthorized_client", "the client was removed"));
        };
        let session = account.and_then(|account| account.session.as_ref());
        // A session made since the request began is fresh enough for anything; an older one
        // only without `prompt=login`, and within `max_age`.
        let fresh_enough = session.is_some_and(|session| {
            let at = session.created_at;
            at >= request.started_at
                || (!request.login && request.max_age.is_none_or(|max| now() - at <= max))
        });
        let (Some(account), Some(session), true) = (account, session, fresh_enough) else {
            return Ok(match request.silent {
                true => to_client("login_required", "the user is not logged in"),
                false => Next::LogIn,
            });
        };
        if consent == Some(false) {
            return Ok(to_client("access_denied", "the user declined"));
        }
        let user_id = account.id;
        let code = token::generate();
        let row = Code {
            code_hash: token::digest(&code).to_vec(),
            client_id: client.client_id.clone(),
            user_id,
            redirect_uri: request.redirect_uri.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            session_id: session.public_id.clone(),
            auth_time: session.created_at,
            amr: session.amr.clone(),
            family: token::public_id(),
            expires_at: now() + CODE_TTL_SECS,
            spent_at: None,
        };
        let skips = client.skip_consent && client.secret_hash.is_some();
        let (asked, again) = (request.scopes.clone(), request.consent);
        let version = account.credential_version();
        // One transaction under the account's lock, as every credential change and every
        // withdrawal takes it: the grant is read where the code is stored, and no code is
        // stored for credentials changed, an account disabled or a grant withdrawn meanwhile.
        let decided = self
            .0
            .db
            .write(move |tx| {
                let current = crate::db::users::lock_account(tx, user_id)?;
                if current != Some(version) || crate::db::users::is_disabled(tx, user_id)? {
                    return Ok(Decided::Stale);
                }
                let granted = stored::find_grant(tx, user_id, &row.client_id)?;
                let covered = granted.as_deref().is_some_and(|granted| {
                    let granted: Vec<&str> = granted.split(' ').collect();
                    asked.split(' ').all(|s| granted.contains(&s))
                });
                if consent.is_none() && (again || !(covered || skips)) {
                    return Ok(Decided::AskConsent);
                }
                if consent == Some(true) || !covered {
                    let scopes = union(granted.as_deref(), &asked);
                    stored::set_grant(tx, user_id, &row.client_id, &scopes, now())?;
                }
                stored::add_code(tx, &row)?;
                Ok(Decided::Code)
            })
            .await?;
        match decided {
            Decided::Code => {}
            Decided::Stale => {
                return Ok(match request.silent {
                    true => to_client("login_required", "the session ended"),
                    false => Next::LogIn,
                });
            }
            Decided::AskConsent => {
                return Ok(match request.silent {
                    true => to_client("consent_required", "the user has not consented"),
                    false => Next::Consent(ConsentView {
                        client_name: client.name,
                        scopes: SCOPES
                            .into_iter()
                            .filter(|s| request.scopes.split(' ').any(|asked| asked == *s))
                            .collect(),
                        redirect_host: host_of(&request.redirect_uri).to_owned(),
                    }),
                });
            }
        }
        let fields = [Field::UserId(user_id), Field::Client(&client.client_id)];
        self.0.audit.record(caller, "oidc.authorized", &fields);
        let mut query = vec![("code", code.as_str())];
        query.extend(request.state.as_deref().map(|state| ("state", state)));
        query.push(("iss", issuer));
        Ok(Next::Redirect(with_query(&request.redirect_uri, &query)))
    }

    /// The token endpoint: authenticates the client, then exchanges a code or a refresh token.
    pub async fn token(
        self,
        caller: &Caller,
        auth: ClientAuth,
        request: TokenRequest,
    ) -> Result<Tokens, AuthError> {
        let issuer = self.issuer_or_off()?.to_owned();
        let client = self.authenticate(caller, &auth).await?;
        let presented = match request.grant_type.as_str() {
            "authorization_code" => Presented::Code(token::digest(
                request
                    .code
                    .as_deref()
                    .ok_or(fault("invalid_request", "code is required"))?,
            )),
            "refresh_token" => Presented::Refresh(token::digest(
                (request.refresh_token.as_deref())
                    .ok_or(fault("invalid_request", "refresh_token is required"))?,
            )),
            _ => {
                return Err(fault(
                    "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token",
                ));
            }
        };
        let (at, access_ttl, refresh_ttl) =
            (now(), self.0.oidc.access_ttl, self.0.oidc.refresh_ttl);
        let (access_token, refresh_token) = (token::generate(), token::generate());
        let (access, refresh) = (access_token.clone(), refresh_token.clone());
        let client_id = client.client_id.clone();
        let exchanged = self
            .0
            .db
            .write(move |tx| {
                // The account is locked before the code or token is spent, as a credential
                // change locks it before it deletes them: the two take turns, so no token is
                // issued from a code a password change voided.
                let owner = match &presented {
                    Presented::Code(digest) => stored::code_owner(tx, digest)?,
                    Presented::Refresh(digest) => stored::token_owner(tx, digest)?,
                };
                let Some(user_id) = owner else {
                    return Ok(Exchanged::Refused(None));
                };
                if crate::db::users::lock_account(tx, user_id)?.is_none()
                    || crate::db::users::is_disabled(tx, user_id)?
                {
                    return Ok(Exchanged::Refused(None));
                }
                let (grant, nonce) = match presented {
                    Presented::Code(digest) => match stored::spend_code(tx, &digest, at)? {
                        Spent::Now(code) => {
                            let verified = code.client_id == client_id
                                && request.redirect_uri.as_deref() == Some(&code.redirect_uri)
                                && pkce_holds(
                                    code.code_challenge.as_deref(),
                                    request.code_verifier.as_deref(),
                                );
                            if !verified {
                                return Ok(Exchanged::Refused(None));
                            }
                            let nonce = code.nonce.clone();
                            (Grant::from_code(code), nonce)
                        }
                        Spent::Before(code) => {
                            let revoked = stored::revoke_family(tx, &code.family)?;
                            return Ok(Exchanged::Reused("oidc.code_reused", user_id, revoked));
                        }
                        Spent::Never => return Ok(Exchanged::Refused(None)),
                    },
                    Presented::Refresh(digest) => match stored::spend_refresh(tx, &digest, at)? {
                        Spent::Now(token) if token.client_id == client_id => {
                            let mut grant = Grant::from_token(token);
                            if let Some(asked) = request.scope.as_deref() {
                                let asked: Vec<&str> = asked.split(' ').collect();
                                if !asked
                                    .iter()
                                    .all(|s| grant.scopes.split(' ').any(|g| g == *s))
                                {
                                    return Ok(Exchanged::Refused(Some(OAuthFault {
                                        code: "invalid_scope",
                                        description: "a refresh cannot widen the scopes granted",
                                    })));
                                }
                                grant.scopes = SCOPES
                                    .into_iter()
                                    .filter(|s| asked.contains(s))
                                    .collect::<Vec<_>>()
                                    .join(" ");
                            }
                            (grant, None)
                        }
                        // Presented by another client than its own: stolen, so is the rest.
                        Spent::Now(token) => {
                            stored::revoke_family(tx, &token.family)?;
                            return Ok(Exchanged::Refused(None));
                        }
                        Spent::Before(token) => {
                            let revoked = stored::revoke_family(tx, &token.family)?;
                            return Ok(Exchanged::Reused("oidc.refresh_reused", user_id, revoked));
                        }
                        Spent::Never => return Ok(Exchanged::Refused(None)),
                    },
                };
                let row = |kind: &str, raw: &str, expires_at: i64| Token {
                    token_hash: token::digest(raw).to_vec(),
                    kind: kind.to_owned(),
                    family: grant.family.clone(),
                    client_id: client_id.clone(),
                    user_id,
                    scopes: grant.scopes.clone(),
                    session_id: grant.session_id.clone(),
                    auth_time: grant.auth_time,
                    amr: grant.amr.clone(),
                    issued_at: at,
                    expires_at,
                    spent_at: None,
                };
                stored::add_token(tx, &row("access", &access, at + access_ttl))?;
                let offline = grant.scopes.split(' ').any(|s| s == "offline_access");
                if offline {
                    stored::add_token(tx, &row("refresh", &refresh, at + refresh_ttl))?;
                }
                let subject = stored::subject(tx, user_id, &token::public_id())?;
                let user = crate::db::users::find_user_by_id(tx, user_id)?;
                Ok(match user {
                    Some(user) => Exchanged::Issued(Box::new(Issued {
                        grant,
                        nonce,
                        subject,
                        account: Account::from(user),
                        offline,
                    })),
                    None => Exchanged::Refused(None),
                })
            })
            .await?;
        let issued = match exchanged {
            Exchanged::Issued(issued) => *issued,
            Exchanged::Reused(event, user_id, revoked) => {
                let fields = [
                    Field::UserId(user_id),
                    Field::Client(&client.client_id),
                    Field::Count(revoked),
                ];
                self.0.audit.record(caller, event, &fields);
                return Err(INVALID_GRANT);
            }
            Exchanged::Refused(fault) => return Err(fault.map_or(INVALID_GRANT, AuthError::OAuth)),
        };
        let Issued {
            grant,
            nonce,
            subject,
            account: email,
            offline,
        } = issued;
        let lifetimes = access_ttl;
        let alg = Alg::parse(&client.id_token_alg).unwrap_or(Alg::Rs256);
        let mut claims = json!({
            "iss": issuer,
            "sub": subject,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": at,
            "exp": at + lifetimes,
            "auth_time": grant.auth_time,
            "amr": amr(&grant.amr),
            "sid": grant.session_id,
            "at_hash": half_hash(alg, &access_token),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if grant.scopes.split(' ').any(|s| s == "email") {
            claims["email"] = email.email.clone().into();
            claims["email_verified"] = email.is_verified().into();
        }
        let id_token = self.keys().sign(alg, &claims).await?;
        Ok(Tokens {
            access_token,
            token_type: "Bearer",
            expires_in: lifetimes,
            id_token,
            refresh_token: offline.then_some(refresh_token),
            scope: grant.scopes,
        })
    }

    /// The claims of the account an access token was issued for (OpenID Connect Core 5.3).
    pub async fn userinfo(self, access_token: &str) -> Result<UserClaims, AuthError> {
        self.issuer_or_off()?;
        let digest = token::digest(access_token);
        let found = self
            .0
            .db
            .run(move |c| {
                let Some(token) = stored::find_token(c, &digest, "access", now())? else {
                    return Ok(None);
                };
                let user = crate::db::users::find_user_by_id(c, token.user_id)?;
                let subject = stored::find_subject(c, token.user_id)?;
                Ok(user
                    .zip(subject)
                    .map(|(user, subject)| (token, user, subject)))
            })
            .await?;
        let (token, user, subject) = found.ok_or(INVALID_TOKEN)?;
        let account = Account::from(user);
        let email = token.scopes.split(' ').any(|s| s == "email");
        Ok(UserClaims {
            subject,
            email_verified: email.then(|| account.is_verified()),
            email: email.then_some(account.email),
        })
    }

    /// RFC 7662: whether a token is active, and what it grants, for the confidential client
    /// it was issued to (another client learns only `active: false`).
    pub async fn introspect(
        self,
        caller: &Caller,
        auth: ClientAuth,
        raw: &str,
    ) -> Result<Value, AuthError> {
        let issuer = self.issuer_or_off()?.to_owned();
        let client = self.authenticate(caller, &auth).await?;
        if client.secret_hash.is_none() {
            return Err(fault(
                "invalid_client",
                "introspection is for confidential clients",
            ));
        }
        let digest = token::digest(raw);
        let found = self
            .0
            .db
            .run(move |c| {
                let at = now();
                let token = match stored::find_token(c, &digest, "access", at)? {
                    Some(token) => Some(token),
                    None => stored::find_token(c, &digest, "refresh", at)?,
                };
                let Some(token) = token else { return Ok(None) };
                let subject = stored::find_subject(c, token.user_id)?;
                Ok(subject.map(|subject| (token, subject)))
            })
            .await?;
        Ok(match found {
            Some((token, subject)) if token.client_id == client.client_id => json!({
                "active": true,
                "scope": token.scopes,
                "client_id": token.client_id,
                "sub": subject,
                "aud": token.client_id,
                "iss": issuer,
                "exp": token.expires_at,
                "iat": token.issued_at,
                "token_type": match token.kind.as_str() {
                    "access" => "Bearer",
                    _ => "refresh_token",
                },
            }),
            _ => json!({ "active": false }),
        })
    }

    /// RFC 7009: revokes a token of the authenticated client (a refresh token with its whole
    /// family); an unknown token or another client's is answered the same, and changes
    /// nothing.
    pub async fn revoke(
        self,
        caller: &Caller,
        auth: ClientAuth,
        raw: &str,
    ) -> Result<(), AuthError> {
        self.issuer_or_off()?;
        let client = self.authenticate(caller, &auth).await?;
        let digest = token::digest(raw);
        let client_id = client.client_id.clone();
        let revoked = self
            .0
            .db
            .write(move |tx| {
                let Some(token) = stored::find_client_token(tx, &digest, &client_id)? else {
                    return Ok(None);
                };
                // As the token endpoint does before it spends a refresh token: a refresh in
                // flight commits first (and its new tokens go too) or waits for this.
                crate::db::users::lock_account(tx, token.user_id)?;
                match token.kind.as_str() {
                    "refresh" => stored::revoke_family(tx, &token.family)?,
                    _ => stored::delete_token(tx, &digest)?,
                };
                Ok(Some(token.user_id))
            })
            .await?;
        if let Some(user_id) = revoked {
            let fields = [Field::UserId(user_id), Field::Client(&client.client_id)];
            self.0.audit.record(caller, "oidc.token_revoked", &fields);
        }
        Ok(())
    }

    /// RP-initiated logout 1.0: checks `id_token_hint` (signed here; it may have expired) and
    /// `post_logout_redirect_uri` (registered exactly for the hint's client, or `client_id`'s).
    /// The browser's session ends at once only when the hint names it (`sid`); otherwise its
    /// owner is asked.
    pub async fn logout(
        self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
        account: Option<&Account>,
    ) -> Result<Logout, Refusal> {
        let unavailable = |_| Refusal::Page("The sign-out could not be checked now.");
        let claims = match id_token_hint {
            Some(hint) => Some(self.keys().verify(hint).await.map_err(unavailable)?.ok_or(
                Refusal::Page("The sign-out request's id_token_hint is not valid."),
            )?),
            None => None,
        };
        let audience = claims.as_ref().and_then(|c| c["aud"].as_str());
        if let (Some(audience), Some(client_id)) = (audience, client_id)
            && audience != client_id
        {
            return Err(Refusal::Page(
                "The sign-out request names two applications.",
            ));
        }
        let client_id = audience.or(client_id);
        let redirect = match (post_logout_redirect_uri, client_id) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Refusal::Page(
                    "The sign-out request names no application to return to.",
                ));
            }
            (Some(uri), Some(client_id)) => {
                let client = self
                    .client(client_id)
                    .await
                    .map_err(unavailable)?
                    .ok_or(Refusal::Page("The application is not registered here."))?;
                if !client
                    .post_logout_uris
                    .split('\n')
                    .any(|registered| registered == uri)
                {
                    return Err(Refusal::Page(
                        "The application asked to return to an address it did not register.",
                    ));
                }
                let query: Vec<_> = state.map(|state| ("state", state)).into_iter().collect();
                Some(with_query(uri, &query))
            }
        };
        let session = account.and_then(|account| account.session.as_ref());
        let confirmed = match (&claims, session) {
            (Some(claims), Some(session)) => claims["sid"] == session.public_id.as_str(),
            _ => false,
        };
        Ok(Logout {
            redirect,
            confirmed,
        })
    }

    /// The applications `account` granted access.
    pub async fn applications(self, account: &Account) -> Result<Vec<Application>, AuthError> {
        let user_id = account.id;
        let grants = self
            .0
            .db
            .run(move |c| stored::grants_of(c, user_id))
            .await?;
        Ok(grants
            .into_iter()
            .map(|grant| Application {
                client_id: grant.client_id,
                name: grant.client_name,
                scopes: grant.scopes.split(' ').map(str::to_owned).collect(),
                granted_at: grant.created_at,
            })
            .collect())
    }

    /// Withdraws `account`'s grant to `client_id`, with every token it holds.
    pub async fn revoke_application(
        self,
        caller: &Caller,
        account: &Account,
        client_id: &str,
    ) -> Result<(), AuthError> {
        if !plausible_client_id(client_id) {
            return Err(AuthError::NoSuchApplication);
        }
        let (user_id, id) = (account.id, client_id.to_owned());
        let revoked = self
            .0
            .db
            .write(move |tx| {
                // No exchange or refresh of this account's runs meanwhile (they lock it too),
                // so none issues tokens the withdrawal would miss.
                crate::db::users::lock_account(tx, user_id)?;
                stored::revoke_grant(tx, user_id, &id)
            })
            .await?;
        if !revoked {
            return Err(AuthError::NoSuchApplication);
        }
        let fields = [Field::UserId(user_id), Field::Client(client_id)];
        self.0.audit.record(caller, "oidc.grant_revoked", &fields);
        Ok(())
    }

    async fn client(self, client_id: &str) -> Result<Option<Client>, AuthError> {
        if !plausible_client_id(client_id) {
            return Ok(None);
        }
        let id = client_id.to_owned();
        Ok(self.0.db.run(move |c| stored::find_client(c, &id)).await?)
    }

    /// The client `auth` names, if it proves who it is: a confidential client's secret, a
    /// public client's id alone. A right secret always passes (it is 256 random bits: nothing
    /// to guess, and a client id is public, so counting right answers would let anyone lock an
    /// application out). A wrong one is counted per client and per address as a failed login
    /// is, audited, and beyond the limit answered 429.
    async fn authenticate(self, caller: &Caller, auth: &ClientAuth) -> Result<Client, AuthError> {
        let client_id = auth.client_id.as_deref().ok_or(INVALID_CLIENT)?;
        let Some(client) = self.client(client_id).await? else {
            let named = match plausible_client_id(client_id) {
                true => client_id,
                false => "(not a client id)",
            };
            self.0
                .audit
                .record(caller, "oidc.client_auth_failed", &[Field::Client(named)]);
            return Err(INVALID_CLIENT);
        };
        let Some(stored_hash) = client.secret_hash.as_deref() else {
            return match auth.secret {
                None => Ok(client),
                Some(_) => Err(INVALID_CLIENT),
            };
        };
        let presented = auth.secret.as_deref().map(token::digest);
        if presented.is_some_and(|digest| bool::from(digest.ct_eq(stored_hash))) {
            return Ok(client);
        }
        let counted = vec![
            (Scope::ClientAuth, client.client_id.clone()),
            (Scope::LoginAddress, caller.address_key()),
        ];
        let failure = self.0.gate(counted).await.map_err(|error| {
            self.0
                .throttled(caller, "oidc.client_auth_throttled", error, None)
        })?;
        failure.keep();
        let fields = [Field::Client(&client.client_id)];
        self.0
            .audit
            .record(caller, "oidc.client_auth_failed", &fields);
        Err(INVALID_CLIENT)
    }
}

/// Whether `id` could be a client id (a public id: 22 base64url characters): anything else is
/// looked up nowhere and audited as no id at all.
fn plausible_client_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `text` has no control character (PostgreSQL refuses NUL in text; none belongs in
/// a parameter).
fn is_clean(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// What the authorization's transaction decided.
enum Decided {
    /// A code was stored.
    Code,
    /// The consent page first.
    AskConsent,
    /// The session's credentials changed (or the account was disabled) since it was read.
    Stale,
}

/// What a token request presents, by digest.
enum Presented {
    Code([u8; 32]),
    Refresh([u8; 32]),
}

/// What the token endpoint's transaction did.
enum Exchanged {
    Issued(Box<Issued>),
    /// A code or refresh token presented again: its family was revoked (the audit event, the
    /// account, how many tokens).
    Reused(&'static str, i32, usize),
    /// Unknown, expired, not this client's, or not matching; or this fault.
    Refused(Option<OAuthFault>),
}

/// The tokens' contents, once stored.
struct Issued {
    grant: Grant,
    nonce: Option<String>,
    subject: String,
    account: Account,
    offline: bool,
}

/// What a code or refresh token carries on to the tokens it is exchanged for.
struct Grant {
    scopes: String,
    session_id: String,
    auth_time: i64,
    amr: String,
    family: String,
}

impl Grant {
    fn from_code(code: Code) -> Grant {
        Grant {
            scopes: code.scopes,
            session_id: code.session_id,
            auth_time: code.auth_time,
            amr: code.amr,
            family: code.family,
        }
    }

    fn from_token(token: Token) -> Grant {
        Grant {
            scopes: token.scopes,
            session_id: token.session_id,
            auth_time: token.auth_time,
            amr: token.amr,
            family: token.family,
        }
    }
}

/// Deletes every code and token of `user_id`: what a credential change or an operator's
/// revocation voids.
pub(super) fn revoke_tokens_of(tx: &mut Tx<'_>, user_id: i32) -> Result<usize, crate::db::DbError> {
    stored::delete_tokens_of(tx, user_id)
}

/// Whether `uri` is one of `registered` (one per line): the same string, or for a loopback
/// redirect (`http://127.0.0.1…`, `http://[::1]…`) the same but for the port (RFC 8252 7.3).
pub fn redirect_allowed(registered: &str, uri: &str) -> bool {
    registered.split('\n').any(|r| {
        r == uri || without_loopback_port(r).is_some_and(|r| Some(r) == without_loopback_port(uri))
    })
}

/// A loopback URI with its port taken out; `None` for any other.
fn without_loopback_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let host = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find(|host| authority == *host || authority.strip_prefix(host).is_some_and(is_port))?;
    Some(format!("http://{host}{path}"))
}

/// Whether `text` is `:` and a port number.
fn is_port(text: &str) -> bool {
    text.strip_prefix(':').is_some_and(|digits| {
        !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether a PKCE S256 challenge is well formed: the base64url SHA-256 of the verifier.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && URL_SAFE_NO_PAD.decode(challenge).is_ok()
}

/// Whether `verifier` answers `challenge` (RFC 7636 4.6); no challenge wants no verifier.
fn pkce_holds(challenge: Option<&str>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (None, None) => true,
        (Some(challenge), Some(verifier)) => {
            let valid = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            valid && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
        }
        _ => false,
    }
}

/// `at_hash` (OpenID Connect Core 3.1.3.6): the left half of the hash of `token` that the ID
/// token's algorithm uses, base64url: SHA-256 for RS256, SHA-512 for EdDSA with Ed25519.
fn half_hash(alg: Alg, token: &str) -> String {
    match alg {
        Alg::Rs256 => URL_SAFE_NO_PAD.encode(&Sha256::digest(token.as_bytes())[..16]),
        Alg::EdDsa => URL_SAFE_NO_PAD.encode(&sha2::Sha512::digest(token.as_bytes())[..32]),
    }
}

/// A session's methods as RFC 8176 names them: a passkey is hardware-bound (`hwk`) with user
/// verification (`user`); a recovery code is a one-time password; two factors are `mfa`.
fn amr(session: &str) -> Vec<&'static str> {
    let mut methods = Vec::new();
    for method in session.split(' ') {
        let names: &[&'static str] = match method {
            "pwd" => &["pwd"],
            "otp" | "rc" => &["otp"],
            "passkey" => &["hwk", "user"],
            _ => &[],
        };
        for name in names {
            if !methods.contains(name) {
                methods.push(name);
            }
        }
    }
    if methods.len() > 1 {
        methods.push("mfa");
    }
    methods
}

/// The scopes of `granted` and `asked` together, in [`SCOPES`] order.
fn union(granted: Option<&str>, asked: &str) -> String {
    let has = |scope: &str| {
        asked.split(' ').any(|s| s == scope)
            || granted.is_some_and(|g| g.split(' ').any(|s| s == scope))
    };
    let scopes: Vec<&str> = SCOPES.into_iter().filter(|s| has(s)).collect();
    scopes.join(" ")
}

/// `uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = uri.to_owned();
    for (name, value) in pairs {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encoded(value));
    }
    url
}

/// An error answer at the client's redirect URI (RFC 6749 4.1.2.1, with RFC 9207's `iss`).
fn error_redirect(
    uri: &str,
    issuer: &str,
    code: &str,
    description: &str,
    state: Option<&str>,
) -> String {
    let mut pairs = vec![("error", code), ("error_description", description)];
    pairs.extend(state.map(|state| ("state", state)));
    pairs.push(("iss", issuer));
    with_query(uri, &pairs)
}

/// `text` with every byte but the unreserved ones (RFC 3986 2.3) percent-encoded.
pub fn percent_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The host (and port) of `uri`, for the consent page.
fn host_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_uri_is_matched_as_an_exact_string_and_only_loopback_varies_its_port() {
        let registered =
            "https://app.example.com/cb\nhttp://127.0.0.1/native\nhttp://[::1]:8080/v6";
        assert!(redirect_allowed(registered, "https://app.example.com/cb"));
        for refused in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/c",
            "https://APP.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com/./cb",
            "https://app.example.com/cb#frag",
            "https://app.example.com:443/cb",
            "http://app.example.com/cb",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com/cb\nhttps://evil.com",
            "http://127.0.0.1.evil.com/native",
            "http://127.0.0.1:80x/native",
            "http://127.0.0.1:5000/other",
            "http://localhost:5000/native",
            "",
        ] {
            assert!(!redirect_allowed(registered, refused), "{refused}");
        }
        assert!(redirect_allowed(
            registered,
            "http://127.0.0.1:51234/native"
        ));
        assert!(redirect_allowed(registered, "http://127.0.0.1/native"));
        assert!(redirect_allowed(registered, "http://[::1]:1/v6"));
        assert!(redirect_allowed(registered, "http://[::1]/v6"));
    }

    #[test]
    fn pkce_s256_is_checked_and_nothing_else_passes() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(pkce_holds(Some(challenge), Some(verifier)));
        assert!(!pkce_holds(Some(challenge), Some(challenge)), "plain");
        assert!(!pkce_holds(Some(challenge), None));
        assert!(!pkce_holds(None, Some(verifier)));
        assert!(pkce_holds(None, None));
        assert!(!pkce_holds(Some(challenge), Some("short")));
    }

    #[test]
    fn amr_names_the_session_methods_as_rfc_8176_does() {
        assert_eq!(amr("pwd"), ["pwd"]);
        assert_eq!(amr("pwd otp"), ["pwd", "otp", "mfa"]);
        assert_eq!(amr("pwd rc"), ["pwd", "otp", "mfa"]);
        assert_eq!(amr("passkey"), ["hwk", "user", "mfa"]);
    }

    #[test]
    fn queries_are_percent_encoded_and_appended() {
        assert_eq!(
            with_query(
                "https://a/cb?x=1",
                &[("state", "a b&c"), ("iss", "http://h:1")]
            ),
            "https://a/cb?x=1&state=a%20b%26c&iss=http%3A%2F%2Fh%3A1"
        );
        assert_eq!(
            host_of("https://app.example.com:8443/cb?x"),
            "app.example.com:8443"
        );
        assert_eq!(
            union(Some("openid offline_access"), "openid email"),
            "openid email offline_access"
        );
    }
}
