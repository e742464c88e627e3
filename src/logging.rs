//! The process logger. Rocket's own logger prints every request's URI with its query string, and
//! a reset link's query string is a secret (`?token=…`). This logger stands in for Rocket's: the
//! same `log_level` values, lines on stderr (plain, or one JSON object each with
//! `log_format = "json"`), and secrets redacted first (see [`redact`]).

use std::io::Write;
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};
use rocket::figment::Figment;

use crate::db;

/// Installs the redacting logger for the whole process (once; later calls change nothing).
/// Rocket then finds a logger in place and leaves it alone.
pub fn init(figment: &Figment) {
    let level = match figment.extract_inner::<String>("log_level").as_deref() {
        Ok("off") => LevelFilter::Off,
        Ok("critical") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Trace,
        Ok(_) => LevelFilter::Info,
        Err(_) if figment.profile() == "debug" => LevelFilter::Info,
        Err(_) => LevelFilter::Warn,
    };
    let json = figment.extract_inner::<String>("log_format").as_deref() == Ok("json");
    let logger = RedactingLogger {
        level,
        json,
        sink: None,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

struct RedactingLogger {
    level: LevelFilter,
    /// One JSON object per line instead of plain text.
    json: bool,
    /// Where lines go; `None` is stderr (a write that fails, to a closed pipe say, is dropped:
    /// `eprintln!` would panic).
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl Log for RedactingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Like Rocket's logger: the HTTP and TLS internals are too chatty to show.
        let internal = ["hyper", "rustls", "h2", "tokio_util"]
            .iter()
            .any(|noisy| metadata.target().starts_with(noisy));
        metadata.level() <= self.level && !internal && !self.launch_report(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let level = launch_level(record);
        let line = match self.json {
            true => redact(&json_line(record, level, &message)),
            // Problems say so at the start of their line, where operators and log filters look.
            false => match level {
                log::Level::Error => format!("error: {}", redact(&message)),
                log::Level::Warn => format!("warning: {}", redact(&message)),
                _ => redact(&message),
            },
        };
        match &self.sink {
            Some(sink) => {
                let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(sink, "{line}");
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn flush(&self) {}
}

impl RedactingLogger {
    /// Whether `metadata` is part of Rocket's launch report (its configuration, each route,
    /// catcher and fairing, the shield's headers and the templates: some 80 lines before the
    /// first request), shown only at `log_level = "debug"`.
    fn launch_report(&self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        // Rocket marks its indented detail lines with a target ending in `::_`.
        let report = [
            "rocket::launch",
            "rocket::shield::shield",
            "rocket_dyn_templates::fairing",
        ]
        .contains(&target)
            || target.ends_with("::_");
        report && metadata.level() == log::Level::Info && self.level < LevelFilter::Debug
    }
}

/// The level `record` is shown at: Rocket logs its launch line ("Rocket has launched from …")
/// as a warning, so that it shows at every level; it is news, not a problem.
fn launch_level(record: &Record<'_>) -> log::Level {
    match (record.target(), record.level()) {
        ("rocket::launch", log::Level::Warn) => log::Level::Info,
        (_, level) => level,
    }
}

/// `message` as one JSON object with its time, level and target: a message that is itself a
/// JSON object (the request log's) keeps its fields at the top level.
fn json_line(record: &Record<'_>, level: log::Level, message: &str) -> String {
    use rocket::time::OffsetDateTime;
    use rocket::time::format_description::well_known::Rfc3339;
    let time = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut line = match serde_json::from_str::<serde_json::Value>(message) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => {
            let mut fields = serde_json::Map::new();
            fields.insert("message".into(), message.into());
            fields
        }
    };
    line.insert("time".into(), time.into());
    let level = level.as_str().to_ascii_lowercase();
    line.insert("level".into(), level.into());
    line.insert("target".into(), record.target().into());
    serde_json::Value::Object(line).to_string()
}

/// `text` with its secrets replaced: a database URL (`postgres://…`) as [`db::redacted`]
/// shows it (no password, no query value: `password=` and `sslpassword=` can hide there), and
/// elsewhere the value of every parameter whose name, percent-decoded (`%74oken=`), ends in
/// `token` or `password`. A value ends at `&`, whitespace, a quote (JSON) or an escape sequence.
pub fn redact(text: &str) -> String {
    let text = redact_database_urls(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('=') {
        let name_start = rest[..at]
            .char_indices()
            .rfind(|(_, c)| !(c.is_ascii_alphanumeric() || "_-.%".contains(*c)))
            .map_or(0, |(before, c)| before + c.len_utf8());
        let name = percent_decoded(&rest[name_start..at]).to_ascii_lowercase();
        let value_start = at + 1;
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if !(name.ends_with("token") || name.ends_with("password")) {
            continue;
        }
        let value_len = rest
            .find(|c: char| c == '&' || c == '"' || c == '\u{1b}' || c.is_whitespace())
            .unwrap_or(rest.len());
        if value_len > 0 {
            out.push_str("[redacted]");
        }
        rest = &rest[value_len..];
    }
    out.push_str(rest);
    out
}

/// `text` with every PostgreSQL URL in it redacted.
fn redact_database_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["postgres://", "postgresql://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        out.push_str(&rest[..at]);
        let len = rest[at..]
            .find(|c: char| c == '"' || c == '\'' || c == '\u{1b}' || c.is_whitespace())
            .unwrap_or(rest.len() - at);
        out.push_str(&db::redacted(&rest[at..at + len]));
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    out
}

/// `name` with its `%XX` escapes decoded (an invalid escape stays as it is).
fn percent_decoded(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn token_values_are_redacted_wherever_they_appear() {
        assert_eq!(
            redact("GET /password/reset?token=abc-DEF_123 text/html:"),
            "GET /password/reset?token=[redacted] text/html:"
        );
        assert_eq!(
            redact("\u{1b}[34m/password/reset?token=abc&x=1\u{1b}[0m"),
            "\u{1b}[34m/password/reset?token=[redacted]&x=1\u{1b}[0m"
        );
        assert_eq!(
            redact("reset_token=a token=b"),
            "reset_token=[redacted] token=[redacted]"
        );
        assert_eq!(redact("no secrets here"), "no secrets here");
    }

    #[test]
    fn percent_encoded_names_and_passwords_are_redacted_too() {
        assert_eq!(
            redact("GET /password/reset?%74oken=abc&%54OKEN=def&x=1"),
            "GET /password/reset?%74oken=[redacted]&%54OKEN=[redacted]&x=1"
        );
        assert_eq!(
            redact("smtp_password=hunter2 password=pw user=ann"),
            "smtp_password=[redacted] password=[redacted] user=ann"
        );
    }

    #[test]
    fn a_database_url_keeps_no_password_and_no_query_value() {
        let line = redact(
            "cannot open database \"postgres://app:pa55@db.internal/auth?password=s3cret&\
             sslmode=require&sslpassword=k3y\": refused",
        );
        assert_eq!(
            line,
            "cannot open database \"postgres://app:[redacted]@db.internal/auth?\
             password=[redacted]&sslmode=[redacted]&sslpassword=[redacted]\": refused"
        );
        assert_eq!(
            redact("postgresql://app@db/auth?%70assword=s3cret next"),
            "postgresql://app@db/auth?%70assword=[redacted] next"
        );
        assert_eq!(
            redact("postgres://app:pa?ss@db/auth and postgres://app:p@ss?w@db"),
            "postgres://app:[redacted]@db/auth and postgres://app:[redacted]@db",
            "a password with a ? or an @ in it"
        );
    }

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A logger at `level` writing into what it returns beside it.
    fn capturing(level: LevelFilter, json: bool) -> (RedactingLogger, Captured) {
        let captured = Captured::default();
        let logger = RedactingLogger {
            level,
            json,
            sink: Some(Mutex::new(Box::new(captured.clone()))),
        };
        (logger, captured)
    }

    fn log_line(logger: &RedactingLogger, level: log::Level, target: &str, text: &str) {
        logger.log(
            &Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{text}"))
                .build(),
        );
    }

    #[test]
    fn the_logger_writes_redacted_lines_at_its_level_only() {
        let (logger, captured) = capturing(LevelFilter::Info, false);
        let line = |level, target, text: &str| log_line(&logger, level, target, text);
        line(
            log::Level::Info,
            "rocket::server",
            "GET /password/reset?token=s3cret",
        );
        line(log::Level::Debug, "rocket::server", "debug detail");
        line(log::Level::Error, "hyper::proto", "internal noise");
        line(
            log::Level::Error,
            "auth_service::error",
            "disk full, token=abc",
        );
        line(log::Level::Warn, "auth_service::db", "not recorded");
        let text = captured.text();
        assert_eq!(
            text,
            "GET /password/reset?token=[redacted]\n\
             error: disk full, token=[redacted]\n\
             warning: not recorded\n"
        );
    }

    #[test]
    fn a_name_after_a_wide_character_is_read_whole() {
        assert_eq!(redact("naïve=1"), "naïve=1");
        assert_eq!(redact("café token=s3cret"), "café token=[redacted]");
        assert_eq!(redact("ü%74oken=s3cret"), "ü%74oken=[redacted]");
    }

    #[test]
    fn rockets_launch_report_shows_at_debug_only_and_its_launch_line_as_news() {
        let lines = |level| {
            let (logger, captured) = capturing(level, false);
            for (level, target, text) in [
                (log::Level::Info, "rocket::launch", "Routes:"),
                (
                    log::Level::Info,
                    "rocket::launch::_",
                    "(alive) GET /health/alive",
                ),
                (log::Level::Info, "rocket::shield::shield", "Shield:"),
                (
                    log::Level::Info,
                    "rocket_dyn_templates::fairing",
                    "Templating:",
                ),
                (log::Level::Warn, "rocket::config::config", "a real warning"),
                (
                    log::Level::Warn,
                    "rocket::launch",
                    "Rocket has launched from http://x",
                ),
            ] {
                log_line(&logger, level, target, text);
            }
            captured.text()
        };
        assert_eq!(
            lines(LevelFilter::Info),
            "warning: a real warning\nRocket has launched from http://x\n"
        );
        assert_eq!(lines(LevelFilter::Trace).lines().count(), 6);
    }

    #[test]
    fn json_lines_are_objects_with_time_level_and_target_and_stay_redacted() {
        let (logger, captured) = capturing(LevelFilter::Info, true);
        let request = r#"{"method":"GET","path":"/email/verify","route":"/email/verify","status":303,"note":"token=s3cret"}"#;
        for (target, text) in [
            ("auth_service::request", request),
            (
                "rocket::server",
                "GET /password/reset?token=s3cret text/html:",
            ),
        ] {
            log_line(&logger, log::Level::Info, target, text);
        }
        let text = captured.text();
        assert!(!text.contains("s3cret"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["status"], 303,
            "the request's fields at the top level"
        );
        assert_eq!(lines[0]["note"], "token=[redacted]");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(
            lines[1]["message"],
            "GET /password/reset?token=[redacted] text/html:"
        );
        assert_eq!(lines[1]["target"], "rocket::server");
        for line in &lines {
            let time = line["time"].as_str().unwrap();
            assert!(time.ends_with('Z') && time.contains('T'), "{time}");
        }
    }
}
