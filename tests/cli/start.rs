//! How the binary starts: a configuration with mistakes is refused with every one of them
//! named, a database file it cannot write is refused, readiness needs a write, and a debug
//! start says little.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{BINARY, run};
use crate::server::{Api, Limits, Server};

/// The binary's stderr lines after a refused start, asserting the refusal: exit status 1 and
/// no panic.
fn refused(output: Output) -> Vec<String> {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr.lines().map(str::to_owned).collect()
}

/// The binary run with `toml` as its Rocket.toml.
fn with_rocket_toml(work: &Path, toml: &str, env: &[(&str, &str)]) -> Output {
    let file = work.join("Rocket.toml");
    std::fs::write(&file, toml).unwrap();
    let mut env = env.to_vec();
    env.push(("ROCKET_CONFIG", file.to_str().unwrap()));
    run(work, &work.join("admin.sock"), &[], "", &env)
}

#[test]
fn a_rocket_toml_that_is_not_toml_is_refused_in_one_line_naming_the_file_and_the_place() {
    let work = tempfile::tempdir().unwrap();
    let lines = refused(with_rocket_toml(work.path(), "[debug]\nport = \n", &[]));
    let file = work.path().join("Rocket.toml");
    assert_eq!(
        lines,
        [format!(
            "error: {} cannot be read: TOML parse error at line 2, column 8: invalid string: \
             expected `\"`, `'`",
            file.display()
        )]
    );
}

#[test]
fn every_wrong_value_is_named_at_once_with_its_key_its_source_and_the_form_it_takes() {
    let work = tempfile::tempdir().unwrap();
    let toml = "[debug]\nport = \"abc\"\nsession_idle_secs = \"long\"\n";
    let env = [
        ("ROCKET_THROTTLE_ENABLED", "maybe"),
        ("ROCKET_BCRYPT_COST", "3"),
    ];
    let lines = refused(with_rocket_toml(work.path(), toml, &env));
    let file = work.path().join("Rocket.toml");
    let file = file.display();
    assert_eq!(
        lines,
        [
            format!(
                "error: port must be a whole number from 0 to 65535, not string \"abc\" \
                 (set in {file})"
            ),
            format!(
                "error: session_idle_secs must be a whole number, not string \"long\" \
                 (set in {file})"
            ),
            "error: throttle_enabled must be true or false, not string \"maybe\" \
             (set in ROCKET_THROTTLE_ENABLED)"
                .to_owned(),
            "error: bcrypt_cost must be between 4 and 31, not 3 (set in ROCKET_BCRYPT_COST)"
                .to_owned(),
        ]
    );
}

/// Waits (at most 10 s) until the server's log has a line containing `text`.
fn log_line(server: &Server, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if let Some(line) = log.lines().find(|line| line.contains(text)) {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no {text:?} in:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_misspelled_key_is_warned_of_at_start_with_the_key_it_resembles() {
    let work = tempfile::tempdir().unwrap();
    let toml = work.path().join("Rocket.toml");
    let repo_toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("Rocket.toml");
    let text = std::fs::read_to_string(repo_toml).unwrap();
    std::fs::write(
        &toml,
        text.replace("[debug]\n", "[debug]\nsession_idle_sec = 60\n"),
    )
    .unwrap();
    let limits = Limits {
        env: vec![("ROCKET_CONFIG".into(), toml.to_str().unwrap().into())],
        ..Limits::default()
    };
    let server = Server::start(
        work.path().join("auth.db").to_str().unwrap(),
        work.path(),
        limits,
    );
    assert_eq!(
        log_line(&server, "session_idle_sec"),
        format!(
            "warning: unknown key `session_idle_sec` in {}: did you mean `session_idle_secs`?",
            toml.display()
        )
    );
}

#[rocket::async_test]
async fn a_debug_start_says_little_before_it_serves() {
    let work = tempfile::tempdir().unwrap();
    let limits = Limits {
        env: vec![("ROCKET_CLEANUP_INTERVAL_SECS".into(), "1".into())],
        ..Limits::default()
    };
    let server = Server::start(
        work.path().join("auth.db").to_str().unwrap(),
        work.path(),
        limits,
    );
    let launched = log_line(&server, "Rocket has launched from");
    assert!(
        launched.starts_with("Rocket has launched from http://127.0.0.1:"),
        "{launched}"
    );
    let log = server.log();
    let before: Vec<&str> = log
        .lines()
        .take_while(|line| !line.contains("Rocket has launched"))
        .collect();
    assert!(
        before.len() <= 14,
        "{} lines before serving:\n{log}",
        before.len()
    );
    assert!(
        !log.contains("secret_key") && !log.contains("secret key"),
        "{log}"
    );
    assert_eq!(
        log_line(&server, "purged"),
        "purged nothing",
        "no struct dump"
    );
    assert_eq!(Api::new(&server).ready().await.status, StatusCode::OK);
}

#[test]
fn a_database_file_that_cannot_be_written_is_refused_with_its_path_and_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("auth.db");
    let migrate = run(
        work.path(),
        &work.path().join("admin.sock"),
        &["migrate"],
        "",
        &[],
    );
    assert!(migrate.status.success(), "{migrate:?}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root writes a file whatever its mode says: run the service as nobody (who owns the
    // directory, so only the file itself is read-only), as a deployment would.
    // SAFETY: geteuid takes nothing and only reads.
    let root = unsafe { libc::geteuid() } == 0;
    const NOBODY: u32 = 65534;
    // A copy of the binary in the work directory: nobody may not reach the checkout (a clone
    // under /root is closed to other users). It fails before it needs templates/.
    let binary = work.path().join("auth_service");
    std::fs::copy(BINARY, &binary).unwrap();
    if root {
        std::os::unix::fs::chown(work.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        std::os::unix::fs::chown(&binary, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let mut command = Command::new(&binary);
    command
        .current_dir(work.path())
        .env_clear()
        .env("ROCKET_PROFILE", "debug")
        .env("ROCKET_DATABASE_URL", &db)
        .env("ROCKET_AUDIT_LOG", work.path().join("audit.log"))
        .env("ROCKET_MAIL_OUTBOX_DIR", work.path().join("mail"))
        .env("ROCKET_ADMIN_SOCKET", work.path().join("admin.sock"))
        .stdin(Stdio::null());
    if root {
        command.uid(NOBODY).gid(NOBODY);
    }
    let lines = refused(command.output().unwrap());
    assert_eq!(
        lines,
        [format!(
            "error: cannot open database {:?}: cannot open the database: it cannot be \
             written: Permission denied (os error 13)",
            db.display().to_string()
        )]
    );
}

#[rocket::async_test]
async fn readiness_needs_a_write_and_keeps_the_cause_in_the_log() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("auth.db");
    let limits = Limits {
        env: vec![
            ("ROCKET_DATABASE_EXCLUSIVE".into(), "false".into()),
            ("ROCKET_DATABASE_TIMEOUT_SECS".into(), "1".into()),
        ],
        ..Limits::default()
    };
    let server = Server::start(db.to_str().unwrap(), work.path(), limits);
    let api = Api::new(&server);
    assert_eq!(api.ready().await.status, StatusCode::OK);

    let mut writer = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    writer.batch_execute("BEGIN IMMEDIATE").unwrap();
    let ready = api.ready().await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{ready:?}");
    assert_eq!(ready.json(), serde_json::json!({ "status": "unavailable" }));
    let cause = log_line(&server, "not ready");
    assert!(
        cause.starts_with("error: not ready: ") && cause.contains("database is locked"),
        "{cause}"
    );

    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(api.ready().await.status, StatusCode::OK);
}
