//! Auth layer: the original service's `Auth` class. Registration, credential checks, sessions
//! and mailed links, with brute-force limits and an audit trail, on top of the data layer.
//! Knows nothing of HTTP, nor of Diesel: the web layer hands it a [`Caller`] (address and
//! request id), and it reaches the database only through `Db` and the `db::*` query functions.
//! What it hands back of an account is an [`Account`], never the stored row.
//!
//! [`Auth`] is a façade: handlers hold it and reach each service through it, a view of it
//! defined in its own module: [`Auth::sign_in`] (`signin.rs`: a credential checked becomes the
//! next [`Step`]; signing up), [`Auth::sessions`] (`sessions.rs`: the session of a request,
//! logging out), [`Auth::accounts`] (`account.rs`: signup, the owner's sessions, password and
//! deletion), [`Auth::operator`] (`operator.rs`, `cleanup.rs`: readiness, metrics, the admin
//! commands, the periodic purge). Beneath them, `credentials.rs` checks what a caller presents
//! and [`throttle`] holds the brute-force gates. [`Auth::links`] (`links.rs`) issues, mails
//! and spends every mailed link: reset, verification, change of email.
//!
//! Invariants kept here: bcrypt runs only in `spawn_blocking` and never while a pooled
//! connection is held (each `db.run` / `db.write` closure ends before a hash starts); secrets
//! leave this layer only as the raw value for the client and enter the database only as
//! SHA-256 digests; audit lines carry ids and emails only.

mod account;
pub mod audit;
mod caller;
mod cleanup;
mod credentials;
pub mod email;
mod factors;
mod links;
pub mod oidc;
mod operator;
mod passkeys;
pub mod password;
mod recovery;
mod sealed;
mod sessions;
mod signin;
#[cfg(test)]
mod testing;
pub mod throttle;
pub mod token;
pub mod totp;
mod user_agent;
mod view;

pub use account::{Accounts, DeviceSession, Ended};
pub use audit::AuditLog;
pub use caller::Caller;
pub use factors::{Factors, MfaStatus, TotpSetup};
pub use links::{Links, ResetRequest, VERIFY_TTL_SECS};
pub use operator::Operator;
pub use passkeys::{Ceremony, PasskeyView, Passkeys};
pub use sealed::SealingKeys;
pub use sessions::{Sessions, SignedIn};
pub use signin::{Method, Pending, SecondFactor, SignIn, Step};
pub use view::Account;

/// How long a sign-in step (a pending second factor, a passkey ceremony) waits for its answer.
pub const STEP_TTL_SECS: i64 = 5 * 60;

/// How long a device stays trusted without a login from it (its cookie lives as long).
pub const DEVICE_TRUST_SECS: i64 = 180 * 24 * 60 * 60;
pub use email::{Email, EmailFault};
pub use password::{Hasher, Password, PasswordFault, PasswordPolicy};

use throttle::Limits;

use crate::config::{MfaPolicy, Settings};
use crate::db::sessions::Lifetimes;
use crate::db::{Db, DbError};
use crate::mail::Mailer;
use crate::metrics::Metrics;

/// Errors of the auth layer; `web::error` alone turns them into responses.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("no live session")]
    NoSession,
    #[error("invalid reset token")]
    InvalidResetToken,
    /// A verification or email-change token that is unknown, expired or spent.
    #[error("invalid, expired or used token")]
    InvalidLinkToken,
    /// The right password for an account whose email is not verified, where
    /// `require_verified_email` says it may not log in.
    #[error("email not verified: open the link we sent to it (a new one is on its way)")]
    EmailNotVerified,
    /// A factor change without the current password, from a session not made with a passkey
    /// in the last 5 minutes.
    #[error("current_password is required")]
    CurrentPasswordRequired,
    /// The right password (or passkey) of an account the operator disabled.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The current password an account action asked for is wrong.
    #[error("current password is wrong")]
    WrongPassword,
    /// The session id named is not one of the account's live sessions.
    #[error("no such session")]
    NoSuchSession,
    /// An operator named an email no account has.
    #[error("no account has that email")]
    UnknownAccount,
    #[error("email is already verified")]
    AlreadyVerified,
    #[error("new_email is already this account's email")]
    SameEmail,
    /// A second factor's code (an authenticator's, a recovery code) that is wrong or was used.
    #[error("invalid code")]
    WrongCode,
    /// A sign-in step (`mfa_token`) that is unknown, spent, expired or out of attempts.
    #[error("sign-in step unknown or expired: sign in again")]
    StepExpired,
    /// Under `mfa_policy = "required"`, a session without a second factor may only set one up.
    #[error("second factor enrollment required")]
    EnrollmentRequired,
    /// Under `mfa_policy = "required"`, the account's last second factor stays.
    #[error("the last second factor cannot be removed: every account needs one here")]
    LastFactor,
    /// Recovery codes back up a second factor; the account has none.
    #[error("set up an authenticator app or a passkey first")]
    NoSecondFactor,
    /// An authenticator app's code was sent, but no setup is pending.
    #[error("no authenticator setup is pending: start one first")]
    NothingPending,
    /// The second factor named is not one of the account's.
    #[error("no such second factor")]
    NoSuchFactor,
    /// No relying party is configured (`public_base_url` or `webauthn_origin`).
    #[error("passkeys are not available here")]
    PasskeysOff,
    /// A passkey's answer that does not verify: another origin or challenge, a credential that
    /// is not the account's, no user verification, or not a credential at all.
    #[error("the passkey could not be verified")]
    PasskeyRefused,
    /// A passkey registered already (to this account or another).
    #[error("this passkey is registered already")]
    CredentialTaken,
    #[error("name must be 1 to 64 characters")]
    BadPasskeyName,
    /// An OpenID Connect request refused as OAuth names it (`error`).
    #[error("{}", .0.description)]
    OAuth(oidc::OAuthFault),
    /// No `public_base_url`, so no issuer: the OpenID Connect provider is off.
    #[error("the OpenID Connect provider is off here (public_base_url is not set)")]
    OidcOff,
    /// The application named is not one the account granted access.
    #[error("no such application")]
    NoSuchApplication,
    /// An operator's client registration that cannot be stored as asked.
    #[error("{0}")]
    BadClient(String),
    /// An operator named a client id no client has.
    #[error("no client has that id")]
    UnknownClient,
    /// Too many attempts; the password was not checked.
    #[error("too many attempts: try again later")]
    Throttled { retry_after: i64 },
    /// As many passwords wait to be hashed as the hasher admits (`bcrypt_queue`): refused at
    /// once, before any hash, and not counted as a failure.
    #[error("the service is busy: try again in a few seconds")]
    Busy,
    /// The database cannot store (or read) anything right now ([`DbError::Unavailable`]):
    /// nothing was changed, and the same request may succeed later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A failure that is not the client's: logged with its cause, answered generically.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<DbError> for AuthError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::EmailTaken => AuthError::EmailTaken,
            DbError::Unavailable(cause) => AuthError::Unavailable(cause),
            other => AuthError::Internal(other.into()),
        }
    }
}

impl From<bcrypt::BcryptError> for AuthError {
    fn from(error: bcrypt::BcryptError) -> Self {
        AuthError::Internal(error.into())
    }
}

impl From<tokio::task::JoinError> for AuthError {
    fn from(error: tokio::task::JoinError) -> Self {
        AuthError::Internal(error.into())
    }
}

/// When a readiness check ended, and what it found (the cause of a failure).
type Readiness = (std::time::Instant, Result<(), String>);

/// The authentication service, held in Rocket's managed state; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    db: Db,
    hasher: Hasher,
    policy: PasswordPolicy,
    lifetimes: Lifetimes,
    reset_token_ttl: i64,
    /// `require_verified_email`: an account logs in only once its email is verified.
    require_verified_email: bool,
    limits: Limits,
    /// `trusted_devices_per_account`: the least recently used beyond it lose their trust.
    devices_per_account: i64,
    audit: AuditLog,
    mailer: Mailer,
    metrics: Metrics,
    /// The last readiness check's end and outcome ([`Operator::ready`]): checks run one at a time.
    readiness: std::sync::Arc<tokio::sync::Mutex<Option<Readiness>>>,
    /// The keys sealing second-factor secrets (`mfa_key`).
    keys: SealingKeys,
    /// `mfa_policy = "required"`: every account needs a second factor.
    mfa_required: bool,
    /// The WebAuthn relying party (`None`: passkeys are off).
    webauthn: Option<std::sync::Arc<passkeys::RelyingParty>>,
    /// The OpenID Connect provider's settings and key cache.
    oidc: oidc::Provider,
    /// The name an authenticator app shows beside the account (public_base_url's host).
    issuer: String,
    /// A hash at the configured cost that no password matches; logins for unknown emails verify
    /// against it so they take as long as logins for known ones.
    dummy_hash: String,
}

impl Auth {
    pub async fn new(
        db: Db,
        settings: &Settings,
        audit: AuditLog,
        mailer: Mailer,
        metrics: Metrics,
    ) -> Result<Auth, AuthError> {
        let dummy = Password::parse(&token::generate()).expect("a 43-byte secret is a password");
        let concurrency = match settings.bcrypt_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let cost = settings.bcrypt_cost;
        let admitted = password::admitted_at_most(concurrency, settings.bcrypt_queue, cost);
        let hasher = Hasher::new(cost, concurrency, admitted, settings.bcrypt_nice)
            .map_err(|e| AuthError::Internal(e.into()))?
            .with_metrics(metrics.clone());
        let keys = sealing_keys(settings).map_err(|e| AuthError::Internal(e.into()))?;
        let webauthn =
            passkeys::relying_party(settings).map_err(|e| AuthError::Internal(e.into()))?;
        Ok(Auth {
            webauthn: webauthn.map(std::sync::Arc::new),
            keys,
            mfa_required: settings.mfa_policy == MfaPolicy::Required,
            issuer: issuer(settings.public_base_url.as_deref()),
            oidc: oidc::Provider::new(settings),
            db,
            dummy_hash: hasher.hash(dummy).await?,
            hasher,
            policy: PasswordPolicy {
                min_length: settings.password_min_length,
                check_common: settings.password_check_common,
            },
            lifetimes: Lifetimes {
                idle: settings.session_idle_secs,
                absolute: settings.session_absolute_secs,
            },
            reset_token_ttl: settings.reset_token_ttl_secs,
            require_verified_email: settings.require_verified_email,
            limits: Limits::from_settings(settings),
            devices_per_account: settings.trusted_devices_per_account,
            audit,
            mailer,
            metrics,
            readiness: Default::default(),
        })
    }

    /// The rules a new password must meet (signup, reset, change).
    pub fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    /// Whether an account logs in only once its email is verified (`require_verified_email`).
    pub fn requires_verified_email(&self) -> bool {
        self.require_verified_email
    }

    /// Signing in, and signing up.
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn(self)
    }

    /// The sessions of requests.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(self)
    }

    /// Signing up, and the owner's self-service.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts(self)
    }

    /// Mailed links: reset, verification, change of email.
    pub fn links(&self) -> Links<'_> {
        Links(self)
    }

    /// What the operator reaches: readiness, metrics, the admin commands.
    pub fn operator(&self) -> Operator<'_> {
        Operator(self)
    }

    /// Second factors: the owner's authenticator app, recovery codes.
    pub fn factors(&self) -> Factors<'_> {
        Factors(self)
    }

    /// Passkeys: registering, listing, removing.
    pub fn passkeys(&self) -> Passkeys<'_> {
        Passkeys(self)
    }

    /// The OpenID Connect provider.
    pub fn oidc(&self) -> oidc::Oidc<'_> {
        oidc::Oidc(self)
    }

    /// The credential checks of the flows that ask for one.
    fn credentials(&self) -> credentials::Credentials<'_> {
        credentials::Credentials(self)
    }
}

/// The sealing keys of `settings`: `mfa_key` (with `mfa_previous_keys`), or where none is set
/// (never in release, which refuses to start without it) the key file beside the database,
/// made at the first start.
fn sealing_keys(settings: &Settings) -> Result<SealingKeys, String> {
    if let Some(key) = &settings.mfa_key {
        return SealingKeys::parse(key, &settings.mfa_previous_keys);
    }
    let path = settings.mfa_key_file();
    let (keys, made) = SealingKeys::from_file(&path)?;
    let shown = path.display();
    match made {
        true => log::info!(
            target: "auth_service::config",
            "no mfa_key set: made one in {shown}; second factors stay usable while it is kept \
             (set mfa_key to deploy)"
        ),
        false => log::info!(
            target: "auth_service::config",
            "no mfa_key set: second-factor secrets are sealed with the key in {shown}"
        ),
    }
    Ok(keys)
}

/// What authenticator apps show beside the account: `public_base_url`'s host, or the service's
/// name where none is set.
fn issuer(public_base_url: Option<&str>) -> String {
    public_base_url
        .and_then(|url| url.split("://").nth(1))
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|host| !host.is_empty())
        .unwrap_or("Auth Service")
        .to_owned()
}
