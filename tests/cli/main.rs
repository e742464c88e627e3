//! The binary as an operator runs it: a start that is refused, the admin commands through a
//! running service and without one, backups taken under load and restored, the scheduled
//! backups, and the JSON request log.

#[path = "../common/server.rs"]
mod server;
mod start;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rocket::tokio::task::JoinSet;
use server::{Api, Limits, Server, integrity_check};

const BINARY: &str = env!("CARGO_BIN_EXE_auth_service");

/// The binary with the test servers' configuration for `work` (see `Server::start`) and
/// `env` on top, fed `stdin`.
fn run(work: &Path, socket: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(BINARY)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("ROCKET_PROFILE", "debug")
        .env("ROCKET_DATABASE_URL", work.join("auth.db"))
        .env("ROCKET_BCRYPT_COST", "4")
        .env("ROCKET_AUDIT_LOG", work.join("audit.log"))
        .env("ROCKET_MAIL_OUTBOX_DIR", work.join("mail"))
        .env("ROCKET_ADMIN_SOCKET", socket)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn a_refused_start_prints_one_line_and_exits_with_status_1() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("admin").join("admin.sock");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let secret_key = {
        use base64::Engine;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    // Open to other users: neither the admin socket nor a release database may live here.
    let open = work.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (open_socket, open_db) = (open.join("admin.sock"), open.join("auth.db"));
    let open_socket_refused = format!(
        "the admin socket's directory {} is open to other users (mode 755): run `chmod 700 {}`",
        open.display(),
        open.display()
    );
    let open_db_refused = format!(
        "the database directory {} is open to other users (mode 755): run `chmod o-rwx {}`",
        open.display(),
        open.display()
    );
    for (env, reason) in [
        (
            vec![("ROCKET_BCRYPT_COST", "3")],
            "bcrypt_cost must be between 4 and 31",
        ),
        (
            vec![
                ("ROCKET_ADMIN_SOCKET", open_socket.to_str().unwrap()),
                // Were the socket served anyway, the start would fail here instead.
                ("ROCKET_PORT", port.as_str()),
                ("ROCKET_SECRET_KEY", secret_key.as_str()),
                // Set, so that no line tells of a key file made before the refusal.
                ("ROCKET_MFA_KEY", secret_key.as_str()),
            ],
            open_socket_refused.as_str(),
        ),
        (
            vec![
                ("ROCKET_PROFILE", "release"),
                ("ROCKET_BCRYPT_COST", "10"),
                ("ROCKET_PUBLIC_BASE_URL", "https://auth.example.com"),
                ("ROCKET_SECRET_KEY", secret_key.as_str()),
                ("ROCKET_MFA_KEY", secret_key.as_str()),
                ("ROCKET_DATABASE_URL", open_db.to_str().unwrap()),
                ("ROCKET_PORT", port.as_str()),
            ],
            open_db_refused.as_str(),
        ),
        (
            vec![("ROCKET_DATABASE_URL", "postgres://auth@127.0.0.1:1/auth")],
            "cannot open database",
        ),
        (
            vec![
                ("ROCKET_PROFILE", "release"),
                ("ROCKET_BCRYPT_COST", "10"),
                ("ROCKET_PUBLIC_BASE_URL", "https://auth.example.com"),
                ("ROCKET_MFA_KEY", secret_key.as_str()),
            ],
            "the release profile needs secret_key",
        ),
        (
            vec![
                ("ROCKET_PROFILE", "release"),
                ("ROCKET_BCRYPT_COST", "10"),
                ("ROCKET_PUBLIC_BASE_URL", "https://auth.example.com"),
                ("ROCKET_SECRET_KEY", secret_key.as_str()),
            ],
            "the release profile needs mfa_key",
        ),
        (
            vec![
                ("ROCKET_PORT", port.as_str()),
                ("ROCKET_LOG_LEVEL", "critical"),
                ("ROCKET_SECRET_KEY", secret_key.as_str()),
            ],
            "cannot listen on the configured address",
        ),
    ] {
        let output = run(work.path(), &socket, &[], "", &env);
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {env:?}:\n{stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(reason),
            "{env:?}: {stderr}"
        );
    }
    drop(taken);
}

#[test]
fn every_level_of_help_reads_like_a_manual() {
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("admin.sock");
    for args in [
        &["--help"][..],
        &["user", "--help"],
        &["user", "create", "--help"],
        &["sessions", "--help"],
        &["config", "check", "--help"],
        &["backup", "--help"],
        &["oidc", "clients", "add", "--help"],
    ] {
        let text = stdout(&run(work.path(), &socket, args, "", &[]));
        assert!(text.contains("Usage: auth_service"), "{args:?}: {text}");
    }
    let create = stdout(&run(
        work.path(),
        &socket,
        &["user", "create", "--help"],
        "",
        &[],
    ));
    assert!(create.contains("never from an argument"), "{create}");
}

/// The admin events the audit log holds, in order.
fn admin_events(work: &Path) -> Vec<String> {
    let audit = std::fs::read_to_string(work.join("audit.log")).unwrap_or_default();
    audit
        .lines()
        .filter_map(|line| line.split("event=\"").nth(1))
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .filter(|event| event.starts_with("admin."))
        .collect()
}

#[rocket::async_test]
async fn the_commands_go_through_the_running_service_and_work_without_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let db = dir.join("auth.db");
    let server = Server::start(db.to_str().unwrap(), dir, Limits::default());
    let socket = server.admin_socket.clone();
    assert!(socket.exists(), "{}", server.log());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the service's own user connects");
    let api = Api::new(&server);
    let admin = |args: &[&str], stdin: &str| run(dir, &socket, args, stdin, &[]);

    let created = stdout(&admin(&["user", "create", "ann@example.com"], "first-pw\n"));
    assert!(
        created.starts_with("created ann@example.com (id 1)"),
        "{created}"
    );
    let session = api
        .login("ann@example.com", "first-pw")
        .await
        .session_id()
        .unwrap();
    let shown = stdout(&admin(&["user", "show", "ann@example.com"], ""));
    let checked = stdout(&admin(&["config", "check"], ""));
    assert!(checked.starts_with("profile: debug\n"), "{checked}");
    assert!(shown.contains("email: ann@example.com\n"), "{shown}");
    assert!(
        shown.contains("live sessions: 1\n") && !shown.contains("$2b$"),
        "{shown}"
    );

    stdout(&admin(
        &["user", "set-password", "ann@example.com"],
        "second-pw\n",
    ));
    assert_eq!(api.profile(&session).await.status, StatusCode::FORBIDDEN);
    let again = api.login("ann@example.com", "second-pw").await;
    assert_eq!(again.status, StatusCode::OK);
    let revoked = stdout(&admin(&["sessions", "revoke", "ann@example.com"], ""));
    assert_eq!(revoked, "1 session ended\n");
    let again = stdout(&admin(&["sessions", "revoke", "ann@example.com"], ""));
    assert_eq!(again, "0 sessions ended\n");
    let disabled = stdout(&admin(&["user", "disable-mfa", "ann@example.com"], ""));
    assert_eq!(
        disabled,
        "ann@example.com had no second factor; its sessions ended\n"
    );
    assert!(stdout(&admin(&["sessions", "purge"], "")).starts_with("purged "));
    assert_eq!(
        stdout(&admin(&["migrate"], "")),
        "every migration is applied\n"
    );
    let copy = dir.join("copy.db");
    let backup = stdout(&admin(&["backup", copy.to_str().unwrap()], ""));
    assert!(backup.starts_with("backup written to "), "{backup}");
    assert_eq!(integrity_check(&copy), "ok");
    assert_backup_refusals(&admin, &copy);

    let unknown = admin(&["user", "show", "nobody@example.com"], "");
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8(unknown.stderr).unwrap();
    assert_eq!(stderr, "error: no account has that email\n");
    let weak = admin(&["user", "create", "bob@example.com"], "\n");
    assert_eq!(weak.status.code(), Some(1), "an empty password is refused");

    // Without the service the commands open the database themselves.
    server.kill();
    std::fs::remove_file(&copy).unwrap();
    stdout(&admin(&["backup", copy.to_str().unwrap()], ""));
    assert_backup_refusals(&admin, &copy);
    stdout(&admin(&["user", "delete", "ann@example.com"], ""));
    let gone = admin(&["user", "show", "ann@example.com"], "");
    assert_eq!(gone.status.code(), Some(1));
    assert_eq!(
        admin_events(dir),
        [
            "admin.user_created",
            "admin.user_shown",
            "admin.config_checked",
            "admin.password_set",
            "admin.sessions_revoked",
            "admin.sessions_revoked",
            "admin.mfa_disabled",
            "admin.sessions_purged",
            "admin.migrate",
            "admin.backup",
            "admin.backup",
            "admin.backup",
            "admin.backup",
            "admin.user_deleted",
        ]
    );
}

/// The value after `name: ` on its line of `text`.
fn field<'t>(text: &'t str, name: &str) -> &'t str {
    let start = text
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("{name} in {text}"));
    let rest = &text[start + name.len() + 2..];
    &rest[..rest.find('\n').unwrap_or(rest.len())]
}

#[rocket::async_test]
async fn oidc_clients_are_registered_shown_given_new_secrets_and_removed_and_keys_rotated() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let db = dir.join("auth.db");
    let server = Server::start(db.to_str().unwrap(), dir, Limits::default());
    let socket = server.admin_socket.clone();
    let api = Api::new(&server);
    let admin = |args: &[&str]| run(dir, &socket, args, "", &[]);

    let added = stdout(&admin(&[
        "oidc",
        "clients",
        "add",
        "--name",
        "Team wiki",
        "--redirect-uri",
        "https://wiki.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--post-logout-uri",
        "https://wiki.example.com/",
        "--scopes",
        "openid",
        "email",
    ]));
    let (id, secret) = (field(&added, "client_id"), field(&added, "client_secret"));
    assert_eq!(secret.len(), 43, "{added}");
    assert!(added.contains("shown this once"), "{added}");
    assert_eq!(field(&added, "scopes"), "openid email");
    assert_eq!(
        api.token_as(id, secret).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        api.token_as(id, "wrong").await.status,
        StatusCode::UNAUTHORIZED
    );

    let listed = stdout(&admin(&["oidc", "clients", "list"]));
    assert_eq!(listed, format!("{id}  Team wiki  (confidential)\n"));
    let shown = stdout(&admin(&["oidc", "clients", "show", id]));
    assert!(
        shown
            .contains("redirect URIs: https://wiki.example.com/callback http://127.0.0.1/callback"),
        "{shown}"
    );
    assert!(!shown.contains(secret), "the secret is shown only once");
    let rotated = stdout(&admin(&["oidc", "clients", "rotate-secret", id]));
    let new_secret = field(&rotated, "client_secret");
    assert_ne!(new_secret, secret);
    assert_eq!(
        api.token_as(id, secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.token_as(id, new_secret).await.json()["error"],
        "invalid_grant"
    );

    let public = stdout(&admin(&[
        "oidc",
        "clients",
        "add",
        "--name",
        "Phone app",
        "--public",
        "--redirect-uri",
        "com.example.app:/callback",
    ]));
    assert!(!public.contains("client_secret"), "{public}");
    let refused = admin(&[
        "oidc",
        "clients",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        "http://evil.example.com/cb",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("plain http is for loopback addresses only"),
        "{stderr}"
    );

    let jwks = async || {
        api.get("/oauth/jwks").await.json()["keys"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(jwks().await, 1);
    let key = stdout(&admin(&["oidc", "rotate-key"]));
    assert!(key.starts_with("new signing key(s): "), "{key}");
    assert_eq!(jwks().await, 2, "the retired key stays published");

    stdout(&admin(&["oidc", "clients", "remove", id]));
    assert_eq!(
        api.token_as(id, new_secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    let gone = admin(&["oidc", "clients", "show", id]);
    assert_eq!(gone.status.code(), Some(1));

    // An operator's disable ends the account's sessions and sign-ins until it is enabled.
    api.register("ann@example.com", "pw").await;
    let session = api
        .login("ann@example.com", "pw")
        .await
        .session_id()
        .unwrap();
    let disabled = stdout(&admin(&["user", "disable", "ann@example.com"]));
    assert!(
        disabled.starts_with("ann@example.com disabled: 1 session ended"),
        "{disabled}"
    );
    assert_eq!(api.profile(&session).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.login("ann@example.com", "pw").await.status,
        StatusCode::FORBIDDEN
    );
    let shown = stdout(&admin(&["user", "show", "ann@example.com"]));
    assert!(!shown.contains("disabled: never"), "{shown}");
    stdout(&admin(&["user", "enable", "ann@example.com"]));
    assert_eq!(
        api.login("ann@example.com", "pw").await.status,
        StatusCode::OK
    );

    // Without the service the commands open the database themselves.
    server.kill();
    let listed = stdout(&admin(&["oidc", "clients", "list"]));
    assert!(listed.contains("Phone app  (public)"), "{listed}");
    assert_eq!(
        admin_events(dir),
        [
            "admin.oidc_client_added",
            "admin.oidc_client_secret_rotated",
            "admin.oidc_client_added",
            "admin.oidc_key_rotated",
            "admin.oidc_client_removed",
            "admin.user_disabled",
            "admin.user_shown",
            "admin.user_enabled",
        ]
    );
}

/// `backup` to the existing `copy` is refused without `--force` and done with it; into a
/// directory that does not exist it says so. Either way through `admin`.
fn assert_backup_refusals(admin: &dyn Fn(&[&str], &str) -> Output, copy: &Path) {
    let path = copy.to_str().unwrap();
    std::fs::write(copy, "precious").unwrap();
    let kept = admin(&["backup", path], "");
    assert_eq!(kept.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&kept.stderr),
        format!("error: {path} exists: pass --force to replace it\n")
    );
    assert_eq!(std::fs::read(copy).unwrap(), b"precious");
    let replaced = stdout(&admin(&["backup", "--force", path], ""));
    assert!(replaced.starts_with("backup written to "), "{replaced}");
    assert_eq!(integrity_check(copy), "ok");
    let nowhere = copy.parent().unwrap().join("missing");
    let lost = admin(&["backup", nowhere.join("copy.db").to_str().unwrap()], "");
    assert_eq!(lost.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&lost.stderr),
        format!("error: directory does not exist: {}\n", nowhere.display())
    );
}

#[rocket::async_test]
async fn a_backup_taken_under_write_load_restores_every_account_acknowledged_before_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    let db = dir.join("auth.db");
    let server = Server::start(db.to_str().unwrap(), &dir, Limits::default());
    let api = Api::new(&server);
    let started = Instant::now();
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = JoinSet::new();
    for writer in 0..4 {
        let (api, served) = (api.clone(), served.clone());
        load.spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..150 {
                let email = format!("w{writer}-{n}@example.com");
                if api.register(&email, "pw").await.status == StatusCode::OK {
                    acknowledged.push((Instant::now(), email));
                    served.fetch_add(1, Ordering::SeqCst);
                }
            }
            acknowledged
        });
    }
    // Mid-load, however slow the machine: once a few dozen signups are in.
    while served.load(Ordering::SeqCst) < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load started"
        );
        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let copy = dir.join("backup.db");
    let (socket, target) = (server.admin_socket.clone(), copy.clone());
    let asked = Instant::now();
    let work_dir = dir.clone();
    let output = rocket::tokio::task::spawn_blocking(move || {
        run(
            &work_dir,
            &socket,
            &["backup", target.to_str().unwrap()],
            "",
            &[],
        )
    })
    .await
    .unwrap();
    stdout(&output);
    let mut before = Vec::new();
    let mut total = 0;
    while let Some(done) = load.join_next().await {
        let acknowledged = done.unwrap();
        total += acknowledged.len();
        before.extend(
            acknowledged
                .into_iter()
                .filter(|(at, _)| *at < asked)
                .map(|(_, email)| email),
        );
    }
    assert!(total == 600, "every signup was served: {total}");
    assert!(
        !before.is_empty() && before.len() < 600,
        "taken mid-load: {}",
        before.len()
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    server.kill();

    assert_eq!(integrity_check(&copy), "ok");
    let restored = tempfile::tempdir().unwrap();
    let restored_db: PathBuf = restored.path().join("auth.db");
    std::fs::copy(&copy, &restored_db).unwrap();
    let server = Server::start(
        restored_db.to_str().unwrap(),
        restored.path(),
        Limits::default(),
    );
    let api = Api::new(&server);
    for email in &before {
        let login = api.login(email, "pw").await;
        assert_eq!(
            login.status,
            StatusCode::OK,
            "{email} was acknowledged before the backup"
        );
    }
}

#[test]
fn scheduled_backups_keep_the_newest_copies_and_each_is_sound() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let backups = dir.join("backups");
    let limits = Limits {
        env: vec![
            ("ROCKET_BACKUP_DIR".into(), backups.to_str().unwrap().into()),
            ("ROCKET_BACKUP_INTERVAL_SECS".into(), "1".into()),
            ("ROCKET_BACKUP_KEEP".into(), "2".into()),
        ],
        ..Limits::default()
    };
    let server = Server::start(dir.join("auth.db").to_str().unwrap(), dir, limits);
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin_events(dir).len() < 4 {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill();
    let mut kept: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for copy in &kept {
        let name = copy.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("auth-") && name.ends_with("Z.db"),
            "{name}"
        );
        assert_eq!(integrity_check(copy), "ok");
    }
}

#[rocket::async_test]
async fn a_json_request_log_is_one_object_per_line_with_tokens_redacted() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let limits = Limits {
        env: vec![("ROCKET_LOG_FORMAT".into(), "json".into())],
        ..Limits::default()
    };
    let server = Server::start(dir.join("auth.db").to_str().unwrap(), dir, limits);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/password/reset?token=s3cret-value", "/health/ready"] {
        http.get(format!("{}{path}", server.base))
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
    }
    rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(!log.contains("s3cret-value"), "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|line| line["route"] == "/health/ready")
        .unwrap_or_else(|| panic!("a request line in {log}"));
    assert_eq!(request["method"], "GET");
    assert_eq!(request["status"], 200);
    assert_eq!(request["address"], "127.0.0.1");
    assert_eq!(request["level"], "info");
    assert!(request["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(request["request_id"].as_str().unwrap().len(), 36);
    assert!(request["time"].as_str().unwrap().ends_with('Z'));
    let reset = lines
        .iter()
        .find(|line| line["route"] == "/password/reset" && line["status"] == 303)
        .unwrap_or_else(|| panic!("the reset link's line in {log}"));
    assert_eq!(
        reset["path"], "/password/reset",
        "the path only, never the query"
    );
}

#[rocket::async_test]
async fn every_file_the_service_writes_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let backups = dir.join("backups/nightly");
    let limits = Limits {
        env: vec![
            ("ROCKET_DATABASE_EXCLUSIVE".into(), "false".into()),
            ("ROCKET_BACKUP_DIR".into(), backups.to_str().unwrap().into()),
            ("ROCKET_BACKUP_INTERVAL_SECS".into(), "1".into()),
        ],
        umask: Some(0),
        ..Limits::default()
    };
    let db = dir.join("auth.db");
    let server = Server::start(db.to_str().unwrap(), dir, limits);
    let api = Api::new(&server);
    assert_eq!(
        api.register("ann@example.com", "pw").await.status,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = dir.join("mail");
    while !admin_events(dir).contains(&"admin.backup".to_owned())
        || std::fs::read_dir(&mail).map_or(0, |d| d.count()) == 0
    {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let copy = dir.join("copy.db");
    stdout(&run(
        dir,
        &server.admin_socket,
        &["backup", copy.to_str().unwrap()],
        "",
        &[],
    ));
    let first = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    let mode = |path: &Path| {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        (path.strip_prefix(dir).unwrap().display().to_string(), mode)
    };
    let files = [
        db.clone(),
        dir.join("auth.db-wal"),
        dir.join("auth.db-shm"),
        dir.join("audit.log"),
        first(&mail),
        first(&backups),
        copy,
        server.admin_socket.clone(),
    ];
    for (name, mode) in files.iter().map(|file| mode(file)) {
        assert_eq!(mode, 0o600, "{name}");
    }
    let socket_dir = server.admin_socket.parent().unwrap().to_owned();
    for (name, mode) in [mail, dir.join("backups"), backups, socket_dir]
        .iter()
        .map(|d| mode(d))
    {
        assert_eq!(mode, 0o700, "{name}");
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("admin.sock");
    for args in [&["config", "check"][..], &["sessions", "purge"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(BINARY)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("ROCKET_PROFILE", "debug")
            .env("ROCKET_DATABASE_URL", work.path().join("auth.db"))
            .env("ROCKET_AUDIT_LOG", work.path().join("audit.log"))
            .env("ROCKET_MAIL_OUTBOX_DIR", work.path().join("mail"))
            .env("ROCKET_ADMIN_SOCKET", &socket)
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
    }
}

#[test]
fn a_refusal_into_a_closed_stderr_still_exits_1_not_with_a_panic() {
    let work = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(BINARY)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("ROCKET_PROFILE", "debug")
        .env("ROCKET_DATABASE_URL", work.path().join("auth.db"))
        .env("ROCKET_BCRYPT_COST", "high")
        .args(["config", "check"])
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn audit_lines_go_to_the_log_and_the_output_is_only_the_answer() {
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("admin.sock");
    let audit_on_stderr = [("ROCKET_AUDIT_LOG", "stderr")];
    let args = ["user", "create", "ann@example.com"];
    let output = run(work.path(), &socket, &args, "first-pw\n", &audit_on_stderr);
    assert_eq!(
        stdout(&output),
        "created ann@example.com (id 1), email verified\n"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("audit ") && stderr.contains(r#"event="admin.user_created""#),
        "{stderr}"
    );
}

#[test]
fn a_misspelled_command_gets_the_closest_one() {
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("admin.sock");
    for (args, meant) in [
        (&["sesions", "purge"][..], "'sessions'"),
        (&["user", "shwo", "a@b.io"], "'show'"),
    ] {
        let output = run(work.path(), &socket, args, "", &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains(&format!("tip: a similar subcommand exists: {meant}")),
            "{args:?}: {stderr}"
        );
    }
}

/// The user CI's root tests act as when they need someone else.
const NOBODY: libc::uid_t = 65534;

/// What a client of user `uid` reads back from the Unix socket `socket` after sending `line`
/// (empty when it is hung up on unanswered). A forked child takes `uid`, so the test process
/// keeps its own; between fork and exit it makes only async-signal-safe calls.
fn exchange_as(uid: libc::uid_t, socket: &Path, line: &str) -> String {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is plain data, valid when zeroed.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, from) in address
        .sun_path
        .iter_mut()
        .zip(socket.as_os_str().as_bytes())
    {
        *to = *from as libc::c_char;
    }
    let request = format!("{line}\n");
    let (mut reader, writer) = std::io::pipe().unwrap();
    // SAFETY: the child calls only setuid, socket, connect, write, read and _exit, all
    // async-signal-safe, on memory prepared before the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: as above; the child never returns into the test harness.
        unsafe {
            if libc::setuid(uid) != 0 {
                libc::_exit(2);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let size = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::connect(fd, (&raw const address).cast(), size) != 0 {
                libc::_exit(3);
            }
            libc::write(fd, request.as_ptr().cast(), request.len());
            let mut buffer = [0u8; 4096];
            loop {
                let read = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
                if read <= 0 {
                    break;
                }
                libc::write(writer.as_raw_fd(), buffer.as_ptr().cast(), read as usize);
            }
            libc::_exit(0);
        }
    }
    drop(writer);
    let mut answer = String::new();
    reader.read_to_string(&mut answer).unwrap();
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` outlives the call.
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the client of uid {uid} connected"
    );
    answer
}

#[test]
#[ignore = "needs root (acts as another user); .ci/run runs it"]
fn the_service_and_the_command_line_each_refuse_another_users_socket() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = Server::start(
        dir.join("auth.db").to_str().unwrap(),
        dir,
        Limits::default(),
    );
    let socket = server.admin_socket.clone();
    // Opened up so that another user reaches the socket at all: the service must still refuse.
    for reached in [dir, socket.parent().unwrap()] {
        std::fs::set_permissions(reached, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let show = r#"{"command":"user_show","email":"ann@example.com"}"#;
    let as_root = exchange_as(0, &socket, show);
    assert!(as_root.contains("no account has that email"), "{as_root}");
    assert_eq!(exchange_as(NOBODY, &socket, show), "", "hung up unanswered");
    let log = server.log();
    assert!(
        log.contains(&format!("refused an admin connection from uid {NOBODY}")),
        "{log}"
    );

    // A socket another user made is never sent a command (it could carry a password).
    let decoy = dir.join("decoy.sock");
    let listener = std::os::unix::net::UnixListener::bind(&decoy).unwrap();
    std::os::unix::fs::chown(&decoy, Some(NOBODY), None).unwrap();
    let (heard, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stream)
            .read_line(&mut line)
            .unwrap();
        heard.send(line).unwrap();
    });
    let output = run(
        dir,
        &decoy,
        &["user", "create", "ann@example.com"],
        "s3cret-pw\n",
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "error: the admin socket {} belongs to uid {NOBODY}, not to this user (uid 0): run \
             the command as the service's user\n",
            decoy.display()
        )
    );
    assert!(received.try_recv().is_err(), "nothing was sent");
}
