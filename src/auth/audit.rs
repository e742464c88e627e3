//! The audit log: one line per security-relevant event (logins, failures, throttling, logouts,
//! resets), written straight to its own sink so it stays on whatever Rocket's `log_level` is.
//! Lines carry the request id, the client address and the account id or email, never a
//! password, a session id or a reset token: callers pass only those fields.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::Caller;
use crate::config::LogFormat;

/// A field of an audit line. Only ids, emails and counts are representable by design.
pub enum Field<'a> {
    UserId(i32),
    Email(&'a str),
    RetryAfter(i64),
    /// How many rows an action affected (sessions ended).
    Count(usize),
    /// How a sign-in was made (`amr`), or the second factor an action concerns.
    Method(&'a str),
    /// An OpenID Connect client's id.
    Client(&'a str),
}

impl Field<'_> {
    fn pair(&self) -> (&'static str, Value) {
        match *self {
            Field::UserId(id) => ("user_id", id.into()),
            Field::Email(email) => ("email", email.into()),
            Field::RetryAfter(secs) => ("retry_after", secs.into()),
            Field::Count(count) => ("count", count.into()),
            Field::Method(method) => ("method", method.into()),
            Field::Client(client) => ("client_id", client.into()),
        }
    }
}

/// Where audit lines go and in which format (`text` or `json`).
#[derive(Clone)]
pub struct AuditLog {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
    json: bool,
}

impl AuditLog {
    /// `target` is `stderr` or a file path (appended to).
    pub fn open(target: &str, format: LogFormat) -> io::Result<AuditLog> {
        let sink: Box<dyn Write + Send> = match target {
            "stderr" => Box::new(io::stderr()),
            path => Box::new(crate::files::append(std::path::Path::new(path))?),
        };
        Ok(AuditLog {
            sink: Arc::new(Mutex::new(sink)),
            json: format == LogFormat::Json,
        })
    }

    /// Writes one event. A failing sink is reported on the log, never to the client.
    pub fn record(&self, caller: &Caller, event: &str, fields: &[Field<'_>]) {
        let mut entry = Map::new();
        entry.insert("at".into(), crate::db::now().into());
        entry.insert("event".into(), event.into());
        let request_id = caller.request_id.map(|id| id.to_string());
        entry.insert("request_id".into(), request_id.into());
        entry.insert("address".into(), caller.address_key().into());
        entry.extend(fields.iter().map(|f| {
            let (name, value) = f.pair();
            (name.to_owned(), value)
        }));
        let line = match self.json {
            true => Value::Object(entry).to_string(),
            // Values are JSON-quoted so no email can forge a line break or a field.
            false => entry
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = writeln!(sink, "audit {line}").and_then(|()| sink.flush()) {
            log::error!(target: "auth_service::audit", "audit log write failed: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(format: LogFormat, event: &str, fields: &[Field<'_>]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(path.to_str().unwrap(), format).unwrap();
        let caller = Caller {
            address: Some("10.1.2.3".parse().unwrap()),
            request_id: Some(uuid::Uuid::nil()),
            ..Caller::default()
        };
        log.record(&caller, event, fields);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn text_lines_quote_values_so_emails_cannot_break_them() {
        let line = lines(
            LogFormat::Text,
            "login.failed",
            &[Field::Email("a\nb@c.com")],
        );
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.starts_with("audit at="), "{line}");
        assert!(line.contains(r#"event="login.failed""#), "{line}");
        assert!(line.contains(r#"address="10.1.2.3""#), "{line}");
        assert!(line.contains(r#"email="a\nb@c.com""#), "{line}");
        assert!(line.contains(r#"request_id="00000000-0000-0000-0000-000000000000""#));
    }

    #[test]
    fn json_lines_are_json_objects() {
        let line = lines(LogFormat::Json, "logout", &[Field::UserId(7)]);
        let value: Value = serde_json::from_str(line.trim_start_matches("audit ")).unwrap();
        assert_eq!(value["event"], "logout");
        assert_eq!(value["user_id"], 7);
    }
}
