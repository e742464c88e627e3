//! The real `auth_service` binary as a child process, and an HTTP client for it: what the fault
//! tests need when the fault lives in the operating system (a file-size limit, a full or
//! read-only file system) rather than in the app, and the PostgreSQL tests need to run several
//! instances of the service against one database. Shared by test binaries through `#[path]`,
//! each using part of it.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

/// The server binary Cargo built for this test run.
const BINARY: &str = env!("CARGO_BIN_EXE_auth_service");

/// A running server on `127.0.0.1:<free port>` (debug profile, bcrypt cost 4, throttling off so
/// bursts from one address are served), killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
    /// Where the admin command line reaches this server.
    pub admin_socket: PathBuf,
}

/// What to do to the child before it runs the binary, and settings of its own.
#[derive(Clone, Default)]
pub struct Limits {
    /// `RLIMIT_FSIZE` in bytes: no file the server writes may grow past it.
    pub file_size: Option<u64>,
    /// More `ROCKET_*` variables, after the defaults.
    pub env: Vec<(String, String)>,
    /// The file mode creation mask the binary starts with (the caller's when `None`).
    pub umask: Option<libc::mode_t>,
}

/// The `mfa_key` of the test servers on PostgreSQL.
const MFA_KEY: &str = "q6bR8Z0p3cX3JX1m9bJ8pWm2o1m9t8Y0VQwqR0k6x7Q=";

impl Server {
    /// Starts the binary on `database_url` (a SQLite file or a PostgreSQL URL); its stderr goes
    /// to `<work>/server-<port>.log`, its audit log and mail outbox into `work` too.
    pub fn start(database_url: &str, work: &Path, limits: Limits) -> Server {
        let port = free_port();
        let log = work.join(format!("server-{port}.log"));
        // In a directory of its own, which the service creates private.
        let admin_socket = work.join(format!("admin-{port}")).join("admin.sock");
        let mut command = Command::new(BINARY);
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("ROCKET_PROFILE", "debug")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_DATABASE_URL", database_url)
            .env("ROCKET_BCRYPT_COST", "4")
            .env("ROCKET_THROTTLE_ENABLED", "false")
            .env("ROCKET_AUDIT_LOG", work.join("audit.log"))
            .env("ROCKET_MAIL_OUTBOX_DIR", work.join("mail"))
            .env("ROCKET_LOG_LEVEL", "normal")
            .env("ROCKET_ADMIN_SOCKET", &admin_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .envs(limits.env.iter().map(|(k, v)| (k, v)));
        if database_url.starts_with("postgres") {
            // SQLite's key file lies beside the database; instances sharing a PostgreSQL
            // database share a key, as a deployment's do.
            command.env("ROCKET_MFA_KEY", MFA_KEY);
        }
        if let Some(mask) = limits.umask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask is async-signal-safe and sets only the child's own mask.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        if let Some(bytes) = limits.file_size {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: libc::RLIM_INFINITY,
                    };
                    match libc::setrlimit(libc::RLIMIT_FSIZE, &limit) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                });
            }
        }
        let child = command.spawn().expect("the server binary starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            admin_socket,
        };
        server.wait_until_listening(port);
        server
    }

    /// Waits until the port answers; by then the admin socket must be there too (it is bound
    /// before the service serves), so no operator's script has to wait for it.
    fn wait_until_listening(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            self.admin_socket.exists(),
            "HTTP answers but the admin socket is not there:\n{}",
            self.log()
        );
    }

    /// Lifts the file-size limit of the running server (`prlimit`, no root needed for one's
    /// own processes): the fault goes away without a restart.
    pub fn lift_file_size_limit(&self) {
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: prlimit reads the struct we pass and writes nothing (no old-limit pointer).
        let done = unsafe {
            libc::prlimit(
                self.child.id() as libc::pid_t,
                libc::RLIMIT_FSIZE,
                &unlimited,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(done, 0, "{}", std::io::Error::last_os_error());
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash or the OOM killer would: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What `PRAGMA integrity_check` says of the SQLite file `db` (`"ok"` when sound).
pub fn integrity_check(db: &Path) -> String {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let checks: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    checks
        .into_iter()
        .map(|c| c.integrity_check)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The session cookie this answer sets.
    pub fn session_id(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("session_id="))
            .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
            .filter(|id| !id.is_empty())
    }

    /// Asserts the answer is an honest refusal: 503, `Retry-After`, a JSON message.
    pub fn assert_unavailable(&self) {
        assert_eq!(self.status, StatusCode::SERVICE_UNAVAILABLE, "{self:?}");
        let retry: u64 = self
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(retry >= 1, "{retry}");
        assert!(self.json()["message"].is_string(), "{self:?}");
    }
}

/// An HTTP client for one server, speaking as the original service's clients do (form bodies).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: server.base.clone(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    fn form(
        &self,
        method: reqwest::Method,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('@', "%40")))
            .collect::<Vec<_>>()
            .join("&");
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST /oauth/token` with a refresh token that does not exist, authenticated as
    /// `client_id` with `secret` (`client_secret_post`): 400 `invalid_grant` when the client
    /// authenticated, 401 when not.
    pub async fn token_as(&self, client_id: &str, secret: &str) -> Answer {
        let fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", "unknown"),
            ("client_id", client_id),
            ("client_secret", secret),
        ];
        self.send(self.form(reqwest::Method::POST, "/oauth/token", &fields))
            .await
    }

    /// `GET /health/ready`.
    pub async fn ready(&self) -> Answer {
        self.send(self.http.get(format!("{}/health/ready", self.base)))
            .await
    }

    pub async fn root(&self) -> Answer {
        self.send(self.http.get(format!("{}/", self.base))).await
    }

    /// A signup's status, or `None` when no answer came (the server is gone).
    pub async fn try_register(&self, email: &str, password: &str) -> Option<StatusCode> {
        let fields = [("email", email), ("password", password)];
        let request = self.form(reqwest::Method::POST, "/users", &fields);
        request.send().await.ok().map(|response| response.status())
    }

    pub async fn register(&self, email: &str, password: &str) -> Answer {
        let fields = [("email", email), ("password", password)];
        self.send(self.form(reqwest::Method::POST, "/users", &fields))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Answer {
        let fields = [("email", email), ("password", password)];
        self.send(self.form(reqwest::Method::POST, "/sessions", &fields))
            .await
    }

    pub async fn profile(&self, session_id: &str) -> Answer {
        let request = self.http.get(format!("{}/profile", self.base));
        self.send(request.header("Cookie", format!("session_id={session_id}")))
            .await
    }

    pub async fn logout(&self, session_id: &str) -> Answer {
        let request = self.http.delete(format!("{}/sessions", self.base));
        self.send(request.header("Cookie", format!("session_id={session_id}")))
            .await
    }

    /// Signs up through the page, as a browser does: the form (which sets the CSRF cookie),
    /// then its submission with the cookie and the form's hidden token.
    pub async fn sign_up_page(&self, email: &str) -> Answer {
        let url = format!("{}/signup", self.base);
        let form = self
            .send(self.http.get(&url).header("Accept", "text/html"))
            .await;
        let cookie = form
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("csrf_token="))
            .and_then(|c| c.split(';').next())
            .expect("a CSRF cookie")
            .to_owned();
        let field = "name=\"csrf_token\" value=\"";
        let start = form.body.find(field).expect("a CSRF field") + field.len();
        let token = &form.body[start..start + form.body[start..].find('"').unwrap()];
        let fields = [("email", email), ("password", "pw"), ("csrf_token", token)];
        let request = self.form(reqwest::Method::POST, "/signup", &fields);
        self.send(
            request
                .header("Accept", "text/html")
                .header("Cookie", cookie),
        )
        .await
    }

    pub async fn update_password(&self, email: &str, token: &str, password: &str) -> Answer {
        let fields = [
            ("email", email),
            ("reset_token", token),
            ("new_password", password),
        ];
        self.send(self.form(reqwest::Method::PUT, "/reset_password", &fields))
            .await
    }

    pub async fn request_reset(&self, email: &str) -> Answer {
        let fields = [("email", email)];
        self.send(self.form(reqwest::Method::POST, "/reset_password", &fields))
            .await
    }
}
