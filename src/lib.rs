//! A user-authentication service: the original Flask service's JSON API, in three layers that
//! call one way only: `web` → `auth` → `db`. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod files;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod time;
pub mod web;

use rocket::error::ErrorKind;
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};

use auth::{AuditLog, Auth};
use config::Settings;
use db::{Access, Db, Options};
use mail::Mailer;
use metrics::Metrics;

/// Serves the application on `figment` until it shuts down. A start that is refused (a bad
/// setting, a missing secret, a database that cannot be opened, an admin socket that cannot be
/// bound, a port in use) is `Err` with its reason in one line, before anything is served.
pub async fn serve(figment: Figment) -> Result<(), String> {
    survive_file_size_limits();
    logging::init(&figment);
    let services = Services::open(&figment).await?;
    let socket = match admin::socket_path(&services.settings) {
        Some(path) => admin::Socket::bind(&path)?,
        None => None,
    };
    let mut rocket = services.manage(build(figment));
    if let Some(socket) = socket {
        rocket = rocket.manage(socket);
    }
    match rocket.launch().await {
        Ok(_) => Ok(()),
        Err(error) => Err(match error.kind() {
            ErrorKind::Bind(cause) => format!("cannot listen on the configured address: {cause}"),
            ErrorKind::InsecureSecretKey(profile) => secret_key_missing(profile.as_str().as_str()),
            other => other.to_string(),
        }),
    }
}

/// Whether `figment` sets Rocket's `secret_key` (a key of zeros is Rocket's "none").
pub fn has_secret_key(figment: &Figment) -> bool {
    rocket::Config::try_from(figment).is_ok_and(|config| !config.secret_key.is_zero())
}

/// `figment`, with a secret key generated for this run when it is Rocket's debug profile, not
/// `hardened`, and sets none: what Rocket would do itself, but on purpose, so without its
/// three-line warning. Private cookies (CSRF, links, devices) then end with the process; a
/// hardened profile must set a key, and is refused without one.
fn with_debug_secret_key(figment: Figment) -> Figment {
    let hardened = figment.extract_inner::<bool>("hardened").unwrap_or(false);
    if figment.profile() != rocket::Config::DEBUG_PROFILE || hardened || has_secret_key(&figment) {
        return figment;
    }
    use base64::Engine;
    let mut key = [0u8; 32];
    if getrandom::fill(&mut key).is_err() {
        return figment;
    }
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    figment.merge(("secret_key", key))
}

fn secret_key_missing(profile: &str) -> String {
    format!(
        "the {profile} profile needs secret_key (it encrypts the private cookies): generate \
         one with `openssl rand -base64 32` and set ROCKET_SECRET_KEY"
    )
}

/// A write past the process's file-size limit (`ulimit -f`, systemd's `LimitFSIZE`) raises
/// SIGXFSZ, which kills the process by default. Ignored, the write fails with EFBIG instead,
/// which SQLite reports as an I/O error and the service answers 503: a full file is then a
/// refused write, not a crash that drops every request in flight.
fn survive_file_size_limits() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets a signal's disposition to "ignore"; no handler code runs, nothing is shared.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The application on any configuration; tests merge a temporary database into the figment.
pub fn build(figment: Figment) -> Rocket<Build> {
    logging::init(&figment);
    rocket::custom(with_debug_secret_key(figment))
        .attach(AdHoc::try_on_ignite("Settings, database and auth", setup))
        .attach(AdHoc::on_liftoff("Background tasks", |rocket| {
            Box::pin(start_background(rocket))
        }))
        .attach(web::stage())
}

/// What the server and the admin command line run on: the settings, and the services built
/// from them.
pub struct Services {
    pub settings: Settings,
    pub auth: Auth,
    pub metrics: Metrics,
}

impl Services {
    /// Reads the settings, opens the database (applying migrations) and builds the auth
    /// service. `Err` names the cause in one line.
    pub async fn open(figment: &Figment) -> Result<Services, String> {
        let settings = Settings::from_figment(figment)?;
        if settings.release && !has_secret_key(figment) {
            return Err(secret_key_missing(figment.profile().as_str().as_str()));
        }
        if settings.release && !db::is_postgres_url(&settings.database_url) {
            files::check_private(std::path::Path::new(&settings.database_url))?;
        }
        let mut warnings = config::unknown_keys(figment);
        if settings.release {
            let address = figment.extract_inner::<std::net::IpAddr>("address");
            let loopback = address.is_ok_and(|a| a.is_loopback());
            warnings.extend(settings.release_warnings(loopback));
        }
        for warning in warnings {
            log::warn!(target: "auth_service::config", "{warning}");
        }
        let metrics = Metrics::new(settings.metrics_enabled);
        let path = settings.database_url.clone();
        let options = Options {
            pool_size: settings.database_pool_size,
            access: Access::from_exclusive(settings.database_exclusive),
            synchronous: settings.database_synchronous,
            timeout: std::time::Duration::from_secs(settings.database_timeout_secs),
            session_cache: (settings.session_cache_ms > 0)
                .then(|| std::time::Duration::from_millis(settings.session_cache_ms)),
        };
        let db = tokio::task::spawn_blocking(move || Db::open(&path, &options))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                let url = db::redacted(&settings.database_url);
                // One line, whatever the cause's own message spans (libpq's take several).
                let cause: Vec<String> =
                    e.to_string().lines().map(|l| l.trim().to_owned()).collect();
                format!("cannot open database {url:?}: {}", cause.join(" ").trim())
            })?
            .with_metrics(metrics.clone());
        let audit = AuditLog::open(&settings.audit_log, settings.log_format)
            .map_err(|e| format!("cannot open audit_log {:?}: {e}", settings.audit_log))?;
        let mailer = Mailer::from_settings(&settings, web::paths::LINKS)?;
        let auth = Auth::new(db, &settings, audit, mailer, metrics.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Services {
            settings,
            auth,
            metrics,
        })
    }

    /// `rocket` with these services in its managed state.
    fn manage(self, rocket: Rocket<Build>) -> Rocket<Build> {
        rocket
            .manage(self.settings)
            .manage(self.auth)
            .manage(self.metrics)
    }
}

/// Opens the services when [`serve`] has not already; a failure stops the launch with a
/// message naming the cause.
async fn setup(rocket: Rocket<Build>) -> Result<Rocket<Build>, Rocket<Build>> {
    if rocket.state::<Auth>().is_some() {
        return Ok(rocket);
    }
    match Services::open(rocket.figment()).await {
        Ok(services) => Ok(services.manage(rocket)),
        Err(message) => {
            log::error!(target: "auth_service", "cannot start: {message}");
            Err(rocket)
        }
    }
}

/// Starts what runs beside the requests until the server shuts down: the periodic cleanup,
/// the scheduled backups and the admin socket [`serve`] bound.
async fn start_background(rocket: &Rocket<rocket::Orbit>) {
    let (Some(auth), Some(settings)) = (rocket.state::<Auth>(), rocket.state::<Settings>()) else {
        return;
    };
    let shutdown = rocket.shutdown();
    let every = |secs| std::time::Duration::from_secs(secs);
    let cleanup = auth.clone();
    admin::every(
        every(settings.cleanup_interval_secs),
        shutdown.clone(),
        move || {
            let auth = cleanup.clone();
            async move {
                match auth.operator().purge_expired().await {
                    Ok(purged) => log::info!(target: "auth_service::cleanup", "purged {purged}"),
                    Err(error) => {
                        log::error!(target: "auth_service::cleanup", "cleanup failed: {error}")
                    }
                }
            }
        },
    );
    if let (Some(dir), secs @ 1..) = (&settings.backup_dir, settings.backup_interval_secs) {
        let (auth, dir, keep) = (auth.clone(), dir.into(), settings.backup_keep);
        admin::every(every(secs), shutdown.clone(), move || {
            admin::scheduled_backup(auth.clone(), std::path::PathBuf::clone(&dir), keep)
        });
    }
    if let Some(socket) = rocket.state::<admin::Socket>() {
        socket.serve(auth.clone(), shutdown);
    }
}
