//! The process logger. Rocket's own logger prints every request's URI with its query string, and
//! a reset link's query string is a secret (`?token=…`). This logger stands in for Rocket's: the
//! same `log_level` values, plain lines on stderr, and the value of any `token=` redacted first.

use std::io::Write;
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};
use rocket::figment::Figment;

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
    let logger = RedactingLogger { level, sink: None };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

struct RedactingLogger {
    level: LevelFilter,
    /// Where lines go; `None` is stderr through `eprintln!`, which test harnesses capture.
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl Log for RedactingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Like Rocket's logger: the HTTP and TLS internals are too chatty to show.
        let internal = ["hyper", "rustls", "h2", "tokio_util"]
            .iter()
            .any(|noisy| metadata.target().starts_with(noisy));
        metadata.level() <= self.level && !internal
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = redact(&record.args().to_string());
        // Problems say so at the start of their line, where operators and log filters look.
        let line = match record.level() {
            log::Level::Error => format!("error: {line}"),
            log::Level::Warn => format!("warning: {line}"),
            _ => line,
        };
        match &self.sink {
            Some(sink) => {
                let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(sink, "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    fn flush(&self) {}
}

/// `text` with the value of every `token=` parameter replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        let value_start = at + "token=".len();
        out.push_str(&rest[..value_start]);
        let value_len = rest[value_start..]
            .find(|c: char| c == '&' || c == '\u{1b}' || c.is_whitespace())
            .unwrap_or(rest.len() - value_start);
        if value_len > 0 {
            out.push_str("[redacted]");
        }
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
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

    #[test]
    fn the_logger_writes_redacted_lines_at_its_level_only() {
        let captured = Captured::default();
        let logger = RedactingLogger {
            level: LevelFilter::Info,
            sink: Some(Mutex::new(Box::new(captured.clone()))),
        };
        let line = |level, target, text: &str| {
            logger.log(
                &Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("{text}"))
                    .build(),
            )
        };
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
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "GET /password/reset?token=[redacted]\n\
             error: disk full, token=[redacted]\n\
             warning: not recorded\n"
        );
    }
}
