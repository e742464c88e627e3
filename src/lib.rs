//! A user-authentication service: the original Flask service's JSON API, in three layers that
//! call one way only: `web` → `auth` → `db`. See ARCHITECTURE.md for the map.

pub mod auth;
pub mod config;
pub mod db;
pub mod logging;
pub mod mail;
pub mod web;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};

use auth::{AuditLog, Auth};
use config::Settings;
use db::{Access, Db, Options};
use mail::Mailer;

/// The application as `cargo run` serves it: `Rocket.toml` and `ROCKET_*` variables.
pub fn rocket() -> Rocket<Build> {
    survive_file_size_limits();
    build(rocket::Config::figment())
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
    rocket::custom(figment)
        .attach(AdHoc::try_on_ignite("Settings, database and auth", setup))
        .attach(AdHoc::on_liftoff("Periodic cleanup", |rocket| {
            Box::pin(start_cleanup(rocket))
        }))
        .attach(web::stage())
}

/// Every `cleanup_interval_secs`, purges expired sessions, reset tokens and throttle rows, until
/// the server shuts down. Expiry is also enforced in every lookup; this only reclaims space.
async fn start_cleanup(rocket: &Rocket<rocket::Orbit>) {
    let (Some(auth), Some(settings)) = (rocket.state::<Auth>(), rocket.state::<Settings>()) else {
        return;
    };
    let (auth, mut shutdown) = (auth.clone(), rocket.shutdown());
    let interval = std::time::Duration::from_secs(settings.cleanup_interval_secs);
    tokio::spawn(async move {
        loop {
            rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(interval) => {}
            }
            match auth.purge_expired().await {
                Ok(purged) => log::info!(target: "auth_service::cleanup", "purged {purged:?}"),
                Err(error) => {
                    log::error!(target: "auth_service::cleanup", "cleanup failed: {error}")
                }
            }
        }
    });
}

/// Reads the settings, opens the database (applying migrations) and builds the auth service.
/// Any failure stops the launch with a message naming the cause.
async fn setup(rocket: Rocket<Build>) -> Result<Rocket<Build>, Rocket<Build>> {
    let started = async {
        let settings = Settings::from_figment(rocket.figment())?;
        let path = settings.database_url.clone();
        let options = Options {
            pool_size: settings.database_pool_size,
            access: Access::from_exclusive(settings.database_exclusive),
            synchronous: settings.database_synchronous,
            timeout: std::time::Duration::from_secs(settings.database_timeout_secs),
        };
        let db = tokio::task::spawn_blocking(move || Db::open(&path, &options))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                let url = db::redacted(&settings.database_url);
                format!("cannot open database {url:?}: {e}")
            })?;
        let audit = AuditLog::open(&settings.audit_log, settings.log_format)
            .map_err(|e| format!("cannot open audit_log {:?}: {e}", settings.audit_log))?;
        let mailer = Mailer::from_settings(&settings)?;
        if settings.release {
            let address = rocket
                .figment()
                .extract_inner::<std::net::IpAddr>("address");
            let loopback = address.is_ok_and(|a| a.is_loopback());
            for warning in settings.release_warnings(loopback) {
                log::warn!(target: "auth_service::config", "{warning}");
            }
        }
        let auth = Auth::new(db, &settings, audit, mailer)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((settings, auth))
    };
    match started.await {
        Ok((settings, auth)) => Ok(rocket.manage(settings).manage(auth)),
        Err(message) => {
            log::error!(target: "auth_service", "cannot start: {message}");
            Err(rocket)
        }
    }
}
