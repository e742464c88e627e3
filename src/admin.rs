//! The operator's side of the service: the commands of `auth_service <command>`, run in the
//! command's own process or, while the service runs, by the service itself through its admin
//! socket; and the service's scheduled tasks (cleanup, backups).
//!
//! Why a socket: with `database_exclusive = true` (the default) no other process can open the
//! database while the service runs, so a command that finds the service listening on
//! `admin_socket` hands the work to it. The socket is a Unix socket of mode 0600 in a directory
//! of mode 0700, bound before the service answers HTTP; both ends check the other's user (the
//! service admits its own user and root, the command line only a socket of its own user), since a
//! command may carry a password. One JSON command per connection, one JSON answer.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rocket::Shutdown;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::auth::oidc::{ClientInfo, NewClient, Registered};
use crate::auth::{Auth, Email, Password};
use crate::config::Settings;

/// A command as the socket carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Migrate,
    UserCreate {
        email: String,
        password: String,
    },
    UserSetPassword {
        email: String,
        password: String,
    },
    UserDelete {
        email: String,
    },
    UserShow {
        email: String,
    },
    UserDisableMfa {
        email: String,
    },
    UserDisable {
        email: String,
    },
    UserEnable {
        email: String,
    },
    SessionsRevoke {
        email: String,
    },
    SessionsPurge,
    OidcClientAdd(NewClient),
    OidcClientList,
    OidcClientShow {
        client_id: String,
    },
    OidcClientRemove {
        client_id: String,
    },
    OidcClientRotateSecret {
        client_id: String,
    },
    OidcRotateKey,
    Backup {
        file: PathBuf,
        /// Replace an existing `file` (`backup --force`).
        #[serde(default)]
        replace: bool,
    },
}

/// The socket's answer: what to print, or why the command failed.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    ok: bool,
    text: String,
}

/// The longest command line the socket reads.
const MAX_COMMAND: u64 = 64 * 1024;

/// Runs `command` on `auth`'s database; `Ok` is what to print.
pub async fn execute(auth: &Auth, command: Command) -> Result<String, String> {
    let email = |raw: &str| Email::parse(raw).map_err(|why| format!("EMAIL {why}"));
    let password = |raw: &str| -> Result<Password, String> {
        auth.policy()
            .new_password(raw)
            .map_err(|why| format!("the password {why}"))
    };
    let failed = |e: crate::auth::AuthError| e.to_string();
    let operator = auth.operator();
    match command {
        Command::Migrate => {
            operator.ready().await.map_err(failed)?;
            operator.audit_operator("admin.migrate");
            Ok("every migration is applied".into())
        }
        Command::UserCreate {
            email: raw,
            password: secret,
        } => {
            let user = operator
                .create_user(&email(&raw)?, password(&secret)?)
                .await
                .map_err(failed)?;
            Ok(format!(
                "created {} (id {}), email verified",
                user.email, user.id
            ))
        }
        Command::UserSetPassword {
            email: raw,
            password: secret,
        } => {
            let address = email(&raw)?;
            operator
                .set_password(&address, password(&secret)?)
                .await
                .map_err(failed)?;
            Ok(format!(
                "password of {address} set; its sessions ended and a notice was mailed"
            ))
        }
        Command::UserDelete { email: raw } => {
            let address = email(&raw)?;
            operator.delete_user(&address).await.map_err(failed)?;
            Ok(format!(
                "deleted {address} with its sessions, tokens and devices"
            ))
        }
        Command::UserShow { email: raw } => {
            let shown = operator
                .account_summary(&email(&raw)?)
                .await
                .map_err(failed)?;
            let when = |t: Option<i64>| t.map_or("never".into(), crate::time::rfc3339);
            Ok(format!(
                "id: {}\nemail: {}\ncreated: {}\nemail verified: {}\nlive sessions: {}\n\
                 trusted devices: {}\nlast seen: {}\ndisabled: {}",
                shown.id,
                shown.email,
                crate::time::rfc3339(shown.created_at),
                when(shown.email_verified_at),
                shown.live_sessions,
                shown.trusted_devices,
                when(shown.last_seen_at),
                when(shown.disabled_at),
            ))
        }
        Command::UserDisableMfa { email: raw } => {
            let address = email(&raw)?;
            let had = operator
                .disable_second_factors(&address)
                .await
                .map_err(failed)?;
            Ok(match had {
                true => format!(
                    "second factors of {address} turned off; its sessions ended and a notice \
                     was mailed"
                ),
                false => format!("{address} had no second factor; its sessions ended"),
            })
        }
        Command::UserDisable { email: raw } => {
            let address = email(&raw)?;
            let ended = operator.disable_user(&address).await.map_err(failed)?;
            Ok(format!(
                "{address} disabled: {} ended, its links, devices and applications' tokens \
                 revoked",
                counted(ended, "session", "sessions")
            ))
        }
        Command::UserEnable { email: raw } => {
            let address = email(&raw)?;
            operator.enable_user(&address).await.map_err(failed)?;
            Ok(format!("{address} enabled: it may sign in again"))
        }
        Command::SessionsRevoke { email: raw } => {
            let ended = operator
                .revoke_sessions(&email(&raw)?)
                .await
                .map_err(failed)?;
            Ok(format!("{} ended", counted(ended, "session", "sessions")))
        }
        Command::SessionsPurge => {
            let purged = operator.purge_expired().await.map_err(failed)?;
            operator.audit_operator("admin.sessions_purged");
            Ok(format!(
                "purged {}, {}, {}, {}, {}, {}, {}",
                counted(purged.sessions, "expired session", "expired sessions"),
                counted(purged.reset_tokens, "reset token", "reset tokens"),
                counted(purged.account_tokens, "mailed token", "mailed tokens"),
                counted(purged.attempts, "old attempt", "old attempts"),
                counted(purged.devices, "stale device", "stale devices"),
                counted(
                    purged.sign_in_steps,
                    "expired sign-in step",
                    "expired sign-in steps"
                ),
                counted(
                    purged.oidc,
                    "expired application token or key",
                    "expired application tokens or keys"
                ),
            ))
        }
        Command::OidcClientAdd(new) => {
            let registered = auth.oidc().clients().add(new).await.map_err(failed)?;
            operator.audit_operator("admin.oidc_client_added");
            Ok(registered_text(&registered))
        }
        Command::OidcClientList => {
            let clients = auth.oidc().clients().list().await.map_err(failed)?;
            let lines: Vec<String> = clients
                .iter()
                .map(|c| {
                    let kind = if c.public { "public" } else { "confidential" };
                    format!("{}  {}  ({kind})", c.client_id, c.name)
                })
                .collect();
            Ok(match lines.is_empty() {
                true => "no client is registered".into(),
                false => lines.join("\n"),
            })
        }
        Command::OidcClientShow { client_id } => {
            let client = auth
                .oidc()
                .clients()
                .show(&client_id)
                .await
                .map_err(failed)?;
            Ok(client_text(&client))
        }
        Command::OidcClientRemove { client_id } => {
            auth.oidc()
                .clients()
                .remove(&client_id)
                .await
                .map_err(failed)?;
            operator.audit_operator("admin.oidc_client_removed");
            Ok(format!(
                "removed client {client_id} with its grants and tokens"
            ))
        }
        Command::OidcClientRotateSecret { client_id } => {
            let clients = auth.oidc().clients();
            let registered = clients.rotate_secret(&client_id).await.map_err(failed)?;
            operator.audit_operator("admin.oidc_client_secret_rotated");
            Ok(registered_text(&registered))
        }
        Command::OidcRotateKey => {
            let kids = auth.oidc().rotate_key().await.map_err(failed)?;
            operator.audit_operator("admin.oidc_key_rotated");
            Ok(format!(
                "new signing key(s): {}; the retired ones stay published until the ID tokens \
                 they signed expire",
                kids.join(", ")
            ))
        }
        Command::Backup { file, replace } => {
            let dir = file.parent().unwrap_or(Path::new("/"));
            if !dir.is_dir() {
                return Err(format!("directory does not exist: {}", dir.display()));
            }
            if !replace && file.exists() {
                return Err(format!(
                    "{} exists: pass --force to replace it",
                    file.display()
                ));
            }
            let bytes = operator.backup(&file, replace).await.map_err(failed)?;
            Ok(format!(
                "backup written to {} ({})",
                file.display(),
                counted(bytes as usize, "byte", "bytes")
            ))
        }
    }
}

/// A client as `oidc clients show` prints it.
fn client_text(client: &ClientInfo) -> String {
    let list = |items: &[String]| match items.is_empty() {
        true => "none".to_owned(),
        false => items.join(" "),
    };
    format!(
        "client_id: {}\nname: {}\ntype: {}\nredirect URIs: {}\npost-logout URIs: {}\n\
         scopes: {}\nskip consent: {}\nPKCE optional: {}\nID token algorithm: {}\ncreated: {}",
        client.client_id,
        client.name,
        if client.public {
            "public"
        } else {
            "confidential"
        },
        list(&client.redirect_uris),
        list(&client.post_logout_uris),
        client.scopes.join(" "),
        client.skip_consent,
        client.pkce_optional,
        client.id_token_alg,
        crate::time::rfc3339(client.created_at),
    )
}

/// A client just registered or given a new secret, with the secret shown this once.
fn registered_text(registered: &Registered) -> String {
    let shown = client_text(&registered.client);
    match &registered.secret {
        Some(secret) => format!(
            "{shown}\nclient_secret: {secret}\n(the secret is shown this once: store it now)"
        ),
        None => shown,
    }
}

/// `count` with the noun that agrees with it: "1 session", "2 sessions".
fn counted(count: usize, one: &str, many: &str) -> String {
    match count {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// Where the admin socket is, absolute: `admin_socket` as set, a relative one taken from the
/// database's directory (the working directory for PostgreSQL), so the default lies next to the
/// data; `None` when `admin_socket` is empty.
pub fn socket_path(settings: &Settings) -> Option<PathBuf> {
    if settings.admin_socket.is_empty() {
        return None;
    }
    let data = match crate::db::is_postgres_url(&settings.database_url) {
        true => Path::new(""),
        false => Path::new(&settings.database_url)
            .parent()
            .unwrap_or(Path::new("")),
    };
    std::path::absolute(data.join(&settings.admin_socket)).ok()
}

/// This process's effective user id.
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no argument, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends `command` to the service listening on `socket`: `None` when no service listens there
/// (no socket, or a stale one), else its answer. A socket of another user is refused before
/// anything is sent: whoever made it would read the command, password included.
pub fn send(socket: &Path, command: &Command) -> Option<Result<String, String>> {
    use std::io::{BufRead, Write};
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(socket).ok()?.uid();
    let own = effective_uid();
    if owner != own {
        return Some(Err(format!(
            "the admin socket {} belongs to uid {owner}, not to this user (uid {own}): run the \
             command as the service's user",
            socket.display()
        )));
    }
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    let mut exchange = || -> std::io::Result<Answer> {
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        stream.write_all(line.as_bytes())?;
        let mut answer = String::new();
        std::io::BufReader::new(&stream).read_line(&mut answer)?;
        Ok(serde_json::from_str(&answer)?)
    };
    Some(match exchange() {
        Ok(Answer { ok: true, text }) => Ok(text),
        Ok(Answer { ok: false, text }) => Err(text),
        Err(error) => Err(format!("the service did not answer: {error}")),
    })
}

/// The admin socket, bound at start (before the service answers HTTP, so a service that answers
/// has its socket) and served from liftoff on.
pub struct Socket {
    path: PathBuf,
    listener: std::sync::Mutex<Option<std::os::unix::net::UnixListener>>,
}

impl Socket {
    /// Binds the Unix socket `path` in its directory, which is created 0700 if missing and must
    /// be closed to other users otherwise. A socket file left by a service that is gone is
    /// replaced; `None` when a live service answers there (it keeps it, and this service serves
    /// no socket). `Err` says why the socket cannot be served.
    pub fn bind(path: &Path) -> Result<Option<Socket>, String> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
        let cannot =
            |e: std::io::Error| format!("cannot serve admin_socket {}: {e}", path.display());
        let dir = path.parent().unwrap_or(Path::new("/"));
        if std::fs::metadata(dir).is_err() {
            crate::files::create_dir_all(dir).map_err(cannot)?;
        }
        // Checked after a creation too: whoever made the directory first owns it.
        match std::fs::metadata(dir) {
            Ok(found) if found.uid() != effective_uid() => {
                return Err(format!(
                    "the admin socket's directory {} belongs to uid {}, not to the service's \
                     user: set admin_socket to a path in a directory of the service's own",
                    dir.display(),
                    found.uid()
                ));
            }
            Ok(found) if found.mode() & 0o077 != 0 => {
                return Err(format!(
                    "the admin socket's directory {} is open to other users (mode {:o}): run \
                     `chmod 700 {}`, or set admin_socket to a path in a private directory",
                    dir.display(),
                    found.mode() & 0o777,
                    dir.display()
                ));
            }
            Ok(_) => {}
            Err(error) => return Err(cannot(error)),
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            log::warn!(target: "auth_service::admin", "{} is another service's admin socket: none here", path.display());
            return Ok(None);
        }
        // Only a stale socket is replaced; any other file there is someone's.
        match std::fs::symlink_metadata(path) {
            Ok(found) if found.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(cannot)?;
            }
            Ok(_) => {
                return Err(format!(
                    "cannot serve admin_socket {}: a file that is not a socket is there",
                    path.display()
                ));
            }
            Err(_) => {}
        }
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(cannot)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(cannot)?;
        listener.set_nonblocking(true).map_err(cannot)?;
        Ok(Some(Socket {
            path: path.to_owned(),
            listener: std::sync::Mutex::new(Some(listener)),
        }))
    }

    /// Serves commands on the socket until `shutdown`, then removes it; only the first call
    /// serves. A connection from a user other than the service's own and root is refused
    /// unread.
    pub fn serve(&self, auth: Auth, shutdown: Shutdown) {
        let taken = self.listener.lock().map(|mut held| held.take());
        let Ok(Some(listener)) = taken else { return };
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                log::error!(target: "auth_service::admin", "the admin socket cannot be served: {error}");
                return;
            }
        };
        let path = self.path.clone();
        let own = effective_uid();
        tokio::spawn(async move {
            let mut shutdown = shutdown;
            loop {
                let accepted = rocket::tokio::select! {
                    _ = &mut shutdown => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                match stream.peer_cred().map(|peer| peer.uid()) {
                    Ok(uid) if uid == own || uid == 0 => {}
                    Ok(uid) => {
                        log::warn!(target: "auth_service::admin", "refused an admin connection from uid {uid}");
                        continue;
                    }
                    Err(error) => {
                        log::warn!(target: "auth_service::admin", "refused an admin connection of unknown user: {error}");
                        continue;
                    }
                }
                let auth = auth.clone();
                tokio::spawn(async move {
                    if let Err(error) = answer(stream, &auth).await {
                        log::warn!(target: "auth_service::admin", "an admin command failed: {error}");
                    }
                });
            }
            let _ = std::fs::remove_file(&path);
        });
    }
}

/// Reads one command from `stream`, runs it and writes the answer.
async fn answer(stream: tokio::net::UnixStream, auth: &Auth) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::AsyncReadExt::take(BufReader::new(read), MAX_COMMAND)
        .read_line(&mut line)
        .await?;
    let result = match serde_json::from_str::<Command>(&line) {
        Ok(command) => execute(auth, command).await,
        Err(error) => Err(format!("not a command: {error}")),
    };
    let answer = match result {
        Ok(text) => Answer { ok: true, text },
        Err(text) => Answer { ok: false, text },
    };
    let mut reply = serde_json::to_string(&answer)?;
    reply.push('\n');
    write.write_all(reply.as_bytes()).await
}

/// Runs `task` every `interval` until `shutdown`.
pub fn every<F, T>(interval: Duration, mut shutdown: Shutdown, task: T)
where
    T: Fn() -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(interval) => task().await,
            }
        }
    });
}

/// The prefix and suffix of scheduled backups' names: `auth-20261201T205700Z.db`.
const BACKUP_PREFIX: &str = "auth-";
const BACKUP_SUFFIX: &str = ".db";

/// Writes a timestamped backup into `dir`, then deletes all but the `keep` newest.
pub async fn scheduled_backup(auth: Auth, dir: PathBuf, keep: usize) {
    let stamp = crate::time::rfc3339(crate::db::now()).replace([':', '-'], "");
    let file = dir.join(format!("{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"));
    if let Err(error) = crate::files::create_dir_all(&dir) {
        log::error!(target: "auth_service::backup", "no backup: cannot create {}: {error}", dir.display());
        return;
    }
    if let Err(error) = auth.operator().backup(&file, true).await {
        log::error!(target: "auth_service::backup", "scheduled backup failed: {error}");
        return;
    }
    if let Err(error) = prune(&dir, keep) {
        log::warn!(target: "auth_service::backup", "old backups were not deleted: {error}");
    }
}

/// Deletes all but the `keep` newest scheduled backups in `dir` (their names sort by time).
fn prune(dir: &Path, keep: usize) -> std::io::Result<()> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            name.starts_with(BACKUP_PREFIX) && name.ends_with(BACKUP_SUFFIX)
        })
        .collect();
    backups.sort();
    let surplus = backups.len().saturating_sub(keep);
    for old in &backups[..surplus] {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_travel_as_tagged_json() {
        let command = Command::UserShow {
            email: "a@b.io".into(),
        };
        let line = serde_json::to_string(&command).unwrap();
        assert_eq!(line, r#"{"command":"user_show","email":"a@b.io"}"#);
        assert_eq!(serde_json::from_str::<Command>(&line).unwrap(), command);
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(counted(0, "session", "sessions"), "0 sessions");
        assert_eq!(counted(1, "session", "sessions"), "1 session");
        assert_eq!(counted(2, "session", "sessions"), "2 sessions");
    }

    #[test]
    fn the_default_socket_lies_beside_the_database_and_an_absolute_one_stays() {
        let settings = |database_url: &str, admin_socket: &str| Settings {
            database_url: database_url.into(),
            admin_socket: admin_socket.into(),
            ..Settings::default()
        };
        let default = Settings::default().admin_socket;
        let path = |s: Settings| socket_path(&s).map(|p| p.display().to_string());
        assert_eq!(
            path(settings("/var/lib/auth/auth.db", &default)).as_deref(),
            Some("/var/lib/auth/admin/auth.sock")
        );
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            path(settings("auth.db", &default)),
            Some(here.join("admin/auth.sock").display().to_string())
        );
        assert_eq!(
            path(settings("postgres://db/auth", "auth.sock")),
            Some(here.join("auth.sock").display().to_string())
        );
        assert_eq!(
            path(settings("/var/lib/auth/auth.db", "/run/auth/admin.sock")).as_deref(),
            Some("/run/auth/admin.sock")
        );
        assert_eq!(path(settings("/var/lib/auth/auth.db", "")), None);
    }

    #[test]
    fn the_socket_is_bound_in_a_private_directory_or_not_at_all() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let work = tempfile::tempdir().unwrap();
        let path = work.path().join("admin/auth.sock");
        let socket = Socket::bind(&path).unwrap().expect("a socket");
        assert_eq!((mode(path.parent().unwrap()), mode(&path)), (0o700, 0o600));
        drop(socket);

        let not_a_socket = work.path().join("admin/notes.txt");
        std::fs::write(&not_a_socket, "kept").unwrap();
        let refused = Socket::bind(&not_a_socket).err().unwrap();
        assert!(refused.contains("a file that is not a socket"), "{refused}");
        assert_eq!(std::fs::read_to_string(&not_a_socket).unwrap(), "kept");

        if effective_uid() == 0 {
            let theirs = work.path().join("theirs");
            crate::files::create_dir_all(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let refused = Socket::bind(&theirs.join("auth.sock")).err().unwrap();
            assert!(refused.contains("belongs to uid 65534"), "{refused}");
        }

        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        let refused = Socket::bind(&work.path().join("auth.sock")).err().unwrap();
        let fix = format!("run `chmod 700 {}`", work.path().display());
        assert!(refused.contains(&fix), "{refused}");
    }

    #[test]
    fn pruning_keeps_the_newest_backups_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "auth-20261201T100000Z.db",
            "auth-20261201T110000Z.db",
            "auth-20261201T120000Z.db",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        prune(dir.path(), 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "auth-20261201T110000Z.db",
                "auth-20261201T120000Z.db",
                "notes.txt"
            ]
        );
    }
}
