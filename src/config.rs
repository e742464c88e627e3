//! The service's typed settings, read once at ignite from Rocket's figment (`Rocket.toml`
//! profiles plus `ROCKET_*` environment variables), so they live beside Rocket's own keys.

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::figment::error::Kind;
use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::figment::{self, Figment, Metadata, Source};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::db::Synchronous;

/// Where mail goes (`mail_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Each message an `.eml` file in `mail_outbox_dir`; nobody receives it.
    Outbox,
    Smtp,
}

/// How the SMTP connection is secured (`smtp_tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (port 25 by default).
    None,
    /// Upgraded with STARTTLS, required (port 587 by default).
    Starttls,
    /// Implicit TLS from the first byte (port 465 by default).
    Tls,
}

/// Whether every account needs a second factor (`mfa_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Each owner chooses.
    Optional,
    /// A password alone opens a session that can only set a second factor up.
    Required,
}

/// The format of audit lines (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key="value"` pairs.
    Text,
    /// One JSON object per line.
    Json,
}

/// An address (`10.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`) as a network.
fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `Rocket.toml`'s settings of `profile` over Rocket's own defaults, and nothing from the
/// environment: what the tests build on, so that an exported `ROCKET_*` variable (say
/// `ROCKET_PROFILE=release`) cannot change what they test.
pub fn file_figment(profile: &str) -> Figment {
    Figment::from(rocket::Config::debug_default())
        .merge(Toml::file("Rocket.toml").nested())
        .select(profile)
}

/// The old name of `cookie_secure`. A deployment that still sets it (say in
/// `ROCKET_SESSION_COOKIE_SECURE`) keeps its meaning: where it is set, it wins over
/// `cookie_secure`, which `Rocket.toml` sets in every profile.
pub const OLD_COOKIE_SECURE: &str = "session_cookie_secure";

/// The old name of `throttle_mail_per_account`, from before it was seen to cap verification and
/// email-change mail too; it keeps working as [`OLD_COOKIE_SECURE`] does (where set, it wins).
pub const OLD_MAIL_PER_ACCOUNT: &str = "throttle_reset_per_email";

/// The pages mailed links open (reset, verification, email change). Not a setting anyone
/// writes: the web layer's `paths::LINKS`, handed to the mailer when the services are built
/// (`lib.rs`), so mail builds links without knowing the routes.
#[derive(Debug, Clone, Copy)]
pub struct LinkPaths {
    pub reset: &'static str,
    pub verify: &'static str,
    pub email_change: &'static str,
}

/// Settings the application reads; Rocket's own keys (`port`, `secret_key`, …) stay Rocket's.
///
/// `Settings::default()` is the one source of the defaults: the hardened (release) values, so a
/// deployment that forgets a key gets the safe one. `Rocket.toml`'s `[default]` and the table of
/// docs/configuration.md repeat them for readers; a test fails when either disagrees with this.
/// Not `Debug`: it holds `smtp_password`, which must never reach a log.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    /// A SQLite file path, created with its schema on first start, or a PostgreSQL URL
    /// (`postgres://user:password@host/db?sslmode=verify-full&sslrootcert=ca.crt`).
    pub database_url: String,
    pub database_pool_size: u32,
    /// How long any wait for the database may last (a pooled connection, a lock, a statement,
    /// connecting to the server) before the request is answered 503 (seconds).
    pub database_timeout_secs: u64,
    /// Keep the database file to this process (SQLite's `unix-excl` VFS): faster reads, but while
    /// the service runs no other process can use it (the `sqlite3` shell gets "database is
    /// locked"; a second instance refuses to start).
    pub database_exclusive: bool,
    /// `full`: a commit waits until the log is on disk, so it survives a power cut; `normal`:
    /// a power cut can undo the last commits (a process crash still cannot).
    pub database_synchronous: Synchronous,
    /// How stale a signed-in request's session may be when read from this instance's cache
    /// (milliseconds): a session ended on another instance is refused here within it. 0: no
    /// cache, every signed-in request reads the database.
    pub session_cache_ms: u64,
    /// bcrypt work factor, 4–31.
    pub bcrypt_cost: u32,
    /// How many bcrypt hashes may run at once; 0 means one per CPU core.
    pub bcrypt_concurrency: usize,
    /// CPU priority of the hashing threads, 0 (normal) to 19 (lowest).
    pub bcrypt_nice: i32,
    /// How many logins and signups may wait for a hashing thread; beyond them the answer is
    /// 503 at once. 0 means as many as start within about 5 seconds (16 per thread at cost 12).
    pub bcrypt_queue: usize,
    /// Minimum password length in characters (not bytes).
    pub password_min_length: usize,
    /// Refuse the compiled-in list of common passwords.
    pub password_check_common: bool,
    pub session_cookie_name: String,
    /// Mark every cookie `Secure` (sent over HTTPS only). [`OLD_COOKIE_SECURE`], its name
    /// before it covered the CSRF and reset cookies too, still works.
    pub cookie_secure: bool,
    /// A session unused this long is over (seconds).
    pub session_idle_secs: i64,
    /// A session this old is over however active (seconds).
    pub session_absolute_secs: i64,
    /// A reset token this old no longer works (seconds).
    pub reset_token_ttl_secs: i64,
    /// An OpenID Connect access token (and ID token) this old no longer works (seconds).
    pub oidc_access_token_ttl_secs: i64,
    /// An OpenID Connect refresh token unused this long no longer works (seconds).
    pub oidc_refresh_token_ttl_secs: i64,
    /// How often expired sessions and reset tokens are purged (seconds).
    pub cleanup_interval_secs: u64,
    /// Send `Strict-Transport-Security` (only behind TLS).
    pub hsts: bool,
    /// Master switch of the brute-force limits (off only for benchmarks and load tests).
    pub throttle_enabled: bool,
    /// The sliding window the limits count in (seconds).
    pub throttle_window_secs: i64,
    /// Failed logins per email in the window.
    pub throttle_login_per_account: i64,
    /// Failed logins per client address in the window.
    pub throttle_login_per_address: i64,
    /// Signup requests per client address in the window.
    pub throttle_signup_per_address: i64,
    /// Reset requests (and, separately, wrong reset tokens) per client address in the window.
    pub throttle_reset_per_address: i64,
    /// Mailed links per account per hour: reset requests per email, from any address (beyond
    /// them nothing is sent), and the verification and email-change links an account's owner
    /// asks for. [`OLD_MAIL_PER_ACCOUNT`], its old name, still works.
    pub throttle_mail_per_account: i64,
    /// Devices trusted for one account at most; a new one pushes out the least recently used.
    pub trusted_devices_per_account: i64,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks): only when the
    /// peer is one of them is the client address taken from that header.
    pub trusted_proxies: Vec<String>,
    /// `outbox` (each message an `.eml` file in `mail_outbox_dir`) or `smtp`.
    pub mail_transport: MailTransport,
    pub mail_outbox_dir: String,
    /// The sender, as `Name <address>` or a bare address.
    pub mail_from: String,
    pub smtp_host: Option<String>,
    /// Defaults to the port of `smtp_tls`: 25, 587 or 465.
    pub smtp_port: Option<u16>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// `none`, `starttls` or `tls` (implicit TLS).
    pub smtp_tls: SmtpTls,
    /// How long one SMTP exchange may take before the send is abandoned (and logged).
    pub smtp_timeout_secs: u64,
    /// Where audit events go: `stderr` or a file path.
    pub audit_log: String,
    /// Audit and log line format: `text` or `json` (one object per line, request lines too).
    pub log_format: LogFormat,
    /// Put the reset token in `POST /reset_password`'s body, as the original service did (and
    /// the verification and email-change tokens in their endpoints' bodies).
    pub expose_reset_token: bool,
    /// An account logs in only once its email is verified (a link mailed at signup).
    pub require_verified_email: bool,
    /// Serve `/metrics` (Prometheus text format).
    pub metrics_enabled: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <metrics_token>`. Empty is
    /// unset: an empty bearer token would be no authentication at all.
    #[serde(deserialize_with = "empty_as_none")]
    pub metrics_token: Option<String>,
    /// Serve `/metrics` without a token in a hardened profile, where it is refused otherwise.
    pub metrics_public: bool,
    /// Where the service writes its scheduled backups (SQLite); none: no scheduled backups.
    pub backup_dir: Option<String>,
    /// Seconds between scheduled backups; 0: none.
    pub backup_interval_secs: u64,
    /// How many scheduled backups are kept (the oldest go first).
    pub backup_keep: usize,
    /// The Unix socket through which `auth_service <command>` reaches the running service
    /// (mode 0600, in a directory of mode 0700: its own user only); a relative path is taken from
    /// the database's directory; empty: none.
    pub admin_socket: String,
    /// The service's public origin (`https://auth.example.com`): reset links are built from it,
    /// never from the request's `Host`, and API calls from it are same-origin.
    pub public_base_url: Option<String>,
    /// The key (32 bytes, base64 or hex) that seals the stored second-factor secrets. The
    /// release profile refuses to start without it; elsewhere a missing one is made once and
    /// kept in `mfa.key` beside the database (the working directory for PostgreSQL).
    #[serde(deserialize_with = "empty_as_none")]
    pub mfa_key: Option<String>,
    /// Keys that sealed secrets before `mfa_key` was rotated: they open, never seal.
    pub mfa_previous_keys: Vec<String>,
    /// `optional` (each owner chooses) or `required` (every account needs a second factor).
    pub mfa_policy: MfaPolicy,
    /// The WebAuthn relying party id passkeys are bound to: `public_base_url`'s host unless set
    /// (a parent domain of it, to share passkeys with sibling sites).
    #[serde(deserialize_with = "empty_as_none")]
    pub webauthn_rp_id: Option<String>,
    /// The origin browsers run passkey ceremonies on: `public_base_url` unless set.
    #[serde(deserialize_with = "empty_as_none")]
    pub webauthn_origin: Option<String>,
    /// Apply the release profile's checks and hardening in this profile too (a `staging`
    /// profile, say); the `release` profile always has them.
    pub hardened: bool,
    /// Whether the release hardening applies (set by [`Settings::from_figment`]: the release
    /// profile, or `hardened`): release cookies take the `__Host-` prefix, and the API trusts
    /// only `public_base_url` as an origin.
    #[serde(skip)]
    pub release: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "auth.db".into(),
            database_pool_size: 8,
            database_timeout_secs: 5,
            database_exclusive: true,
            database_synchronous: Synchronous::Full,
            session_cache_ms: 1000,
            bcrypt_cost: 12,
            bcrypt_concurrency: 0,
            bcrypt_nice: 10,
            bcrypt_queue: 0,
            password_min_length: 8,
            password_check_common: true,
            session_cookie_name: "session_id".into(),
            cookie_secure: true,
            session_idle_secs: 60 * 60,
            session_absolute_secs: 24 * 60 * 60,
            reset_token_ttl_secs: 60 * 60,
            oidc_access_token_ttl_secs: 10 * 60,
            oidc_refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            cleanup_interval_secs: 5 * 60,
            hsts: true,
            expose_reset_token: false,
            require_verified_email: true,
            metrics_enabled: false,
            metrics_token: None,
            metrics_public: false,
            backup_dir: None,
            backup_interval_secs: 0,
            backup_keep: 7,
            admin_socket: "admin/auth.sock".into(),
            public_base_url: None,
            mfa_key: None,
            mfa_previous_keys: Vec::new(),
            mfa_policy: MfaPolicy::Optional,
            webauthn_rp_id: None,
            webauthn_origin: None,
            throttle_enabled: true,
            throttle_window_secs: 15 * 60,
            throttle_login_per_account: 10,
            throttle_login_per_address: 100,
            throttle_signup_per_address: 20,
            throttle_reset_per_address: 20,
            throttle_mail_per_account: 3,
            trusted_devices_per_account: 20,
            trusted_proxies: Vec::new(),
            audit_log: "stderr".into(),
            log_format: LogFormat::Text,
            mail_transport: MailTransport::Outbox,
            mail_outbox_dir: "mail".into(),
            mail_from: "Auth Service <no-reply@localhost>".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_username: None,
            smtp_password: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_timeout_secs: 10,
            hardened: false,
            release: false,
        }
    }
}

/// `metrics_token = ""` (or an exported empty `ROCKET_METRICS_TOKEN`) as no token.
fn empty_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let token = Option::<String>::deserialize(deserializer)?;
    Ok(token.filter(|token| !token.trim().is_empty()))
}

/// A problem of one key: the key and what is wrong with its value.
type KeyProblem = (&'static str, String);

impl Settings {
    /// Reads and checks the settings, and Rocket's own keys. `Err` has one line per problem,
    /// all of them at once, each naming the key, where it was set and what it takes.
    pub fn from_figment(figment: &Figment) -> Result<Settings, String> {
        let mut lines = Vec::new();
        let rocket = Figment::from(rocket::Config::default())
            .merge(figment.clone())
            .select(figment.profile().clone());
        let readable = extract_all::<rocket::Config>(rocket, &mut lines).is_some();
        let figment = renamed::<bool>(
            figment.clone(),
            OLD_COOKIE_SECURE,
            "cookie_secure",
            &mut lines,
        );
        let figment = renamed::<i64>(
            figment,
            OLD_MAIL_PER_ACCOUNT,
            "throttle_mail_per_account",
            &mut lines,
        );
        let settings = readable
            .then(|| extract_all::<Settings>(figment.clone(), &mut lines))
            .flatten();
        let Some(mut settings) = settings else {
            lines.dedup();
            return Err(lines.join("\n"));
        };
        settings.release = figment.profile() == "release" || settings.hardened;
        let mut problems = settings.problems();
        if settings.release {
            problems.extend(settings.release_problems());
        }
        lines.extend(
            problems
                .into_iter()
                .map(|(key, message)| match set_in(&figment, key) {
                    Some(source) => format!("{message} (set in {source})"),
                    None => message,
                }),
        );
        match lines.is_empty() {
            true => Ok(settings),
            false => Err(lines.join("\n")),
        }
    }

    /// Where the debug profile keeps the `mfa_key` it made: `mfa.key` beside the database (the
    /// working directory for PostgreSQL).
    pub fn mfa_key_file(&self) -> std::path::PathBuf {
        let data = match crate::db::is_postgres_url(&self.database_url) {
            true => std::path::Path::new(""),
            false => std::path::Path::new(&self.database_url)
                .parent()
                .unwrap_or(std::path::Path::new("")),
        };
        data.join("mfa.key")
    }

    /// The parsed `trusted_proxies` (checked at start, so none is dropped here).
    pub fn trusted_proxies(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|proxy| parse_network(proxy))
            .collect()
    }

    /// What a release deployment should hear about at start: settings it may have meant
    /// otherwise. `loopback`: whether the service listens on a loopback address.
    pub fn release_warnings(&self, loopback: bool) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.cookie_secure {
            warnings.push(
                "cookie_secure is false: session cookies go over plain HTTP, and lose their \
                 __Host- prefix"
                    .to_owned(),
            );
        }
        if !self.throttle_enabled {
            warnings.push("throttle_enabled is false: logins are not limited".to_owned());
        }
        if loopback && self.trusted_proxies.is_empty() {
            warnings.push(
                "the service listens on a loopback address, as behind a local proxy, but \
                 trusted_proxies is empty: every client has the proxy's address, and the \
                 per-address limits become limits on the whole service"
                    .to_owned(),
            );
        }
        if self.mail_transport == MailTransport::Outbox {
            warnings.push(format!(
                "mail_transport is \"outbox\": reset links are written to {:?}, not \
                 delivered; set mail_transport = \"smtp\" and the smtp_* keys",
                self.mail_outbox_dir
            ));
        }
        if self.metrics_enabled && self.metrics_public && self.metrics_token.is_none() {
            warnings.push(
                "metrics_public is true: /metrics answers anyone, without a token".to_owned(),
            );
        }
        if let Some(warning) = weak_sslmode(&self.database_url) {
            warnings.push(warning);
        }
        warnings
    }

    /// What a deployment must not get wrong; checked where the release hardening applies
    /// (see [`Settings::release`]), where the debug conveniences would be dangerous.
    fn release_problems(&self) -> Vec<KeyProblem> {
        let mut problems = Vec::new();
        if self.bcrypt_cost < 10 {
            problems.push((
                "bcrypt_cost",
                format!(
                    "bcrypt_cost {} is too cheap for the release profile: use at least 10",
                    self.bcrypt_cost
                ),
            ));
        }
        if self.public_base_url.is_none() {
            problems.push((
                "public_base_url",
                "the release profile needs public_base_url (the origin reset links point to, \
                 for example https://auth.example.com)"
                    .into(),
            ));
        }
        if self.mfa_key.is_none() {
            problems.push((
                "mfa_key",
                "the release profile needs mfa_key, the key that seals second-factor secrets \
                 (32 random bytes: openssl rand -base64 32); keep it apart from the database"
                    .into(),
            ));
        }
        if self.expose_reset_token {
            problems.push((
                "expose_reset_token",
                "expose_reset_token must be false in the release profile: it hands every reset \
                 token to whoever asks for it"
                    .into(),
            ));
        }
        if self.metrics_enabled && self.metrics_token.is_none() && !self.metrics_public {
            problems.push((
                "metrics_enabled",
                "metrics_enabled needs metrics_token in the release profile (or \
                 metrics_public = true to serve /metrics to anyone)"
                    .into(),
            ));
        }
        problems
    }

    /// Every value outside what its key takes, in any profile.
    fn problems(&self) -> Vec<KeyProblem> {
        let mut problems: Vec<KeyProblem> = Vec::new();
        if let Some(key) = &self.mfa_key
            && let Err(why) = sealing_key(key)
        {
            problems.push(("mfa_key", format!("mfa_key {why}")));
        }
        for key in &self.mfa_previous_keys {
            if let Err(why) = sealing_key(key) {
                problems.push((
                    "mfa_previous_keys",
                    format!("each of mfa_previous_keys {why}"),
                ));
            }
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            problems.push((
                "bcrypt_cost",
                format!(
                    "bcrypt_cost must be between 4 and 31, not {}",
                    self.bcrypt_cost
                ),
            ));
        }
        if !(0..=19).contains(&self.bcrypt_nice) {
            problems.push((
                "bcrypt_nice",
                format!(
                    "bcrypt_nice must be between 0 and 19, not {}",
                    self.bcrypt_nice
                ),
            ));
        }
        if ["file:", "sqlite:"]
            .iter()
            .any(|scheme| self.database_url.starts_with(scheme))
        {
            problems.push((
                "database_url",
                format!(
                    "database_url must be a file path or a postgres:// URL, not a SQLite URI \
                     ({:?}): the service sets SQLite's options itself (see database_exclusive)",
                    self.database_url
                ),
            ));
        }
        if self.database_pool_size == 0 {
            problems.push((
                "database_pool_size",
                "database_pool_size must be at least 1".into(),
            ));
        }
        if self.database_timeout_secs == 0 {
            problems.push((
                "database_timeout_secs",
                "database_timeout_secs must be at least 1".into(),
            ));
        }
        for (key, value) in [
            ("session_idle_secs", self.session_idle_secs),
            ("session_absolute_secs", self.session_absolute_secs),
            ("reset_token_ttl_secs", self.reset_token_ttl_secs),
            (
                "oidc_access_token_ttl_secs",
                self.oidc_access_token_ttl_secs,
            ),
            (
                "oidc_refresh_token_ttl_secs",
                self.oidc_refresh_token_ttl_secs,
            ),
        ] {
            if value <= 0 {
                problems.push((key, format!("{key} must be a positive number of seconds")));
            }
        }
        for (key, value) in [
            ("throttle_window_secs", self.throttle_window_secs),
            (
                "throttle_login_per_account",
                self.throttle_login_per_account,
            ),
            (
                "throttle_login_per_address",
                self.throttle_login_per_address,
            ),
            (
                "throttle_signup_per_address",
                self.throttle_signup_per_address,
            ),
            (
                "throttle_reset_per_address",
                self.throttle_reset_per_address,
            ),
            ("throttle_mail_per_account", self.throttle_mail_per_account),
            (
                "trusted_devices_per_account",
                self.trusted_devices_per_account,
            ),
        ] {
            if value <= 0 {
                problems.push((key, format!("{key} must be at least 1")));
            }
        }
        if let Some(bad) = self
            .trusted_proxies
            .iter()
            .find(|proxy| parse_network(proxy).is_none())
        {
            problems.push((
                "trusted_proxies",
                format!("trusted_proxies: {bad:?} is neither an IP address nor a CIDR block"),
            ));
        }
        if self.cleanup_interval_secs == 0 {
            problems.push((
                "cleanup_interval_secs",
                "cleanup_interval_secs must be at least 1".into(),
            ));
        }
        if self.backup_interval_secs > 0 && self.backup_dir.is_none() {
            problems.push((
                "backup_interval_secs",
                "backup_interval_secs needs backup_dir (where the copies go)".into(),
            ));
        }
        if self.backup_keep == 0 {
            problems.push(("backup_keep", "backup_keep must be at least 1".into()));
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problems.push((
                "public_base_url",
                format!("public_base_url {url:?} must start with https:// or http://"),
            ));
        }
        if self.password_min_length == 0 {
            problems.push((
                "password_min_length",
                "password_min_length must be at least 1".into(),
            ));
        }
        let name_ok = !self.session_cookie_name.is_empty()
            && self
                .session_cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            problems.push((
                "session_cookie_name",
                format!(
                    "session_cookie_name {:?} must be letters, digits, '-', '_' or '.'",
                    self.session_cookie_name
                ),
            ));
        }
        problems
    }
}

/// `figment` with the value of the renamed key `old`, where it is set, as the value of `new`
/// (it wins: `Rocket.toml` sets `new` in every profile, a deployment's old setting overrides
/// it); an ill-typed value is described in `lines` under its old name.
fn renamed<T: DeserializeOwned + Serialize>(
    figment: Figment,
    old: &str,
    new: &str,
    lines: &mut Vec<String>,
) -> Figment {
    if figment.find_value(old).is_err() {
        return figment;
    }
    match figment.extract_inner::<T>(old) {
        Ok(value) => figment.merge(Serialized::global(new, value)),
        Err(errors) => {
            lines.extend(errors.into_iter().map(|e| describe(&e)));
            figment
        }
    }
}

/// Extracts a `T` from `figment`, describing every ill-typed key in `lines`: each is put back
/// to its default and the extraction tried again, so that one start names all of them (and
/// the values' own checks can run on the rest). `None` when the configuration cannot be read
/// at all (a TOML syntax error).
fn extract_all<T: DeserializeOwned + Serialize + Default>(
    mut figment: Figment,
    lines: &mut Vec<String>,
) -> Option<T> {
    let defaults = Figment::from(Serialized::defaults(T::default()));
    // One round per ill-typed key at most; the bound only guards against a key that stays bad.
    for _ in 0..100 {
        let errors = match figment.extract::<T>() {
            Ok(value) => return Some(value),
            Err(errors) => errors,
        };
        let mut repaired = false;
        for error in errors {
            lines.push(describe(&error));
            let key = error.path.join(".");
            if let (false, Ok(value)) = (key.is_empty(), defaults.find_value(&key)) {
                figment = figment.merge(Serialized::global(&key, value));
                repaired = true;
            }
        }
        if !repaired {
            return None;
        }
    }
    None
}

/// A sealing key (`mfa_key`, each of `mfa_previous_keys`): 32 bytes in base64 or hex; `Err`
/// completes a sentence that starts with the key's name.
pub fn sealing_key(text: &str) -> Result<[u8; 32], String> {
    use base64::Engine;
    let text = text.trim();
    let bytes = match text.len() {
        64 if text.bytes().all(|b| b.is_ascii_hexdigit()) => (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| e.to_string())?,
        _ => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| "must be 32 random bytes in base64 (openssl rand -base64 32) or hex")?,
    };
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        format!(
            "must be 32 bytes (openssl rand -base64 32), not {}",
            bytes.len()
        )
    })
}

/// Keys whose values are secrets (or may hold one, as a database URL's password).
const SECRET_KEYS: [&str; 6] = [
    "secret_key",
    "smtp_password",
    "metrics_token",
    "database_url",
    "mfa_key",
    "mfa_previous_keys",
];

/// One line for one of figment's errors: the key, what it takes and what it got, where it
/// was set; a file that is not TOML by its position.
fn describe(error: &figment::Error) -> String {
    let key = error.path.join(".");
    let source = error.metadata.as_ref().map(|metadata| {
        let profile = error.profile.clone().unwrap_or_default();
        source_name(metadata, &profile, &error.path)
    });
    let within = source.map(|s| format!(" (set in {s})")).unwrap_or_default();
    // A secret's rejected value is a secret still: the line names the key, never the value.
    let secret = SECRET_KEYS.contains(&key.as_str());
    match &error.kind {
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) if secret => {
            format!("{key} must be {}{within}", readable(expected))
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("{key} must be {}, not {actual}{within}", readable(expected))
        }
        _ if secret && !key.is_empty() => format!("{key} is not valid{within}"),
        Kind::UnknownVariant(found, expected) => format!(
            "{key} must be one of {}, not {found:?}{within}",
            expected.join(", ")
        ),
        Kind::Message(message) if key.is_empty() => {
            let where_ = error
                .metadata
                .as_ref()
                .map_or("the configuration".into(), |m| {
                    m.source.as_ref().map_or(m.name.to_string(), source_text)
                });
            format!("{where_} cannot be read: {}", one_line(message))
        }
        other => format!("{key}: {}{within}", one_line(&other.to_string())),
    }
}

/// A parser's message (TOML's spans several, with the offending line drawn) in one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains('|'))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Serde's name of a type as the form a value takes.
fn readable(expected: &str) -> String {
    match expected {
        "u16" => "a whole number from 0 to 65535".into(),
        "u8" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "a boolean" => "true or false".into(),
        other => other.into(),
    }
}

/// Where `key`'s value in `figment` was set: the file, or the environment variable.
fn set_in(figment: &Figment, key: &str) -> Option<String> {
    let metadata = figment.find_metadata(key)?;
    Some(source_name(metadata, figment.profile(), &[key]))
}

/// A source as a line names it: a file by the path it was read from (figment's own display
/// makes it relative to the working directory, so one file reads differently from elsewhere).
fn source_text(source: &Source) -> String {
    match source {
        Source::File(path) => path.display().to_string(),
        other => other.to_string(),
    }
}

/// A value's source as an operator finds it: the file's path, the environment variable's
/// name, or the provider's own name.
fn source_name<K: AsRef<str>>(
    metadata: &Metadata,
    profile: &figment::Profile,
    path: &[K],
) -> String {
    match &metadata.source {
        Some(file @ Source::File(_)) => source_text(file),
        // Rocket's environment provider names its variables without their prefix.
        _ if metadata.name.contains("environment") => {
            let prefix = metadata.name.split('`').nth(1).unwrap_or_default();
            let variable = metadata.interpolate(profile, path);
            match variable.starts_with(prefix) {
                true => variable,
                false => format!("{prefix}{variable}"),
            }
        }
        _ => metadata.name.to_string(),
    }
}

/// Every key the service or Rocket reads.
fn known_keys() -> Vec<String> {
    let ours = serde_json::to_value(Settings::default()).unwrap_or_default();
    let rocket = Figment::from(rocket::Config::default())
        .extract::<serde_json::Map<String, serde_json::Value>>()
        .unwrap_or_default();
    let mut keys: Vec<String> = ours
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys().cloned())
        .chain(rocket.keys().cloned())
        .chain(rocket::Config::PARAMETERS.iter().map(|&key| key.to_owned()))
        // The old names of renamed keys, the templates' folder, and ROCKET_CONFIG (the file).
        .chain(
            [
                OLD_COOKIE_SECURE,
                OLD_MAIL_PER_ACCOUNT,
                "template_dir",
                "config",
            ]
            .map(str::to_owned),
        )
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A warning for every key `figment`'s profile sets that neither the service nor Rocket
/// reads (a misspelling is otherwise silently ignored), with the closest known key.
pub fn unknown_keys(figment: &Figment) -> Vec<String> {
    let Ok(set) = figment.extract::<serde_json::Map<String, serde_json::Value>>() else {
        return Vec::new();
    };
    let known = known_keys();
    set.keys()
        .filter(|key| !known.contains(key))
        .map(|key| {
            let within = set_in(figment, key).map_or(String::new(), |s| format!(" in {s}"));
            let closest = known
                .iter()
                .map(|k| (edit_distance(key, k), k))
                .min()
                .filter(|(distance, _)| *distance <= 2.max(key.len() / 3));
            match closest {
                Some((_, k)) => format!("unknown key `{key}`{within}: did you mean `{k}`?"),
                None => {
                    format!("unknown key `{key}`{within}: neither the service nor Rocket reads it")
                }
            }
        })
        .collect()
}

/// The Levenshtein distance of `a` and `b`: how many characters to insert, delete or replace.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The warning for a PostgreSQL `database_url` whose connection may go unencrypted or to an
/// impostor: `sslmode` `disable`, `allow` or `prefer` (libpq's default, which falls back to
/// plain text) on a host that is not this machine. A URL without `sslmode` is warned of even
/// when `PGSSLMODE` sets one: the URL should say how it connects.
fn weak_sslmode(database_url: &str) -> Option<String> {
    if !crate::db::is_postgres_url(database_url) {
        return None;
    }
    let (_, rest) = database_url.split_once("://")?;
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = location.split('/').next().unwrap_or_default();
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    let hosts = param("host").unwrap_or_else(|| hosts.to_owned());
    let sslmode = param("sslmode");
    let remote = hosts.split(',').any(|host| {
        let host = match host.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        let local = host.is_empty()
            || host.starts_with('/')
            || host
                .get(..3)
                .is_some_and(|start| start.eq_ignore_ascii_case("%2f"))
            || host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        !local
    });
    let weak = match sslmode.as_deref() {
        None => "no sslmode (libpq then uses prefer)".to_owned(),
        Some(mode @ ("disable" | "allow" | "prefer")) => format!("sslmode={mode}"),
        Some(_) => return None,
    };
    remote.then(|| {
        format!(
            "database_url has {weak} for a server on another host: the connection may go \
             unencrypted, or to an impostor; use sslmode=verify-full (with sslrootcert)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: impl serde::Serialize) -> Result<Settings, String> {
        Settings::from_figment(&Figment::new().merge((key, value)))
    }

    #[test]
    fn missing_keys_take_the_hardened_defaults() {
        let s = Settings::from_figment(&Figment::new()).unwrap();
        assert_eq!(s.bcrypt_cost, 12);
        assert_eq!(s.password_min_length, 8);
        assert!(s.cookie_secure);
        assert!(!s.expose_reset_token);
        assert_eq!(s.database_synchronous, Synchronous::Full);
    }

    #[test]
    fn a_database_url_that_is_a_uri_is_refused_and_a_path_is_kept() {
        for uri in ["file:auth.db", "file:auth.db?mode=rwc", "sqlite://auth.db"] {
            let error = with("database_url", uri).err().unwrap();
            assert!(error.contains("must be a file path"), "{uri}: {error}");
        }
        assert!(with("database_exclusive", true).unwrap().database_exclusive);
        let kept = with("database_url", "/var/lib/auth/file:odd.db").unwrap();
        assert_eq!(kept.database_url, "/var/lib/auth/file:odd.db");
        let server = "postgres://auth:pw@db.internal/auth?sslmode=verify-full";
        assert_eq!(with("database_url", server).unwrap().database_url, server);
    }

    #[test]
    fn database_synchronous_is_full_or_normal() {
        assert_eq!(
            with("database_synchronous", "normal")
                .unwrap()
                .database_synchronous,
            Synchronous::Normal
        );
        let err = with("database_synchronous", "off").err().unwrap();
        assert!(err.contains("database_synchronous"), "{err}");
    }

    /// The first value of a configuration table cell (docs/configuration.md): a `code` span, a bare word, or `—` for none.
    fn readme_value(cell: &str) -> Option<String> {
        let cell = cell.trim();
        if let Some(code) = cell.strip_prefix('`') {
            return Some(code[..code.find('`').unwrap()].to_owned());
        }
        let word = cell.split([' ', '(']).next().unwrap();
        (word != "—").then(|| word.to_owned())
    }

    /// A setting as docs/configuration.md writes it: strings bare, none as `None`.
    fn written(value: &serde_json::Value) -> Option<String> {
        match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }

    #[test]
    fn rocket_toml_and_the_readme_agree_with_the_settings() {
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        let defaults = defaults.as_object().unwrap();
        let toml = Figment::from(Toml::file("Rocket.toml").nested()).select("default");
        for (key, value) in defaults {
            if let Ok(in_toml) = toml.extract_inner::<serde_json::Value>(key) {
                assert_eq!(&in_toml, value, "Rocket.toml [default] {key}");
            }
        }

        let effective = |profile: &str| {
            let settings: Settings = file_figment(profile).extract().unwrap();
            serde_json::to_value(settings).unwrap()
        };
        let (debug, release) = (effective("debug"), effective("release"));
        // The reference table moved from README's "## Configuration" to docs/configuration.md.
        let readme = std::fs::read_to_string("docs/configuration.md").unwrap();
        let table = &readme[readme.find("\n## Keys").unwrap() + 1..];
        let table = &table[..table[3..].find("\n## ").map_or(table.len(), |end| end + 3)];
        let mut documented = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let key = cells[0].trim_start_matches("| `");
            let key = &key[..key.find('`').unwrap()];
            let release_cell = cells[3].trim_end_matches(" |");
            documented.push(key.to_owned());
            let Some(default) = defaults.get(key) else {
                continue; // one of Rocket's own keys
            };
            assert_eq!(
                readme_value(cells[2]),
                written(&debug[key]),
                "docs/configuration.md debug {key}"
            );
            assert_eq!(
                readme_value(release_cell),
                written(&release[key]),
                "docs/configuration.md release {key}"
            );
            assert_eq!(
                written(&release[key]),
                written(default),
                "release is the default: {key}"
            );
        }
        for key in defaults.keys() {
            assert!(
                documented.contains(key),
                "{key} is missing from docs/configuration.md's table"
            );
        }
    }

    #[test]
    fn the_test_figment_reads_no_environment_variable() {
        let figment = file_figment("debug");
        let sources: Vec<_> = figment.metadata().map(|m| m.name.to_string()).collect();
        assert!(
            sources.iter().all(|s| !s.contains("environment")),
            "{sources:?}"
        );
        assert_eq!(figment.profile(), "debug");
    }

    #[test]
    fn the_old_name_of_cookie_secure_still_works_and_wins_where_set() {
        assert!(!with("cookie_secure", false).unwrap().cookie_secure);
        assert!(!with(OLD_COOKIE_SECURE, false).unwrap().cookie_secure);
        let both = Figment::new()
            .merge(("cookie_secure", false))
            .merge((OLD_COOKIE_SECURE, true));
        assert!(Settings::from_figment(&both).unwrap().cookie_secure);
        let err = with(OLD_COOKIE_SECURE, "yes").err().unwrap();
        assert!(err.contains(OLD_COOKIE_SECURE), "{err}");
    }

    #[test]
    fn the_old_name_of_throttle_mail_per_account_still_works_and_wins_where_set() {
        let mail = |s: Settings| s.throttle_mail_per_account;
        assert_eq!(mail(with("throttle_mail_per_account", 7).unwrap()), 7);
        assert_eq!(mail(with(OLD_MAIL_PER_ACCOUNT, 5).unwrap()), 5);
        let both = Figment::new()
            .merge(("throttle_mail_per_account", 7))
            .merge((OLD_MAIL_PER_ACCOUNT, 5));
        assert_eq!(mail(Settings::from_figment(&both).unwrap()), 5);
        let err = with(OLD_MAIL_PER_ACCOUNT, "many").err().unwrap();
        assert!(err.contains(OLD_MAIL_PER_ACCOUNT), "{err}");
        let err = with(OLD_MAIL_PER_ACCOUNT, 0).err().unwrap();
        assert!(
            err.contains("throttle_mail_per_account must be at least 1"),
            "{err}"
        );
        assert!(unknown_keys(&Figment::new().merge((OLD_MAIL_PER_ACCOUNT, 5))).is_empty());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let parsed = with(
            "trusted_proxies",
            ["10.0.0.1", "192.168.0.0/16", "fd00::/8", "::1"],
        );
        let networks = parsed.unwrap().trusted_proxies();
        assert_eq!(networks.len(), 4);
        assert!(networks[1].contains(&"192.168.4.5".parse::<IpAddr>().unwrap()));
        let err = with("trusted_proxies", ["proxy.local"]).err().unwrap();
        assert!(err.contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn the_release_profile_refuses_exposed_reset_tokens() {
        let err = release("expose_reset_token", true).err().unwrap();
        assert!(err.contains("expose_reset_token"), "{err}");
    }

    #[test]
    fn a_release_warns_of_insecure_cookies_no_throttling_and_a_proxy_it_does_not_trust() {
        let settings = release("bcrypt_cost", 12).unwrap();
        assert!(settings.release);
        let quiet = Settings {
            mail_transport: MailTransport::Smtp,
            ..settings.clone()
        };
        assert!(quiet.release_warnings(false).is_empty());
        let careless = Settings {
            cookie_secure: false,
            throttle_enabled: false,
            ..quiet.clone()
        };
        let warnings = careless.release_warnings(true).join("\n");
        for key in ["cookie_secure", "throttle_enabled", "trusted_proxies"] {
            assert!(warnings.contains(key), "{warnings}");
        }
        let behind_proxy = Settings {
            trusted_proxies: vec!["127.0.0.1".into()],
            ..quiet
        };
        assert!(behind_proxy.release_warnings(true).is_empty());
    }

    #[test]
    fn bcrypt_cost_outside_4_to_31_is_refused() {
        assert!(
            with("bcrypt_cost", 3)
                .err()
                .unwrap()
                .contains("bcrypt_cost")
        );
        assert!(with("bcrypt_cost", 32).is_err());
        assert_eq!(with("bcrypt_cost", 4).unwrap().bcrypt_cost, 4);
    }

    #[test]
    fn bcrypt_nice_outside_0_to_19_is_refused() {
        assert!(
            with("bcrypt_nice", -1)
                .err()
                .unwrap()
                .contains("bcrypt_nice")
        );
        assert!(with("bcrypt_nice", 20).is_err());
        assert_eq!(with("bcrypt_nice", 0).unwrap().bcrypt_nice, 0);
    }

    #[test]
    fn a_cookie_name_with_separators_is_refused() {
        assert!(with("session_cookie_name", "a;b").is_err());
        assert!(with("session_cookie_name", "").is_err());
        assert!(with("session_cookie_name", "sid_2").is_ok());
    }

    /// A key in the form `mfa_key` takes.
    const MFA_KEY: &str = "1Sx8QvZ9+3N5yWq0b7kF2m4HcT6rLpE8jUoYdAiBnCs=";

    fn release(key: &str, value: impl serde::Serialize) -> Result<Settings, String> {
        let figment = Figment::new()
            .merge(("public_base_url", "https://auth.example.com"))
            .merge(("mfa_key", MFA_KEY))
            .merge((key, value))
            .select("release");
        Settings::from_figment(&figment)
    }

    #[test]
    fn the_release_profile_needs_an_mfa_key_and_any_profile_a_well_formed_one() {
        let figment = Figment::new()
            .merge(("public_base_url", "https://auth.example.com"))
            .select("release");
        let err = Settings::from_figment(&figment).err().unwrap();
        assert!(err.contains("the release profile needs mfa_key"), "{err}");
        let err = with("mfa_key", "c2hvcnQ=").err().unwrap();
        assert!(err.contains("mfa_key must be 32 bytes"), "{err}");
        let err = with("mfa_previous_keys", ["nope"]).err().unwrap();
        assert!(err.contains("each of mfa_previous_keys"), "{err}");
        assert!(with("mfa_key", MFA_KEY).is_ok());
        assert!(with("mfa_policy", "required").is_ok());
        assert!(with("mfa_policy", "sometimes").is_err());
    }

    #[test]
    fn the_release_profile_refuses_a_cost_below_10() {
        let err = release("bcrypt_cost", 9).err().unwrap();
        assert!(err.contains("at least 10"), "{err}");
        assert!(release("bcrypt_cost", 10).is_ok());
        assert!(with("bcrypt_cost", 4).is_ok(), "debug may be cheap");
    }

    #[test]
    fn the_release_profile_needs_a_public_base_url() {
        let figment = Figment::new().select("release");
        let err = Settings::from_figment(&figment).err().unwrap();
        assert!(err.contains("public_base_url"), "{err}");
    }

    #[test]
    fn a_public_base_url_must_be_http_or_https() {
        assert!(with("public_base_url", "auth.example.com").is_err());
        assert!(with("public_base_url", "https://auth.example.com").is_ok());
    }

    #[test]
    fn lifetimes_must_be_positive() {
        assert!(with("session_idle_secs", 0).is_err());
        assert!(with("reset_token_ttl_secs", -5).is_err());
    }

    #[test]
    fn an_empty_metrics_token_is_no_token() {
        assert_eq!(with("metrics_token", "").unwrap().metrics_token, None);
        assert_eq!(with("metrics_token", "  ").unwrap().metrics_token, None);
        let set = with("metrics_token", "s3cret").unwrap().metrics_token;
        assert_eq!(set.as_deref(), Some("s3cret"));
    }

    #[test]
    fn a_release_serves_metrics_only_with_a_token_unless_explicitly_public() {
        let open = Figment::new()
            .merge(("public_base_url", "https://auth.example.com"))
            .merge(("mfa_key", MFA_KEY))
            .merge(("metrics_enabled", true))
            .merge(("metrics_token", ""))
            .select("release");
        let err = Settings::from_figment(&open).err().unwrap();
        assert!(
            err.contains("metrics_enabled needs metrics_token") && err.contains("metrics_public"),
            "{err}"
        );
        let token = Settings::from_figment(&open.clone().merge(("metrics_token", "t"))).unwrap();
        assert!(!token.release_warnings(false).join("\n").contains("metrics"));
        let public = Settings::from_figment(&open.merge(("metrics_public", true))).unwrap();
        let warnings = public.release_warnings(false).join("\n");
        assert!(warnings.contains("metrics_public is true"), "{warnings}");
        assert!(
            with("metrics_enabled", true).is_ok(),
            "debug needs no token"
        );
    }

    #[test]
    fn hardened_applies_the_release_checks_to_any_profile() {
        let staging = Figment::new().select("staging");
        assert!(!Settings::from_figment(&staging).unwrap().release);
        let hardened = staging.merge(("hardened", true));
        let err = Settings::from_figment(&hardened).err().unwrap();
        assert!(err.contains("needs public_base_url"), "{err}");
        let complete = hardened
            .merge(("public_base_url", "https://auth.example.com"))
            .merge(("mfa_key", MFA_KEY));
        assert!(Settings::from_figment(&complete).unwrap().release);
    }

    #[test]
    fn a_release_warns_of_a_postgres_url_that_may_go_unencrypted_to_another_host() {
        let warning = |url: &str| {
            let settings = release("database_url", url).unwrap();
            let warnings = settings.release_warnings(false).join("\n");
            warnings.contains("verify-full").then_some(warnings)
        };
        for weak in [
            "postgres://app:pw@db.internal/auth",
            "postgres://app@db.internal:5432/auth?sslmode=prefer",
            "postgresql://app@10.0.0.5/auth?connect_timeout=3&sslmode=disable",
            "postgres://app@[fd00::5]/auth?sslmode=allow",
            "postgres://app@localhost/auth?host=db.internal",
        ] {
            let text = warning(weak).unwrap_or_else(|| panic!("no warning for {weak}"));
            assert!(!text.contains("pw@"), "{text}");
        }
        for fine in [
            "postgres://app@db.internal/auth?sslmode=verify-full&sslrootcert=ca.crt",
            "postgres://app@db.internal/auth?sslmode=require",
            "postgres://app@localhost/auth",
            "postgres://app@127.0.0.1:5432/auth?sslmode=disable",
            "postgres://app@[::1]/auth",
            "postgres://app@/auth?host=/run/postgresql",
            "postgres:///auth",
            "auth.db",
        ] {
            assert_eq!(warning(fine), None, "{fine}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_key_and_source() {
        let figment = Figment::new()
            .merge(("port", "abc"))
            .merge(("bcrypt_cost", "high"))
            .merge(("throttle_enabled", "maybe"))
            .merge(("session_idle_secs", 0))
            .merge(("bcrypt_nice", 20));
        let err = Settings::from_figment(&figment).err().unwrap();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 5, "{err}");
        for (line, expected) in lines.iter().zip([
            "port must be a whole number from 0 to 65535, not string \"abc\"",
            "bcrypt_cost must be a whole number, 0 or more, not string \"high\"",
            "throttle_enabled must be true or false, not string \"maybe\"",
            "bcrypt_nice must be between 0 and 19, not 20",
            "session_idle_secs must be a positive number of seconds",
        ]) {
            assert!(line.starts_with(expected), "{line}\n{err}");
            assert!(line.contains("(set in "), "{line}");
        }
    }

    #[test]
    fn a_refused_secret_is_named_but_never_shown() {
        let key = "x".repeat(44);
        let figment = Figment::new()
            .merge(("secret_key", key.as_str()))
            .merge(("smtp_password", 12345))
            .merge(("metrics_token", ["s3cret-token"]));
        let err = Settings::from_figment(&figment).err().unwrap();
        for secret in [key.as_str(), "12345", "s3cret-token"] {
            assert!(!err.contains(secret), "{err}");
        }
        assert!(err.contains("smtp_password must be "), "{err}");
        assert!(err.contains("metrics_token must be "), "{err}");
    }

    #[test]
    fn an_unknown_key_is_warned_of_with_the_closest_known_one() {
        let figment = Figment::new()
            .merge(("session_idle_sec", 60))
            .merge(("prot", 80))
            .merge(("completely_unrelated_thing", 1))
            .merge(("session_idle_secs", 60))
            .merge(("port", 80))
            .merge(("template_dir", "templates"))
            .merge((OLD_COOKIE_SECURE, true));
        let mut warnings = unknown_keys(&figment);
        warnings.sort();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].starts_with("unknown key `completely_unrelated_thing` in ")
                && warnings[0].ends_with("neither the service nor Rocket reads it"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].ends_with("did you mean `port`?"),
            "{warnings:?}"
        );
        assert!(
            warnings[2].starts_with("unknown key `session_idle_sec`")
                && warnings[2].ends_with("did you mean `session_idle_secs`?"),
            "{warnings:?}"
        );
        assert!(unknown_keys(&file_figment("release")).is_empty());
    }

    #[test]
    fn a_wrongly_typed_key_names_itself() {
        assert!(
            with("bcrypt_cost", "high")
                .err()
                .unwrap()
                .contains("bcrypt_cost")
        );
    }
}
