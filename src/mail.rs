//! Outgoing mail: reset, verification and email-change links, and notices to the owner,
//! through an outbox folder (each message an `.eml` file; the default) or SMTP. Sending never
//! holds up a request: messages wait in one bounded queue for a thread of their own, which
//! sends them after the response, SMTP under a timeout. A failure is logged, never shown to the client (who must not learn
//! whether the account exists). A stalled mail server fills the queue, not the threads that
//! queries need: beyond the queue's bound a message is dropped and logged.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{LinkPaths, MailTransport, Settings, SmtpTls};

enum Outbound {
    /// The outbox folder: each message a new `<uuid>.eml` file of mode 0600 (lettre's
    /// `FileTransport` writes them as the umask allows, readable by every local user).
    Outbox(PathBuf),
    Smtp(SmtpTransport),
}

/// Messages that may wait for the mail thread; more are dropped (and logged).
const QUEUE: usize = 256;

/// The configured sender, public base URL, the pages links open and the queue to the mail
/// thread; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: SyncSender<Queued>,
    from: Mailbox,
    public_base_url: Option<String>,
    links: LinkPaths,
    reset_token_ttl_minutes: i64,
}

/// The link a mail carries to the page `path` with `token`, built from the configured public
/// URL and never from the request's `Host` header (which an attacker could set to their own
/// site).
fn link(public_base_url: Option<&str>, path: &str, token: &str) -> String {
    let base = public_base_url.unwrap_or_default().trim_end_matches('/');
    format!("{base}{path}?token={token}")
}

impl Mailer {
    /// Builds the transport named by `mail_transport`, for links to the pages `links` names;
    /// the error names the key at fault.
    pub fn from_settings(settings: &Settings, links: LinkPaths) -> Result<Mailer, String> {
        let outbound = match settings.mail_transport {
            MailTransport::Outbox => {
                let dir = &settings.mail_outbox_dir;
                crate::files::create_dir_all(Path::new(dir))
                    .map_err(|e| format!("cannot create mail_outbox_dir {dir:?}: {e}"))?;
                Outbound::Outbox(PathBuf::from(dir))
            }
            MailTransport::Smtp => Outbound::Smtp(smtp(settings)?),
        };
        let from = settings
            .mail_from
            .parse()
            .map_err(|e| format!("mail_from {:?} is not a mailbox: {e}", settings.mail_from))?;
        let (queue, waiting) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("mail".into())
            .spawn(move || deliver(&outbound, waiting))
            .map_err(|e| format!("cannot start the mail thread: {e}"))?;
        Ok(Mailer {
            queue,
            from,
            public_base_url: settings.public_base_url.clone(),
            links,
            reset_token_ttl_minutes: settings.reset_token_ttl_secs / 60,
        })
    }

    /// The link to the page `path` with `token`, as a mail carries it (a page shows it too
    /// when tokens are exposed, in debug).
    pub fn link(&self, path: &str, token: &str) -> String {
        link(self.public_base_url.as_deref(), path, token)
    }

    /// Sends the reset link for `token` to `to`, after the response.
    pub fn send_reset_link(&self, to: &str, token: &str) {
        let link = self.link(self.links.reset, token);
        let minutes = self.reset_token_ttl_minutes;
        let body = format!(
            "Hello,\n\n\
             Someone, hopefully you, asked to reset the password of this account.\n\
             To choose a new password, open this link within {minutes} minutes:\n\n\
             {link}\n\n\
             The link works once. If you did not ask for it, ignore this message: your\n\
             password stays as it is.\n"
        );
        self.send(to, "Reset your password", body);
    }

    /// Tells `to` that their password was just changed, so an owner who did not do it knows.
    pub fn send_password_changed(&self, to: &str) {
        let body = "Hello,\n\n\
                    The password of this account was just changed. Every device that was\n\
                    logged in with the old password has been logged out, devices it trusted\n\
                    must log in again, and every link mailed before the change (a password\n\
                    reset, an email verification, a change of email) no longer works.\n\n\
                    If this was not you, ask for a new reset link at once and choose a new\n\
                    password.\n"
            .to_owned();
        self.send(to, "Your password was changed", body);
    }

    /// Sends the link that verifies the account's email `to`.
    pub fn send_verification_link(&self, to: &str, token: &str) {
        let link = self.link(self.links.verify, token);
        let body = format!(
            "Hello,\n\n\
             Please confirm that this is your email address by opening this link within 24\n\
             hours, then pressing the button on the page:\n\n\
             {link}\n\n\
             If you did not create an account, ignore this message.\n"
        );
        self.send(to, "Verify your email", body);
    }

    /// Sends the link that moves an account to the new address `to`.
    pub fn send_email_change_link(&self, to: &str, token: &str) {
        let link = self.link(self.links.email_change, token);
        let minutes = self.reset_token_ttl_minutes;
        let body = format!(
            "Hello,\n\n\
             Someone, hopefully you, asked to change the email of an account to this address.\n\
             To confirm, open this link within {minutes} minutes and press the button on the\n\
             page:\n\n\
             {link}\n\n\
             If you did not ask for it, ignore this message: nothing changes.\n"
        );
        self.send(to, "Confirm your new email", body);
    }

    /// Tells `to`, an address that has an account already, that a move of another account to it
    /// was asked for and refused: the asker hears the same answer as for a free address.
    pub fn send_email_change_taken(&self, to: &str) {
        let body = "Hello,\n\n\
                    Someone asked to change the email of an account to this address, but this\n\
                    address already has an account here, so nothing changed.\n\n\
                    If it was you, log in with this address instead (or ask for a reset link\n\
                    if you forgot its password). Otherwise, ignore this message.\n"
            .to_owned();
        self.send(to, "Your address already has an account", body);
    }

    /// Tells the account's current address `to` that a move to `masked_new` was asked for.
    pub fn send_email_change_notice(&self, to: &str, masked_new: &str) {
        let body = format!(
            "Hello,\n\n\
             Someone asked to change the email of this account to {masked_new}, and gave its\n\
             password. The change takes effect only when the link sent to that address is\n\
             opened.\n\n\
             If this was not you, someone knows your password: change it at once (or ask for\n\
             a reset link), which also voids the request.\n"
        );
        self.send(to, "A change of your email was requested", body);
    }

    /// Tells `to` of a change to their account's second factors (`what` happened), so an owner
    /// who did not make it knows.
    pub fn send_factor_notice(&self, to: &str, subject: &str, what: &str) {
        let body = format!(
            "Hello,\n\n\
             {what}\n\n\
             If this was not you, someone can sign in to your account: ask for a password reset\n\
             at once, then check the second factors on your account's security page.\n"
        );
        self.send(to, subject, body);
    }

    /// Confirms to `to` that their account was deleted.
    pub fn send_account_deleted(&self, to: &str) {
        let body = "Hello,\n\n\
                    Your account and everything stored with it have been deleted, as asked.\n\
                    This address may sign up again at any time.\n"
            .to_owned();
        self.send(to, "Your account was deleted", body);
    }

    /// Builds one plain-text message and queues it for the mail thread; the caller does not
    /// wait.
    fn send(&self, to: &str, subject: &str, body: String) {
        let message = to
            .parse::<Mailbox>()
            .map_err(|e| e.to_string())
            .and_then(|to| {
                Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(|e| e.to_string())
            });
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                log::error!(target: "auth_service::mail", "cannot build {subject:?}: {error}");
                return;
            }
        };
        let outgoing = Outgoing {
            subject: subject.to_owned(),
            message,
        };
        match self.queue.try_send(Queued::Mail(outgoing)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => log::error!(
                target: "auth_service::mail",
                "the mail queue is full ({QUEUE} waiting): {subject:?} dropped"
            ),
            Err(TrySendError::Disconnected(_)) => log::error!(
                target: "auth_service::mail",
                "the mail thread is gone: {subject:?} dropped"
            ),
        }
    }

    /// Waits (at most `timeout`) until every message queued so far has been sent or has
    /// failed: a short-lived process (the admin command line) must not exit with mail unsent.
    pub fn flush(&self, timeout: Duration) {
        let (done, finished) = sync_channel(1);
        if self.queue.send(Queued::Flush(done)).is_ok() && finished.recv_timeout(timeout).is_err() {
            log::warn!(target: "auth_service::mail", "mail still queued after {timeout:?}");
        }
    }
}

/// What waits for the mail thread: a message, or a request to say when all before it are done.
enum Queued {
    Mail(Outgoing),
    Flush(SyncSender<()>),
}

/// A message waiting for the mail thread.
struct Outgoing {
    subject: String,
    message: Message,
}

/// The mail thread: sends queued messages one by one until every `Mailer` is gone.
fn deliver(outbound: &Outbound, waiting: Receiver<Queued>) {
    for queued in waiting {
        let Outgoing { subject, message } = match queued {
            Queued::Mail(outgoing) => outgoing,
            Queued::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let sent = match outbound {
            Outbound::Outbox(dir) => write_eml(dir, &message).map_err(|e| e.to_string()),
            Outbound::Smtp(smtp) => smtp.send(&message).map(drop).map_err(|e| e.to_string()),
        };
        if let Err(error) = sent {
            log::error!(target: "auth_service::mail", "sending {subject:?} failed: {error}");
        }
    }
}

/// Writes `message` into the outbox folder `dir` as a new file of mode 0600.
fn write_eml(dir: &Path, message: &Message) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(format!("{}.eml", uuid::Uuid::new_v4()));
    crate::files::create_new(&path)?.write_all(&message.formatted())
}

/// The SMTP transport of `smtp_host`, `smtp_port`, `smtp_tls` and the optional credentials.
fn smtp(settings: &Settings) -> Result<SmtpTransport, String> {
    let host = settings
        .smtp_host
        .as_deref()
        .ok_or("mail_transport = \"smtp\" needs smtp_host")?;
    let tls = |host: &str| {
        TlsParameters::new(host.to_owned()).map_err(|e| format!("smtp_host {host:?}: {e}"))
    };
    let (tls, default_port) = match settings.smtp_tls {
        SmtpTls::None => (Tls::None, 25),
        SmtpTls::Starttls => (Tls::Required(tls(host)?), 587),
        SmtpTls::Tls => (Tls::Wrapper(tls(host)?), 465),
    };
    let mut builder = SmtpTransport::builder_dangerous(host)
        .port(settings.smtp_port.unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(Duration::from_secs(settings.smtp_timeout_secs)));
    if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: LinkPaths = LinkPaths {
        reset: "/password/reset",
        verify: "/email/verify",
        email_change: "/email/confirm",
    };

    #[test]
    fn the_link_is_built_from_the_public_base_url() {
        let link = link(Some("https://auth.example.com/"), "/password/reset", "abc");
        assert_eq!(link, "https://auth.example.com/password/reset?token=abc");
        assert_eq!(
            super::link(None, "/email/verify", "abc"),
            "/email/verify?token=abc"
        );
    }

    #[test]
    fn a_stalled_mail_server_holds_one_thread_not_one_per_message() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in silent.incoming().take(50) {
                counted.fetch_add(1, Ordering::AcqRel);
                held.push(stream);
            }
        });
        let settings = Settings {
            mail_transport: MailTransport::Smtp,
            smtp_host: Some("127.0.0.1".into()),
            smtp_port: Some(port),
            smtp_tls: SmtpTls::None,
            smtp_timeout_secs: 30,
            ..Settings::default()
        };
        let mailer = Mailer::from_settings(&settings, LINKS).unwrap();
        for n in 0..(QUEUE + 20) {
            mailer.send_reset_link(&format!("user{n}@example.com"), "token");
        }
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(connections.load(Ordering::Acquire), 1);
    }

    #[test]
    fn outbox_mail_is_private_to_the_service_user() {
        use std::os::unix::fs::PermissionsExt;
        let work = tempfile::tempdir().unwrap();
        let outbox = work.path().join("outbox");
        let settings = Settings {
            mail_outbox_dir: outbox.to_str().unwrap().into(),
            ..Settings::default()
        };
        let mailer = Mailer::from_settings(&settings, LINKS).unwrap();
        mailer.send_reset_link("ann@example.com", "token");
        mailer.flush(Duration::from_secs(10));
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let mails: Vec<PathBuf> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(mails.len(), 1);
        assert!(mails[0].extension().is_some_and(|e| e == "eml"));
        let text = std::fs::read_to_string(&mails[0]).unwrap();
        assert!(text.contains("To: ann@example.com"), "{text}");
        assert_eq!((mode(&outbox), mode(&mails[0])), (0o700, 0o600));
    }

    #[test]
    fn smtp_settings_are_checked() {
        let settings = |tls: SmtpTls, host: Option<&str>| Settings {
            mail_transport: MailTransport::Smtp,
            smtp_tls: tls,
            smtp_host: host.map(Into::into),
            ..Settings::default()
        };
        let error = |s: Settings| Mailer::from_settings(&s, LINKS).err().unwrap_or_default();
        assert!(error(settings(SmtpTls::None, None)).contains("smtp_host"));
        for tls in [SmtpTls::None, SmtpTls::Starttls, SmtpTls::Tls] {
            assert!(Mailer::from_settings(&settings(tls, Some("mail.example.com")), LINKS).is_ok());
        }
    }
}
