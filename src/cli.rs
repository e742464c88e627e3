//! The command line: `auth_service` serves (as `cargo run` always did); its subcommands are
//! the operator's tools, on the database the service uses. While the service runs they go
//! through its admin socket (see [`crate::admin`]); otherwise they open the database
//! themselves.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rocket::figment::Figment;

use crate::Services;
use crate::admin::{self, Command};
use crate::auth::oidc::NewClient;
use crate::auth::{AuditLog, Caller};
use crate::config::Settings;

/// A user-authentication service and its operator's tools.
///
/// Sign up, log in, profile, log out and password reset, in a browser or through a JSON API.
/// Without a command it serves, configured by Rocket.toml (profile `debug` in a debug build,
/// `release` in a release build, or ROCKET_PROFILE) and ROCKET_* variables. The commands work
/// on the same database: through the running service's admin socket (`admin_socket`) when it
/// listens, directly otherwise. Each change is written to the audit log.
#[derive(Debug, Parser)]
#[command(name = "auth_service", version, propagate_version = true)]
pub struct Cli {
    /// The configuration profile to use (debug, release, or one of Rocket.toml's own);
    /// defaults to ROCKET_PROFILE, else the build's.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,

    #[command(subcommand)]
    command: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Serve the application (what no command does).
    Serve,
    /// Apply the database migrations this binary carries, then exit.
    ///
    /// The service applies them at start too; this lets a deployment migrate before it
    /// switches traffic. Through a running service it checks that none is pending.
    Migrate,
    /// Create, inspect, fix or delete an account.
    #[command(subcommand)]
    User(UserAction),
    /// End sessions.
    #[command(subcommand)]
    Sessions(SessionsAction),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigAction),
    /// The OpenID Connect provider: the applications that sign their users in here, and the
    /// keys ID tokens are signed with.
    #[command(subcommand)]
    Oidc(OidcAction),
    /// Write a consistent copy of the SQLite database to FILE, even while the service runs.
    ///
    /// A running service writes the copy itself (it is a snapshot of one moment; writes go on
    /// meanwhile). Restore by stopping the service and putting the copy in place of
    /// `database_url`. PostgreSQL databases are backed up with pg_dump.
    Backup {
        /// Where the copy goes (0600): a new file, in a directory that exists.
        file: PathBuf,
        /// Replace FILE if it exists, once the copy is complete.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Create an account whose email counts as verified.
    ///
    /// The password is read from a prompt (twice, without echo) or, when stdin is not a
    /// terminal, from its first line; never from an argument, which other users could read
    /// in the process list. It must meet the profile's password policy.
    Create {
        /// The account's email.
        email: String,
    },
    /// Set an account's password.
    ///
    /// Read from a prompt or stdin, as for `create`. Every session of the account ends, its
    /// reset link is void, and the owner is mailed a notice.
    SetPassword {
        /// The account's email.
        email: String,
    },
    /// Delete an account with its sessions, tokens, trusted devices and throttling records.
    Delete {
        /// The account's email.
        email: String,
    },
    /// Show an account.
    ///
    /// Its id, email, creation and verification times, live sessions, trusted devices and
    /// last use; never a password hash or a token.
    Show {
        /// The account's email.
        email: String,
    },
    /// Turn off an account's second factors, for an owner who lost their phone.
    ///
    /// Its authenticator app and recovery codes go, every session ends, and the owner is
    /// mailed a notice; the next sign-in needs only the password, and the owner should set a
    /// second factor up again.
    DisableMfa {
        /// The account's email.
        email: String,
    },
    /// Disable an account: it cannot sign in until enabled again.
    ///
    /// Every session ends, and everything derived from its credentials is void: mailed links,
    /// trusted devices, pending sign-ins, and the codes and tokens its applications (OpenID
    /// Connect) hold. Its data stays; `enable` undoes it.
    Disable {
        /// The account's email.
        email: String,
    },
    /// Let a disabled account sign in again.
    Enable {
        /// The account's email.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// End every session of an account (log it out everywhere).
    Revoke {
        /// The account's email.
        email: String,
    },
    /// Delete expired sessions and tokens now.
    ///
    /// Also old throttling records and stale devices: what the service deletes every
    /// `cleanup_interval_secs` anyway.
    Purge,
}

#[derive(Debug, Subcommand)]
enum OidcAction {
    /// Register, inspect and remove applications (relying parties).
    #[command(subcommand)]
    Clients(ClientsAction),
    /// Add a new current ID-token signing key.
    ///
    /// New ID tokens are signed with it at once; the old key stays in the JWK Set until every
    /// ID token it signed has expired (`oidc_access_token_ttl_secs`), then it is deleted.
    RotateKey,
}

#[derive(Debug, Subcommand)]
enum ClientsAction {
    /// Register an application; prints its client_id and, for a confidential client, its
    /// secret (once).
    ///
    /// Redirect URIs are compared as exact strings; only a loopback one (http://127.0.0.1,
    /// http://[::1]) may change its port. Plain http is refused elsewhere.
    Add {
        /// What the consent page and the owner's list of applications call it.
        #[arg(long)]
        name: String,
        /// Where the browser returns with a code (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// A browser or native app that cannot keep a secret: no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Where RP-initiated logout may send the browser back (repeat for several).
        #[arg(long = "post-logout-uri", value_name = "URI")]
        post_logout_uris: Vec<String>,
        /// A first-party confidential client: no consent page.
        #[arg(long)]
        skip_consent: bool,
        /// The scopes it may ask for (openid always; default: openid email offline_access).
        #[arg(long, num_args = 1.., value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A confidential client that cannot send PKCE (not recommended).
        #[arg(long)]
        pkce_optional: bool,
        /// Sign its ID tokens with RS256 (default) or EdDSA.
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<String>,
    },
    /// List the registered applications.
    List,
    /// Show an application's registration (never its secret).
    Show { client_id: String },
    /// Remove an application with every grant and token it holds.
    Remove { client_id: String },
    /// Give a confidential application a new secret (printed once); the old one stops working.
    RotateSecret { client_id: String },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print the effective configuration and what a release start would say.
    ///
    /// Every setting of the profile, secrets masked, then whether the release profile would
    /// start and what it would warn about. Exits with status 1 when the chosen profile's own
    /// configuration would refuse to start.
    Check,
}

/// Runs the command line; the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut figment = rocket::Config::figment();
    if let Some(profile) = &cli.profile {
        figment = figment.select(profile.as_str());
    }
    let done = match cli.command.unwrap_or(Action::Serve) {
        // Checked before Rocket's runtime starts: it panics on a configuration it cannot read.
        Action::Serve => {
            Settings::from_figment(&figment).and_then(|_| rocket::execute(crate::serve(figment)))
        }
        Action::Config(ConfigAction::Check) => {
            config_check(&figment).and_then(|text| output(&text))
        }
        action => Settings::from_figment(&figment)
            .and_then(|_| command(action))
            .and_then(|command| run(&figment, command)),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            // One line per problem (a configuration can have several).
            for problem in reason.lines().map(str::trim).filter(|l| !l.is_empty()) {
                // Not `eprintln!`, which panics when stderr is a closed pipe.
                let _ = writeln!(std::io::stderr(), "error: {problem}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The admin command for `action`, with the password it needs read first.
fn command(action: Action) -> Result<Command, String> {
    Ok(match action {
        Action::Migrate => Command::Migrate,
        Action::User(UserAction::Create { email }) => Command::UserCreate {
            email,
            password: read_password()?,
        },
        Action::User(UserAction::SetPassword { email }) => Command::UserSetPassword {
            email,
            password: read_password()?,
        },
        Action::User(UserAction::Delete { email }) => Command::UserDelete { email },
        Action::User(UserAction::Show { email }) => Command::UserShow { email },
        Action::User(UserAction::DisableMfa { email }) => Command::UserDisableMfa { email },
        Action::User(UserAction::Disable { email }) => Command::UserDisable { email },
        Action::User(UserAction::Enable { email }) => Command::UserEnable { email },
        Action::Sessions(SessionsAction::Revoke { email }) => Command::SessionsRevoke { email },
        Action::Sessions(SessionsAction::Purge) => Command::SessionsPurge,
        Action::Oidc(OidcAction::RotateKey) => Command::OidcRotateKey,
        Action::Oidc(OidcAction::Clients(clients)) => match clients {
            ClientsAction::Add {
                name,
                redirect_uris,
                public,
                post_logout_uris,
                skip_consent,
                scopes,
                pkce_optional,
                id_token_alg,
            } => Command::OidcClientAdd(NewClient {
                name,
                redirect_uris,
                public,
                post_logout_uris,
                skip_consent,
                scopes,
                pkce_optional,
                id_token_alg,
            }),
            ClientsAction::List => Command::OidcClientList,
            ClientsAction::Show { client_id } => Command::OidcClientShow { client_id },
            ClientsAction::Remove { client_id } => Command::OidcClientRemove { client_id },
            ClientsAction::RotateSecret { client_id } => {
                Command::OidcClientRotateSecret { client_id }
            }
        },
        Action::Backup { file, force } => Command::Backup {
            file: std::path::absolute(&file).map_err(|e| format!("{}: {e}", file.display()))?,
            replace: force,
        },
        Action::Serve | Action::Config(_) => unreachable!("handled by main"),
    })
}

/// A new password: typed twice at a prompt without echo, or the first line of stdin.
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        return Ok(first);
    }
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let line = input.lines().next().unwrap_or_default();
    Ok(line.to_owned())
}

/// Runs `command` through the running service's admin socket, or on the database directly
/// when no service listens; prints what it did.
fn run(figment: &Figment, command: Command) -> Result<(), String> {
    let settings = Settings::from_figment(figment)?;
    if let Some(socket) = admin::socket_path(&settings)
        && let Some(answer) = admin::send(&socket, &command)
    {
        return output(&format!("{}\n", answer?));
    }
    rocket::execute(async {
        // The command's output is what it prints; the log only says what went wrong.
        crate::logging::init(&figment.clone().merge(("log_level", "critical")));
        let services = Services::open(figment).await?;
        let done = admin::execute(&services.auth, command).await;
        services.auth.operator().flush_mail();
        output(&format!("{}\n", done?))
    })
}

/// Prints `text` on stdout. A reader that has gone (`… | head -1`) ends the output quietly, as
/// it ends any Unix tool's: the command's work is done either way.
fn output(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the output: {error}"))
        }
        _ => Ok(()),
    }
}

/// The effective configuration of `figment`'s profile, secrets masked, and what a release
/// start would say; `Err` when this profile's configuration would refuse to start.
pub fn config_check(figment: &Figment) -> Result<String, String> {
    let profile = figment.profile().to_string();
    let settings = Settings::from_figment(figment);
    let shown = match &settings {
        Ok(settings) => settings.clone(),
        Err(_) => figment.extract::<Settings>().unwrap_or_default(),
    };
    let mut text = format!("profile: {profile}\n");
    for warning in crate::config::unknown_keys(figment) {
        text.push_str(&format!("warning: {warning}\n"));
    }
    let values = serde_json::to_value(&shown).map_err(|e| e.to_string())?;
    for (key, value) in values.as_object().into_iter().flatten() {
        let value = match (key.as_str(), value) {
            (_, serde_json::Value::Null) => "(not set)".to_owned(),
            ("smtp_password" | "metrics_token" | "mfa_key" | "mfa_previous_keys", _) => {
                "(set, masked)".to_owned()
            }
            ("database_url", serde_json::Value::String(url)) => crate::db::redacted(url),
            (_, serde_json::Value::String(text)) => text.clone(),
            (_, other) => other.to_string(),
        };
        text.push_str(&format!("{key} = {value}\n"));
    }
    let secret = match crate::has_secret_key(figment) {
        true => "(set, masked)",
        false => "(not set)",
    };
    text.push_str(&format!("secret_key = {secret}\n"));
    let release = figment.clone().select("release");
    let release_start = Settings::from_figment(&release).and_then(|settings| {
        match crate::has_secret_key(&release) {
            true => Ok(settings),
            false => Err("secret_key is not set".into()),
        }
    });
    match release_start {
        Ok(settings) => {
            text.push_str("release start: accepted\n");
            let loopback = release
                .extract_inner::<std::net::IpAddr>("address")
                .is_ok_and(|a| a.is_loopback());
            for warning in settings.release_warnings(loopback) {
                text.push_str(&format!("release warning: {warning}\n"));
            }
        }
        Err(reason) => text.push_str(&format!("release start: refused: {reason}\n")),
    }
    match settings {
        Ok(settings) => {
            let audit = AuditLog::open(&settings.audit_log, settings.log_format)
                .map_err(|e| format!("cannot open audit_log {:?}: {e}", settings.audit_log))?;
            audit.record(&Caller::default(), "admin.config_checked", &[]);
            Ok(text)
        }
        Err(reason) => {
            output(&text)?;
            Err(format!(
                "the {profile} profile would refuse to start: {reason}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file_figment;

    #[test]
    fn config_check_masks_secrets_and_says_what_a_release_start_would_do() {
        let figment = file_figment("debug")
            .merge(("smtp_password", "hunter2"))
            .merge(("metrics_token", "scrape-me"))
            .merge(("database_url", "postgres://app:pa55@db.internal/auth"));
        let text = config_check(&figment).unwrap();
        assert!(text.starts_with("profile: debug\n"), "{text}");
        for secret in ["hunter2", "scrape-me", "pa55"] {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
        assert!(text.contains("smtp_password = (set, masked)\n"));
        assert!(text.contains("bcrypt_cost = 12\n"));
        assert!(text.contains("release start: refused: the release profile needs public_base_url"));

        let ready = figment
            .merge(("public_base_url", "https://auth.example.com"))
            .merge(("secret_key", "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk="))
            .merge(("mfa_key", "1Sx8QvZ9+3N5yWq0b7kF2m4HcT6rLpE8jUoYdAiBnCs="));
        let text = config_check(&ready).unwrap();
        assert!(text.contains("mfa_key = (set, masked)\n"), "{text}");
        assert!(!text.contains("1Sx8QvZ9"), "{text}");
        assert!(text.contains("secret_key = (set, masked)\n"), "{text}");
        assert!(text.contains("release start: accepted\n"), "{text}");
        assert!(
            text.contains("release warning: mail_transport is \"outbox\""),
            "{text}"
        );
        assert!(
            text.contains("release warning: database_url has no sslmode"),
            "checked before connecting: {text}"
        );
        let empty = file_figment("debug").merge(("metrics_token", ""));
        let text = config_check(&empty).unwrap();
        assert!(text.contains("metrics_token = (not set)\n"), "{text}");

        let broken = file_figment("debug").merge(("bcrypt_cost", 3));
        let refused = config_check(&broken).unwrap_err();
        assert!(
            refused.contains("bcrypt_cost must be between 4 and 31"),
            "{refused}"
        );
    }

    #[test]
    fn every_command_parses_and_a_password_is_never_an_argument() {
        for args in [
            &["auth_service"][..],
            &["auth_service", "serve"],
            &["auth_service", "migrate"],
            &["auth_service", "user", "create", "a@b.io"],
            &["auth_service", "user", "set-password", "a@b.io"],
            &["auth_service", "user", "delete", "a@b.io"],
            &["auth_service", "user", "show", "a@b.io"],
            &["auth_service", "sessions", "revoke", "a@b.io"],
            &["auth_service", "sessions", "purge"],
            &["auth_service", "config", "check"],
            &["auth_service", "--profile", "release", "backup", "copy.db"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
        let with_password = [
            "auth_service",
            "user",
            "create",
            "a@b.io",
            "--password",
            "x",
        ];
        assert!(Cli::try_parse_from(with_password).is_err());
    }
}
