//! The service's typed settings, read once at ignite from Rocket's figment (`Rocket.toml`
//! profiles plus `ROCKET_*` environment variables), so they live beside Rocket's own keys.

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::figment::{self, Figment};
use serde::{Deserialize, Serialize};

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

/// Settings the application reads; Rocket's own keys (`port`, `secret_key`, …) stay Rocket's.
///
/// `Settings::default()` is the one source of the defaults: the hardened (release) values, so a
/// deployment that forgets a key gets the safe one. `Rocket.toml`'s `[default]` and README's
/// table repeat them for readers; a test fails when either disagrees with this.
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
    /// Reset requests per email per hour, from any address; beyond them nothing is sent.
    pub throttle_reset_per_email: i64,
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
    /// When set, `/metrics` answers only `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<String>,
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
    /// Whether the release profile is selected (set by [`Settings::from_figment`]): release
    /// cookies take the `__Host-` prefix, and the API trusts only `public_base_url` as an
    /// origin.
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
            cleanup_interval_secs: 5 * 60,
            hsts: true,
            expose_reset_token: false,
            require_verified_email: true,
            metrics_enabled: false,
            metrics_token: None,
            backup_dir: None,
            backup_interval_secs: 0,
            backup_keep: 7,
            admin_socket: "admin/auth.sock".into(),
            public_base_url: None,
            throttle_enabled: true,
            throttle_window_secs: 15 * 60,
            throttle_login_per_account: 10,
            throttle_login_per_address: 100,
            throttle_signup_per_address: 20,
            throttle_reset_per_address: 20,
            throttle_reset_per_email: 3,
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
            release: false,
        }
    }
}

impl Settings {
    /// Reads and checks the settings; the message says which key is wrong and why.
    pub fn from_figment(figment: &Figment) -> Result<Settings, String> {
        let invalid = |e: figment::Error| format!("invalid configuration: {e}");
        let mut figment = figment.clone();
        if figment.find_value(OLD_COOKIE_SECURE).is_ok() {
            let secure: bool = figment.extract_inner(OLD_COOKIE_SECURE).map_err(invalid)?;
            figment = figment.merge(Serialized::global("cookie_secure", secure));
        }
        let mut settings: Settings = figment.extract().map_err(invalid)?;
        settings.check()?;
        settings.release = figment.profile() == "release";
        if settings.release {
            settings.check_release()?;
        }
        Ok(settings)
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
        warnings
    }

    /// What a deployment must not get wrong; checked in the release profile only, where the
    /// debug conveniences would be dangerous.
    fn check_release(&self) -> Result<(), String> {
        if self.bcrypt_cost < 10 {
            return Err(format!(
                "bcrypt_cost {} is too cheap for the release profile: use at least 10",
                self.bcrypt_cost
            ));
        }
        if self.public_base_url.is_none() {
            return Err(
                "the release profile needs public_base_url (the origin reset links \
                        point to, for example https://auth.example.com)"
                    .into(),
            );
        }
        if self.expose_reset_token {
            return Err(
                "expose_reset_token must be false in the release profile: it hands \
                        every reset token to whoever asks for it"
                    .into(),
            );
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(format!(
                "bcrypt_cost must be between 4 and 31, not {}",
                self.bcrypt_cost
            ));
        }
        if !(0..=19).contains(&self.bcrypt_nice) {
            return Err(format!(
                "bcrypt_nice must be between 0 and 19, not {}",
                self.bcrypt_nice
            ));
        }
        if ["file:", "sqlite:"]
            .iter()
            .any(|scheme| self.database_url.starts_with(scheme))
        {
            return Err(format!(
                "database_url must be a file path or a postgres:// URL, not a SQLite URI \
                 ({:?}): the service sets SQLite's options itself (see database_exclusive)",
                self.database_url
            ));
        }
        if self.database_pool_size == 0 {
            return Err("database_pool_size must be at least 1".into());
        }
        if self.database_timeout_secs == 0 {
            return Err("database_timeout_secs must be at least 1".into());
        }
        for (key, value) in [
            ("session_idle_secs", self.session_idle_secs),
            ("session_absolute_secs", self.session_absolute_secs),
            ("reset_token_ttl_secs", self.reset_token_ttl_secs),
        ] {
            if value <= 0 {
                return Err(format!("{key} must be a positive number of seconds"));
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
            ("throttle_reset_per_email", self.throttle_reset_per_email),
            (
                "trusted_devices_per_account",
                self.trusted_devices_per_account,
            ),
        ] {
            if value <= 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if let Some(bad) = self
            .trusted_proxies
            .iter()
            .find(|proxy| parse_network(proxy).is_none())
        {
            return Err(format!(
                "trusted_proxies: {bad:?} is neither an IP address nor a CIDR block"
            ));
        }
        if self.cleanup_interval_secs == 0 {
            return Err("cleanup_interval_secs must be at least 1".into());
        }
        if self.backup_interval_secs > 0 && self.backup_dir.is_none() {
            return Err("backup_interval_secs needs backup_dir (where the copies go)".into());
        }
        if self.backup_keep == 0 {
            return Err("backup_keep must be at least 1".into());
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(format!(
                "public_base_url {url:?} must start with https:// or http://"
            ));
        }
        if self.password_min_length == 0 {
            return Err("password_min_length must be at least 1".into());
        }
        let name_ok = !self.session_cookie_name.is_empty()
            && self
                .session_cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(format!(
                "session_cookie_name {:?} must be letters, digits, '-', '_' or '.'",
                self.session_cookie_name
            ));
        }
        Ok(())
    }
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

    /// The first value of a README table cell: a `code` span, a bare word, or `—` for none.
    fn readme_value(cell: &str) -> Option<String> {
        let cell = cell.trim();
        if let Some(code) = cell.strip_prefix('`') {
            return Some(code[..code.find('`').unwrap()].to_owned());
        }
        let word = cell.split([' ', '(']).next().unwrap();
        (word != "—").then(|| word.to_owned())
    }

    /// A setting as the README writes it: strings bare, none as `None`.
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
        let readme = std::fs::read_to_string("README.md").unwrap();
        let table = &readme[readme.find("\n## Configuration").unwrap() + 1..];
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
                "README debug {key}"
            );
            assert_eq!(
                readme_value(release_cell),
                written(&release[key]),
                "README release {key}"
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
                "{key} is missing from README's table"
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

    fn release(key: &str, value: impl serde::Serialize) -> Result<Settings, String> {
        let figment = Figment::new()
            .merge(("public_base_url", "https://auth.example.com"))
            .merge((key, value))
            .select("release");
        Settings::from_figment(&figment)
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
    fn a_wrongly_typed_key_names_itself() {
        assert!(
            with("bcrypt_cost", "high")
                .err()
                .unwrap()
                .contains("bcrypt_cost")
        );
    }
}
